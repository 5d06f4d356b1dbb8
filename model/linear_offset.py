"""The additive part of the risk model: a sign-constrained penalised logistic regression whose
coefficients may vary smoothly with the landmark day.

The trees of :class:`model.risk_model.RiskModel` start from this model's log-odds (xgboost's
``base_margin``) and only learn what it leaves: interactions, thresholds and non-linear shapes.
Why: the risk of ICANS adds up on the log-odds scale for most predictors (each published effect
is an odds ratio), and trees approximate such a smooth additive function with staircases that
need many patients to get right; on the synthetic cohort a plain logistic regression on the same
predictors beat the trees alone by ~0.005 AUROC at 5,000 patients. Starting the boosting from a
linear predictor is the usual remedy (Friedman 2001, section 4.4 on the initial model; the
"boosting from a prior model" of xgboost's ``base_margin``).

**Effects that change with the landmark day** (the landmark "supermodel" of van Houwelingen,
Scand J Stat 2007, and van Houwelingen & Putter 2011, ch. 7): what today's CRS grade or ICANS
grade says about the rest of the course is not the same on day 1 as on day 10, so each
coefficient is a polynomial in the day instead of one number,
``beta_j(L) = sum_k b_jk B_k(t)``, with ``t = log(1 + L) / log(1 + L_max)`` (most events and
landmarks are early, so the log scale gives them the resolution) and ``B_k`` the Bernstein
basis of degree ``day_degree``. ``day_degree=0`` is the ordinary model with one coefficient per
predictor. A day beyond the latest training landmark uses that landmark's coefficients (no
extrapolation).

What keeps it safe:

* **Monotone where the direction is known**, on every day: Bernstein polynomials are
  non-negative and sum to 1, so bounding every ``b_jk`` to the clinical sign bounds
  ``beta_j(L)`` to it for every L (>= 0 for "more CRS, blasts, dose, CD4+ expansion never
  lowers the risk"); each predictor enters through a monotone transform (log1p for skewed
  values), so the sum with the monotone-constrained trees is still monotone.
* **Exact explanations**: the contribution of predictor j on a row is
  ``beta_j(L) * z_j - m_j``: ``z`` is the standardised value and ``m_j`` the mean of
  ``beta_j(L) * z_j`` over the training rows (folded into the intercept, so the contributions
  have mean 0 there and add up with the intercept to the linear log-odds, exactly). The whole
  term is attributed to predictor j: it is that predictor's effect at the row's landmark day,
  which is how a clinician reads it; the landmark day's own contribution is only its
  ``beta(L) * z_day`` term. TreeSHAP of the trees is added per predictor.
* **Effects of their own once ICANS has begun** (``state_feature``, ``state_terms``): a named
  predictor (the product and disease indicators) has the day-varying coefficient on rows
  before the state and one coefficient ``c_j`` of its own on rows in it (``state_feature >=
  1``: ICANS seen so far), ridge-shrunk towards no effect. Why: the product sets how often
  ICANS begins, but once a patient has ICANS, its course (grade, response to steroids) says
  more than the product, and a product seen with no ICANS in training has nothing to say about
  it. One coefficient for both made a CLL1 patient with grade 1 ICANS unimproved on steroids
  (Meng 2025) a 0.1% risk against a true 13%: the "rare ICANS" effect of the product, learned
  from patients without ICANS, carried over. Only predictors without a sign bound take part,
  so the signs hold. In the state the term multiplies the uncentred value (``t / scale``),
  so a category no state row has gets no data and stays at 0 there; it is still predictor
  j's term, so the contributions add up exactly as before.
* **Rare categories stay bounded**: a continuous predictor is standardised (centred, divided
  by its SD), a binary one (a category, CNS involvement, a missing indicator) only centred
  (Gelman, Stat Med 2008), so the ridge penalty acts on its log-odds effect itself. Divided by
  its SD, a category held by 1% of the rows has a penalty 100x weaker per unit of log-odds,
  and a product given to 92 patients without an outcome took -3.7 log-odds (and its disease
  group another -3.5): the near-separation the penalty is there to stop.
* **Missing values** are imputed with the training median of the transformed value, plus a
  missing-indicator column for every predictor that had missing values in training (its
  coefficients are unconstrained and its contribution is the predictor's); the trees still see
  the missing value itself.
* Sums are accumulated column by column, never by a matrix product, so one row gives the same
  bits alone as inside a batch (the endpoint must equal ``icans evaluate`` exactly).
"""

from __future__ import annotations

from math import comb

import numpy as np

from evaluation.logistic import fit_logistic, logit
from model.day_design import DayVaryingDesign


class LinearOffset:
    """Penalised logistic regression on the feature matrix, with per-predictor sign bounds and
    (optionally) coefficients that vary with the landmark day."""

    def __init__(
        self,
        feature_names: tuple[str, ...],
        log_features: tuple[str, ...] = (),
        increasing: tuple[str, ...] = (),
        decreasing: tuple[str, ...] = (),
        l2: float = 1.0,
        day_feature: str | None = None,
        day_degree: int = 0,
        day_smoothing: float = 0.0,
        state_feature: str | None = None,
        state_terms: tuple[str, ...] = (),
    ):
        if day_degree and day_feature not in feature_names:
            raise ValueError(f"day_feature {day_feature!r} is not among the feature names")
        if state_terms and state_feature not in feature_names:
            raise ValueError(f"state_feature {state_feature!r} is not among the feature names")
        self.feature_names = tuple(feature_names)
        self.log_features = tuple(log_features)
        self.increasing = tuple(increasing)
        self.decreasing = tuple(decreasing)
        self.l2 = l2
        self.day_feature = day_feature
        self.day_degree = day_degree
        self.day_smoothing = day_smoothing
        self.state_feature = state_feature
        self.state_terms = tuple(state_terms)

    def _state_columns(self) -> np.ndarray:
        """Predictors whose coefficient also changes with the state: those named by a
        ``state_terms`` prefix and free of a sign bound (a shift could break the sign)."""
        bounded = set(self.increasing) | set(self.decreasing)
        return np.array(
            [
                j
                for j, name in enumerate(self.feature_names)
                if name.startswith(self.state_terms) and self.state_terms and name not in bounded
            ],
            dtype=int,
        )

    def _state(self, X: np.ndarray) -> np.ndarray:
        """1.0 on rows in the state (``state_feature`` >= 1), else 0.0 (missing counts as 0)."""
        if not self.state_terms:
            return np.zeros(len(X))
        value = np.asarray(X, dtype=float)[:, self.feature_names.index(self.state_feature)]
        return (value >= 1).astype(float)  # NaN compares False

    def _transformed(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        out = X.copy()
        logged = [j for j, name in enumerate(self.feature_names) if name in self.log_features]
        out[:, logged] = np.log1p(np.clip(X[:, logged], 0, None))
        return out

    def _day_basis(self, X: np.ndarray) -> np.ndarray:
        """Bernstein basis of the landmark day, rows x (day_degree + 1); a column of ones for
        ``day_degree=0``."""
        X = np.asarray(X, dtype=float)
        if not self.day_degree:
            return np.ones((len(X), 1))
        day = X[:, self.feature_names.index(self.day_feature)]
        return day_basis(day, self.max_day_, self.day_degree)

    def _design(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Standardised values (rows x predictors) and standardised missing indicators (rows x
        predictors that had missing values in training)."""
        t = self._transformed(X)
        missing = np.isnan(t)
        t = np.where(missing, self.median_, t)
        z = (t - self.mean_) / self.scale_
        zi = (missing[:, self.indicated_] - self.ind_mean_) / self.ind_scale_
        return z, zi

    def fit(self, X, y, sample_weight=None, init: LinearOffset | None = None) -> LinearOffset:
        """Fit by projected Newton steps within the sign bounds
        (:func:`evaluation.logistic.fit_logistic`).

        ``init``: a fitted model of the same predictors whose coefficients start the search
        (bootstrap refits converge in fewer steps)."""
        X = np.asarray(X, dtype=float)
        t = self._transformed(X)
        y = np.asarray(y, dtype=float)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        total = w.sum()
        missing = np.isnan(t)
        with np.errstate(all="ignore"):
            median = np.nanmedian(np.where(missing.all(axis=0), 0.0, t), axis=0)
        self.median_ = np.nan_to_num(median)
        t = np.where(missing, self.median_, t)
        self.mean_ = (w @ t) / total
        binary = np.all((t == 0) | (t == 1), axis=0)
        self.scale_ = np.where(binary, 1.0, _scale(np.sqrt((w @ (t - self.mean_) ** 2) / total)))
        self.indicated_ = np.flatnonzero(missing.any(axis=0) & ~missing.all(axis=0))
        m = missing[:, self.indicated_].astype(float)
        self.ind_mean_ = (w @ m) / total
        self.ind_scale_ = np.ones(len(self.indicated_))  # indicators are binary too
        if self.day_degree:
            days = X[:, self.feature_names.index(self.day_feature)]
            self.max_day_ = float(np.nanmax(days)) if np.isfinite(days).any() else 0.0
        z, zi = self._design(X)
        basis = self._day_basis(X)
        n_basis = basis.shape[1]
        # Columns: for each predictor (then each indicator), its value times each basis function.
        zz = np.column_stack([z, zi])
        del z, zi
        self.state_columns_ = self._state_columns()
        state = self._state(X)[:, None]
        # In the state the terms read the value without its centring (``t / scale``): a category
        # absent from the state rows then contributes nothing there and its coefficient has no
        # data (centred, its ``-mean`` on every other row would make it a second state intercept)
        at = self.state_columns_  # predictors' columns: the same in z and zz
        after = (zz[:, at] + (self.mean_ / self.scale_)[at]) * state
        zz[:, at] *= 1.0 - state  # the day terms hold before the state only
        signs = [
            (0.0, np.inf)
            if n in self.increasing
            else (-np.inf, 0.0)
            if n in self.decreasing
            else (-np.inf, np.inf)
            for n in self.feature_names
        ] + [(-np.inf, np.inf)] * len(self.indicated_)
        bounds = (
            [(-np.inf, np.inf)]
            + [b for b in signs for _ in range(n_basis)]
            + [(-np.inf, np.inf)] * len(self.state_columns_)
        )
        low, high = (np.array(b) for b in zip(*bounds, strict=True))
        if init is not None and getattr(init, "theta_", np.empty(0)).shape == low.shape:
            start = np.clip(init.theta_, low, high)
        else:
            start = np.zeros(len(low))
            start[0] = logit((w @ y) / total)  # the log-odds of the event rate
        penalty = self._penalty(zz.shape[1], n_basis, len(self.state_columns_))
        n_terms = zz.shape[1]
        design = DayVaryingDesign(np.column_stack([np.ones(len(y)), zz, after]), n_terms, basis)
        del zz, after
        theta = fit_logistic(design, y, w, penalty=penalty, low=low, high=high, start=start)
        self.theta_ = theta
        p = len(self.feature_names)
        n_state = len(self.state_columns_)
        b = theta[1 : len(theta) - n_state].reshape(-1, n_basis)
        self.coef_, self.ind_coef_ = b[:p].copy(), b[p:].copy()
        self.state_coef_ = theta[len(theta) - n_state :].copy()
        # Centre each predictor's term on the training rows; the intercept takes the means.
        self.term_mean_ = np.zeros(p)
        self.term_mean_ = (w @ self.contributions(X)) / total
        self.intercept_ = float(theta[0] + self.term_mean_.sum())
        return self

    def _penalty(self, n_terms: int, n_basis: int, n_state: int = 0) -> np.ndarray:
        """Quadratic penalty matrix over (intercept, b_11..b_1K, b_21.., the in-state terms):
        ``l2`` on every coefficient (ridge) plus ``day_smoothing`` on the squared differences
        of neighbouring Bernstein coefficients of one term (Eilers & Marx, Stat Sci 1996), which
        pulls a term towards one coefficient for every day unless the data say otherwise. Terms
        seen on few rows, such as a missing-series indicator learned from the training copies,
        stay nearly constant over the days instead of following noise."""
        diff = np.diff(np.eye(n_basis), axis=0)
        block = self.l2 * np.eye(n_basis) + self.day_smoothing * diff.T @ diff
        size = 1 + n_terms * n_basis + n_state
        penalty = np.zeros((size, size))
        for j in range(n_terms):
            at = slice(1 + j * n_basis, 1 + (j + 1) * n_basis)
            penalty[at, at] = block
        tail = np.arange(size - n_state, size)
        penalty[tail, tail] = self.l2  # in-state coefficients shrink towards no effect
        return penalty  # the intercept (row and column 0) is not penalised

    def coefficients(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Per row, each predictor's and each indicator's coefficient at the row's landmark
        day (rows x predictors, rows x indicators); the same on every row when
        ``day_degree=0``; the in-state coefficient instead on rows in the state."""
        basis = self._day_basis(X)
        beta = basis[:, [0]] * self.coef_[:, 0]
        gamma = basis[:, [0]] * self.ind_coef_[:, 0]
        for k in range(1, basis.shape[1]):
            beta = beta + basis[:, [k]] * self.coef_[:, k]
            gamma = gamma + basis[:, [k]] * self.ind_coef_[:, k]
        if len(self.state_columns_):
            state, at = self._state(X)[:, None], self.state_columns_
            beta[:, at] = (1.0 - state) * beta[:, at] + state * self.state_coef_
        return beta, gamma

    def __setstate__(self, state: dict) -> None:
        """Models registered before the day terms existed: one coefficient per predictor
        (stored flat), no day basis, no centring term (their contributions had mean 0)."""
        state.setdefault("day_feature", None)
        state.setdefault("day_degree", 0)
        state.setdefault("day_smoothing", 0.0)
        state.setdefault("state_feature", None)  # models fitted before the state shifts
        state.setdefault("state_terms", ())
        state.setdefault("state_columns_", np.zeros(0, dtype=int))
        state.setdefault("state_coef_", np.zeros(0))
        if "coef_" in state and np.ndim(state["coef_"]) == 1:
            state["coef_"] = state["coef_"][:, None]
            state["ind_coef_"] = state["ind_coef_"][:, None]
            state.setdefault("term_mean_", np.zeros(len(state["feature_names"])))
        self.__dict__.update(state)

    def contributions(self, X) -> np.ndarray:
        """Per row and predictor, ``beta_j(L) * z_j`` plus its indicator's term (in the state,
        the uncentred value for the in-state predictors), minus the training mean of that sum
        (log-odds; each column has mean 0 over the training rows)."""
        z, zi = self._design(X)
        beta, gamma = self.coefficients(X)
        c = z * beta
        c[:, self.indicated_] += zi * gamma
        if len(self.state_columns_):  # in the state: beta * (z + mean / scale)
            at = self.state_columns_
            c[:, at] += self._state(X)[:, None] * (self.mean_ / self.scale_)[at] * beta[:, at]
        return c - self.term_mean_

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the linear part."""
        return self.total(self.contributions(X))

    def total(self, contributions: np.ndarray) -> np.ndarray:
        """Intercept + the contributions, summed column by column (the same bits for a row
        alone as inside a batch)."""
        if len(contributions) < MANY_ROWS:
            terms = np.column_stack([np.full(len(contributions), self.intercept_), contributions])
            return np.cumsum(terms, axis=1)[:, -1]  # an accumulation: left to right, row by row
        # the same additions in the same order (the same bits), a column at a time: for many
        # rows this skips the copy of the whole matrix and the strided running sum
        total = np.full(len(contributions), self.intercept_)
        for column in contributions.T:
            total += column
        return total


def day_basis(day: np.ndarray, max_day, degree: int) -> np.ndarray:
    """Bernstein basis of degree ``degree`` in ``t = log1p(day) / log1p(max_day)`` (the day
    clipped to 0..``max_day``, missing as 0; ``t = 0`` when ``max_day`` is 0), along a new last
    axis. ``max_day`` broadcasts against ``day``: one value per fit stacks several fits."""
    max_day = np.asarray(max_day, dtype=float)
    day = np.clip(np.where(np.isnan(day), 0.0, day), 0.0, max_day)
    scale = np.log1p(max_day)
    t = np.where(scale > 0, np.log1p(day) / np.where(scale > 0, scale, 1.0), 0.0)
    return np.stack(
        [comb(degree, k) * t**k * (1.0 - t) ** (degree - k) for k in range(degree + 1)], axis=-1
    )


def _scale(sd: np.ndarray) -> np.ndarray:
    """Standard deviations usable as divisors (a constant column gets 1: its z is 0)."""
    return np.where(sd > 0, sd, 1.0)


MANY_ROWS = 256
"""From this many rows :meth:`LinearOffset.total` adds column by column in a loop (fewer, it
stacks and runs ``cumsum``, whose set-up costs less than a loop for a few rows)."""
