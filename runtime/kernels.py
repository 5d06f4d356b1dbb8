"""The compiled model's three loops, compiled with numba: the additive parts of every fit, the
walk to the leaves with the sums of every fit, and the tabulated TreeSHAP lookup.

For one request the numpy form of these loops spends its time on the set-up of some hundred
small array operations, not on the arithmetic (a few thousand comparisons, multiplications and
additions); the same loops in compiled code take microseconds, and a batch does not build
fits x rows x predictors temporaries. They evaluate the same arithmetic in the same order:

* the additive part: operation for operation :meth:`model.linear_offset.LinearOffset.
  contributions` and :meth:`~model.linear_offset.LinearOffset.total` (only ``+ - * /`` here,
  which IEEE arithmetic rounds the same in numpy and in compiled code; the logarithms and the
  day basis come in computed by numpy);
* the trees: as xgboost's predictor, a row goes left when ``x < threshold`` in float32, or the
  node's default direction when the value is missing, and each fit's leaf values are added to
  its starting margin in float32, tree by tree.

Each row is computed on its own, so a row gives the same bits alone or in a batch. The arrays
come from :class:`runtime.compiled.StackedAdditive`, :class:`runtime.compiled.CompiledTrees` and
:class:`runtime.compiled.TreeShapTable`, whose docstrings explain them;
:mod:`tests.test_model_compiled` compares the results with each fit's ``LinearOffset``, with
``RiskModel.log_odds`` and with a brute-force Shapley computation.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _goes_left(value: float, threshold: float, default_left: bool) -> bool:
    """xgboost's split: left when ``value < threshold`` (float32), the node's default direction
    when the value is missing."""
    return default_left if np.isnan(value) else value < threshold


@njit(cache=True, nogil=True)
def additive_parts(
    t: np.ndarray,
    basis: np.ndarray,
    state: np.ndarray,
    median: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    indicated: np.ndarray,
    ind_mean: np.ndarray,
    ind_scale: np.ndarray,
    coef: np.ndarray,
    ind_coef: np.ndarray,
    state_pos: np.ndarray,
    state_coef: np.ndarray,
    term_mean: np.ndarray,
    intercept: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The additive parts of every fit: (fit 0's contributions, rows x predictors; every fit's
    log-odds, fits x rows, its intercept plus its contributions added left to right).

    ``t``: rows x predictors, the logged predictors already ``log1p``-transformed, NaN for
    missing. ``basis``: fits x rows x day basis functions. ``state``: 1.0 on rows in the state.
    The other arrays are the fits' learned ones stacked (fits x predictors [x basis]);
    ``state_pos[j]`` is predictor j's column in ``state_coef``, -1 if it has none. Only fit
    0's contributions are kept: the others are needed only as totals, and a batch would
    otherwise hold fits x rows x predictors of them."""
    n_fits, n_rows, n_basis = basis.shape
    n_features = t.shape[1]
    first = np.empty((n_rows, n_features))
    totals = np.empty((n_fits, n_rows))
    for f in range(n_fits):
        for r in range(n_rows):
            s = state[r]
            total = intercept[f]
            for j in range(n_features):
                v = t[r, j]
                missing = np.isnan(v)
                if missing:
                    v = median[f, j]
                z = (v - mean[f, j]) / scale[f, j]
                zi = 0.0
                if indicated[f, j]:
                    zi = ((1.0 if missing else 0.0) - ind_mean[f, j]) / ind_scale[f, j]
                beta = basis[f, r, 0] * coef[f, j, 0]
                gamma = basis[f, r, 0] * ind_coef[f, j, 0]
                for k in range(1, n_basis):
                    beta = beta + basis[f, r, k] * coef[f, j, k]
                    gamma = gamma + basis[f, r, k] * ind_coef[f, j, k]
                p = state_pos[j]
                if p >= 0:
                    beta = (1.0 - s) * beta + s * state_coef[f, p]
                    c = z * beta + zi * gamma
                    c = c + s * (mean[f, j] / scale[f, j]) * beta
                else:
                    c = z * beta + zi * gamma
                c = c - term_mean[f, j]
                total = total + c
                if f == 0:
                    first[r, j] = c
            totals[f, r] = total
    return first, totals


@njit(cache=True, nogil=True)
def fit_margins(
    x32: np.ndarray,
    start: np.ndarray,
    tree_fit: np.ndarray,
    slot_feature: np.ndarray,
    slot_threshold: np.ndarray,
    slot_default_left: np.ndarray,
    bottom_value: np.ndarray,
    depth: int,
) -> np.ndarray:
    """Per fit and row, the starting margin plus the fit's leaf values (fits x rows, float32).

    ``x32``: rows x predictors (float32). ``start``: fits x rows (float32). Trees are numbered
    in each fit's order, ``tree_fit[t]`` the fit tree ``t`` belongs to; each tree is a
    complete binary layout of ``2**(depth + 1) - 1`` slots (children of ``s``: ``2s + 1``
    left, ``2s + 2`` right) and ``bottom_value[t]`` the leaf values of its bottom slots."""
    n_rows = x32.shape[0]
    n_trees = tree_fit.shape[0]
    width: int = 2 ** (depth + 1) - 1
    first_bottom = 2**depth - 1
    out = start.copy()
    for t in range(n_trees):  # trees outside: one tree's slots stay in cache for every row
        base = t * width
        for r in range(n_rows):
            s = 0
            for _ in range(depth):
                at = base + s
                v = x32[r, slot_feature[at]]
                s = 2 * s + (1 if _goes_left(v, slot_threshold[at], slot_default_left[at]) else 2)
            out[tree_fit[t], r] += bottom_value[t, s - first_bottom]
    return out


@njit(cache=True, nogil=True)
def tabulated_shap(
    x32: np.ndarray,
    path_nodes: np.ndarray,
    path_dirs: np.ndarray,
    bits: np.ndarray,
    node_feature: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    table: np.ndarray,
    slot_feature: np.ndarray,
    n_features: int,
) -> np.ndarray:
    """Per row and predictor, the sum over leaves of the leaf's tabulated Shapley values at the
    row's pattern (rows x predictors, float64), added leaf by leaf in leaf order.

    Leaf ``l``'s path positions are ``path_nodes[l]`` with the direction taken
    (``path_dirs[l]``) and the bit of the position's slot (``bits[l]``, 0 for padding); the
    pattern sets every slot's bit except those with a position the row does not follow.
    ``table[l, pattern, slot]`` holds the values, ``slot_feature[l, slot]`` the predictor of
    each slot (-1: unused)."""
    n_rows = x32.shape[0]
    n_leaves, width = path_nodes.shape
    all_bits = 2**width - 1
    out = np.zeros((n_rows, n_features))
    for r in range(n_rows):
        for leaf in range(n_leaves):
            failed = 0
            for p in range(width):
                bit = bits[leaf, p]
                if bit == 0:
                    continue
                node: int = path_nodes[leaf, p]
                v = x32[r, node_feature[node]]
                left = _goes_left(v, node_threshold[node], node_default_left[node])
                if left != path_dirs[leaf, p]:
                    failed |= bit
            pattern = all_bits & ~failed
            for slot in range(width):
                feature = slot_feature[leaf, slot]
                if feature >= 0:
                    out[r, feature] += table[leaf, pattern, slot]
    return out
