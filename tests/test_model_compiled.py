"""The compiled model (``runtime.compiled``) against the logged pipeline it is compiled from.

The pipeline stays the source of truth: on thousands of rows (every landmark day, missing
values, every category of the cohort, and rows with every course series removed) the compiled
log-odds equal ``RiskModel.log_odds`` bit for bit, probabilities ``predict_proba`` to 1e-9,
and the intervals ``RiskModel.interval``. The contributions are checked against a brute-force
Shapley computation of the path-dependent game written here from its definition (Lundberg et
al. 2020, Algorithm 1), to 1e-9, and against xgboost's own float32 TreeSHAP to float32
precision.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest
import xgboost as xgb
from scipy.special import expit

from cohort.reader import read_cohort
from features.landmarks import SPARSE_LANDMARKS, build_landmark_dataset
from features.layout import COLUMN_INDEX
from model.explain import RiskExplainer
from model.risk_model import RiskModel
from runtime.compiled import CompiledModel, CompiledTrees, StackedAdditive, TreeShapTable

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def model(champion):
    return champion.result.model


@pytest.fixture(scope="module")
def rows(champion, model):
    """Landmark rows of the champion's cohort, and copies with the CAR-T counts removed."""
    raw = build_landmark_dataset(read_cohort(champion.cohort).tables, SPARSE_LANDMARKS).raw[:4000]
    stripped = raw[:500].copy()
    for name, i in COLUMN_INDEX.items():
        if name.startswith(("cd4_cells_per_ul_d", "cd8_cells_per_ul_d")):
            stripped[:, i] = np.nan
    return model.transform(np.vstack([raw, stripped]))


@pytest.fixture(scope="module")
def compiled(model):
    return CompiledModel(model)


def test_the_rows_cover_missing_values_and_every_category(rows, model):
    assert np.isnan(rows).any(axis=0).sum() > 10
    for j, name in enumerate(model.feature_names_):
        if "=" in name:  # a one-hot category: both values occur
            assert {0.0, 1.0} <= set(np.unique(rows[:, j])), name


def test_log_odds_are_those_of_the_pipeline_bit_for_bit(compiled, model, rows):
    # exact: same machine and process; the compiled loops repeat the additive part's
    # elementwise arithmetic and xgboost's float32 sums in tree order (no BLAS, no threads)
    np.testing.assert_array_equal(compiled.log_odds(rows), model.log_odds(rows))


def test_stacked_additive_parts_equal_each_fit_bit_for_bit(model, rows):
    fits = [model.additive_] + [lin for lin, _ in model.refits_]
    first, totals = StackedAdditive(fits).evaluate(rows)
    # exact: the same + - * / in the same order as LinearOffset (its totals a cumsum), on the
    # same log1p values; nothing through BLAS
    np.testing.assert_array_equal(first, model.additive_.contributions(rows))
    for k, lin in enumerate(fits):
        np.testing.assert_array_equal(totals[k], lin.decision_function(rows))


def test_probabilities_equal_predict_proba(compiled, model, champion):
    raw = build_landmark_dataset(read_cohort(champion.cohort).tables, SPARSE_LANDMARKS).raw[:3000]
    expected = model.predict_proba(raw)[:, 1]
    got = expit(compiled.log_odds(model.transform(raw)))
    assert np.abs(got - expected).max() <= 1e-9


def test_intervals_equal_the_refits(compiled, model, rows):
    np.testing.assert_allclose(compiled.interval(rows), model.interval(rows), rtol=0, atol=1e-12)


def test_one_row_gives_what_it_gives_in_a_batch(compiled, rows):
    picks = range(0, 400, 37)
    # exact: the compiled loops compute each row on its own, in a fixed order (no BLAS)
    one = [compiled.log_odds(rows[i : i + 1])[0] for i in picks]
    np.testing.assert_array_equal(one, compiled.log_odds(rows[0:400:37]))
    batch, base = compiled.explain(rows[0:400:37])
    for k, i in enumerate(picks):
        alone, alone_base = compiled.explain(rows[i : i + 1])
        np.testing.assert_array_equal(alone[0], batch[k])
        assert alone_base[0] == base[k]
    np.testing.assert_array_equal(  # each row's refits sorted and interpolated on their own
        np.vstack([compiled.interval(rows[i : i + 1]) for i in picks]),
        compiled.interval(rows[0:400:37]),
    )


def test_contributions_agree_with_xgboost_and_add_up(compiled, model, rows):
    ours, base = compiled.explain(rows)
    theirs = RiskExplainer(model).explain_features(rows)
    assert np.abs(ours - theirs.contributions).max() < 1e-5  # xgboost sums in float32
    assert np.abs(base - theirs.base_log_odds).max() < 1e-5
    assert np.abs(base + ours.sum(axis=1) - model.log_odds(rows)).max() < 1e-4


# --------------------------------------------------------------------------------------------
# Exactness of the tabulated TreeSHAP: a brute-force reference
# --------------------------------------------------------------------------------------------


def _expected_value(trees: CompiledTrees, node: int, x: np.ndarray, present: set) -> float:
    """E[tree(x) | x_S] by the path-dependent rule: follow the row on present features,
    otherwise average both children by their training cover (Lundberg 2020, Algorithm 1)."""
    if trees.is_leaf[node]:
        return float(trees.threshold[node])
    f = trees.feature[node]
    left, right = trees.left[node], trees.right[node]
    if f in present:
        value = np.float32(x[f])
        go_left = trees.default_left[node] if np.isnan(value) else value < trees.threshold[node]
        return _expected_value(trees, left if go_left else right, x, present)
    w = trees.cover[left] / trees.cover[node], trees.cover[right] / trees.cover[node]
    return w[0] * _expected_value(trees, left, x, present) + w[1] * _expected_value(
        trees, right, x, present
    )


def _brute_force_shap(trees: CompiledTrees, x: np.ndarray, n: int) -> np.ndarray:
    used = sorted(
        {int(trees.feature[i]) for i in range(len(trees.feature)) if not trees.is_leaf[i]}
    )
    phi = np.zeros(n)
    m = len(used)
    for root in trees.roots:
        v = {}
        for size in range(m + 1):
            for s in combinations(used, size):
                v[s] = _expected_value(trees, root, x, set(s))
        for i in used:
            others = [f for f in used if f != i]
            for size in range(m):
                weight = factorial(size) * factorial(m - size - 1) / factorial(m)
                for s in combinations(others, size):
                    with_i = tuple(sorted((*s, i)))
                    phi[i] += weight * (v[with_i] - v[s])
    return phi


def test_tabulated_treeshap_equals_brute_force_shapley_values():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 5))
    x[rng.random(x.shape) < 0.15] = np.nan
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2])) > 0
    booster = xgb.train(
        {"max_depth": 4, "objective": "binary:logistic", "eta": 0.5, "seed": 0},
        xgb.DMatrix(x, label=y.astype(float), missing=np.nan),
        num_boost_round=3,
    )
    trees = CompiledTrees([booster])
    table = TreeShapTable(trees, 5)
    ours = table.contributions(x[:25].astype(np.float32))
    for r in range(25):
        np.testing.assert_allclose(ours[r], _brute_force_shap(trees, x[r], 5), atol=1e-9)
    theirs = booster.predict(xgb.DMatrix(x[:25], missing=np.nan), pred_contribs=True)
    np.testing.assert_allclose(ours, theirs[:, :-1], atol=1e-5)


def test_a_model_without_an_additive_part_is_explained_and_left_to_xgboost_for_sums(champion):
    raw = build_landmark_dataset(read_cohort(champion.cohort).tables, SPARSE_LANDMARKS)
    fitted = RiskModel(
        hyperparameters={
            "max_depth": 3,
            "learning_rate": 0.1,
            "n_estimators": 20,
            "min_child_weight": 5.0,
        },
        linear_offset=False,
        uncertainty_refits=3,
        random_state=0,
        n_jobs=1,
    ).fit(raw.raw[:6000], raw.label[:6000], raw.patient_id[:6000])
    x = fitted.transform(raw.raw[6000:8000])
    compiled = CompiledModel(fitted)
    # exact: without an additive part the compiled model calls fitted.log_odds itself
    np.testing.assert_array_equal(compiled.log_odds(x), fitted.log_odds(x))
    np.testing.assert_allclose(compiled.interval(x), fitted.interval(x), atol=1e-12)
    contributions, base = compiled.explain(x)
    theirs = RiskExplainer(fitted).explain_features(x)
    assert np.abs(base - theirs.base_log_odds).max() < 1e-5
    assert np.abs(contributions - theirs.contributions).max() < 1e-5


def test_assess_is_log_odds_interval_and_explain_together(compiled, rows):
    log_odds, interval, contributions, base = compiled.assess(rows[:300])
    # exact: log_odds, interval and explain are this same computation on the same rows (the
    # additive contributions from the compiled loop equal LinearOffset's, tested above)
    np.testing.assert_array_equal(log_odds, compiled.log_odds(rows[:300]))
    np.testing.assert_array_equal(interval, compiled.interval(rows[:300]))
    alone, alone_base = compiled.explain(rows[:300])
    np.testing.assert_array_equal(contributions, alone)
    np.testing.assert_array_equal(base, alone_base)
