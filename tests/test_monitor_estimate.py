"""The label-free performance estimate, the predicted-risk drift and the realised metrics of
``icans monitor``, each checked against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import brier_score_loss, roc_auc_score

from monitoring.estimate import estimate, expected_auroc
from monitoring.realised import realised
from monitoring.risk import psi, psi_bins, risk_drift


def _risks(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return expit(rng.normal(-2.0, 1.5, n))


def _brute_force(p: np.ndarray) -> float:
    """Every ordered pair of different rows, weighted p_i (1 - p_j)."""
    w = p[:, None] * (1 - p[None, :])
    order = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    np.fill_diagonal(w, 0.0)
    return float((w * order).sum() / w.sum())


def test_expected_auroc_equals_the_pairwise_definition_with_ties():
    p = np.round(_risks(300, 1), 2)  # rounded: many ties
    assert len(np.unique(p)) < 100
    assert expected_auroc(p) == pytest.approx(_brute_force(p), abs=1e-12)
    assert np.isnan(expected_auroc(np.array([0.3])))


def test_on_outcomes_drawn_from_calibrated_risks_the_estimate_is_the_mean_realised_auroc():
    """The independent check: outcomes drawn from the risks (a calibrated model by
    construction), scored with scikit-learn; over many draws their mean AUROC is the estimate,
    and the stated 95% range holds about 95% of them."""
    p = _risks(800, 2)
    rng = np.random.default_rng(3)
    est = estimate(p, draws=200, seed=4)
    outcomes = [y for y in (rng.random((400, len(p))) < p) if 0 < y.sum() < len(p)]
    draws = [roc_auc_score(y, p) for y in outcomes]
    mean, se = np.mean(draws), np.std(draws) / np.sqrt(len(draws))
    assert abs(mean - est.expected_auroc) < 4 * se, (mean, est.expected_auroc, se)
    inside = np.mean([(est.auroc_interval[0] <= a <= est.auroc_interval[1]) for a in draws])
    assert 0.90 <= inside <= 0.99
    # the prevalence likewise: the mean share of events over the draws, and about 95% of the
    # draws' shares inside its stated range
    shares = np.array([y.mean() for y in outcomes])
    se = shares.std() / np.sqrt(len(shares))
    assert abs(shares.mean() - est.expected_prevalence) < 4 * se, (shares.mean(), se)
    low, high = est.prevalence_interval
    assert 0.90 <= np.mean((low <= shares) & (shares <= high)) <= 0.99


def test_expected_prevalence_and_auroc_by_hand():
    """Four rows worked out by hand. Prevalence: (0.1 + 0.2 + 0.3 + 0.4) / 4 = 0.25. AUROC:
    every ordered pair i != j weighs p_i (1 - p_j); the pairs with p_i > p_j are ordered right:
    0.2*0.9 + 0.3*(0.9 + 0.8) + 0.4*(0.9 + 0.8 + 0.7) = 1.65 of a total weight
    sum_i p_i * (sum_j (1 - p_j) - (1 - p_i)) = 0.1*2.1 + 0.2*2.2 + 0.3*2.3 + 0.4*2.4 = 2.3."""
    est = estimate(np.array([0.4, 0.1, 0.3, 0.2]), draws=20)
    assert est.n == 4
    assert est.expected_prevalence == pytest.approx(0.25, abs=1e-15)
    assert est.expected_auroc == pytest.approx(1.65 / 2.3, abs=1e-12)


def test_the_estimate_is_lower_for_a_case_mix_the_model_separates_less_well():
    spread = estimate(_risks(500, 5))
    narrow = estimate(np.clip(_risks(500, 5), 0.05, 0.2))  # the same model, fewer clear cases
    assert narrow.expected_auroc < spread.expected_auroc - 0.05


def test_psi_of_a_sample_of_the_reference_is_small_and_of_a_shift_large():
    ref = _risks(5000, 6)
    assert risk_drift(ref, ref).psi == pytest.approx(0.0, abs=1e-12)
    same = risk_drift(ref, _risks(2000, 7))
    shifted = risk_drift(ref, np.clip(_risks(2000, 7) * 2.5, 0, 1))
    assert same.psi < 0.05 < 0.25 < shifted.psi
    assert shifted.ks_p_value < 1e-10 < same.ks_p_value
    assert shifted.mean_current > shifted.mean_reference


def test_psi_by_hand():
    bins = [
        {"low": 0.0, "high": 0.5, "reference": 0.5, "current": 0.8},
        {"low": 0.5, "high": 1.0, "reference": 0.5, "current": 0.2},
    ]
    assert psi(bins) == pytest.approx(0.3 * np.log(0.8 / 0.5) + 0.3 * np.log(0.5 / 0.2))
    shares = psi_bins(np.arange(10) / 10, np.array([0.05, 0.95]), n_bins=2)
    assert [b["reference"] for b in shares] == [0.5, 0.5]  # exact: 5 of 10 rows, 1 of 2
    assert [b["current"] for b in shares] == [0.5, 0.5]


def test_realised_metrics_match_scikit_learn_and_hand_counts():
    p = _risks(1000, 8)
    y = (np.random.default_rng(9).random(len(p)) < p).astype(float)
    r = realised(y, p, seed=0, bootstrap=100)
    assert r.auroc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert r.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert r.events == int(y.sum()) and r.n == 1000
    assert r.auroc_ci[0] < r.auroc < r.auroc_ci[1]
    assert abs(r.calibration_slope - 1) < 0.3 and abs(r.calibration_intercept) < 0.3
    assert sum(b["n"] for b in r.reliability) == 1000 and len(r.reliability) == 10
    # a miscalibrated model: risks twice the truth
    worse = realised(y, np.clip(2 * p, 0, 1), bootstrap=0)
    assert worse.observed_expected < 0.7 and worse.ici > r.ici + 0.02


def test_observed_expected_and_counts_by_hand():
    """Ten rows worked out by hand: risks 0.1 (four rows), 0.2 (three), 0.3 (two) and 0.4, the
    events on the three highest. Expected events are the sum of the risks, 4 x 0.1 + 3 x 0.2 +
    2 x 0.3 + 0.4 = 2.0, so O/E = 3 / 2.0 = 1.5; prevalence 3 / 10; every event's risk is above
    every non-event's: AUROC 1."""
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.4])
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=float)
    r = realised(y, p, bootstrap=0)
    assert (r.n, r.events) == (10, 3)
    assert r.prevalence == pytest.approx(0.3, abs=1e-15)
    assert r.observed_expected == pytest.approx(1.5, abs=1e-12)
    assert r.auroc == pytest.approx(1.0, abs=1e-12)
    # risks twice as high expect twice the events (4.0): O/E 0.75
    assert realised(y, 2 * p, bootstrap=0).observed_expected == pytest.approx(0.75, abs=1e-12)
