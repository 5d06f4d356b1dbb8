"""Gates per horizon (``training.gates``, ``GateConfig.horizons``), the landmark days and the
training-day stride a configuration accepts, on hand-made metric values: no training.

Each evaluation is written by hand (the metrics table an :class:`Evaluation` carries), so every
gate's verdict is known before it is checked: a slope of 1.3 is outside 0.8-1.2, an AUROC 0.05
below the true risk's is beyond 0.03.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.held_out import MODEL, TRUE_RISK, Evaluation
from icans.errors import InvalidInputError
from model.splits import day_stride_rows
from training.config import GateConfig, HorizonGate, TrainConfig, load_train_config
from training.gates import check_gates


def _evaluation(auroc, truth, slope=1.0, intercept=0.0, events=100, others=None) -> Evaluation:
    """An evaluation whose overall metrics are the given values (the rest empty)."""
    values = {
        (MODEL, "auroc"): auroc,
        (MODEL, "calibration_slope"): slope,
        (MODEL, "calibration_intercept"): intercept,
        (TRUE_RISK, "auroc"): truth,
    } | {(name, "auroc"): v for name, v in (others or {}).items()}
    metrics = pd.DataFrame(
        [
            {"subset": "overall", "predictor": p, "metric": m, "estimate": v}
            for (p, m), v in values.items()
        ]
    )
    empty = pd.DataFrame()
    return Evaluation(metrics, empty, empty, empty, empty, {"n_events": events})


# day 28 passes every gate: 0.82 against the true risk's 0.84, above both baselines
DAY28 = _evaluation(0.82, 0.84, others={"m_easix": 0.70, "logistic": 0.815})


def test_each_shorter_horizon_is_gated_with_day_28s_thresholds_by_default():
    horizons = {
        "72h": _evaluation(0.85, 0.86, slope=1.30),  # slope outside 0.8-1.2
        "7d": _evaluation(0.83, 0.85),  # within every gate
    }
    result = check_gates(DAY28, GateConfig(), horizons=horizons)
    assert result.horizons == {"72h": False, "7d": True, "day28": True}
    assert not result.passed  # one horizon fails: the model is not promoted
    assert result.checks["72h.calibration_slope"] is False
    assert result.checks["72h.auroc_near_true_risk"] and result.checks["7d.calibration_slope"]
    assert result.reasons == ("72h: calibration slope 1.30 outside 0.8-1.2",)
    assert result.record()["horizons"] == {"72h": "rejected", "7d": "passed", "day28": "passed"}


def test_a_horizons_own_thresholds_override_day_28s_and_an_auroc_floor_applies():
    horizons = {"72h": _evaluation(0.80, 0.85), "7d": _evaluation(0.80, 0.85)}  # gap 0.05
    strict = check_gates(DAY28, GateConfig(), horizons=horizons)
    assert strict.horizons == {"72h": False, "7d": False, "day28": True}
    assert "72h: AUROC 0.800 is 0.050 below the true risk's 0.850 (allowed 0.03)" in (
        strict.reasons
    )
    gates = GateConfig(
        horizons={"72h": HorizonGate(max_auroc_gap_to_true_risk=0.06, min_auroc=0.81)}
    )
    result = check_gates(DAY28, gates, horizons=horizons)
    assert result.checks["72h.auroc_near_true_risk"]  # 0.05 within the horizon's own 0.06
    assert result.checks["72h.min_auroc"] is False  # 0.80 below its floor 0.81
    assert "7d.min_auroc" not in result.checks  # no floor unless one is set
    assert result.checks["7d.auroc_near_true_risk"] is False  # day 28's 0.03 still
    assert result.horizons == {"72h": False, "7d": False, "day28": True}


def test_a_horizon_passes_when_each_of_its_gates_does():
    horizons = {"72h": _evaluation(0.86, 0.87, slope=0.9, intercept=-0.1, events=20)}
    result = check_gates(DAY28, GateConfig(), horizons=horizons)
    assert result.passed and result.horizons == {"72h": True, "day28": True}
    assert result.summary().startswith("passed every quality gate (not applied: ")


def test_a_shorter_horizons_intercept_is_gated_only_when_a_bound_is_set():
    horizons = {"7d": _evaluation(0.83, 0.85, intercept=0.27)}  # day 28's bound is 0.2
    default = check_gates(DAY28, GateConfig(), horizons=horizons)
    assert default.passed and "7d.calibration_intercept" not in default.checks
    assert default.not_applied["7d.calibration_intercept"] == (
        "7d: calibration intercept +0.27: no bound set "
        "(gates.horizons.7d.calibration_intercept_max_abs)"
    )
    gates = GateConfig(horizons={"7d": HorizonGate(calibration_intercept_max_abs=0.2)})
    bounded = check_gates(DAY28, gates, horizons=horizons)
    assert bounded.horizons == {"7d": False, "day28": True}
    assert bounded.reasons == ("7d: calibration intercept +0.27 beyond +/-0.2",)


def test_too_few_events_or_no_true_risk_in_a_horizon_fail_it_by_name():
    horizons = {"72h": _evaluation(0.86, np.nan, events=12)}
    result = check_gates(DAY28, GateConfig(), horizons=horizons)
    assert result.horizons["72h"] is False
    assert result.checks["72h.enough_test_events"] is False
    assert result.checks["72h.auroc_near_true_risk"] is False  # never promote unchecked
    # a cohort without a true risk (a real one): the gap is not applied, and says why
    real = check_gates(DAY28, GateConfig(), has_true_risk=False, horizons=horizons)
    assert "72h.auroc_near_true_risk" in real.not_applied
    assert "72h.auroc_near_true_risk" not in real.checks


def test_a_day_28_failure_is_day_28s_alone():
    day28 = _evaluation(0.82, 0.84, slope=1.5, others={"m_easix": 0.70, "logistic": 0.815})
    result = check_gates(day28, GateConfig(), horizons={"7d": _evaluation(0.83, 0.85)})
    assert result.horizons == {"7d": True, "day28": False}


@pytest.mark.parametrize(
    ("toml", "field", "rule"),
    [
        (
            'horizons = ["day28"]\n[train.gates.horizons.72h]\nmin_auroc = 0.7',
            "train.gates",
            "a horizon the model does not estimate",
        ),
        (
            "[train.gates.horizons.day28]\nmin_auroc = 0.7",
            "train.gates.horizons",
            "day 28's gates are the fields of [train.gates]",
        ),
        (
            "[train.gates.horizons.24h]\nmin_auroc = 0.7",
            "train.gates.horizons",
            "one of 72h, 7d, day28",
        ),
        (
            "[train.gates.horizons.72h]\nmin_auroc = 1.5",
            "train.gates.horizons.72h.min_auroc",
            "less than or equal to 1",
        ),
        (
            "[train.gates.horizons.72h]\nmax_gap = 0.1",
            "train.gates.horizons.72h.max_gap",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_a_gate_the_model_cannot_be_judged_on_is_refused_naming_field_and_rule(
    tmp_path, toml, field, rule
):
    path = tmp_path / "train.toml"
    path.write_text(f"[train]\n{toml}\n")
    with pytest.raises(InvalidInputError) as err:
        load_train_config(path)
    assert err.value.field == field
    assert rule in err.value.expected


def test_the_default_landmarks_are_every_day_0_to_21_and_any_of_0_to_27_is_accepted(tmp_path):
    assert TrainConfig().landmarks == tuple(range(22))
    path = tmp_path / "train.toml"
    path.write_text("[train]\nlandmarks = [27, 0, 13, 13]\n")
    assert load_train_config(path).landmarks == (0, 13, 27)  # sorted, each once


@pytest.mark.parametrize(("days", "bad"), [("[0, 28]", "[28]"), ("[-1, 3]", "[-1]"), ("[]", "")])
def test_a_landmark_outside_0_to_27_is_refused_naming_the_value_and_the_rule(tmp_path, days, bad):
    path = tmp_path / "train.toml"
    path.write_text(f"[train]\nlandmarks = {days}\n")
    with pytest.raises(InvalidInputError) as err:
        load_train_config(path)
    assert err.value.field == "train.landmarks"
    assert "each a whole day from 0 to 27" in err.value.expected
    assert f"landmarks {days}: {bad or 'none given'}" in err.value.expected


@pytest.mark.parametrize("stride", [0, 8])
def test_a_training_day_stride_outside_1_to_7_is_refused(tmp_path, stride):
    path = tmp_path / "train.toml"
    path.write_text(f"[train]\ntraining_day_stride = {stride}\n")
    with pytest.raises(InvalidInputError) as err:
        load_train_config(path)
    assert err.value.field == "train.training_day_stride" and err.value.value == stride


def test_the_day_stride_keeps_every_kth_day_of_each_patient_and_every_day_for_someone():
    days = np.tile(np.arange(22), 900)
    patients = np.repeat([f"p{i:03d}" for i in range(900)], 22)
    keep = day_stride_rows(patients, days, 3, seed=1)
    for p in ("p000", "p417", "p899"):  # each patient: days 3 apart, from day 0, 1 or 2
        kept = days[keep & (patients == p)]
        assert kept[0] in (0, 1, 2)
        assert (np.diff(kept) == 3).all() and kept[-1] >= 19
    share = np.array([keep[days == d].mean() for d in range(22)])
    assert np.abs(share - 1 / 3).max() < 0.06  # ~1/3 of the patients on every day (900 each)
    assert day_stride_rows(patients, days, 1, seed=1).all()
    assert (day_stride_rows(patients, days, 3, seed=1) == keep).all()  # seeded
    with pytest.raises(InvalidInputError) as err:
        day_stride_rows(patients, days, 0, seed=1)
    assert err.value.field == "training_day_stride"
