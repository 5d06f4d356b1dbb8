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

    def goes_left(self, x32: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Whether each row goes left at ``nodes`` (rows x k): ``x < threshold`` in float32, the
        node's default direction when the value is missing."""
        value = np.take_along_axis(x32, self.feature[nodes], axis=1)
        return np.where(np.isnan(value), self.default_left[nodes], value < self.threshold[nodes])

    def leaves(self, x32: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree (rows x trees)."""
        nodes = np.broadcast_to(self.roots, (len(x32), len(self.roots))).copy()
        for _ in range(self.depth):
            nodes = np.where(self.goes_left(x32, nodes), self.left[nodes], self.right[nodes])
        return nodes


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
    """Several :class:`~model.linear_offset.LinearOffset` fits (the refits) evaluated at once:
    the same arithmetic as :meth:`LinearOffset.decision_function`, with each fit's learned
    arrays stacked along a first axis (a predictor a fit has no indicator for gets 0)."""

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
        self.state_coef = stack("state_coef_") if len(self.state_columns) else None

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of every fit (fits x rows)."""
        f = self.first
        t = x.copy()
        t[:, self.logged] = np.log1p(np.clip(x[:, self.logged], 0, None))
        missing = np.isnan(t)
        t = np.where(missing[None], self.median[:, None], t[None])
        z = (t - self.mean[:, None]) / self.scale[:, None]
        zi = (
            np.where(self.indicated[:, None], (missing[None] - self.ind_mean[:, None]), 0.0)
            / self.ind_scale[:, None]
        )
        basis = self._day_basis(x)
        beta = np.einsum("frk,fjk->frj", basis, self.coef)
        gamma = np.einsum("frk,fjk->frj", basis, self.ind_coef)
        if len(self.state_columns):
            state = f._state(x)[None, :, None]
            at = self.state_columns
            beta[:, :, at] = (1.0 - state) * beta[:, :, at] + state * self.state_coef[:, None]
            c = z * beta + zi * gamma
            c[:, :, at] += state * (self.mean / self.scale)[:, None, at] * beta[:, :, at]
        else:
            c = z * beta + zi * gamma
        c = c - self.term_mean[:, None]
        return self.intercept[:, None] + c.sum(axis=2)

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
    """

    def __init__(self, trees: CompiledTrees, n_features: int):
        self.n_features = n_features
        width = max(trees.depth, 1)
        leaf_ids, path_nodes, path_dirs, path_slots, slot_feature, tables = [], [], [], [], [], []
        self.base = 0.0
        for root in trees.roots:
            for leaf, path in _paths(trees, root):
                value = float(trees.threshold[leaf])
                feats = list(dict.fromkeys(trees.feature[n] for n, _ in path))
                slot = {f: i for i, f in enumerate(feats)}
                cover = np.ones(len(feats))
                for node, went_left in path:
                    child = trees.left[node] if went_left else trees.right[node]
                    cover[slot[trees.feature[node]]] *= trees.cover[child] / trees.cover[node]
                self.base += value * float(np.prod(cover))
                nodes = [n for n, _ in path] + [0] * (width - len(path))
                dirs = [d for _, d in path] + [True] * (width - len(path))
                slots = [slot[trees.feature[n]] for n, _ in path] + [width] * (width - len(path))
                leaf_ids.append(leaf)
                path_nodes.append(nodes)
                path_dirs.append(dirs)
                path_slots.append(slots)
                slot_feature.append(feats + [0] * (width - len(feats)))
                tables.append(_shapley_table(value, cover, width))
        if not leaf_ids:  # a fit without trees (the additive part alone)
            path_nodes, path_dirs, path_slots = (np.zeros((0, width), int),) * 3
            slot_feature, tables = np.zeros((0, width), int), []
        self.path_nodes = np.asarray(path_nodes, dtype=np.intp)  # leaves x width
        self.path_dirs = np.asarray(path_dirs, dtype=bool)
        slots = np.asarray(path_slots)
        # each path position's slot as a bit (0 for padding): a slot is followed unless one of
        # its positions is not, so the pattern is every bit but those of failed positions
        self.bits = np.where(slots < width, 2 ** np.minimum(slots, width - 1), 0)
        self.all_bits = 2**width - 1
        self.table = (  # leaves x 2**width patterns x width slots
            np.stack(tables) if tables else np.zeros((0, 2**width, width))
        )
        # (leaf, slot) values are summed per predictor by reduceat over positions sorted by
        # predictor: a sequential sum per row, so a row gets the same bits alone or in a batch
        flat = np.asarray(slot_feature, dtype=np.intp).reshape(-1)
        self.order = np.argsort(flat, kind="stable")
        self.features, self.starts = np.unique(flat[self.order], return_index=True)
        self.trees = trees

    def contributions(self, x32: np.ndarray) -> np.ndarray:
        """Per row and predictor, the trees' exact SHAP values (float64)."""
        t = self.trees
        rows = len(x32)
        flat = self.path_nodes.ravel()
        value = x32[:, t.feature[flat]]
        left = np.where(np.isnan(value), t.default_left[flat], value < t.threshold[flat])
        failed = np.where(left == self.path_dirs.ravel(), 0, self.bits.ravel())
        failed = np.bitwise_or.reduce(failed.reshape(rows, *self.path_nodes.shape), axis=2)
        pattern = self.all_bits & ~failed  # rows x leaves
        phi = self.table[np.arange(self.table.shape[0])[None, :], pattern]  # rows x leaves x w
        out = np.zeros((rows, self.n_features))
        if len(self.order):
            summed = np.add.reduceat(phi.reshape(rows, -1)[:, self.order], self.starts, axis=1)
            out[:, self.features] = summed
        return out


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
    """

    def __init__(self, model):
        self.model = model
        self.calibration = model.calibration_
        self.main = CompiledTrees([model.trees_])
        self.main_columns = [np.arange(len(self.main.roots))]
        self.shap = TreeShapTable(self.main, len(model.feature_names_))
        refits = model.refits_
        self.exact = model.additive_ is not None and all(a is not None for a, _ in refits)
        self.refit_trees = None
        if refits and self.exact:
            self.refit_trees = CompiledTrees([b for _, b in refits])
            self.refit_additive = StackedAdditive([lin for lin, _ in refits])
            owner = self.refit_trees.owner
            self.refit_columns = [np.flatnonzero(owner == k) for k in range(len(refits))]

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """Calibrated log-odds, bit for bit :meth:`RiskModel.log_odds`."""
        if not self.exact:
            return self.model.log_odds(x)
        offset = self.model.additive_.decision_function(x)[None]
        return self._calibrated(self.main, offset, x.astype(np.float32), self.main_columns)[0]

    def interval(self, x: np.ndarray, level: float = 0.95) -> np.ndarray | None:
        """:meth:`RiskModel.interval` in one pass over every refit."""
        if not self.model.refits_:
            return None
        if self.refit_trees is None:
            return self.model.interval(x, level)
        offsets = self.refit_additive.decision_function(x)
        log_odds = self._calibrated(
            self.refit_trees, offsets, x.astype(np.float32), self.refit_columns
        )
        tail = (1.0 - level) / 2.0
        return np.quantile(expit(log_odds), [tail, 1.0 - tail], axis=0).T

    def _calibrated(self, trees: CompiledTrees, offsets, x32, columns) -> np.ndarray:
        """``a + b * margin`` per fit (fits x rows): each fit's leaves added to its starting
        margin in float32, in tree order, as xgboost does (one accumulation for all fits when
        they have as many trees, as refits of fixed hyper-parameters do)."""
        values = trees.threshold[trees.leaves(x32)]  # rows x trees, float32
        start = offsets.astype(np.float32)[:, :, None]  # fits x rows x 1
        if len({len(c) for c in columns}) == 1:
            per_fit = np.stack([values[:, c] for c in columns])  # fits x rows x trees
            acc = np.concatenate([start, per_fit], axis=2)
            margin = np.add.accumulate(acc, axis=2, dtype=np.float32)[:, :, -1]
        else:
            margin = np.stack(
                [
                    np.add.accumulate(
                        np.column_stack([start[k, :, 0], values[:, c]]), axis=1, dtype=np.float32
                    )[:, -1]
                    for k, c in enumerate(columns)
                ]
            )
        a, b = self.calibration
        return a + b * margin.astype(np.float64)

    def assess(self, x: np.ndarray):
        """(calibrated log-odds, interval, contributions, base log-odds) of predictor rows:
        :meth:`log_odds`, :meth:`interval` and :meth:`explain` sharing the additive part's
        contributions (its log-odds are their total, as :meth:`LinearOffset.decision_function`
        computes them)."""
        linear = self.model.additive_
        additive = None if linear is None else linear.contributions(x)
        if self.exact:
            offset = linear.total(additive)[None]
            log_odds = self._calibrated(self.main, offset, x.astype(np.float32), self.main_columns)[
                0
            ]
        else:
            log_odds = self.model.log_odds(x)
        contributions, base = self.explain(x, additive)
        return log_odds, self.interval(x), contributions, base

    def explain(self, x: np.ndarray, additive=None) -> tuple[np.ndarray, np.ndarray]:
        """(contributions rows x predictors, base log-odds per row), calibrated: exact, and
        they add up to the calibrated log-odds up to xgboost's float32 sums."""
        linear = self.model.additive_
        trees = self.shap.contributions(x.astype(np.float32))
        base = np.full(len(x), self.shap.base)
        if linear is not None:
            trees = trees + (linear.contributions(x) if additive is None else additive)
            base = base + linear.intercept_
        else:
            base = base + float(self.main.base_score_margin[0])
        a, b = self.calibration
        return b * trees, a + b * base
