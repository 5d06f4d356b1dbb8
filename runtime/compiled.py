"""The fitted risk model compiled once into arrays, evaluated in one vectorised pass.

:class:`CompiledModel` is built from a fitted :class:`model.risk_model.RiskModel` (never fitted
itself: the model's ``fit`` is the only place state is learned) and gives, for a row or a batch
of predictor rows, everything a request needs in a few numpy operations instead of one xgboost
call per fit:

* the log-odds and probability of the main fit, bit for bit those of ``predict_proba`` (for a
  model with an additive part, the shipped kind; see :class:`CompiledModel`): the trees are
  walked level by level for all rows and all trees at once on xgboost's own float32
  thresholds (missing values take each node's default direction), and the leaf values are
  summed onto the additive part's log-odds in float32, in tree order, as xgboost's predictor
  sums them;
* the 95% interval over the bootstrap refits: every refit's trees in the same pass, their
  additive parts stacked (:class:`StackedAdditive`), the shared recalibration;
* the exact contributions: the additive part's own, and the trees' path-dependent TreeSHAP
  values (Lundberg et al., *Nat Mach Intell* 2020), computed exactly in float64. Within one
  leaf's path, the game TreeSHAP explains is a product over the path's distinct features (a
  feature "present" follows the row, an absent one the training cover), so its Shapley values
  depend only on which of those features the row follows: they are tabulated per leaf for
  every such pattern when the model is compiled, and a request only looks them up.

The logged pipeline's ``predict_proba`` stays the single source of truth: the tests compare
the compiled form with it (and the contributions with a brute-force Shapley computation).
"""

from __future__ import annotations

import json
from itertools import combinations
from math import factorial

import numpy as np
import xgboost as xgb
from scipy.special import expit

from model.linear_offset import LinearOffset, day_basis
from model.risk_model import central_interval
from runtime import kernels


class CompiledTrees:
    """The trees of one or several boosters as flat node arrays (global node ids)."""

    def __init__(self, boosters: list[xgb.Booster]):
        feature, threshold, left, right, default_left, leaf = [], [], [], [], [], []
        cover, roots, owner, depth, base = [], [], [], 0, []
        offset = 0
        for k, booster in enumerate(boosters):
            learner = json.loads(booster.save_raw("json"))["learner"]
            model = learner["gradient_booster"]["model"]
            score = float(learner["learner_model_param"]["base_score"].strip("[]"))
            base.append(np.log(score / (1.0 - score)))
            for tree in model["trees"]:
                lc = np.asarray(tree["left_children"])
                rc = np.asarray(tree["right_children"])
                n, is_leaf = len(lc), lc == -1
                if any(t != 0 for t in tree["split_type"]):
                    raise ValueError("categorical splits are not compiled")
                own = np.arange(n) + offset
                roots.append(offset)
                owner.append(k)
                feature.append(np.where(is_leaf, 0, tree["split_indices"]))
                threshold.append(np.asarray(tree["split_conditions"], dtype=np.float32))
                left.append(np.where(is_leaf, own, lc + offset))  # a leaf points to itself
                right.append(np.where(is_leaf, own, rc + offset))
                default_left.append(np.asarray(tree["default_left"], dtype=bool))
                leaf.append(is_leaf)
                cover.append(np.asarray(tree["sum_hessian"], dtype=np.float64))
                depth = max(depth, _depth(lc, rc))
                offset += n
        self.feature = _cat(feature, np.intp)
        self.threshold = _cat(threshold, np.float32)  # a leaf's value for a leaf (xgboost JSON)
        self.left = _cat(left, np.intp)
        self.right = _cat(right, np.intp)
        self.default_left = _cat(default_left, bool)
        self.is_leaf = _cat(leaf, bool)
        self.cover = _cat(cover, np.float64)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.owner = np.asarray(owner, dtype=np.intp)  # which booster each tree belongs to
        self.depth = depth
        self.base_score_margin = np.asarray(base)  # per booster (the SHAP base without offset)
        self._complete_layout()

    def _complete_layout(self) -> None:
        """Every tree laid out as a complete binary tree of depth ``depth`` (slot ``s`` has
        children ``2s + 1`` and ``2s + 2``), so a walk computes child slots instead of
        gathering them; below a leaf that ends early, every bottom slot names that leaf."""
        width = 2 ** (self.depth + 1) - 1
        n = len(self.roots)
        self.slot_feature = np.zeros((n, width), dtype=np.intp)
        self.slot_threshold = np.zeros((n, width), dtype=np.float32)
        self.slot_default_left = np.ones((n, width), dtype=bool)
        first_bottom = 2**self.depth - 1
        self.bottom_leaf = np.zeros((n, first_bottom + 1), dtype=np.intp)  # node ids
        for t, root in enumerate(self.roots):
            todo = [(root, 0, 0)]
            while todo:
                node, slot, level = todo.pop()
                if self.is_leaf[node]:
                    span = 2 ** (self.depth - level)  # the bottom slots below this one
                    first = (slot + 1) * span - 1 - first_bottom
                    self.bottom_leaf[t, first : first + span] = node
                    continue
                self.slot_feature[t, slot] = self.feature[node]
                self.slot_threshold[t, slot] = self.threshold[node]
                self.slot_default_left[t, slot] = self.default_left[node]
                todo += [(self.left[node], 2 * slot + 1, level + 1)]
                todo += [(self.right[node], 2 * slot + 2, level + 1)]
        # flat: tree t's slots start at t * width
        self.slot_feature = self.slot_feature.ravel()
        self.slot_threshold = self.slot_threshold.ravel()
        self.slot_default_left = self.slot_default_left.ravel()
        self.bottom_value = self.threshold[self.bottom_leaf]  # float32 leaf values

    def margins(self, x32: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Per booster and row, ``start`` (boosters x rows) plus the booster's leaf values, in
        float32 and tree order as xgboost sums them (:func:`runtime.kernels.fit_margins`)."""
        return kernels.fit_margins(
            np.ascontiguousarray(x32, dtype=np.float32),
            np.ascontiguousarray(start, dtype=np.float32),
            self.owner,
            self.slot_feature,
            self.slot_threshold,
            self.slot_default_left,
            self.bottom_value,
            self.depth,
        )


def _cat(parts: list, dtype) -> np.ndarray:
    """The parts end to end (an empty array for a fit without trees)."""
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _depth(lc: np.ndarray, rc: np.ndarray) -> int:
    best, todo = 0, [(0, 0)]
    while todo:
        node, d = todo.pop()
        if lc[node] == -1:
            best = max(best, d)
        else:
            todo += [(lc[node], d + 1), (rc[node], d + 1)]
    return best


class StackedAdditive:
    """Several :class:`~model.linear_offset.LinearOffset` fits (the main fit and its refits)
    evaluated at once: the same arithmetic as :meth:`LinearOffset.contributions` and
    :meth:`LinearOffset.decision_function`, operation for operation and so bit for bit
    (tested), with each fit's learned arrays stacked along a first axis (a predictor a fit has
    no indicator for gets 0)."""

    def __init__(self, fits: list[LinearOffset]):
        first = fits[0]
        self.first = first
        n = len(first.feature_names)
        self.logged = [j for j, f in enumerate(first.feature_names) if f in first.log_features]
        stack = lambda name: np.stack([getattr(f, name) for f in fits])  # noqa: E731
        self.median, self.mean, self.scale = stack("median_"), stack("mean_"), stack("scale_")
        self.coef, self.intercept = stack("coef_"), stack("intercept_")
        self.term_mean = stack("term_mean_")
        self.ind_mean = np.zeros((len(fits), n))
        self.ind_scale = np.ones((len(fits), n))
        self.ind_coef = np.zeros((len(fits), n, first.coef_.shape[1]))
        self.indicated = np.zeros((len(fits), n), dtype=bool)
        for k, f in enumerate(fits):
            at = f.indicated_
            self.indicated[k, at] = True
            self.ind_mean[k, at], self.ind_scale[k, at] = f.ind_mean_, f.ind_scale_
            self.ind_coef[k, at] = f.ind_coef_
        self.day = first.feature_names.index(first.day_feature) if first.day_degree else None
        self.max_day = np.array([getattr(f, "max_day_", 0.0) for f in fits])
        self.state_columns = first.state_columns_
        if any(not np.array_equal(f.state_columns_, self.state_columns) for f in fits):
            raise ValueError("refits with different in-state predictors are not stacked")
        self.state_pos = np.full(n, -1, dtype=np.intp)  # each predictor's in-state column
        self.state_pos[self.state_columns] = np.arange(len(self.state_columns))
        self.state_coef = (
            stack("state_coef_").reshape(len(fits), -1)
            if len(self.state_columns)
            else np.zeros((len(fits), 1))  # unused: no predictor has a column
        )

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the first fit's :meth:`LinearOffset.contributions`, rows x predictors; every fit's
        :meth:`LinearOffset.decision_function`, fits x rows): the logarithms and the day basis
        here, the rest in :func:`runtime.kernels.additive_parts`."""
        t = x.copy()
        t[:, self.logged] = np.log1p(np.clip(x[:, self.logged], 0, None))
        return kernels.additive_parts(
            t,
            np.ascontiguousarray(self._day_basis(x)),
            self.first._state(x),
            self.median,
            self.mean,
            self.scale,
            self.indicated,
            self.ind_mean,
            self.ind_scale,
            self.coef,
            self.ind_coef,
            self.state_pos,
            self.state_coef,
            self.term_mean,
            self.intercept,
        )

    def _day_basis(self, x: np.ndarray) -> np.ndarray:
        """:meth:`LinearOffset._day_basis` of every fit (fits x rows x degree + 1): each fit
        scales the day by the largest day it was fitted on."""
        if not self.first.day_degree:
            return np.ones((len(self.max_day), len(x), 1))
        return day_basis(x[:, self.day][None], self.max_day[:, None], self.first.day_degree)


class TreeShapTable:
    """Exact path-dependent TreeSHAP values of one booster's trees, tabulated per leaf.

    For leaf ``l`` with value ``v`` and distinct path features ``f_1..f_m``, the explained game
    is ``v * prod_i (o_i if f_i present else c_i)``: ``o_i`` is 1 when the row follows every
    split on ``f_i`` along the path, else 0; ``c_i`` the product of the cover fractions of those
    splits. Its Shapley values are tabulated for each of the ``2**m`` patterns of ``o``.

    ``trees`` (indices into ``compiled.roots``; default all) are the ones explained: one
    booster's, when several are compiled together.
    """

    def __init__(self, compiled: CompiledTrees, n_features: int, trees=None):
        self.n_features = n_features
        width = max(compiled.depth, 1)
        path_nodes, path_dirs, path_slots, slot_feature, tables = [], [], [], [], []
        self.base = 0.0
        roots = compiled.roots if trees is None else compiled.roots[trees]
        for root in roots:
            for leaf, path in _paths(compiled, root):
                value = float(compiled.threshold[leaf])
                feats = list(dict.fromkeys(compiled.feature[n] for n, _ in path))
                slot = {f: i for i, f in enumerate(feats)}
                cover = np.ones(len(feats))
                for node, went_left in path:
                    child = compiled.left[node] if went_left else compiled.right[node]
                    cover[slot[compiled.feature[node]]] *= (
                        compiled.cover[child] / compiled.cover[node]
                    )
                self.base += value * float(np.prod(cover))
                pad = width - len(path)
                path_nodes.append([n for n, _ in path] + [0] * pad)
                path_dirs.append([d for _, d in path] + [True] * pad)
                path_slots.append([slot[compiled.feature[n]] for n, _ in path] + [width] * pad)
                slot_feature.append(feats + [-1] * (width - len(feats)))
                tables.append(_shapley_table(value, cover, width))
        n_leaves = len(tables)
        self.path_nodes = np.asarray(path_nodes, dtype=np.intp).reshape(n_leaves, width)
        self.path_dirs = np.asarray(path_dirs, dtype=bool).reshape(n_leaves, width)
        slots = np.asarray(path_slots, dtype=np.intp).reshape(n_leaves, width)
        # each path position's slot as a bit (0 for padding): a slot is followed unless one of
        # its positions is not, so the pattern is every bit but those of failed positions
        self.bits = np.where(slots < width, 2 ** np.minimum(slots, width - 1), 0)
        self.table = np.stack(tables) if tables else np.zeros((0, 2**width, width))
        self.slot_feature = np.asarray(slot_feature, dtype=np.intp).reshape(n_leaves, width)
        self.compiled = compiled

    def contributions(self, x32: np.ndarray) -> np.ndarray:
        """Per row and predictor, the trees' exact SHAP values (float64): each leaf's tabulated
        values at the row's pattern, summed leaf by leaf
        (:func:`runtime.kernels.tabulated_shap`)."""
        t = self.compiled
        return kernels.tabulated_shap(
            np.ascontiguousarray(x32, dtype=np.float32),
            self.path_nodes,
            self.path_dirs,
            self.bits,
            t.feature,
            t.threshold,
            t.default_left,
            self.table,
            self.slot_feature,
            self.n_features,
        )


def _paths(trees: CompiledTrees, root: int):
    """(leaf, [(node, went_left), ...]) for every leaf below ``root``."""
    todo = [(root, [])]
    while todo:
        node, path = todo.pop()
        if trees.is_leaf[node]:
            yield node, path
        else:
            todo.append((trees.left[node], [*path, (node, True)]))
            todo.append((trees.right[node], [*path, (node, False)]))


def _shapley_table(value: float, cover: np.ndarray, width: int) -> np.ndarray:
    """Shapley values of ``v * prod_i (o_i if present else c_i)`` for every 0/1 pattern of
    ``o`` (2**width x width; slots beyond the path's features get 0)."""
    m = len(cover)
    out = np.zeros((2**width, width))
    weight = [factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)]
    for pattern in range(2 ** min(m, width)):
        o = [(pattern >> i) & 1 for i in range(m)]
        for i in range(m):
            others = [j for j in range(m) if j != i]
            total = 0.0
            for size in range(m):
                for subset in combinations(others, size):
                    prod = 1.0
                    for j in others:
                        prod *= o[j] if j in subset else cover[j]
                    total += weight[size] * prod
            out[pattern, i] = value * (o[i] - cover[i]) * total
    if m < width:  # patterns differing only in unused slots share the values
        for pattern in range(2**m, 2**width):
            out[pattern] = out[pattern & (2**m - 1)]
    return out


class CompiledModel:
    """A fitted :class:`~model.risk_model.RiskModel` as arrays: probability, interval and exact
    contributions of predictor rows in one pass.

    The trees' sums are compiled when each fit starts from its additive part's log-odds (the
    shipped model): xgboost then adds the leaves to that starting margin in float32, tree by
    tree, which the compiled sum reproduces bit for bit. Without an additive part (models of
    ``linear_offset=False``) xgboost starts from its internal base score and sums in another
    order (one or two float32 steps apart); those margins are left to xgboost
    (:meth:`RiskModel.log_odds`, :meth:`RiskModel.interval`), the contributions still compiled.
    The main fit's trees and every refit's are walked in one pass (fit 0 is the main fit).
    """

    def __init__(self, model):
        self.model = model
        self.calibration = model.calibration_
        refits = model.refits_
        self.exact = model.additive_ is not None and all(a is not None for a, _ in refits)
        boosters = [model.trees_] + ([b for _, b in refits] if self.exact else [])
        self.trees = CompiledTrees(boosters)
        main = np.flatnonzero(self.trees.owner == 0)
        self.shap = TreeShapTable(self.trees, len(model.feature_names_), main)
        self.base_score_margin = float(self.trees.base_score_margin[0])
        if self.exact:  # the main fit's additive part first, then the refits'
            assert model.additive_ is not None  # exact: every fit has its additive part
            self.additive = StackedAdditive([model.additive_] + [lin for lin, _ in refits])

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """Calibrated log-odds, bit for bit :meth:`RiskModel.log_odds`."""
        return self.assess(x)[0]

    def interval(self, x: np.ndarray, level: float = 0.95) -> np.ndarray | None:
        """:meth:`RiskModel.interval` in one pass over every refit."""
        return self.assess(x, level)[1]

    def assess(self, x: np.ndarray, level: float = 0.95):
        """(calibrated log-odds, ``level`` interval or None, contributions, base log-odds) of
        predictor rows: the additive parts of the main fit and the refits in one stacked pass,
        their trees in one walk; the main fit's additive contributions are shared by its
        log-odds (their total, as :meth:`LinearOffset.decision_function` computes it) and the
        explanation."""
        if not self.exact:
            linear = self.model.additive_
            additive = None if linear is None else linear.contributions(x)
            log_odds, interval = self.model.log_odds(x), self.model.interval(x, level)
            return (log_odds, interval, *self.explain(x, additive))
        x32 = x.astype(np.float32)
        additive, totals = self.additive.evaluate(x)
        a, b = self.calibration
        log_odds = a + b * self.trees.margins(x32, totals).astype(np.float64)  # fits x rows
        interval = central_interval(expit(log_odds[1:]), level) if len(log_odds) > 1 else None
        return (log_odds[0], interval, *self.explain(x, additive, x32))

    def explain(self, x: np.ndarray, additive=None, x32=None) -> tuple[np.ndarray, np.ndarray]:
        """(contributions rows x predictors, base log-odds per row), calibrated: exact, and
        they add up to the calibrated log-odds up to xgboost's float32 sums."""
        linear = self.model.additive_
        trees = self.shap.contributions(x.astype(np.float32) if x32 is None else x32)
        base = np.full(len(x), self.shap.base)
        if linear is not None:
            trees = trees + (linear.contributions(x) if additive is None else additive)
            base = base + linear.intercept_
        else:
            base = base + self.base_score_margin
        a, b = self.calibration
        return b * trees, a + b * base
