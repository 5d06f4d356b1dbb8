"""The landmark dataset and the feature pipeline over a generated cohort."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from api.patient import parse_patient
from features.landmarks import DEFAULT_LANDMARKS, build_landmark_dataset, patient_record
from features.layout import COLUMN_INDEX, N_DAYS, SERIES_SLICE
from features.packing import to_raw
from features.transformers import build_feature_pipeline, transform_rows
from icans.errors import UnknownCategoryWarning


@pytest.fixture(scope="module")
def tables(block_of):
    return block_of(3000, seed=5)


@pytest.fixture(scope="module")
def dataset(tables):
    return build_landmark_dataset(tables)


@pytest.fixture(scope="module")
def fitted(dataset):
    pipe = build_feature_pipeline()
    return pipe, pipe.fit_transform(dataset.raw)


def test_one_row_per_living_event_free_patient_and_landmark(tables, dataset):
    outcomes = tables["outcomes"].set_index("patient_id")
    event_day, death_day = outcomes["event_day"], outcomes["death_day"]
    assert death_day.notna().any()  # the cohort has deaths to leave out
    for landmark in DEFAULT_LANDMARKS:
        ids = dataset.patient_id[dataset.landmark_day == landmark]
        at_risk = (event_day.isna() | (event_day > landmark)) & (
            death_day.isna() | (death_day > landmark)
        )
        expected = event_day[at_risk].index
        assert sorted(ids) == sorted(expected)
        assert len(set(ids)) == len(ids)


def test_label_is_the_event_after_the_landmark(tables, dataset):
    event_day = tables["outcomes"].set_index("patient_id")["event_day"]
    days = event_day.reindex(dataset.patient_id).to_numpy(float)
    assert np.all(np.isnan(days) | (days > dataset.landmark_day))
    np.testing.assert_array_equal(dataset.label, ~np.isnan(days))  # booleans: exact


def test_horizon_labels_are_the_event_within_each_window(tables, dataset):
    """72 hours after day L: days L+1..L+3; 7 days: L+1..L+7; both end by day 28; a competing
    death (no event_day) is no event in any horizon. Counted here from the event days."""
    event_day = tables["outcomes"].set_index("patient_id")["event_day"]
    days = event_day.reindex(dataset.patient_id).to_numpy(float)
    gap = days - dataset.landmark_day  # NaN: no event
    labels = dataset.horizon_labels
    assert list(labels) == ["72h", "7d", "day28"]
    np.testing.assert_array_equal(labels["72h"], gap <= 3)
    np.testing.assert_array_equal(labels["7d"], gap <= 7)
    np.testing.assert_array_equal(labels["day28"], dataset.label)
    # nested, and each shorter window misses some events the longer one has
    assert np.all(labels["72h"] <= labels["7d"]) and np.all(labels["7d"] <= labels["day28"])
    assert labels["72h"].sum() < labels["7d"].sum() < labels["day28"].sum()
    # the true risk of each horizon is attached, and nested as its windows are
    risk = dataset.horizon_true_risk
    assert set(risk) == {"72h", "7d"}
    assert np.all(risk["72h"] <= risk["7d"] + 1e-6) and np.all(
        risk["7d"] <= dataset.true_risk + 1e-6
    )
    kept = dataset.subset(dataset.landmark_day == 7)
    np.testing.assert_array_equal(
        kept.horizon_labels["72h"], labels["72h"][dataset.landmark_day == 7]
    )


def test_true_risk_attached_from_the_generator(tables, dataset):
    truth = tables["true_risk"].set_index(["patient_id", "landmark_day"])["true_risk"]
    key = pd.MultiIndex.from_arrays([dataset.patient_id, dataset.landmark_day])
    # exact: the generator's numbers copied onto the rows, nothing computed
    np.testing.assert_array_equal(dataset.true_risk, truth.reindex(key).to_numpy())
    assert not np.isnan(dataset.true_risk).any()


def test_no_observation_after_the_landmark_in_any_row(dataset):
    raw = dataset.raw
    after = np.arange(N_DAYS)[None, :] > dataset.landmark_day[:, None]
    for block in SERIES_SLICE.values():
        assert np.isnan(raw[:, block][after]).all()


def test_single_patient_path_gives_identical_features(tables, dataset, fitted):
    pipe, features = fitted
    rng = np.random.default_rng(0)
    for i in rng.choice(len(dataset), size=40, replace=False):
        record = patient_record(tables, dataset.patient_id[i], int(dataset.landmark_day[i]))
        single = transform_rows(pipe, to_raw(parse_patient(record)))[0]
        # exact: the feature steps compute each row on its own, elementwise or column by
        # column (no matrix product, no BLAS), in this process
        np.testing.assert_array_equal(single, features[i])


def test_transform_rows_equals_the_pipeline(dataset, fitted):
    pipe, features = fitted
    # exact: the same steps with the same fitted state on the same rows
    np.testing.assert_array_equal(transform_rows(pipe, dataset.raw), features)


def test_feature_names_cover_every_named_predictor(fitted):
    names = set(fitted[0].get_feature_names_out())
    for required in (
        "car_target=CD19",
        "costimulatory_domain=CD28",
        "log10_dose_cells_per_kg",
        "marrow_blasts_pct",
        "cns_involvement",
        "crs_grade_today",
        "crs_max_grade_to_date",
        "days_since_crs_onset",
        "cd4_auc_to_date_cells_day_per_ul",
        "cd8_auc_to_date_cells_day_per_ul",
        "cd4_cd8_auc_ratio",
        "cd4_peak_to_date_cells_per_ul",
        "cd4_latest_cells_per_ul",
        "cd4_expansion_vs_product",
        "lab_inflammation_index",
        "icans_max_grade_to_date",
        "m_easix",
        "easix",
        "landmark_day",
        "age_years",
        "marrow_involvement",
        "steroid_mg_today",
        "days_since_steroid_start",
        "prophylactic_steroid",
        "tocilizumab_doses_to_date",
    ):
        assert required in names, required
    assert len(names) == fitted[1].shape[1]


def test_unseen_category_is_all_zero_and_warned(tables, dataset):
    no_cd7 = dataset.subset((dataset.subgroups["car_target"] != "CD7").to_numpy())
    pipe = build_feature_pipeline().fit(no_cd7.raw)
    cd7 = dataset.subset((dataset.subgroups["car_target"] == "CD7").to_numpy())
    assert len(cd7) > 0
    names = list(pipe.get_feature_names_out())
    with pytest.warns(UnknownCategoryWarning) as record:
        out = pipe.transform(cd7.raw)
    assert any("car_target='CD7'" in str(w.message) for w in record)
    target_cols = [i for i, n in enumerate(names) if n.startswith("car_target=")]
    assert "car_target=CD7" not in names
    assert (out[:, target_cols] == 0).all()


def test_seen_categories_raise_no_warning(dataset, fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownCategoryWarning)
        fitted[0].transform(dataset.raw[:50])


def test_training_ranges_are_learned_and_pickle_round_trips(dataset, fitted):
    pipe, features = fitted
    ranges = pipe.named_steps["ranges"]
    assert ranges.lower_.shape == (features.shape[1],)
    assert np.all((ranges.lower_ <= ranges.upper_) | np.isnan(ranges.lower_))
    clone = pickle.loads(pickle.dumps(pipe))
    # exact: the same fitted state, unpickled, and per-row steps (a batch of 100 is rows alone)
    np.testing.assert_array_equal(clone.transform(dataset.raw[:100]), features[:100])


def _feature(fitted, name):
    pipe, x = fitted
    return x[:, list(pipe.get_feature_names_out()).index(name)]


def test_cd4_expansion_vs_product_is_centred_per_product_and_rises_with_cd4(dataset, fitted):
    pipe, _ = fitted
    level = _feature(fitted, "cd4_expansion_vs_product")
    sampled = ~np.isnan(level)
    assert sampled.any() and not sampled.all()  # missing before the first post-infusion sample
    for target in dataset.subgroups["car_target"].unique():
        rows = sampled & (dataset.subgroups["car_target"] == target).to_numpy()
        if rows.sum() > 200:  # typical level of each product: about 0 on the log scale
            assert abs(np.median(level[rows])) < 0.3, target
    raw = dataset.raw.copy()
    cd4 = SERIES_SLICE["cd4_cells_per_ul"]
    raw[:, cd4.start + 1 : cd4.stop] *= 2
    names = list(pipe.get_feature_names_out())
    after = pipe.transform(raw)
    for name in ("cd4_expansion_vs_product", "cd4_latest_cells_per_ul"):
        before = _feature(fitted, name)
        seen = ~np.isnan(before)
        assert np.all(after[seen, names.index(name)] > before[seen]), name


def test_cd4_expansion_uses_all_products_for_an_unseen_product(dataset):
    no_cd7 = dataset.subset((dataset.subgroups["car_target"] != "CD7").to_numpy())
    cd7 = dataset.subset((dataset.subgroups["car_target"] == "CD7").to_numpy())
    pipe = build_feature_pipeline().fit(no_cd7.raw)
    names = list(pipe.get_feature_names_out())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownCategoryWarning)
        out = pipe.transform(cd7.raw)
    level = out[:, names.index("cd4_expansion_vs_product")]
    has_sample = ~np.isnan(out[:, names.index("cd4_latest_cells_per_ul")])
    assert has_sample.any()
    assert np.all(np.isfinite(level[has_sample]))


def test_lab_inflammation_index_follows_the_published_directions(dataset, fitted):
    pipe, _ = fitted
    step = dict(pipe.named_steps["features"].steps_)["inflammation"]
    ldh, crp, ferritin, platelets = step.weights_
    assert ldh > 0 and crp > 0 and ferritin > 0 and platelets < 0
    index = _feature(fitted, "lab_inflammation_index")
    names = list(pipe.get_feature_names_out())
    for lab, factor, sign in (("ldh_u_per_l", 2.0, 1), ("platelets_10e9_per_l", 2.0, -1)):
        raw = dataset.raw.copy()
        raw[:, COLUMN_INDEX[lab]] *= factor
        moved = pipe.transform(raw)[:, names.index("lab_inflammation_index")] - index
        known = ~np.isnan(dataset.raw[:, COLUMN_INDEX[lab]])
        assert np.all(sign * moved[known] > 0), lab
    no_labs = dataset.raw[:5].copy()
    for lab in step.labs:
        no_labs[:, COLUMN_INDEX[lab]] = np.nan
    assert np.isnan(pipe.transform(no_labs)[:, names.index("lab_inflammation_index")]).all()


def test_every_predictor_has_a_label_and_its_inputs(fitted):
    """Each predictor the pipeline makes is shown with a clinical label and traced to the
    contract fields it is computed from (reports compare its direction with theirs)."""
    from features import display
    from features.inputs import predictor_inputs
    from icans.contract import FIELDS

    for name in fitted[0].get_feature_names_out():
        if "=" in name:
            continue
        assert name in FIELDS or name in display.DERIVED, name
        for field, direction in predictor_inputs(name):
            assert field.split("=")[0] in FIELDS and direction in (-1, 0, 1), (name, field)


def test_contributions_by_input_sum_categories_and_share_multi_input_predictors():
    """Worked by hand: the CAR target's two indicators make one input; m-EASIX (LDH, CRP,
    platelets) gives each a third; the total is kept."""
    from features.inputs import by_input

    names = ["car_target=CD19", "car_target=BCMA", "m_easix", "ldh_u_per_l", "landmark_day"]
    contributions = np.array([[0.5, -0.25, 0.3, 0.1, -0.2], [0.0, 0.0, -0.6, 0.0, 1.0]])
    fields, values = by_input(names, contributions)
    assert fields == [
        "car_target",
        "ldh_u_per_l",
        "crp_mg_per_l",
        "platelets_10e9_per_l",
        "day_since_infusion",
    ]
    np.testing.assert_allclose(values[0], [0.25, 0.2, 0.1, 0.1, -0.2])
    np.testing.assert_allclose(values[1], [0.0, -0.2, -0.2, -0.2, 1.0])
    np.testing.assert_allclose(values.sum(axis=1), contributions.sum(axis=1))
