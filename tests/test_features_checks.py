"""Warnings about one patient's inputs: categories with few training outcomes."""

from __future__ import annotations

import numpy as np

from features.checks import MIN_CATEGORY_EVENTS, category_support, input_warnings
from features.layout import COLUMN_INDEX, RAW_COLUMNS
from features.transformers import build_feature_pipeline
from icans.contract import CAR_TARGETS, DISEASES


def raw_rows(targets: list[str], diseases: list[str]) -> np.ndarray:
    raw = np.full((len(targets), len(RAW_COLUMNS)), np.nan)
    raw[:, COLUMN_INDEX["day_since_infusion"]] = 0
    raw[:, COLUMN_INDEX["car_target"]] = [CAR_TARGETS.index(t) for t in targets]
    raw[:, COLUMN_INDEX["disease"]] = [DISEASES.index(d) for d in diseases]
    raw[:, COLUMN_INDEX["costimulatory_domain"]] = 1
    return raw


def test_support_counts_patients_not_rows():
    """Three patients: p1 (CD19, LBCL) with two rows and the outcome on one; p2 (CD19, LBCL)
    without; p3 (CLL1, AML) with one row, without."""
    raw = raw_rows(["CD19", "CD19", "CD19", "CLL1"], ["LBCL", "LBCL", "LBCL", "AML"])
    support = category_support(raw, np.array([1, 0, 0, 0]), np.array(["p1", "p1", "p2", "p3"]))
    assert support["car_target"] == {"CD19": (2, 1), "CLL1": (1, 0)}
    assert support["disease_group"] == {"b_cell_lymphoma": (2, 1), "myeloid": (1, 0)}
    assert support["costimulatory_domain"] == {"4-1BB": (3, 1)}


def test_a_category_with_few_outcomes_is_named_in_a_warning():
    raw = raw_rows(["CD19", "CLL1"], ["LBCL", "AML"])
    pipeline = build_feature_pipeline().fit(raw)
    support = {
        "car_target": {"CD19": (500, 120), "CLL1": (92, 0)},
        "costimulatory_domain": {"4-1BB": (592, 120)},
        "disease_group": {"b_cell_lymphoma": (500, 120), "myeloid": (92, MIN_CATEGORY_EVENTS)},
    }
    x = pipeline.transform(raw)
    cll1 = input_warnings(pipeline, raw[1:], x[1:], [], support)
    assert any(
        "CAR target CLL1" in w and "92 training patients" in w and "0 with the outcome" in w
        for w in cll1
    ), cll1
    assert not any("myeloid" in w for w in cll1)  # MIN_CATEGORY_EVENTS outcomes: enough
    assert not any(
        "training patients" in w for w in input_warnings(pipeline, raw[:1], x[:1], [], support)
    )
    # a model fitted before support was recorded warns as it did
    assert not any("training patients" in w for w in input_warnings(pipeline, raw[1:], x[1:], []))


def test_uncharted_daily_series_are_one_warning_and_centre_only_series_none():
    """A day-5 request with grades, fever and CRP but none of the other daily series, no CAR-T
    counts, no IL-6 and no LDH: the six routine series it leaves out are named in one sentence,
    the CAR-T counts and IL-6 (measured at some centres only) in none, LDH before
    lymphodepletion in its own; all of them are still listed as missing inputs."""
    from api.patient import parse_patient
    from features.packing import missing_inputs, to_raw

    patient = parse_patient(
        {
            "age_years": 61,
            "disease": "LBCL",
            "car_target": "CD19",
            "costimulatory_domain": "CD28",
            "dose_cells_per_kg": 2.0e6,
            "cns_involvement": False,
            "day_since_infusion": 5,
            "crs_grade_by_day": [{"day": 2, "grade": 1}],
            "icans_grade_by_day": [{"day": 4, "grade": 0}],
            "dexamethasone_mg_by_day": [{"day": 4, "mg": 0}],
            "tocilizumab_doses_by_day": [{"day": 4, "doses": 0}],
            "temperature_max_c_by_day": [{"day": 2, "value": 38.6}],
            "crp_mg_per_l_by_day": [{"day": 2, "value": 80}],
        }
    )
    missing = missing_inputs(patient)
    for field in ("cd4_car_t_cells_per_ul", "il6_pg_per_ml_by_day", "ice_score_by_day"):
        assert field in missing
    assert "capd_score_by_day" not in missing  # 61 years: the ICE score applies, not CAPD
    raw = to_raw(patient)
    pipeline = build_feature_pipeline().fit(np.vstack([raw, raw]))
    warnings = input_warnings(pipeline, raw, pipeline.transform(raw), missing)
    daily = [w for w in warnings if w.startswith("daily series not given")]
    assert len(daily) == 1, warnings
    for label in ("ICE score", "ferritin", "platelets", "fibrinogen", "LDH", "creatinine"):
        assert label in daily[0]
    for label in ("maximum temperature", "CRP", "IL-6", "CAR-T", "CAPD"):
        assert label not in daily[0]
    assert not any("car_t" in w or "CAR-T" in w or "IL-6" in w or "il6" in w for w in warnings)
    assert "ldh_u_per_l not given: treated as missing" in warnings
