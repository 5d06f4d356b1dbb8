"""Grouped splits, behavioural tests of the risk model, baselines, tuning and quality gates.

The behavioural tests (Ribeiro et al. 2020 "CheckList"; Made-With-ML) perturb held-out rows in
a clinically known direction and require that the predicted risk never moves the other way.

Models other than the behavioural tests' model use one xgboost thread: on a 2-core machine
that is busy with anything else, two OpenMP threads make each fit several times slower. The
tests that fit models on the 3,000 training patients are marked ``slow`` (tests/conftest.py);
the splits are checked on 500 patients.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from evaluation.held_out import MODEL, evaluate
from evaluation.metrics import PreparedScores
from features.landmarks import SPARSE_LANDMARKS, build_landmark_dataset
from features.layout import COLUMN_INDEX, SERIES_SLICE
from features.transformers import build_feature_pipeline
from icans.contract import LAB_FIELDS
from icans.errors import InvalidInputError
from model.augment import MISSING_GROUPS
from model.baselines import LogisticBaseline, MEasixBaseline
from model.boosting import SearchSpace, additive, tune
from model.risk_model import RiskModel
from model.splits import grouped_folds, grouped_split, sample_patients
from training.config import GateConfig
from training.gates import check_gates

PARAMS = dict(max_depth=3, learning_rate=0.1, n_estimators=150, min_child_weight=5.0)
TOL = 1e-12
THRESHOLDS = (0.05, 0.40, 0.01)
N_BOOT = 0  # the gates read point estimates only; bootstrap CIs are not needed here


@pytest.fixture(scope="module")
def dataset(block_of):
    """500 patients (real-world case mix), all default landmarks: for the splits, whose rules
    hold at any size (the block tests/test_features_validation.py uses too)."""
    return build_landmark_dataset(block_of(500, seed=3), SPARSE_LANDMARKS)


@pytest.fixture(scope="module")
def split(block_of):
    """3,000 training and 3,000 held-out patients (of 6,000, real-world case mix).

    Half held out, not a quarter: with 1,000 test patients the held-out calibration slope of
    even the generator's true risk ranged 0.86-1.08 over seeds, too noisy for a gate test.
    """
    patients = build_landmark_dataset(block_of(6000, seed=21), SPARSE_LANDMARKS)
    rest, held = grouped_split(patients.patient_id, 0.5, seed=0)
    return patients.subset(rest), patients.subset(held)


def _model(**settings) -> RiskModel:
    """The shipped estimator with given trees, no uncertainty refits (not measured here)."""
    return RiskModel(
        **({"hyperparameters": PARAMS, "uncertainty_refits": 0, "random_state": 0} | settings)
    )


@pytest.fixture(scope="module")
def model(split):
    """The risk model as training fits it (copies, recalibration), with given trees."""
    train, _ = split
    return _model(n_jobs=2).fit(train.raw, train.label, train.patient_id)


@pytest.fixture(scope="module")
def baselines(split):
    train, _ = split
    args = (train.raw, train.label, train.patient_id)
    return {
        "logistic": LogisticBaseline(c_grid=(0.1,), random_state=0).fit(*args),
        "m_easix": MEasixBaseline(random_state=0).fit(*args),
    }


@pytest.fixture(scope="module")
def recalibrated(split):
    """A model whose recalibration is forced (any out-of-fold slope is outside [1, 1])."""
    train, _ = split
    return _model(n_jobs=1, recalibrate_if_slope_outside=(1.0, 1.0)).fit(
        train.raw, train.label, train.patient_id
    )


def _risk(model, raw: np.ndarray) -> np.ndarray:
    return model.predict_proba(raw)[:, 1]


def _n_patients(patient_id: np.ndarray) -> int:
    return len(np.unique(patient_id))


# --- grouped splitting ------------------------------------------------------------------


def test_grouped_split_never_puts_a_patient_on_both_sides(dataset):
    rest, held = grouped_split(dataset.patient_id, 0.25, seed=3)
    assert np.all(rest ^ held)  # every row on exactly one side
    assert not set(dataset.patient_id[rest]) & set(dataset.patient_id[held])


def test_grouped_split_fraction_is_of_patients_not_rows(dataset):
    n = _n_patients(dataset.patient_id)
    _, held = grouped_split(dataset.patient_id, 0.25, seed=3)
    assert _n_patients(dataset.patient_id[held]) == round(0.25 * n)
    # one patient with 100 rows and nine with one row: 10% of patients is one patient,
    # whatever its number of rows
    ids = np.array(["big"] * 100 + [f"p{i}" for i in range(9)])
    held_rows = set()
    for seed in range(30):
        _, h = grouped_split(ids, 0.1, seed)
        assert _n_patients(ids[h]) == 1
        held_rows.add(int(h.sum()))
    assert held_rows == {1, 100}


def test_grouped_split_is_reproducible_by_seed(dataset):
    a = grouped_split(dataset.patient_id, 0.25, seed=3)
    b = grouped_split(dataset.patient_id, 0.25, seed=3)
    c = grouped_split(dataset.patient_id, 0.25, seed=4)
    np.testing.assert_array_equal(a[1], b[1])  # boolean masks: exact
    assert not np.array_equal(a[1], c[1])


def test_grouped_folds_validate_every_row_once_and_keep_patients_together(dataset):
    ids = dataset.patient_id
    folds = grouped_folds(ids, 3, seed=5)
    assert len(folds) == 3
    times_validated = np.zeros(len(ids), dtype=int)
    sizes = []
    for train, valid in folds:
        assert np.all(train ^ valid)
        assert not set(ids[train]) & set(ids[valid])
        times_validated += valid
        sizes.append(_n_patients(ids[valid]))
    np.testing.assert_array_equal(times_validated, 1)  # integer counts: exact
    assert max(sizes) - min(sizes) <= 1  # balanced in patients
    again = grouped_folds(ids, 3, seed=5)
    for (t1, v1), (t2, v2) in zip(folds, again, strict=True):  # boolean masks: exact
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(v1, v2)


def test_sample_patients_draws_whole_patients(dataset):
    mask = sample_patients(dataset.patient_id, 100, seed=1)
    chosen = np.unique(dataset.patient_id[mask])
    assert len(chosen) == 100
    np.testing.assert_array_equal(mask, np.isin(dataset.patient_id, chosen))  # boolean: exact


# --- behavioural tests: clinically known directions ---------------------------------------


def _assert_never_lower(model, raw: np.ndarray, perturbed: np.ndarray, what: str) -> None:
    before, after = _risk(model, raw), _risk(model, perturbed)
    drops = before - after
    worst = int(np.argmax(drops))
    assert drops[worst] <= TOL, (
        f"{what} lowered the risk of {int((drops > TOL).sum())} rows; worst row {worst}: "
        f"{before[worst]:.6f} -> {after[worst]:.6f}"
    )
    assert np.any(after > before + TOL), f"{what} never changed the risk: test is vacuous"


@pytest.mark.slow
def test_more_crs_never_lowers_the_risk(model, split):
    _, test = split
    raw = test.raw.copy()
    crs = raw[:, SERIES_SLICE["crs_grade"]]
    present = crs >= 1  # NaN (future or unobserved) and grade 0 stay as they are
    assert present.any()
    bumped = raw.copy()
    bumped[:, SERIES_SLICE["crs_grade"]] = np.where(present, np.minimum(crs + 1, 4), crs)
    _assert_never_lower(model, raw, bumped, "CRS grade +1 where present")


@pytest.mark.slow
def test_more_marrow_blasts_never_lower_the_risk(model, split):
    _, test = split
    raw = test.raw.copy()
    j = COLUMN_INDEX["marrow_blasts_pct"]
    bumped = raw.copy()
    bumped[:, j] = np.minimum(raw[:, j] + 10, 100)
    _assert_never_lower(model, raw, bumped, "marrow blasts +10 points")


@pytest.mark.slow
def test_higher_dose_never_lowers_the_risk(model, split):
    _, test = split
    raw = test.raw.copy()
    bumped = raw.copy()
    bumped[:, COLUMN_INDEX["dose_cells_per_kg"]] *= 2
    _assert_never_lower(model, raw, bumped, "doubling the dose")


@pytest.mark.slow
def test_more_cd4_expansion_never_lowers_the_risk(model, split):
    _, test = split
    raw = test.raw.copy()
    cd4 = SERIES_SLICE["cd4_cells_per_ul"]
    bumped = raw.copy()
    bumped[:, cd4.start + 1 : cd4.stop] *= 2  # every sample after day 0 (NaN stays NaN)
    names = list(model.feature_names_)
    before, after = model.transform(raw), model.transform(bumped)
    for name in (
        "cd4_auc_to_date_cells_day_per_ul",
        "cd4_peak_to_date_cells_per_ul",
        "cd4_latest_cells_per_ul",
        "cd4_expansion_vs_product",
    ):
        j = names.index(name)
        seen = ~np.isnan(before[:, j])
        assert np.all(after[seen, j] >= before[seen, j]), name
        assert np.any(after[seen, j] > before[seen, j]), name
    _assert_never_lower(model, raw, bumped, "doubling CD4+ counts after day 0")


# --- recalibration ----------------------------------------------------------------------


@pytest.mark.slow
def test_recalibration_keeps_the_ranking(recalibrated, split):
    _, test = split
    a, b = recalibrated.calibration_
    assert recalibrated.recalibration_["recalibrated"]
    assert b > 0 and (a, b) != (0.0, 1.0)
    x = recalibrated.transform(test.raw)
    y = test.label.astype(float)
    p_raw = 1 / (1 + np.exp(-recalibrated.raw_log_odds(x).astype(float)))
    p_cal = _risk(recalibrated, test.raw)
    assert not np.allclose(p_raw, p_cal)
    auroc_raw = PreparedScores(y, p_raw).metrics()["auroc"]
    auroc_cal = PreparedScores(y, p_cal).metrics()["auroc"]
    assert auroc_cal == pytest.approx(auroc_raw, abs=TOL)
    order = np.argsort(p_raw, kind="stable")
    assert np.all(np.diff(p_cal[order]) >= -TOL)  # same order, row by row


@pytest.mark.slow
def test_recalibration_refuses_a_negative_slope(recalibrated):
    margin = np.random.default_rng(0).normal(size=2000)
    inverted = (margin < 0).astype(int)  # events where the model says low risk
    calibration, record = recalibrated._calibrate(margin, inverted)
    assert record["recalibrated"]  # the check asked for it ...
    assert calibration == (0.0, 1.0)  # ... but a negative slope would invert the ranking
    # (exact: the refusal returns the literal identity, nothing computed)


def test_only_the_intercept_is_corrected_when_the_slope_is_within_its_band():
    """Outcomes drawn from expit(-0.5 + margin): the out-of-fold slope is about 1 (inside the
    default band), the intercept is off, so only the intercept is refitted, to about -0.5 (the
    sampling SE of the intercept with 20,000 rows is about 0.02), and the slope stays exactly 1
    (nothing fitted). A slope far outside the band refits both: outcomes from
    expit(0.5 * margin) give a slope about 0.5."""
    rng = np.random.default_rng(0)
    margin = rng.normal(-1.5, 1.0, size=20_000)
    model = RiskModel()  # the default bands: slope (0.8, 1.25), intercept 0.05
    shifted = (rng.random(margin.size) < 1 / (1 + np.exp(-(margin - 0.5)))).astype(int)
    (a, b), record = model._calibrate(margin, shifted)
    assert record["recalibrated"] and b == 1.0  # exact: the slope is not fitted
    assert a == pytest.approx(-0.5, abs=0.08)
    flat = (rng.random(margin.size) < 1 / (1 + np.exp(-0.5 * margin))).astype(int)
    (_, b), _ = model._calibrate(margin, flat)
    assert b == pytest.approx(0.5, abs=0.08)


# --- one estimator ----------------------------------------------------------------------


@pytest.mark.slow
def test_clone_gives_the_same_settings_unfitted(model):
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        twin.predict_proba(np.zeros((1, model.n_features_in_)))
    assert not [k for k in vars(twin) if k.endswith("_")]  # learned state only from fit


@pytest.mark.slow
def test_fit_does_everything_the_shipped_model_needs(split):
    """Copies with a missing series, out-of-fold calibration check and refits all come from
    ``fit``, and a second fit of the same data gives the same model."""
    train, _ = split
    small = train.subset(sample_patients(train.patient_id, 600, seed=4))
    m = _model(uncertainty_refits=3, n_jobs=1).fit(small.raw, small.label, small.patient_id)
    assert m.augmentation_["observed_rows"] == len(small)
    assert m.augmentation_["copies"] == len(MISSING_GROUPS) * round(0.10 * len(small))
    assert len(m.refits_) == 3
    assert set(m.recalibration_) >= {"recalibrated", "oof_slope_before", "slope"}
    interval = m.probability_interval(small.raw[:50])
    p = _risk(m, small.raw[:50])
    assert interval.shape == (50, 2) and np.all(interval[:, 0] <= interval[:, 1])
    again = clone(m).fit(small.raw, small.label, small.patient_id)
    # rtol=1e-12, not exact: each fit solves the additive part and the recalibration with BLAS
    # and LAPACK (matrix products, a solve, lbfgs), whose threaded kernels need not sum in the
    # same order twice; a different model would differ by far more
    np.testing.assert_allclose(_risk(again, small.raw), _risk(m, small.raw), rtol=1e-12, atol=0)
    assert np.all((p > 0) & (p < 1))


@pytest.mark.slow
def test_the_additive_part_alone_is_a_complete_model(split):
    """No trees (the champion a small cohort may choose): the probabilities are the additive
    part's, recalibrated; intervals come from the refits; the explanation adds up exactly."""
    from runtime.assessor import Assessor

    train, test = split
    small = train.subset(sample_patients(train.patient_id, 400, seed=5))
    m = _model(hyperparameters=PARAMS | {"n_estimators": 0}, uncertainty_refits=3, n_jobs=1)
    m.fit(small.raw, small.label, small.patient_id)
    x = m.transform(test.raw[:40])
    a, b = m.calibration_
    np.testing.assert_allclose(
        m.log_odds(x), a + b * m.additive_.decision_function(x), rtol=0, atol=1e-5
    )
    assert m.interval(x).shape == (40, 2)
    _, _, _, explanation = Assessor(m).assess_rows(test.raw[:40])
    for i in range(40):
        total = explanation.base_log_odds[i] + sum(
            c["shap_log_odds"] for c in explanation.ranked(i)
        )
        assert total == pytest.approx(explanation.log_odds[i], abs=1e-9)


def test_fit_refuses_labels_of_one_kind(dataset):
    with pytest.raises(InvalidInputError, match="label"):
        _model().fit(dataset.raw[:100], np.zeros(100), dataset.patient_id[:100])


# --- baselines --------------------------------------------------------------------------


@pytest.mark.slow
def test_m_easix_baseline_reads_only_m_easix(baselines, split):
    _, test = split
    model = baselines["m_easix"]
    raw = test.raw.copy()
    base = _risk(model, raw)

    other = raw.copy()
    other[:, COLUMN_INDEX["marrow_blasts_pct"]] = np.minimum(
        raw[:, COLUMN_INDEX["marrow_blasts_pct"]] + 50, 100
    )
    other[:, COLUMN_INDEX["dose_cells_per_kg"]] *= 10
    other[:, SERIES_SLICE["crs_grade"]] = np.where(
        np.isnan(raw[:, SERIES_SLICE["crs_grade"]]), np.nan, 4
    )
    other[:, COLUMN_INDEX["creatinine_mg_per_dl"]] *= 3  # EASIX, not m-EASIX
    # exact here and below: one predictor, so each row's log-odds is one product plus the
    # intercept (no sum whose order a BLAS kernel could change), from the same m-EASIX value
    np.testing.assert_array_equal(_risk(model, other), base)

    ldh = raw.copy()
    ldh[:, COLUMN_INDEX["ldh_u_per_l"]] *= 2
    has_score = ~np.isnan(
        raw[:, [COLUMN_INDEX[c] for c in ("ldh_u_per_l", "crp_mg_per_l", "platelets_10e9_per_l")]]
    ).any(axis=1)
    has_score &= raw[:, COLUMN_INDEX["crp_mg_per_l"]] > 0
    changed = _risk(model, ldh) != base
    assert has_score.sum() > 100
    assert np.all(changed[has_score])
    assert not np.any(changed[~has_score])  # imputed score: LDH alone cannot move it


@pytest.mark.slow
def test_logistic_baseline_predicts_rows_with_missing_labs(baselines, split):
    _, test = split
    raw = test.raw[:500].copy()
    for lab in LAB_FIELDS:
        raw[::2, COLUMN_INDEX[lab]] = np.nan  # every other row: no labs at all
    raw[::3, SERIES_SLICE["cd4_cells_per_ul"]] = np.nan  # and some without CAR-T samples
    p = _risk(baselines["logistic"], raw)
    assert np.all(np.isfinite(p))
    assert np.all((p > 0) & (p < 1))


# --- tuning -----------------------------------------------------------------------------


@pytest.mark.slow
def test_tune_returns_the_lowest_cv_log_loss_and_out_of_fold_margins(split):
    train, _ = split
    small = train.subset(sample_patients(train.patient_id, 1200, seed=2))
    features = build_feature_pipeline().fit(small.raw)
    x, y = features.transform(small.raw), small.label.astype(int)
    names = tuple(features.get_feature_names_out())
    folds = grouped_folds(small.patient_id, 3, seed=2)
    fixed = {
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "linear_offset": True,
        "day_degree": 2,
        "day_smoothing": 10.0,
    }
    search = SearchSpace(
        max_depth=(2, 3),
        learning_rate=(0.1, 0.3),
        min_child_weight=(5.0,),
        max_trees=200,
        early_stopping_rounds=10,
    )
    params, results, oof = tune(x, y, folds, names, search, fixed, random_state=0, n_jobs=1)

    # four tree candidates and the additive part alone (no trees)
    assert len(results) == 5
    assert [r["n_estimators"] for r in results].count(0) == 1 and results[-1]["n_estimators"] == 0
    best = min(results, key=lambda r: r["cv_logloss"])
    for key in ("max_depth", "learning_rate", "min_child_weight", "n_estimators"):
        assert params[key] == best[key], key  # exact: copied from that row, not recomputed
    assert params["subsample"] == 0.8 and params["colsample_bytree"] == 0.8
    assert isinstance(params["n_estimators"], int) and params["n_estimators"] >= 0
    assert all(isinstance(r["n_estimators"], int) and r["n_estimators"] >= 1 for r in results[:4])

    assert oof.shape == (len(y),)
    assert np.all(np.isfinite(oof))
    # the margins are the held-out predictions behind the reported loss, fold by fold
    p = np.clip(1 / (1 + np.exp(-oof)), 1e-7, 1 - 1e-7)
    fold_losses = [-np.mean(y[v] * np.log(p[v]) + (1 - y[v]) * np.log(1 - p[v])) for _, v in folds]
    assert np.mean(fold_losses) == pytest.approx(best["cv_logloss"], rel=1e-4)
    # the additive part alone: its loss is that of each fold's additive part on its held-out rows
    alone = tune(x, y, folds, names, search.model_copy(update={"max_depth": (2,)}), fixed, 0, 1)

    fold_alone = []
    for train_rows, valid in folds:
        linear = additive(names, fixed).fit(x[train_rows], y[train_rows])
        q = 1 / (1 + np.exp(-linear.decision_function(x[valid])))
        fold_alone.append(-np.mean(y[valid] * np.log(q) + (1 - y[valid]) * np.log(1 - q)))
    assert alone[1][-1]["cv_logloss"] == pytest.approx(np.mean(fold_alone), rel=1e-9)


# --- quality gates on a real evaluation ---------------------------------------------------


def _evaluate(test, model_p, baselines):
    preds = {MODEL: model_p} | {name: _risk(b, test.raw) for name, b in baselines.items()}
    return evaluate(test, preds, N_BOOT, seed=0, thresholds=THRESHOLDS)


@pytest.fixture(scope="module")
def good_evaluation(recalibrated, baselines, split):
    _, test = split
    return _evaluate(test, _risk(recalibrated, test.raw), baselines)


@pytest.mark.slow
def test_model_on_shuffled_labels_fails_the_named_gates(split, baselines):
    train, test = split
    shuffled = np.random.default_rng(0).permutation(train.label)
    noise = _model(n_jobs=1).fit(train.raw, shuffled, train.patient_id)
    ev = _evaluate(test, _risk(noise, test.raw), baselines)
    result = check_gates(ev, GateConfig())
    assert not result.passed
    assert not result.checks["auroc_near_true_risk"]
    assert not result.checks["beats_m_easix"]
    text = result.summary()
    assert "below the true risk" in text
    assert "m_easix baseline" in text
    assert len(result.reasons) == sum(not ok for ok in result.checks.values())


@pytest.mark.slow
def test_good_model_passes_the_calibration_gate(good_evaluation):
    result = check_gates(good_evaluation, GateConfig())
    assert result.checks["enough_test_events"]
    assert result.checks["calibration_slope"], result.summary()
    assert not any("calibration slope" in r for r in result.reasons)


@pytest.mark.slow
def test_non_inferiority_margin(split, baselines):
    train, test = split
    weak_trees = PARAMS | dict(max_depth=1, n_estimators=5)
    weak = _model(hyperparameters=weak_trees, linear_offset=False, n_jobs=1).fit(  # trees alone
        train.raw, train.label, train.patient_id
    )
    ev = _evaluate(test, _risk(weak, test.raw), baselines)
    gap = ev.value("logistic", "auroc") - ev.value(MODEL, "auroc")
    assert gap > 0.005, "precondition: the weak model must trail the logistic baseline"

    strict = GateConfig(
        must_beat=("logistic",), non_inferior_to=("logistic",), non_inferiority_margin=0.0
    )
    result = check_gates(ev, strict)
    assert not result.passed
    assert not result.checks["beats_logistic"]
    assert not result.checks["non_inferior_to_logistic"]
    assert sum("logistic baseline" in r for r in result.reasons) == 2

    within = check_gates(ev, GateConfig(non_inferiority_margin=gap + 0.001))
    assert within.checks["non_inferior_to_logistic"]
    beyond = check_gates(ev, GateConfig(non_inferiority_margin=gap - 0.001))
    assert not beyond.checks["non_inferior_to_logistic"]
    assert any("trails the logistic baseline" in r for r in beyond.reasons)
