"""The daily routine's predictors through the fitted pipeline, and the input sets.

Values are worked by hand from the definitions (features.daily); exact sums of a few floats, so
compared with 1e-12 relative tolerance. The pipeline is fitted on a handful of hand-made rows:
these steps learn nothing, and the cohort's generator does not write the daily series yet.
"""

from __future__ import annotations

import math
import pickle
from typing import cast

import numpy as np
import pytest

from features.display import label, value_text
from features.layout import COLUMN_INDEX, RAW_COLUMNS, SERIES_SLICE
from features.transformers import ClinicalFeatures, build_feature_pipeline
from icans.errors import InvalidInputError

pytestmark = pytest.mark.filterwarnings("ignore::icans.errors.UnknownCategoryWarning")


def row(day: int, baseline: dict[str, float] | None = None, **course: dict[int, float]):
    """One raw row (CD19/CD28 LBCL) observed up to ``day``; ``course``: series -> {day: value}."""
    raw = np.full((1, len(RAW_COLUMNS)), np.nan)
    raw[0, COLUMN_INDEX["day_since_infusion"]] = day
    for field in ("car_target", "costimulatory_domain", "disease"):
        raw[0, COLUMN_INDEX[field]] = 0.0
    for field, value in (baseline or {}).items():
        raw[0, COLUMN_INDEX[field]] = value
    for name, values in course.items():
        for d, v in values.items():
            raw[0, SERIES_SLICE[name].start + d] = v
    return raw


@pytest.fixture(scope="module")
def pipe():
    return build_feature_pipeline().fit(np.vstack([row(3), row(7)]))


def names_out(pipe) -> list[str]:
    return [str(n) for n in cast(np.ndarray, pipe.get_feature_names_out())]


def features(pipe, raw) -> dict[str, float]:
    names = names_out(pipe)
    return dict(zip(names, pipe.transform(raw)[0].tolist(), strict=True))


def test_crp_course_by_hand(pipe):
    f = features(pipe, row(3, crp_mg_per_l={1: 10.0, 2: 40.0, 3: 160.0}))
    assert f["log_crp_latest_mg_per_l"] == pytest.approx(math.log(160.0), rel=1e-12)
    assert f["log_crp_max_to_date_mg_per_l"] == pytest.approx(math.log(160.0), rel=1e-12)
    assert f["crp_log_slope_recent"] == pytest.approx(math.log(4.0), rel=1e-12)
    assert value_text("log_crp_latest_mg_per_l", f["log_crp_latest_mg_per_l"]) == "160 mg/L"
    assert value_text("crp_log_slope_recent", f["crp_log_slope_recent"]) == "x4 per day"


def test_platelets_and_fibrinogen_fall_from_the_patients_own_baseline(pipe):
    # platelets 200 before lymphodepletion; 150, 60, 90 on days 1, 3, 4: nadir 60, latest 90 =
    # 45% of baseline. Fibrinogen 400 (first daily value), 300, 200: latest 50% of the first.
    raw = row(
        4,
        {"platelets_10e9_per_l": 200.0},
        platelets_10e9_per_l={1: 150.0, 3: 60.0, 4: 90.0},
        fibrinogen_mg_per_dl={2: 400.0, 3: 300.0, 4: 200.0},
    )
    f = features(pipe, raw)
    assert f["log_platelets_min_to_date_10e9_per_l"] == pytest.approx(math.log(60.0), rel=1e-12)
    assert f["log_platelets_latest_10e9_per_l"] == pytest.approx(math.log(90.0), rel=1e-12)
    assert f["platelets_latest_vs_baseline"] == pytest.approx(0.45, rel=1e-12)
    assert f["fibrinogen_latest_vs_baseline"] == pytest.approx(0.5, rel=1e-12)
    assert f["log_fibrinogen_min_to_date_mg_per_dl"] == pytest.approx(math.log(200.0), rel=1e-12)
    # fibrinogen 400, 300, 200 on days 2-4: slope of the logs (log 200 - log 400) / 2
    assert f["fibrinogen_log_slope_recent"] == pytest.approx(math.log(0.5) / 2, rel=1e-12)
    # without the baseline lab the platelet fall is missing, never taken against a guess
    no_baseline = row(4, platelets_10e9_per_l={1: 150.0, 4: 90.0})
    assert math.isnan(features(pipe, no_baseline)["platelets_latest_vs_baseline"])


def test_fever_ice_capd_and_the_daily_scores_by_hand(pipe):
    raw = row(
        5,
        temperature_max_c={0: 36.9, 1: 38.4, 2: 39.6, 3: 37.5, 4: 38.0, 5: 37.0},
        ice_score={2: 10.0, 3: 9.0, 4: 7.0, 5: 8.0},
        ldh_u_per_l={1: 250.0, 3: 500.0, 5: 600.0},
        crp_mg_per_l={1: 30.0, 3: 120.0},
        platelets_10e9_per_l={1: 150.0, 3: 75.0, 5: 50.0},
        creatinine_mg_per_dl={5: 1.2},
    )
    f = features(pipe, raw)
    # fever (>= 38.0) on days 1, 2 and 4; onset day 1, so 4 days before L = 5; max 39.6
    assert (f["fever_days_to_date"], f["days_since_fever_onset"]) == (3.0, 4.0)
    assert f["temperature_max_to_date_c"] == 39.6
    # ICE 10, 9, 7, 8: latest 8, lowest 7, 2 below the best
    assert (f["ice_score_latest"], f["ice_score_min_to_date"]) == (8.0, 7.0)
    assert f["ice_score_fall_from_best"] == 2.0
    assert math.isnan(f["capd_score_latest"]) and math.isnan(f["capd_score_max_to_date"])
    # m-EASIX on day 3 (the latest with LDH, CRP and platelets): 500 x 12 mg/dL / 75 = 80;
    # EASIX on day 5: 600 x 1.2 / 50 = 14.4
    assert f["m_easix_latest"] == pytest.approx(80.0, rel=1e-12)
    assert f["easix_latest"] == pytest.approx(14.4, rel=1e-12)


def test_a_child_has_capd_and_no_ice(pipe):
    f = features(pipe, row(4, {"age_years": 6.0}, capd_score={1: 4.0, 2: 12.0, 4: 9.0}))
    assert (f["capd_score_latest"], f["capd_score_max_to_date"]) == (9.0, 12.0)
    assert all(math.isnan(f[n]) for n in ("ice_score_latest", "ice_score_fall_from_best"))


def test_every_daily_series_missing_gives_missing_predictors_and_the_rest_unchanged(pipe):
    """The cohort's generator does not write the daily series yet: a pipeline fitted on rows
    without any of them runs, and gives NaN for every daily predictor (no imputation)."""
    names = names_out(pipe)
    daily = names[names.index("fever_days_to_date") :]  # the daily steps come last
    assert len(daily) == 3 + 5 + 8 * 3 + 2 + 2  # fever, ICE/CAPD, 8 labs, 2 falls, 2 scores
    raw = np.vstack([row(3, crs_grade={1: 1.0}), row(0)])
    x = pipe.transform(raw)
    assert np.isnan(x[:, [names.index(n) for n in daily]]).all()
    assert x[0, names.index("crs_max_grade_to_date")] == 1.0


def test_every_new_predictor_reads_clinically():
    for name, value, shown in [
        ("log_platelets_min_to_date_10e9_per_l", math.log(40.0), "40 x10^9/L"),
        ("platelets_latest_vs_baseline", 0.45, "45%"),
        ("ice_score_latest", 7.0, "7/10"),
        ("capd_score_max_to_date", 12.0, "12/32"),
        ("temperature_max_to_date_c", 39.24, "39.2 °C"),
        ("days_since_fever_onset", math.nan, "none so far"),
        ("log_il6_latest_pg_per_ml", math.nan, "not available"),
    ]:
        assert value_text(name, value) == shown, name
    assert label("log_lymphocytes_latest_10e9_per_l") == "absolute lymphocyte count, latest"
    assert label("fibrinogen_latest_vs_baseline") == "fibrinogen, latest vs the first daily value"


# --------------------------------------------------------------------------------------------
# Input sets
# --------------------------------------------------------------------------------------------


def names_of(inputs: str) -> set[str]:
    fitted = build_feature_pipeline(inputs).fit(np.vstack([row(3), row(7)]))
    return set(names_out(fitted))


def test_input_sets_keep_what_their_docstring_says():
    every = names_of("all")
    routine, baseline, named = names_of("routine"), names_of("baseline"), names_of("named")
    # routine: no CAR-T counts, no IL-6; everything else (the daily labs, treatment) stays
    assert every - routine == {
        "cd4_auc_to_date_cells_day_per_ul",
        "cd8_auc_to_date_cells_day_per_ul",
        "cd4_cd8_auc_ratio",
        "cd4_peak_to_date_cells_per_ul",
        "cd4_latest_cells_per_ul",
        "cd4_expansion_vs_product",
        "cd4_log_slope_latest",
        "days_since_cd4_peak",
        "cd4_cd8_latest_log_ratio",
        "cd4_slope_vs_product",
        "cd4_rise_vs_product",
        "cd4_latest_vs_product",
        "expansion_delay_days",
        "days_to_expansion_peak",
        "log_il6_latest_pg_per_ml",
        "log_il6_max_to_date_pg_per_ml",
        "il6_log_slope_recent",
    }
    # baseline: before infusion, and the landmark day
    assert {
        "age_years",
        "marrow_involvement",
        "crp_mg_per_l",
        "m_easix",
        "lab_inflammation_index",
        "landmark_day",
        "car_target=CD19",
    } <= baseline
    assert not baseline & {"crs_grade_today", "log_crp_latest_mg_per_l", "steroid_mg_today"}
    # named: first-generation fields (CRS, CAR-T, ICANS) but not marrow involvement, treatment
    # or the daily routine
    assert {"crs_max_grade_to_date", "cd4_auc_to_date_cells_day_per_ul", "icans_grade_today"} <= (
        named
    )
    assert not named & {"marrow_involvement", "tocilizumab_doses_to_date", "fever_days_to_date"}
    assert baseline - {"marrow_involvement"} <= named


def test_input_set_columns_are_the_all_set_columns():
    raw = np.vstack([row(3, crp_mg_per_l={1: 5.0, 3: 50.0}), row(7, crs_grade={2: 2.0})])
    full = build_feature_pipeline().fit(raw)
    part = build_feature_pipeline("routine").fit(raw)
    every, some = names_out(full), names_out(part)
    np.testing.assert_array_equal(
        part.transform(raw), full.transform(raw)[:, [every.index(n) for n in some]]
    )


def test_an_unknown_input_set_is_refused_at_fit_naming_the_allowed_ones():
    step = ClinicalFeatures(inputs="lab-only")  # __init__ only stores it (scikit-learn rules)
    with pytest.raises(InvalidInputError) as info:
        step.fit(np.vstack([row(3)]))
    assert info.value.field == "inputs" and info.value.value == "lab-only"
    assert info.value.expected == "one of all, routine, baseline, named"


def test_a_features_step_pickled_before_input_sets_keeps_every_predictor(pipe):
    """A fitted ClinicalFeatures logged before ``inputs`` existed has neither it nor
    ``keep_``: it computes every predictor of its steps, as before."""
    old = pickle.loads(pickle.dumps(pipe.named_steps["features"]))
    del old.__dict__["inputs"], old.__dict__["keep_"]
    raw = pipe.named_steps["window"].transform(row(3, crp_mg_per_l={3: 8.0}))
    new = pipe.named_steps["features"]
    np.testing.assert_array_equal(old.transform(raw), new.transform(raw))
    assert list(old.get_feature_names_out()) == list(new.get_feature_names_out())
    assert old.get_params()["inputs"] == "all"


def test_the_labs_in_one_pass_equal_each_lab_alone(block_of):
    """:class:`~features.daily.DailyLabs` stacks the labs' blocks and runs each definition once;
    on 300 generated patients at every landmark, each lab's columns equal those of the lab's
    step alone (the per-lab steps models fitted before hold): the definitions reduce every row
    on its own. Within rtol 1e-14, not bit for bit: a value's position in the array differs
    between the two, and numpy's vectorised log may round the last bit by position on other
    processors. Names in the same order."""
    from features.daily import DAILY_LABS, DailyLab, DailyLabs
    from features.landmarks import SPARSE_LANDMARKS, build_landmark_dataset

    raw = build_landmark_dataset(block_of(300, seed=4), SPARSE_LANDMARKS).raw
    together = DailyLabs().fit(raw)
    alone = [DailyLab(lab).fit(raw) for lab in DAILY_LABS]
    np.testing.assert_allclose(
        together.transform(raw), np.hstack([step.transform(raw) for step in alone]), rtol=1e-14
    )
    assert list(together.get_feature_names_out()) == [
        n for step in alone for n in step.get_feature_names_out()
    ]
    assert np.isfinite(together.transform(raw)).any(axis=0).all()  # every column has values
