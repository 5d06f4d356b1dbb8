"""The true risk is exact, uses nothing after the landmark, and agrees with simulation."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from scipy.special import expit

from data.synthetic.backward import _BackwardStep, backward_table
from data.synthetic.filter_step import filter_day
from data.synthetic.kinetics import latent_grid, per_product
from data.synthetic.parameters import CASE_MIXES, GeneratorParameters, iter_parameters
from data.synthetic.process import (
    crs_transition_probs,
    drive_grid,
    finding_tables,
    icans_kernel,
    kernel_tables,
)
from data.synthetic.simulate import continue_icans
from data.synthetic.treatment import DONE, N_STEROID_STATES, NONE, ON_STEROIDS, refractory_today
from data.synthetic.true_risk import ForwardFilter
from icans.steroids import refractory_day, steroid_start_day

PARAMS = GeneratorParameters()
GRID = latent_grid(PARAMS)
START = CASE_MIXES["real-world"].steroid_start_grade  # patients without prophylaxis


def _filter_at(block, landmark: int) -> ForwardFilter:
    filt = ForwardFilter(block.baseline, block.course, GRID, PARAMS)
    while filt.day < landmark:
        filt.step()
    return filt


def _event_free_alive(block, landmark: int) -> np.ndarray:
    day = block.outcomes["event_day"].fillna(-1).to_numpy()
    return ((day < 0) | (day > landmark)) & block.course.alive[:, landmark]


@pytest.mark.parametrize("landmark", [0, 3, 7])
def test_exact_risk_matches_monte_carlo_continuation(real_world, landmark):
    """Draw (hidden class, latent level) from the exact posterior at the landmark, simulate the
    rest of the course with the generator's own step function (treatment and competing deaths
    included) and count events by day 28, within 72 hours and within 7 days: each estimate
    must agree with its closed form within 4 Monte-Carlo SEs for a low-, mid- and high-risk
    patient. This checks the backward tables (one per horizon) against the simulator
    independently of the filter."""
    block = real_world.blocks[0]
    filt = _filter_at(block, landmark)
    exact = filt.risk()
    windows = {days: filt.risk(days) for days in (3, 7)}
    candidates = np.flatnonzero(_event_free_alive(block, landmark))
    order = candidates[np.argsort(exact[candidates])]
    rng = np.random.default_rng(landmark)
    findings, kernels = finding_tables(PARAMS), kernel_tables(PARAMS, GRID.shifts)
    n_sim = 20_000
    for i in (order[len(order) // 10], order[len(order) // 2], order[-1]):
        post = filt.alpha[i].ravel()
        draw = rng.choice(post.size, size=n_sim, p=post / post.sum())
        cls, level = np.divmod(draw, filt.alpha.shape[2])
        event_day = continue_icans(
            rng,
            level,
            np.full(n_sim, block.course.steroid_state[i, landmark]),
            landmark,
            filt.drive[i, cls],
            np.full(n_sim, filt.fam[i]),
            filt.class_k[cls],
            np.full(n_sim, block.course.child[i]),
            findings,
            kernels,
            block.baseline.steroid_start_grade[i],
            PARAMS,
        )
        for days, risk in ((None, exact), *windows.items()):
            end = 28 if days is None else min(landmark + days, 28)
            share = np.mean(event_day <= end)  # NaN (no event) compares False
            se = max(np.sqrt(risk[i] * (1 - risk[i]) / n_sim), 1e-4)
            assert abs(share - risk[i]) <= 4 * se, (i, days, share, risk[i])
        # the windows are nested: shorter ones never more likely
        assert windows[3][i] <= windows[7][i] + 1e-6 and windows[7][i] <= exact[i] + 1e-6


def test_true_risk_uses_nothing_after_the_landmark(real_world):
    """Scrambling every observation dated after day L leaves the true risk at L unchanged."""
    landmark = 5
    block = real_world.blocks[0]
    before = _filter_at(block, landmark).risk()
    scrambled = copy.copy(block)
    course = dataclasses.replace(block.course)
    rng = np.random.default_rng(0)
    later = slice(landmark + 1, None)
    for name in (
        "crs_state",
        "icans_grade",
        "cognition",
        "steroid_state",
        "steroid_mg",
        "tocilizumab",
    ):
        arr = getattr(course, name).copy()
        arr[:, later] = rng.permutation(arr[:, later], axis=0)
        setattr(course, name, arr)
    course.labs = {
        lab: np.where(
            np.arange(values.shape[1]) > landmark,
            rng.permutation(values, axis=0),
            values,
        )
        for lab, values in block.course.labs.items()
    }
    course.temperature_max_c = course.temperature_max_c.copy()
    shape = course.temperature_max_c[:, later].shape
    course.temperature_max_c[:, later] = rng.uniform(36, 41, shape)
    sampled_later = np.array(course.sampling_days) > landmark
    for name in ("cd4_measured", "cd8_measured"):
        arr = getattr(course, name).copy()
        arr[:, sampled_later] = rng.lognormal(3, 2, (len(arr), sampled_later.sum()))
        setattr(course, name, arr)
    scrambled.course = course
    after = _filter_at(scrambled, landmark).risk()
    # exact: the filter (compiled loops in a fixed order, no BLAS) reads the same numbers up
    # to day L both times, in this process
    np.testing.assert_array_equal(before, after)


def test_true_risk_rows_only_while_alive_and_event_free(real_world):
    tr = real_world.tables["true_risk"].merge(real_world.tables["outcomes"], on="patient_id")
    assert (tr["event_day"].isna() | (tr["event_day"] > tr["landmark_day"])).all()
    assert (tr["death_day"].isna() | (tr["death_day"] > tr["landmark_day"])).all()
    assert tr["true_risk"].between(0, 1).all()


def test_backward_table_is_a_probability_and_falls_with_the_drive():
    table = backward_table(PARAMS, GRID, START)  # P(no event after day t)
    assert np.all((table >= 0) & (table <= 1 + 1e-6))
    assert table.shape[3] == len(drive_grid(PARAMS))
    # More drive never makes an event-free course more likely (level 0, no steroids, day 0).
    no_event = table[:, :, :, :, 0, 0, NONE]
    assert np.all(np.diff(no_event, axis=-1) <= 1e-6)


@pytest.mark.parametrize("landmark", [0, 5, 14])
def test_a_window_table_holds_each_landmarks_own_short_pass(landmark):
    """The window tables run their landmarks' passes side by side, day by day; each landmark's
    block must be what its pass gives run alone, from 1 on its last day (landmark + window)
    down to landmark + 1, bit for bit (ICE, as stored: float32, steroid state last)."""
    window = 3
    table = backward_table(PARAMS, GRID, START, window)
    step = _BackwardStep(PARAMS, GRID, START, 0)
    beta = np.ones(step.shape)
    for day in range(landmark + window, landmark, -1):
        beta = step(beta, day)
    alone = np.moveaxis(beta, 0, -1).astype(np.float32)
    assert np.array_equal(table[:, 0, :, :, landmark], alone)


def test_compiled_filter_step_evaluates_the_process_kernels():
    """One compiled day equals the numpy kernels of the process module for random states."""
    rng = np.random.default_rng(3)
    n, c = 40, GRID.n_classes
    kernels = kernel_tables(PARAMS, GRID.shifts)
    fam = rng.integers(0, 7, n)
    drive = np.round(rng.uniform(-8, 3, (n, c)) / 0.05) * 0.05
    intensity = rng.normal(0, 1.5, (n, c))
    alpha = rng.random((n, c, 5))
    alpha /= alpha.sum(axis=(1, 2), keepdims=True)
    lik = rng.random((n, 5))
    crs_prev = rng.integers(0, 6, n)
    # possible transitions: stay, or one grade up from pre-onset or grades 1-3
    crs_cur = np.where((crs_prev <= 3) & (rng.random(n) < 0.5), crs_prev + 1, crs_prev)
    toci = rng.random(n) < 0.5
    steroids = rng.random(n) < 0.5
    day = 6
    k = GRID.class_k()
    ic = PARAMS.icans
    class_r = np.indices(GRID.shape)[1].ravel()
    by_level = rng.random((n, GRID.shape[1], 5))
    by_class = rng.random((n, c))
    compiled = alpha.copy()
    filter_day(
        compiled,
        lik,
        np.ones(n, bool),
        crs_prev,
        crs_cur,
        toci,
        steroids,
        fam,
        k,
        day,
        drive + ic.onset_offset,
        expit(drive + ic.entry_severity_offset),
        np.exp(drive),
        np.exp(-ic.drive_weight_on_recovery * drive),
        per_product(PARAMS.crs.onset_logit)[fam][:, None] + intensity,
        np.exp(intensity),
        np.exp(-0.5 * intensity),
        ic.entry_severe_share,
        kernels.icans_timing,
        kernels.icans_progress,
        kernels.icans_recover,
        kernels.crs_timing,
        kernels.crs_escalate,
        kernels.crs_improve,
        by_level,
        by_class,
        class_r,
    )
    kernel = icans_kernel(drive, day, fam[:, None], k[None, :], steroids[:, None], kernels, PARAMS)
    crs = crs_transition_probs(
        crs_prev[:, None], day, fam[:, None], k[None, :], intensity, toci[:, None], kernels, PARAMS
    )
    expected = np.einsum("ncs,ncst->nct", alpha, kernel) * lik[:, None, :]
    expected *= crs[np.arange(n), :, crs_cur][..., None]
    expected *= by_level[:, class_r, :] * by_class[..., None]
    expected /= expected.sum(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(compiled, expected, rtol=1e-10, atol=1e-14)


def test_generator_event_rule_is_the_contract_refractoriness_rule(real_world):
    """The steroid state machine the true risk is built on calls the same days refractory as
    icans.steroids on the generated grades, doses and second-line therapy (for starts at grade
    1-2), both by persistence and by escalation."""
    escalations = 0
    for block in real_world.blocks:
        c = block.course
        grade = np.where(c.alive, c.icans_grade, np.nan)
        mg = np.where(c.alive, c.steroid_mg, np.nan)
        second_line = np.where(c.alive, c.anakinra + c.intrathecal, np.nan)
        by_rule = refractory_day(grade, mg, second_line)
        days = np.arange(1, grade.shape[1])
        machine = (
            refractory_today(
                c.steroid_state[:, days - 1], c.icans_grade[:, days], second_line[:, days] > 0
            )
            & (c.alive[:, days])
        )
        persistence = refractory_day(grade, mg)
        escalations += int((np.isfinite(by_rule) & ~(by_rule >= persistence)).sum())
        first = np.where(machine.any(axis=1), days[machine.argmax(axis=1)], np.nan)
        start = steroid_start_day(grade, mg)
        rows = np.flatnonzero(~np.isnan(start))
        start_grade = grade[rows, start[rows].astype(int)]
        keep = rows[start_grade <= 2]  # a severe start has had the event already
        np.testing.assert_array_equal(by_rule[keep], first[keep])  # whole days: exact
        assert np.isfinite(by_rule).sum() > 100
    assert escalations > 0  # some are refractory by escalation before the 72-h reading


def test_every_parameter_has_a_source():
    rows = iter_parameters()
    assert len(rows) > 60
    missing = [name for name, _, source in rows if not source.strip()]
    assert not missing, missing


def test_parameter_fingerprint_changes_with_any_value():
    changed = dataclasses.replace(
        PARAMS, icans=dataclasses.replace(PARAMS.icans, flu_cy=PARAMS.icans.flu_cy + 0.01)
    )
    assert changed.fingerprint() != PARAMS.fingerprint()
    assert GeneratorParameters().fingerprint() == PARAMS.fingerprint()


def test_on_steroid_states_are_the_treated_ones():
    assert not ON_STEROIDS[NONE]
    assert not ON_STEROIDS[DONE]
    assert ON_STEROIDS.sum() == N_STEROID_STATES - 2


@pytest.mark.parametrize("inputs", ["all", "routine"])
def test_lab_emissions_give_a_calibrated_posterior(inputs):
    """The daily labs enter the filter as emissions: if their likelihood is the one the
    generator draws from, the posterior over the hidden inflammation class is calibrated.
    Among patients to whom the filter gives P(r in the two highest classes) in a bin, the
    share truly in those classes matches the bin's mean probability (within 4 binomial SEs).
    A wrong lab mean, noise or lag in either place would make the posterior over- or
    under-confident."""
    from data.synthetic.chunk import generate_block

    block = generate_block(5, 0, 6_000, CASE_MIXES["myeloid-centre"], PARAMS, False)
    filt = ForwardFilter(block.baseline, block.course, GRID, PARAMS, inputs)
    while filt.day < 7:
        filt.step()
    r_index = np.indices(GRID.shape)[1].ravel()
    top = r_index >= GRID.shape[1] - 2
    p_top = filt.alpha[:, top, :].sum(axis=(1, 2))
    truth = r_index[block.baseline.latent_class] >= GRID.shape[1] - 2
    alive = block.course.alive[:, 7]
    bins = np.digitize(p_top, [0.1, 0.3, 0.5, 0.7, 0.9])
    checked = 0
    for b in range(6):
        rows = alive & (bins == b)
        if rows.sum() < 100:
            continue
        expected = p_top[rows].mean()
        se = np.sqrt(expected * (1 - expected) / rows.sum())
        assert abs(truth[rows].mean() - expected) <= 4 * max(se, 0.005), (b, rows.sum())
        checked += 1
    assert checked >= 3  # the labs separate the classes: the posterior is spread out
