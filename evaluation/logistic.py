"""Logistic regression by projected Newton steps: the one routine behind every logistic model
the project fits itself.

* the additive part of the risk model (:mod:`model.linear_offset`): some 160 coefficients with a
  ridge and smoothing penalty, clinical sign bounds and bootstrap row weights;
* the recalibration of log-odds, ``expit(a + b * lp)``: at training on the out-of-fold log-odds
  (:meth:`model.risk_model.RiskModel._calibrate`) and at another centre
  (:mod:`model.updating`, also with the log-odds as an offset, the slope fixed at 1);
* the calibration intercept, slope and curve of :mod:`evaluation.metrics`, for every bootstrap
  replicate at once (weights: replicates x rows).

The logistic baselines of :mod:`model.baselines` stay scikit-learn's ``LogisticRegression``:
they are the standard fit the model is compared with, not part of it.

It lives in ``evaluation`` because that is the lowest layer both users import (``model``
imports ``evaluation``, never the other way round).
"""

from __future__ import annotations

from typing import Protocol, cast

import numpy as np
from scipy.special import expit, log_expit

RIDGE = 1e-9
"""Added to the Newton system of a fit without a penalty, to keep it solvable when a column
carries no information (a replicate that drew one score): it damps the steps, not the
objective, so the estimate is still the unpenalised maximum-likelihood one."""

EXACT_TOL = 1e-12
"""``tol`` for the models whose coefficients are read as numbers (the calibration intercept,
slope and curve; the recalibrations): run to rounding (about 1e-9 on the coefficients)."""


def logit(p, eps: float = 1e-6):
    """Log-odds of probabilities (or event rates) ``p``, clipped to ``[eps, 1 - eps]`` first: a
    rate of 0 or 1 has no finite log-odds."""
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def log_loss(eta: np.ndarray, y: np.ndarray, w: np.ndarray | None = None):
    """Negative log-likelihood of log-odds ``eta`` for outcomes ``y`` (0 or 1): summed over the
    rows (the last axis), each row weighted by ``w`` when given (a vector, or replicates x rows
    with ``eta`` of the same shape: one value per replicate).

    ``log expit(eta)`` for an event, ``log expit(-eta)`` for none: for outcomes of 0 and 1 the
    same numbers, bit for bit, as ``y * log_expit(eta) + (1 - y) * log_expit(-eta)``, with
    one logarithm per row instead of two (the metrics evaluate it for every bootstrap
    replicate and Newton step)."""
    ll = log_expit((2 * y - 1) * eta)  # eta for an event, -eta for none (exact)
    return -np.sum(ll, axis=-1) if w is None else -np.vecdot(w, ll)


class Design(Protocol):
    """A design matrix given by its products instead of its entries: for a matrix whose
    structure makes them cheaper than building it (the additive part's day-varying design,
    :class:`model.day_design.DayVaryingDesign`)."""

    shape: tuple[int, int]

    def dot(self, theta: np.ndarray) -> np.ndarray:
        """``theta @ X.T`` for ``theta`` replicates x columns."""
        ...

    def tdot(self, v: np.ndarray) -> np.ndarray:
        """``v @ X`` for ``v`` replicates x rows."""
        ...

    def gram(self, c: np.ndarray) -> np.ndarray:
        """``X.T @ diag(c) @ X`` for row weights ``c``."""
        ...


def fit_logistic(
    design: np.ndarray | Design,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    offset: np.ndarray | float = 0.0,
    penalty: np.ndarray | None = None,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    start: np.ndarray | None = None,
    tol: float = 1e-7,
    max_iter: int = 100,
) -> np.ndarray:
    """Coefficients ``theta`` minimising the weighted logistic loss of
    ``offset + design @ theta`` plus ``0.5 * theta @ penalty @ theta``, within the box
    ``low <= theta <= high``.

    ``weights``: one per row (None: all 1), or replicates x rows to fit every replicate at once
    (then ``theta`` is replicates x columns). ``penalty``: columns x columns (None: none, the
    maximum-likelihood estimate; see :data:`RIDGE`). ``low``, ``high``: per column (None:
    unbounded).
    ``start``: the first iterate, per column or per replicate and column (None: zeros);
    bootstrap replicates started from the unit-weight fit need a step or two. A batch keeps
    each row's products of its columns (rows x columns**2): it is meant for small models.
    ``design``: rows x columns, or for a single fit a :class:`Design` whose products a caller
    computes from a structure it knows, without building the matrix
    (:class:`model.linear_offset.LinearOffset`: the day-varying terms, a Kronecker product);
    the same numbers up to rounding.

    Projected Newton steps (Bertsekas, SIAM J Control Optim 1982): variables at a bound whose
    gradient pushes outwards stay there, the others take a Newton step, and a backtracking
    (Armijo) search along the projected path keeps every iterate inside the box and the loss
    falling. A replicate stops when its projected gradient is below ``tol`` per unit of its
    total weight, or when a step lowers its objective by less than ``1e-12`` of it, or is
    predicted to (Newton's decrease): then the step is taken without evaluating the loss,
    whose rounding could not tell it from a shorter one. In a batch without bounds, a step
    that moves no row's log-odds by more than 1 is taken without evaluating the loss too: it
    provably meets Armijo's condition.

    Why not L-BFGS(-B), or scikit-learn: with the additive part's day-varying coefficients the
    design is ill-conditioned (the Bernstein columns of one predictor are correlated) and
    L-BFGS-B needs ~200 iterations and still stops where log-odds differ by up to 0.07 between
    tolerances; Newton converges quadratically in ~10 iterations of a (p x p) solve, p ~ 160.
    And the metrics need hundreds of small fits at once, which a vectorised Newton does in a
    few array operations per step.
    """
    # the design as an array (``matrix``), or by its products (``structured``)
    structured = design if hasattr(design, "gram") else None
    matrix = None if structured is not None else np.asarray(design, dtype=float)
    k = design.shape[1]

    def times(th: np.ndarray) -> np.ndarray:  # theta -> log-odds
        return th @ matrix.T if matrix is not None else cast(Design, structured).dot(th)

    def transposed(v: np.ndarray) -> np.ndarray:  # v @ design
        return v @ matrix if matrix is not None else cast(Design, structured).tdot(v)

    y = np.asarray(y, dtype=float)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("outcomes must be 0 or 1")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    batched = w.ndim == 2
    w = np.atleast_2d(w)
    if batched and matrix is None:
        raise ValueError("a batch of replicates needs the design as an array")
    if penalty is None:
        penalty, damping = np.zeros((k, k)), RIDGE * np.eye(k)
    else:
        penalty = damping = np.asarray(penalty, dtype=float)
    low = np.full(k, -np.inf) if low is None else np.asarray(low, dtype=float)
    high = np.full(k, np.inf) if high is None else np.asarray(high, dtype=float)
    first = np.zeros(k) if start is None else np.asarray(start, dtype=float)
    theta = np.array(np.broadcast_to(np.clip(first, low, high), (len(w), k)))

    # In a batch of small unbounded models evaluating the loss costs more than the Newton step
    # itself. A Newton step that moves no row's log-odds by more than 1 needs no check: the
    # logistic loss's third derivative is bounded by its second (|l'''| <= l''), so along such
    # a step the loss falls by at least (3 - e) ~ 0.28 times -grad @ step, far more than the
    # 1e-4 times that Armijo asks (Bach, Electron J Stat 2010). A single fit always evaluates
    # the loss: there the (p x p) solve costs far more.
    trusting = batched and np.all(np.isinf(low)) and np.all(np.isinf(high))
    extent = None  # each column's largest value, for a trusting batch
    if trusting and matrix is not None:
        extent = np.max(np.abs(matrix), axis=0, initial=0.0)

    def objective(theta, w):
        eta = times(theta) + offset
        value = log_loss(eta, y, w) + 0.5 * np.vecdot(theta @ penalty, theta)
        return value, eta

    eta = times(theta) + offset
    value = np.full(len(w), np.nan)  # the objective at theta; NaN: not evaluated yet
    scale = w.sum(axis=1)
    # per row, the products of its columns: the replicates' Hessians in one matrix product
    pairs = None
    if batched and matrix is not None:
        pairs = (matrix[:, :, None] * matrix[:, None, :]).reshape(len(y), k * k)
    active = np.arange(len(w))  # the replicates still moving
    for _ in range(max_iter):
        every = len(active) == len(w)  # then views, not copies, of the replicates' arrays
        th, wa = (theta, w) if every else (theta[active], w[active])
        prob = expit(eta if every else eta[active])
        residual = wa * (prob - y)
        grad = transposed(residual) + th @ penalty.T  # penalty @ theta, per replicate
        projected = th - np.clip(th - grad, low, high)
        moving = np.max(np.abs(projected), axis=1) > tol * scale[active]
        if not moving.all():
            active = active[moving]
            th, wa, prob, grad = (v[moving] for v in (th, wa, prob, grad))
        if not len(active):
            break
        stuck = ((th <= low) & (grad > 0)) | ((th >= high) & (grad < 0))
        curvature = wa * prob * (1 - prob)
        step = _newton_steps(
            matrix if matrix is not None else cast(Design, structured),
            pairs,
            curvature,
            grad,
            damping,
            stuck,
        )
        trial = np.clip(th + step, low, high)
        sure = np.zeros(len(active), dtype=bool)
        if extent is not None:  # trusting: no row's log-odds moves by more than |step| @ extent
            sure = np.abs(trial - th) @ extent <= 1.0
            value[active[sure]] = np.nan
            if len(active) == len(w) and sure.all():
                eta = times(trial) + offset
            else:
                eta[active[sure]] = times(trial[sure]) + offset
        now = value[active]
        unknown = np.flatnonzero(np.isnan(now) & ~sure)
        if len(unknown):
            now[unknown] = value[active[unknown]] = objective(th[unknown], wa[unknown])[0]
        # Newton's predicted decrease below the objective's resolution: the minimum is reached
        # to rounding (the loss could not tell a shorter step from this one), so take the step
        # and stop without evaluating the loss
        done = 0.5 * np.vecdot(grad, th - trial) <= 1e-12 * np.abs(now)
        search, alpha = np.flatnonzero(~done & ~sure), 1.0  # halved while searching
        while len(search):
            trial[search] = np.clip(th[search] + alpha * step[search], low, high)
            trial_value, trial_eta = objective(trial[search], wa[search])
            gain = np.vecdot(grad[search], trial[search] - th[search])
            accepted = (trial_value <= now[search] + 1e-4 * gain) | (alpha < 1e-8)
            ok, trial_value, trial_eta = (
                search[accepted],
                trial_value[accepted],
                trial_eta[accepted],
            )
            done[ok] = now[ok] - trial_value <= 1e-12 * np.abs(now[ok])
            value[active[ok]], eta[active[ok]] = trial_value, trial_eta
            search = search[~accepted]
            alpha *= 0.5
        theta[active] = trial
        active = active[~done]
        if not len(active):
            break
    return theta if batched else theta[0]


def _newton_steps(
    design: np.ndarray | Design,
    pairs: np.ndarray | None,
    curvature: np.ndarray,
    grad: np.ndarray,
    damping: np.ndarray,
    stuck: np.ndarray,
) -> np.ndarray:
    """Per replicate, the Newton step of its free variables (0 for those ``stuck`` at a bound):
    the Hessian is ``design.T @ diag(curvature) @ design`` plus ``damping`` (the penalty). Several
    replicates with every variable free are solved in one stacked call (their Hessians from
    ``pairs``, each row's products of its columns); a single fit, or a replicate with stuck
    variables, solves the system of its free variables alone (its Hessian from the design's
    own ``gram`` when it is a :class:`Design`)."""
    k = design.shape[1]
    if pairs is not None and not stuck.any():
        hessian = (curvature @ pairs).reshape(len(grad), k, k) + damping
        return -np.linalg.solve(hessian, grad[..., None])[..., 0]
    root = np.sqrt(curvature)
    step = np.zeros_like(grad)
    for r in range(len(grad)):
        free = np.flatnonzero(~stuck[r])
        if not isinstance(design, np.ndarray):
            hessian = design.gram(curvature[r])[np.ix_(free, free)] + damping[np.ix_(free, free)]
        else:
            weighted = design[:, free] * root[r, :, None]
            hessian = weighted.T @ weighted + damping[np.ix_(free, free)]
        step[r, free] = -np.linalg.solve(hessian, grad[r, free])
    return step
