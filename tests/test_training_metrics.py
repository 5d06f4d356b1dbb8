"""Evaluation metrics against independent implementations and known answers.

Reference implementations: scikit-learn for AUROC, AUPRC and Brier (weighted, with ties);
scikit-learn's logistic regression and a root-finder for the calibration slope and intercept;
simulated data whose calibration is known by construction for intercept, slope and ICI; hand
arithmetic for net benefit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from evaluation.metrics import (
    METRICS,
    PreparedScores,
    bootstrap_weights,
    calibration_bins,
    net_benefit,
    treat_all_net_benefit,
)


@pytest.fixture(scope="module")
def tied():
    """2,000 rows, scores on a grid of 21 values (many ties), integer weights 0-4."""
    rng = np.random.default_rng(1)
    n = 2000
    p = rng.integers(0, 21, n) / 20.0
    y = (rng.random(n) < 0.2 + 0.6 * p).astype(float)
    w = rng.integers(0, 5, n).astype(float)
    return y, p, w


@pytest.fixture(scope="module")
def calibrated():
    """200,000 rows with y ~ Bernoulli(p): perfectly calibrated by construction."""
    rng = np.random.default_rng(2)
    n = 200_000
    p = expit(rng.normal(-1.5, 1.0, n))
    y = (rng.random(n) < p).astype(float)
    return y, p


# --- discrimination and Brier against scikit-learn ----------------------------------------


def test_weighted_auroc_auprc_brier_match_sklearn_with_ties(tied):
    y, p, w = tied
    assert len(np.unique(p)) <= 21  # the point of the fixture: heavy ties
    m = PreparedScores(y, p).metrics(w)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p, sample_weight=w), abs=1e-12)
    assert m["auprc"] == pytest.approx(average_precision_score(y, p, sample_weight=w), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p, sample_weight=w), abs=1e-12)


def test_unweighted_metrics_match_sklearn(tied):
    y, p, _ = tied
    m = PreparedScores(y, p).metrics()
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["auprc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_integer_weights_equal_repeated_rows(tied):
    """A bootstrap replicate as a re-weighting gives what copying the rows would give."""
    y, p, w = tied
    weighted = PreparedScores(y, p).metrics(w)
    reps = w.astype(int)
    repeated = PreparedScores(np.repeat(y, reps), np.repeat(p, reps)).metrics()
    for metric in ("auroc", "auprc", "brier"):
        assert weighted[metric] == pytest.approx(repeated[metric], abs=1e-12), metric
    # the calibration fits are Newton iterations run to the rounding of the loss
    for metric in ("calibration_intercept", "calibration_slope", "ici"):
        assert weighted[metric] == pytest.approx(repeated[metric], abs=1e-7), metric


# --- calibration intercept and slope ------------------------------------------------------


def test_calibration_slope_matches_sklearn_logistic_regression(tied):
    """Slope of logit P(y) = a + b logit(p) against LogisticRegression(C=1e10).

    Tolerance 1e-3, not 1e-12: scikit-learn always penalises (C=1e10 is a tiny L2 penalty,
    1/(2C) b^2, not none) and its lbfgs solver stops at a gradient tolerance, whereas ours is
    Newton-Raphson run to the rounding of the loss (:func:`evaluation.logistic.fit_logistic`).
    """
    y, p, w = tied
    p = np.clip(p, 0.02, 0.98)  # away from the metric's 1e-6 clipping of logit(p)
    lp = logit(p)[:, None]
    ref = LogisticRegression(C=1e10, max_iter=10_000, tol=1e-10)
    for weights in (None, w):
        ours = PreparedScores(y, p).metrics(weights)["calibration_slope"]
        ref.fit(lp, y, sample_weight=weights)
        assert ours == pytest.approx(float(ref.coef_[0, 0]), abs=1e-3)


def test_calibration_intercept_solves_its_score_equation(tied):
    """Intercept with logit(p) as offset: root of sum w (y - expit(a + logit p)) = 0."""
    y, p, w = tied
    p = np.clip(p, 0.02, 0.98)
    lp = logit(p)
    a = brentq(lambda a: np.sum(w * (y - expit(a + lp))), -10, 10, xtol=1e-12)
    assert PreparedScores(y, p).metrics(w)["calibration_intercept"] == pytest.approx(a, abs=1e-7)


def test_perfectly_calibrated_data_has_intercept_0_and_slope_1(calibrated):
    y, p = calibrated
    m = PreparedScores(y, p).metrics()
    assert m["calibration_intercept"] == pytest.approx(0.0, abs=0.05)
    assert m["calibration_slope"] == pytest.approx(1.0, abs=0.05)


def test_predictions_shrunk_toward_half_have_slope_2(calibrated):
    """p' = expit(0.5 logit p) is too moderate: logit p = 2 logit p', so the slope is 2."""
    y, p = calibrated
    shrunk = expit(0.5 * logit(p))
    m = PreparedScores(y, shrunk).metrics()
    assert m["calibration_slope"] == pytest.approx(2.0, abs=0.05)
    assert m["calibration_intercept"] != pytest.approx(0.0, abs=0.05)  # also off in the large


def test_ici_is_near_zero_when_calibrated_and_larger_when_not(calibrated):
    y, p = calibrated
    shrunk = expit(0.5 * logit(p))
    ici_good = PreparedScores(y, p).metrics()["ici"]
    ici_bad = PreparedScores(y, shrunk).metrics()["ici"]
    assert ici_good < 0.005
    # the true calibration curve of the shrunk predictions is known: p = expit(2 logit p')
    true_ici = float(np.mean(np.abs(p - shrunk)))
    assert ici_bad == pytest.approx(true_ici, abs=0.005)
    assert ici_bad > 5 * ici_good


# --- net benefit ------------------------------------------------------------------------


def test_net_benefit_by_hand():
    p = np.array([0.10, 0.15, 0.25, 0.35, 0.50, 0.70, 0.08, 0.20, 0.40, 0.90])
    y = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1, 1])
    # n = 10; treat when p >= t (p = 0.10 exactly is treated at t = 0.10).
    # t = 0.1: treated rows 0,1,2,3,4,5,7,8,9 -> TP = rows 1,3,5,8,9 = 5; FP = rows 0,2,4,7 = 4
    #          NB = 5/10 - 4/10 * 0.1/0.9 = 0.5 - 0.4/9 = 0.455555...
    # t = 0.3: treated rows 3,4,5,8,9 -> TP = rows 3,5,8,9 = 4; FP = row 4 = 1
    #          NB = 4/10 - 1/10 * 0.3/0.7 = 0.4 - 0.3/7 = 0.357142...
    thresholds = np.array([0.1, 0.3])
    expected = np.array([0.5 - 0.4 / 9, 0.4 - 0.3 / 7])
    np.testing.assert_allclose(net_benefit(y, p, thresholds), expected, rtol=0, atol=1e-12)


def test_treat_all_net_benefit_formula():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1, 1])  # prevalence 0.5
    thresholds = np.array([0.1, 0.3, 0.5])
    # prevalence - (1 - prevalence) * t / (1 - t)
    expected = np.array([0.5 - 0.5 / 9, 0.5 - 0.5 * 3 / 7, 0.0])
    np.testing.assert_allclose(treat_all_net_benefit(y, thresholds), expected, atol=1e-12)
    # treating everyone with the model's rule (p = 1 for all) is the same strategy
    everyone = net_benefit(y, np.ones(len(y)), thresholds)
    np.testing.assert_allclose(everyone, expected, atol=1e-12)


# --- bootstrap weights ------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_rows():
    """40 patients with 1-7 rows each, rows of a patient not contiguous."""
    rng = np.random.default_rng(3)
    ids = np.repeat([f"P{i:03d}" for i in range(40)], rng.integers(1, 8, 40))
    return rng.permutation(ids)


def test_bootstrap_weights_are_patient_counts_on_each_row(patient_rows):
    ids = patient_rows
    patients = np.unique(ids)
    replicates = list(bootstrap_weights(ids, 25, seed=4))
    assert len(replicates) == 25
    for w in replicates:
        assert w.shape == ids.shape
        assert np.all(w >= 0) and np.all(w == np.round(w))
        counts = []
        for pid in patients:
            on_rows = w[ids == pid]
            assert np.all(on_rows == on_rows[0]), "one patient, one count on all its rows"
            counts.append(on_rows[0])
        assert sum(counts) == len(patients)  # patients drawn with replacement, n of n
    # not all replicates are the identity draw
    assert any(np.any(w != 1) for w in replicates)


def test_bootstrap_weights_reproducible_by_seed(patient_rows):
    first = list(bootstrap_weights(patient_rows, 10, seed=5))
    again = list(bootstrap_weights(patient_rows, 10, seed=5))
    other = list(bootstrap_weights(patient_rows, 10, seed=6))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)  # whole-number counts from one seed: exact
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


# --- calibration bins -------------------------------------------------------------------


def test_calibration_bins_are_ten_deciles_covering_every_row():
    rng = np.random.default_rng(7)
    p = rng.random(1003)
    y = (rng.random(1003) < p).astype(float)
    bins = calibration_bins(y, p)
    assert len(bins["n"]) == len(bins["mean_predicted"]) == len(bins["observed"]) == 10
    assert bins["n"].sum() == len(y)
    assert bins["n"].max() - bins["n"].min() <= 1
    assert np.all(np.diff(bins["mean_predicted"]) > 0)
    # weighted by size, the bins give back the overall means
    assert np.sum(bins["n"] * bins["observed"]) == pytest.approx(y.sum())
    assert np.sum(bins["n"] * bins["mean_predicted"]) == pytest.approx(p.sum())


# --- degenerate subsets -----------------------------------------------------------------


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_one_class_subset_gives_nan_not_an_exception(label):
    p = np.linspace(0.05, 0.95, 50)
    y = np.full(50, label)
    m = PreparedScores(y, p).metrics()
    assert set(m) == set(METRICS)
    for metric in ("auroc", "auprc", "calibration_intercept", "calibration_slope", "ici"):
        assert np.isnan(m[metric]), metric
    assert np.isfinite(m["brier"])  # defined with one class


def test_weights_that_drop_a_class_or_everything_give_nan():
    p = np.linspace(0.05, 0.95, 20)
    y = np.r_[np.zeros(10), np.ones(10)]
    no_events = PreparedScores(y, p).metrics(np.r_[np.ones(10), np.zeros(10)])
    assert np.isnan(no_events["auroc"]) and np.isnan(no_events["calibration_slope"])
    nothing = PreparedScores(y, p).metrics(np.zeros(20))
    assert all(np.isnan(v) for v in nothing.values())
    empty = PreparedScores(np.array([]), np.array([])).metrics()
    assert all(np.isnan(v) for v in empty.values())


def test_batched_bootstrap_metrics_equal_one_replicate_at_a_time():
    """``metrics_batch`` (all replicates at once) is the same computation as ``metrics``.

    The calibration fits agree to 1e-10, not to the last bit: a batch starts every replicate
    from the unit-weight fit, one replicate alone from zero, and both stop where a Newton step
    would lower the loss by less than its rounding (the estimates then agree to ~1e-12).
    """
    rng = np.random.default_rng(3)
    n = 3000
    p = np.round(np.clip(rng.beta(1, 5, n), 1e-4, 1), 3)  # many ties
    y = (rng.random(n) < p).astype(float)
    patient = np.repeat(np.arange(n // 5), 5)
    scores = PreparedScores(y, p)
    weights = np.array(list(bootstrap_weights(patient, 25, seed=1)))
    batch = scores.metrics_batch(weights)
    for b, w in enumerate(weights):
        one = scores.metrics(w)
        for metric, value in one.items():
            fitted = metric in ("calibration_intercept", "calibration_slope", "ici")
            tolerance = 1e-10 if fitted else 1e-12
            assert batch[metric][b] == pytest.approx(value, rel=1e-9, abs=tolerance), metric


def test_subgroups_carry_model_intervals_sex_age_bands_and_a_too_small_flag():
    """400 patients, one row each: sex and age recorded; a subgroup of 15 patients (age 12-17)
    is flagged too small; the model's AUROC interval brackets its estimate."""
    import pandas as pd

    from evaluation.held_out import MODEL, evaluate
    from features.landmarks import LandmarkDataset

    rng = np.random.default_rng(0)
    n = 400
    age = np.r_[rng.uniform(12, 17.9, 15), rng.uniform(18, 64.9, 300), rng.uniform(65, 80, 85)]
    p = rng.uniform(0.05, 0.6, n)
    y = (rng.random(n) < p).astype(int)
    sex = rng.choice(["female", "male"], n)
    ds = LandmarkDataset(
        np.zeros((n, 1)),
        y,
        np.array([f"P{i}" for i in range(n)]),
        np.zeros(n, dtype=int),
        np.full(n, np.nan),
        pd.DataFrame({"age_years": age, "sex": sex}),
    )
    ev = evaluate(ds, {MODEL: p}, 50, 0, (0.05, 0.4, 0.05))
    sub = ev.subgroups.set_index("subgroup")
    assert {"sex=female", "sex=male", "age 12-17", "age 18-64", "age>=65"} <= set(sub.index)
    assert sub.loc["age 12-17", "too_small"] and not sub.loc["age 18-64", "too_small"]
    assert sub.loc["sex=female", "n_patients"] == (sex == "female").sum()
    adult = sub.loc["age 18-64"]
    assert adult["auroc_ci_low"] <= adult["auroc"] <= adult["auroc_ci_high"]
    assert adult["n_patients"] + sub.loc["age>=65", "n_patients"] + 15 == n


def test_log_odds_recalibration_recovers_the_local_intercept_and_slope():
    """Outcomes drawn from expit(-0.5 + 0.7 * lp): logistic recalibration recovers (-0.5, 0.7);
    the intercept-only update matches the event rate; an inverted ranking is refused."""
    from icans.errors import InvalidInputError
    from model.updating import LogOddsRecalibration

    rng = np.random.default_rng(4)
    lp = rng.normal(-1.5, 1.2, 200_000)
    y = (rng.random(len(lp)) < expit(-0.5 + 0.7 * lp)).astype(int)
    both = LogOddsRecalibration("intercept_and_slope").fit(lp, y)
    assert both.intercept_ == pytest.approx(-0.5, abs=0.03)
    assert both.slope_ == pytest.approx(0.7, abs=0.02)
    shift = LogOddsRecalibration("intercept").fit(lp, y)
    assert shift.slope_ == 1.0  # exact: the intercept-only update sets the literal 1.0
    assert expit(shift.intercept_ + lp).mean() == pytest.approx(y.mean(), abs=1e-9)
    with pytest.raises(InvalidInputError, match="inverted"):
        LogOddsRecalibration("intercept_and_slope").fit(-lp, y)
