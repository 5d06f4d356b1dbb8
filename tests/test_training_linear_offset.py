"""The additive part (``model.linear_offset``): a correct fit, its sign bounds on every landmark
day, coefficients that follow the day, and contributions that add up exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from sklearn.linear_model import LogisticRegression

from evaluation.logistic import fit_logistic
from model import day_design
from model.day_design import MAX_DAY_GROUPS, DayVaryingDesign
from model.linear_offset import LinearOffset, day_basis

NAMES = ("landmark_day", "crs_grade_today", "platelets", "noise")
DAYS = np.array([0, 1, 3, 5, 7, 10, 14], dtype=float)


def cohort(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose CRS effect grows with the day (log-odds slope 0.2 on day 0, 1.6 on day 14);
    platelets lower the risk; 'noise' does nothing."""
    rng = np.random.default_rng(seed)
    day = rng.choice(DAYS, n)
    crs = rng.integers(0, 4, n).astype(float)
    platelets = rng.normal(0, 1, n)
    noise = rng.normal(0, 1, n)
    eta = -2.5 + (0.2 + 0.1 * day) * crs - 0.5 * platelets
    y = (rng.random(n) < expit(eta)).astype(float)
    return np.column_stack([day, crs, platelets, noise]), y


def _model(degree: int, **kw) -> LinearOffset:
    return LinearOffset(
        NAMES,
        increasing=kw.pop("increasing", ("crs_grade_today",)),
        decreasing=kw.pop("decreasing", ("platelets",)),
        day_feature="landmark_day",
        day_degree=degree,
        **kw,
    )


def test_without_bounds_or_day_terms_it_is_sklearns_penalised_logistic_regression():
    X, y = cohort()
    ours = _model(0, increasing=(), decreasing=()).fit(X, y)
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(z, y)  # C = 1 / l2
    np.testing.assert_allclose(ours.coef_[:, 0], ref.coef_[0], atol=1e-5)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(z), atol=1e-5)


def test_fit_logistic_reaches_the_bounded_minimum():
    """Same problem as scipy's L-BFGS-B with the same bounds: an objective at least as low."""
    rng = np.random.default_rng(1)
    design = np.column_stack([np.ones(3000), rng.normal(size=(3000, 6))])
    y = (rng.random(3000) < expit(design @ [-1, 1, -1, 0.5, 0.5, 0, 2])).astype(float)
    w = rng.integers(1, 3, 3000).astype(float)
    penalty = np.diag(np.r_[0.0, np.ones(6)])
    low = np.r_[-np.inf, 0, 0, -np.inf, -np.inf, -np.inf, -np.inf]  # two binding lower bounds
    high = np.r_[np.inf, np.inf, np.inf, np.inf, 0, np.inf, np.inf]  # and one binding upper

    def objective(theta):
        eta = design @ theta
        value = -(w @ (y * log_expit(eta) + (1 - y) * log_expit(-eta)))
        grad = design.T @ (w * (expit(eta) - y)) + penalty @ theta
        return value + 0.5 * theta @ penalty @ theta, grad

    ours = fit_logistic(design, y, w, penalty=penalty, low=low, high=high)
    bounds = [
        (None if np.isinf(a) else a, None if np.isinf(b) else b)
        for a, b in zip(low, high, strict=True)
    ]
    ref = minimize(objective, np.zeros(7), jac=True, method="L-BFGS-B", bounds=bounds)
    assert objective(ours)[0] <= ref.fun + 1e-6
    assert ours[2] == 0.0 and ours[4] == 0.0  # the bounds bind exactly: np.clip sets the bound
    assert np.all(ours >= low) and np.all(ours <= high)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sign_bounds_hold_on_every_day_even_against_the_data(degree):
    """Labels that say 'more CRS lowers the risk' cannot make the CRS coefficient negative on
    any day, including days between and beyond the training landmarks."""
    X, y = cohort()
    flipped = X.copy()
    flipped[:, 1] = 3 - flipped[:, 1]  # now more CRS = less risk in the labels
    lin = _model(degree).fit(flipped, y)
    days = np.arange(0, 29, 0.5)
    grid = np.column_stack([days, np.zeros((len(days), 3))])
    beta, _ = lin.coefficients(grid)
    assert np.all(beta[:, 1] >= 0)
    assert np.all(beta[:, 2] <= 0)


def test_coefficients_follow_the_landmark_day():
    X, y = cohort(seed=2)
    varying, fixed = _model(2).fit(X, y), _model(0).fit(X, y)
    at = np.column_stack([DAYS, np.zeros((len(DAYS), 3))])
    crs = varying.coefficients(at)[0][:, 1] / varying.scale_[1]  # per CRS grade
    assert np.all(np.diff(crs) > 0)  # grows with the day, as generated
    assert crs[0] == pytest.approx(0.2, abs=0.15) and crs[-1] == pytest.approx(1.6, abs=0.3)
    Xt, yt = cohort(seed=3)

    def log_loss(m):
        return -np.mean(log_expit(np.where(yt == 1, 1, -1) * m.decision_function(Xt)))

    assert log_loss(varying) < log_loss(fixed)


def test_days_beyond_the_last_training_landmark_use_its_coefficients():
    X, y = cohort()
    lin = _model(2).fit(X, y)
    at = np.column_stack([[14.0, 20.0, 28.0], np.zeros((3, 3))])
    beta, _ = lin.coefficients(at)
    # exact: days 20 and 28 are clipped to 14 first, so each row is the same arithmetic
    np.testing.assert_array_equal(beta[0], beta[1])
    np.testing.assert_array_equal(beta[0], beta[2])


def test_contributions_add_up_exactly_and_average_zero_on_training_rows():
    X, y = cohort()
    X[::7, 2] = np.nan  # missing platelets: imputed, with an indicator
    w = np.random.default_rng(4).integers(1, 4, len(y)).astype(float)
    lin = _model(2).fit(X, y, w)
    c = lin.contributions(X)
    assert len(lin.indicated_) == 1
    # exact: decision_function is total(contributions), the same elementwise code and cumsum
    np.testing.assert_array_equal(lin.total(c), lin.decision_function(X))
    np.testing.assert_allclose(lin.intercept_ + c.sum(axis=1), lin.decision_function(X), atol=1e-12)
    np.testing.assert_allclose((w @ c) / w.sum(), 0.0, atol=1e-12)
    eta = lin.theta_[0] + sum(  # the fitted model itself, written out
        c_j for c_j in (lin.contributions(X) + lin.term_mean_).T
    )
    np.testing.assert_allclose(eta, lin.decision_function(X), atol=1e-12)


def test_one_row_gives_the_same_bits_as_inside_a_batch():
    X, y = cohort()
    lin = _model(2).fit(X, y)
    batch = lin.decision_function(X[:50])
    alone = np.array([lin.decision_function(X[i : i + 1])[0] for i in range(50)])
    # exact: elementwise terms summed by a cumsum, row by row (no matrix product, no BLAS)
    np.testing.assert_array_equal(alone, batch)


def test_a_warm_start_converges_to_the_same_model():
    X, y = cohort()
    w = np.random.default_rng(5).integers(0, 3, len(y)).astype(float)
    base = _model(2).fit(X, y)
    cold, warm = _model(2).fit(X, y, w), _model(2).fit(X, y, w, init=base)
    np.testing.assert_allclose(warm.decision_function(X), cold.decision_function(X), atol=1e-6)


def test_a_day_degree_needs_the_day_among_the_predictors():
    with pytest.raises(ValueError, match="day_feature"):
        LinearOffset(("a", "b"), day_feature="landmark_day", day_degree=2)


def test_a_model_pickled_before_the_day_terms_still_predicts_the_same():
    """Registered versions from before the day terms stored one flat coefficient per predictor
    and no day settings; unpickled by this code they give the same log-odds."""
    import pickle

    X, y = cohort()
    X[::9, 2] = np.nan
    lin = _model(0).fit(X, y)
    old = dict(vars(lin))
    for key in ("day_feature", "day_degree", "day_smoothing", "term_mean_", "theta_"):
        old.pop(key)
    old["coef_"], old["ind_coef_"] = lin.coef_[:, 0].copy(), lin.ind_coef_[:, 0].copy()
    stale = LinearOffset.__new__(LinearOffset)
    stale.__dict__.update(old)
    revived = pickle.loads(pickle.dumps(stale))
    np.testing.assert_allclose(revived.decision_function(X), lin.decision_function(X), atol=1e-12)


def test_a_binary_predictor_is_centred_not_scaled():
    """Gelman (2008): a rare category divided by its SD would have its penalty weakened ~100x
    per unit of log-odds. A binary column's z is its centred value; a continuous one's is
    divided by its SD."""
    rng = np.random.default_rng(3)
    rare = (rng.random(5000) < 0.01).astype(float)
    X = np.column_stack([rng.choice(DAYS, 5000), rng.normal(2, 3, 5000), rare, rare * 0])
    y = (rng.random(5000) < 0.2).astype(float)
    fitted = LinearOffset(NAMES).fit(X, y)
    z, _ = fitted._design(X)
    np.testing.assert_allclose(z[:, 2], rare - rare.mean())
    np.testing.assert_allclose(z[:, 1], (X[:, 1] - X[:, 1].mean()) / X[:, 1].std())


def test_a_category_without_outcomes_after_the_state_has_no_effect_there():
    """Category A: 3% of rows, strongly protective before the state, never seen in the state.
    Its in-state coefficient has no data and shrinks to 0; before the state it keeps its
    learned (negative) day coefficients; the other predictors are unaffected by the split."""
    rng = np.random.default_rng(4)
    n = 20_000
    day = rng.choice(DAYS, n)
    a = (rng.random(n) < 0.03).astype(float)
    state = np.where(a == 1, 0.0, (rng.random(n) < 0.3).astype(float))
    eta = -2.0 - 2.5 * a + 2.0 * state
    y = (rng.random(n) < expit(eta)).astype(float)
    names = ("landmark_day", "icans_max_grade_to_date", "car_target=A", "noise")
    X = np.column_stack([day, state, a, rng.normal(size=n)])
    kw = dict(day_feature="landmark_day", day_degree=2, increasing=("icans_max_grade_to_date",))
    split = LinearOffset(
        names, state_feature="icans_max_grade_to_date", state_terms=("car_target=",), **kw
    ).fit(X, y)
    probe = np.array([[5.0, 0.0, 1.0, 0.0], [5.0, 1.0, 1.0, 0.0]])  # A before / in the state
    beta, _ = split.coefficients(probe)
    assert beta[0, 2] < -1.5  # log-odds per unit (binary: not scaled), truth -2.5
    assert abs(beta[1, 2]) < 0.05
    # the contributions still add up to the decision function
    np.testing.assert_allclose(
        split.contributions(probe).sum(axis=1) + split.intercept_, split.decision_function(probe)
    )
    with pytest.raises(ValueError, match="state_feature"):
        LinearOffset(names, state_feature="absent", state_terms=("car_target=",))


@pytest.mark.parametrize("spread_days", [False, True])
def test_the_factored_design_gives_the_products_of_the_built_out_matrix(spread_days):
    """The additive part's design from its factors (``model.day_design``): its log-odds,
    gradient and Hessian against the products of the full matrix built by hand here (an
    intercept, each term times each day-basis function, and state columns that are zero on
    most rows). Landmark days with one row of an unusual day (the Hessian summed day by day),
    or a different day on every row (more than MAX_DAY_GROUPS: summed over row chunks, two of
    them here)."""
    rng = np.random.default_rng(0)
    n, n_terms, n_after = 400, 6, 2
    z = rng.normal(size=(n, n_terms))
    after = rng.normal(size=(n, n_after)) * (rng.random((n, 1)) < 0.3)
    if spread_days:
        day = np.linspace(0.0, 14.0, n)
        assert len(np.unique(day)) > MAX_DAY_GROUPS
    else:
        day = rng.choice([0.0, 1, 3, 5, 7, 10, 14], n)
        day[0] = 22.0
    basis = day_basis(day, 14.0, 2)
    full = np.column_stack([np.ones(n), (z[:, :, None] * basis[:, None, :]).reshape(n, -1), after])
    chunk = day_design.CHUNK_ROWS
    day_design.CHUNK_ROWS = 256  # two chunks of 400 rows
    try:
        design = DayVaryingDesign(np.column_stack([np.ones(n), z, after]), n_terms, basis)
        assert design.shape == full.shape
        theta = rng.normal(size=(2, full.shape[1]))
        v = rng.normal(size=(2, n))
        c = rng.random(n)
        # sums of the same products in another order: equal to rounding
        np.testing.assert_allclose(design.dot(theta), theta @ full.T, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(design.tdot(v), v @ full, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            design.gram(c), (full * c[:, None]).T @ full, rtol=1e-12, atol=1e-12
        )
    finally:
        day_design.CHUNK_ROWS = chunk


def test_a_factored_design_fits_as_its_built_out_matrix():
    """``fit_logistic`` on the factored design reaches the coefficients it reaches on the
    built-out matrix (bounds and a penalty included)."""
    rng = np.random.default_rng(3)
    n, n_terms = 3000, 4
    z = rng.normal(size=(n, n_terms))
    basis = day_basis(rng.choice([0.0, 1, 3, 7, 14], n), 14.0, 2)
    full = np.column_stack([np.ones(n), (z[:, :, None] * basis[:, None, :]).reshape(n, -1)])
    y = (rng.random(n) < expit(-1 + z[:, 0] - 0.5 * z[:, 1])).astype(float)
    k = full.shape[1]
    low = np.r_[-np.inf, np.zeros(3), np.full(k - 4, -np.inf)]  # the first term >= 0
    low[4:7] = -np.inf
    high = np.r_[np.full(4, np.inf), np.zeros(3), np.full(k - 7, np.inf)]  # the second <= 0
    penalty = np.diag(np.r_[0.0, np.ones(k - 1)])
    built = fit_logistic(full, y, penalty=penalty, low=low, high=high, tol=1e-10)
    design = DayVaryingDesign(np.column_stack([np.ones(n), z]), n_terms, basis)
    factored = fit_logistic(design, y, penalty=penalty, low=low, high=high, tol=1e-10)
    np.testing.assert_allclose(factored, built, atol=1e-7)
