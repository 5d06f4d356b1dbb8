"""Per-input drift of ``icans monitor`` (Evidently) on constructed reference and window rows,
the Evidently compatibility shim, and Evidently's report being self-contained."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring import evidently_compat
from monitoring.columns import UNSEEN, first_of_patient, monitored_columns, monitored_frame
from monitoring.drift import input_drift

PREDICTORS = [
    "car_target=CD19",
    "car_target=BCMA",
    "age_years",
    "crp_mg_per_l",
    "ldh_u_per_l",
    "cns_involvement",
    "landmark_day",
    "m_easix",
    "crs_grade_today",
]


def _patients(n: int, seed: int, crp_factor: float = 1.0, bcma: float = 0.3) -> pd.DataFrame:
    """One landmark row per patient, in the prediction log's form once read."""
    rng = np.random.default_rng(seed)
    target = rng.random(n) < bcma
    crp = np.exp(rng.normal(2.3, 1.0, n)) * crp_factor
    ldh = np.exp(rng.normal(5.5, 0.4, n))
    frame = {
        "car_target=CD19": (~target).astype(float),
        "car_target=BCMA": target.astype(float),
        "age_years": rng.normal(58, 12, n).round(1),
        "crp_mg_per_l": np.where(rng.random(n) < 0.05, np.nan, crp),
        "ldh_u_per_l": ldh,
        "cns_involvement": (rng.random(n) < 0.05).astype(float),
        "landmark_day": rng.choice([0, 1, 3, 5, 7, 10, 14], n).astype(float),
        "m_easix": ldh * crp / 100 / 120,
        "crs_grade_today": rng.choice([0, 1, 2, 3], n, p=[0.5, 0.3, 0.15, 0.05]).astype(float),
    }
    rows = pd.DataFrame({f"predictor.{k}": v for k, v in frame.items()})
    rows.insert(0, "probability", rng.random(n) * 0.3)
    return rows


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _patients(3000, 1)


def test_categories_are_reassembled_and_inputs_named_as_the_clinician_enters_them(reference):
    columns = monitored_columns(PREDICTORS, reference)
    by_name = {c.name: c for c in columns}
    assert list(by_name) == [
        "car_target",
        "age_years",
        "crp_mg_per_l",
        "ldh_u_per_l",
        "cns_involvement",
        "day_since_infusion",
        "m_easix",
        "crs_grade_today",
    ]
    assert by_name["car_target"].categories == ("CD19", "BCMA")
    assert by_name["m_easix"].kind == "derived" and by_name["m_easix"].baseline
    assert by_name["crs_grade_today"].categorical and not by_name["crs_grade_today"].baseline
    assert not by_name["day_since_infusion"].baseline
    rows = reference.head(3).copy()
    rows.loc[2, ["predictor.car_target=CD19", "predictor.car_target=BCMA"]] = 0.0  # unseen
    frame = monitored_frame(rows, columns)
    expected = ["BCMA" if b else "CD19" for b in reference["predictor.car_target=BCMA"][:2]]
    assert list(frame["car_target"]) == [*expected, UNSEEN]


def test_a_window_from_the_reference_case_mix_drifts_nowhere(reference):
    drift = input_drift(reference, _patients(400, 2), PREDICTORS)
    assert len(drift.tested) == 8
    assert drift.drifted == [], [(c.column, c.p_value, c.distance) for c in drift.drifted]
    assert drift.drifted_share == 0.0  # exact: 0 of 8 inputs
    crp = next(c for c in drift.columns if c.column == "crp_mg_per_l")
    assert (crp.test, crp.distance_method) == ("ks", "wasserstein")
    assert crp.alpha == pytest.approx(0.05 / 8)
    assert 0.03 < crp.missing_current < 0.08


def test_doubled_crp_and_more_bcma_drift_exactly_the_shifted_inputs(reference):
    drift = input_drift(reference, _patients(400, 3, crp_factor=2.0, bcma=0.7), PREDICTORS)
    assert {c.column for c in drift.drifted} == {"crp_mg_per_l", "m_easix", "car_target"}
    target = next(c for c in drift.columns if c.column == "car_target")
    assert (target.test, target.distance_method) == ("z", "jensenshannon")
    assert target.reference_summary.startswith("CD19 ")  # the commonest first
    assert target.current_summary.startswith("BCMA ")
    assert drift.drifted_share == pytest.approx(3 / 8)
    assert "<html" in drift.html.lower()


def test_baseline_inputs_count_once_per_patient():
    one = _patients(300, 4)
    repeated = pd.concat([one] * 5, ignore_index=True)  # each patient on five days
    repeated["predictor.landmark_day"] = np.repeat([0.0, 1, 3, 5, 7], 300)
    columns = monitored_columns(PREDICTORS, one)
    assert first_of_patient(repeated, columns).sum() == 300
    drift = input_drift(_patients(3000, 1), repeated, PREDICTORS)
    counted = {c.column: c.n_current for c in drift.columns}
    assert counted["age_years"] == 300 and counted["m_easix"] == 300
    assert counted["day_since_infusion"] == 1500 and counted["crs_grade_today"] == 1500


def test_a_column_without_values_is_shown_not_tested(reference):
    window = _patients(200, 5)
    window["predictor.crp_mg_per_l"] = np.nan  # a centre that does not measure CRP
    drift = input_drift(reference, window, PREDICTORS)
    crp = next(c for c in drift.columns if c.column == "crp_mg_per_l")
    assert crp.drifted is None and crp.test is None and "not tested" in crp.note
    assert crp.missing_current == 1.0 and len(drift.tested) == 7  # exact: all of them missing


def test_evidently_report_is_self_contained(reference):
    """No script, style sheet, font or image fetched from anywhere: it opens offline."""
    page = input_drift(reference, _patients(300, 6, crp_factor=2.0), PREDICTORS).html
    assert len(page) > 100_000 and page.count("<script") >= 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=", page, re.IGNORECASE)
    assert not re.search(r"<(img|iframe)[^>]*\bsrc\s*=\s*[\"']https?:", page, re.IGNORECASE)
    assert not re.search(r"@import\s+url\(|url\(\s*[\"']?https?:", page, re.IGNORECASE)


def test_the_pandas_shim_is_needed_under_the_pinned_pandas():
    """Evidently 0.7.23 imports a name pandas 3 removed; when either changes, this fails and
    the shim (monitoring/evidently_compat.py) can go."""
    import importlib.util

    import pandas.core.dtypes.common as common

    package = Path(importlib.util.find_spec("evidently").submodule_search_locations[0])
    source = package / "legacy" / "tests" / "data_integrity_tests.py"
    assert "from pandas.core.dtypes.common import infer_dtype_from_object" in source.read_text()
    # pandas has none of its own: absent, or the shim's (when Evidently was imported before)
    defined = getattr(common, "infer_dtype_from_object", evidently_compat._never_called)
    assert defined is evidently_compat._never_called


def test_the_shim_leaves_an_existing_name_alone_and_telemetry_is_off(monkeypatch):
    import pandas.core.dtypes.common as common

    def sentinel(dtype):
        return dtype

    monkeypatch.setattr(common, "infer_dtype_from_object", sentinel, raising=False)
    assert evidently_compat.patch_pandas() is False
    assert common.infer_dtype_from_object is sentinel
    monkeypatch.delattr(common, "infer_dtype_from_object")
    assert evidently_compat.patch_pandas() is True
    assert common.infer_dtype_from_object is evidently_compat._never_called
    # telemetry: switched off when unset, a switch already set is left as it is (monkeypatch
    # puts the environment back afterwards)
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    monkeypatch.setenv("ITERATIVE_DO_NOT_TRACK", "true")
    ev = evidently_compat.evidently()
    import evidently
    from evidently.metrics import ValueDrift

    assert (ev.Report, ev.Dataset, ev.DataDefinition, ev.ValueDrift) == (
        evidently.Report,
        evidently.Dataset,
        evidently.DataDefinition,
        ValueDrift,
    )
    assert (os.environ["DO_NOT_TRACK"], os.environ["ITERATIVE_DO_NOT_TRACK"]) == ("1", "true")
    from evidently.telemetry import event_logger

    assert not event_logger.is_enabled()
