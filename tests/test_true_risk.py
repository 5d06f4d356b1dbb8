"""The true risk is exact, uses nothing after the landmark, and agrees with simulation."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from data.synthetic.parameters import GeneratorParameters, iter_parameters
from data.synthetic.process import DEX_NONE, drive_grid, finding_tables
from data.synthetic.simulate import continue_icans
from data.synthetic.true_risk import ForwardFilter, backward_table

PARAMS = GeneratorParameters()


def _filter_at(block, landmark: int) -> ForwardFilter:
    filt = ForwardFilter(block.baseline, block.course, _grid(), PARAMS)
    while filt.day < landmark:
        filt.step()
    return filt


def _grid():
    from data.synthetic.process import latent_grid

    return latent_grid(PARAMS)


def _event_free(block, landmark: int) -> np.ndarray:
    day = block.outcomes["event_day"].fillna(-1).to_numpy()
    return (day < 0) | (day > landmark)


@pytest.mark.parametrize("landmark", [0, 3, 7])
def test_exact_risk_matches_monte_carlo_continuation(real_world, landmark):
    """Draw (hidden class, latent level) from the exact posterior at the landmark, simulate the
    rest of the course with the generator's own step function and count events: the estimate
    must agree with the closed form within 4 Monte-Carlo SEs for a low-, mid- and high-risk
    patient. This checks the backward table against the simulator independently of the filter.
    """
    block = real_world.blocks[0]
    filt = _filter_at(block, landmark)
    exact = filt.risk(backward_table(PARAMS))
    candidates = np.flatnonzero(_event_free(block, landmark))
    order = candidates[np.argsort(exact[candidates])]
    rng = np.random.default_rng(landmark)
    tables = finding_tables(PARAMS)
    n_sim = 20_000
    for i in (order[len(order) // 10], order[len(order) // 2], order[-1]):
        post = filt.alpha[i].ravel()
        draw = rng.choice(post.size, size=n_sim, p=post / post.sum())
        cls, level = np.divmod(draw, filt.alpha.shape[2])
        dex = np.full(n_sim, block.course.dex_state[i, landmark])
        event = continue_icans(
            rng,
            level,
            dex,
            landmark,
            filt.drive[i, cls],
            np.full(n_sim, filt.fam[i]),
            np.full(n_sim, block.course.child[i]),
            tables,
            PARAMS,
        )
        se = max(np.sqrt(exact[i] * (1 - exact[i]) / n_sim), 1e-4)
        assert abs(event.mean() - exact[i]) <= 4 * se, (i, event.mean(), exact[i])


def test_true_risk_uses_nothing_after_the_landmark(real_world):
    """Scrambling every observation dated after day L leaves the true risk at L unchanged."""
    landmark = 5
    block = real_world.blocks[0]
    before = _filter_at(block, landmark).risk(backward_table(PARAMS))
    scrambled = copy.copy(block)
    course = dataclasses.replace(block.course)
    rng = np.random.default_rng(0)
    later = slice(landmark + 1, None)
    for name in ("crs_state", "icans_grade", "cognition", "dex_state"):
        arr = getattr(course, name).copy()
        arr[:, later] = rng.permutation(arr[:, later], axis=0)
        setattr(course, name, arr)
    sampled_later = np.array(course.sampling_days) > landmark
    for name in ("cd4_measured", "cd8_measured"):
        arr = getattr(course, name).copy()
        arr[:, sampled_later] = rng.lognormal(3, 2, (len(arr), sampled_later.sum()))
        setattr(course, name, arr)
    scrambled.course = course
    after = _filter_at(scrambled, landmark).risk(backward_table(PARAMS))
    np.testing.assert_array_equal(before, after)


def test_true_risk_rows_only_while_event_free(real_world):
    tr = real_world.tables["true_risk"].merge(real_world.tables["outcomes"], on="patient_id")
    assert (tr["event_day"].isna() | (tr["event_day"] > tr["landmark_day"])).all()
    assert tr["true_risk"].between(0, 1).all()


def test_backward_table_is_a_probability_and_falls_with_the_drive():
    table = backward_table(PARAMS)  # P(no event after day t)
    assert np.all((table >= 0) & (table <= 1 + 1e-12))
    assert np.allclose(table[..., PARAMS.horizon_days, :, :], 1.0)
    # More drive never makes an event-free course more likely (level 0, no steroids, day 0).
    no_event = table[:, :, :, 0, 0, DEX_NONE]
    assert np.all(np.diff(no_event, axis=-1) <= 1e-12)
    assert table.shape[2] == len(drive_grid(PARAMS))


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
