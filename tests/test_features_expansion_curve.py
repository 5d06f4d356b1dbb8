"""The per-patient fit of the expansion curve (``features.expansion_curve``): the product's
shape learned without labels, each row's peak from its own samples up to day L, nothing after
it, and missing while a curve cannot be fitted."""

from __future__ import annotations

import numpy as np
import pytest

from features.expansion_curve import ExpansionCurve
from features.layout import COLUMN_INDEX, RAW_COLUMNS, SERIES_SLICE
from features.transformers import ObservationWindow

SAMPLE_DAYS = (0, 3, 7, 10, 14, 21)
SHAPE = 2.5  # gamma-variate exponent a of log c(t) = m + a log t - (a / peak) t


def rows(peaks, landmark, levels=None, cd8_offset=0.7, window=True) -> np.ndarray:
    """Raw rows of one product (CLL1, 4-1BB) with noise-free CD4+ and CD8+ curves peaking on
    ``peaks``; the CD8+ curve has the same shape at another level; day 0 is the pre-infusion
    zero."""
    peaks = np.asarray(peaks, dtype=float)
    levels = np.zeros(len(peaks)) if levels is None else np.asarray(levels, dtype=float)
    raw = np.full((len(peaks), len(RAW_COLUMNS)), np.nan)
    raw[:, COLUMN_INDEX["day_since_infusion"]] = landmark
    raw[:, COLUMN_INDEX["car_target"]] = 3
    raw[:, COLUMN_INDEX["costimulatory_domain"]] = 1
    for day in SAMPLE_DAYS:
        log_c = levels + SHAPE * np.log(max(day, 1e-9)) - SHAPE / peaks * day
        for name, offset in (("cd4_cells_per_ul", 0.0), ("cd8_cells_per_ul", cd8_offset)):
            raw[:, SERIES_SLICE[name].start + day] = 0.0 if day == 0 else np.exp(log_c + offset)
    return ObservationWindow().fit(raw).transform(raw) if window else raw


@pytest.fixture(scope="module")
def training():
    """Peaks on days 8, 10, 12 and 16 at several levels, read on days 10 and 14."""
    peaks = np.repeat([8.0, 10.0, 12.0, 16.0], 30)
    levels = np.tile(np.linspace(-1, 2, 30), 4)
    raw = np.vstack([rows(peaks, 10, levels), rows(peaks, 14, levels)])
    return ExpansionCurve().fit(raw), peaks


def expected(peak: float, peaks: np.ndarray) -> float:
    """The first-order peak shift, from the curves' truth: a = SHAPE, the product's usual k0
    the mean of a / peak over the training rows, k = a / peak."""
    k0 = np.mean(SHAPE / peaks)
    usual = SHAPE / k0
    return usual * (1 - (SHAPE / peak) / k0)


def test_the_product_shape_is_learned_whatever_the_levels(training):
    model, peaks = training
    ((a, k0),) = model.shapes_
    assert a == pytest.approx(SHAPE, rel=1e-6)
    assert k0 == pytest.approx(np.mean(SHAPE / peaks), rel=1e-6)


@pytest.mark.parametrize("peak", [7.0, 10.0, 14.0])
@pytest.mark.parametrize("landmark", [7, 10])
def test_each_row_reads_its_own_peak(training, peak, landmark):
    model, peaks = training
    out = model.transform(rows([peak], landmark, levels=[1.3]))[0]
    # noise-free training curves: no residual noise, so the row's own samples carry it all
    assert out[0] == pytest.approx(expected(peak, peaks), abs=1e-6)
    assert out[1] == pytest.approx(out[0] + SHAPE / np.mean(SHAPE / peaks) - landmark, abs=1e-9)
    assert np.sign(out[0]) == np.sign(peak - SHAPE / np.mean(SHAPE / peaks))


def test_samples_after_the_landmark_are_not_read(training):
    """The day-14 and day-21 samples of a late curve would say more; read at day 10 they are
    masked by the observation window and change nothing."""
    model, _ = training
    late = rows([16.0], 10, window=False)
    altered = late.copy()
    for name in ("cd4_cells_per_ul", "cd8_cells_per_ul"):
        altered[:, SERIES_SLICE[name].start + 14] = 1e6
    window = ObservationWindow().fit(late)
    # exact: masked, both rows are the same numbers through the same per-row transform
    np.testing.assert_array_equal(
        model.transform(window.transform(late)), model.transform(window.transform(altered))
    )
    assert not np.array_equal(model.transform(late), model.transform(altered))  # unmasked


def test_missing_until_a_series_has_two_positive_samples(training):
    model, _ = training
    assert np.isnan(model.transform(rows([10.0], 5))).all()  # samples on days 0 (zero) and 3
    one_series = rows([10.0], 7)
    one_series[:, SERIES_SLICE["cd8_cells_per_ul"]] = np.nan
    assert not np.isnan(model.transform(one_series)).any()


def test_noise_is_shrunk_towards_the_product(training):
    """With noisy training curves the empirical-Bayes weight is positive: a row's estimate lies
    between its own least-squares peak and the product's usual one."""
    rng = np.random.default_rng(0)
    peaks = rng.choice([8.0, 10.0, 12.0, 16.0], 400)
    raw = rows(peaks, 14, rng.normal(0, 1, 400))
    for name in ("cd4_cells_per_ul", "cd8_cells_per_ul"):
        block = raw[:, SERIES_SLICE[name]]
        raw[:, SERIES_SLICE[name]] = np.where(
            block > 0, block * np.exp(rng.normal(0, 0.3, block.shape)), block
        )
    model = ExpansionCurve().fit(raw)
    assert 0 < model.prior_weight_ < 1e3
    unshrunk = ExpansionCurve().fit(raw)
    unshrunk.prior_weight_ = 0.0
    probe = rows([16.0], 10)
    assert 0 < model.transform(probe)[0, 0] < unshrunk.transform(probe)[0, 0]


def _reference_centred_sums(raw: np.ndarray) -> dict[str, np.ndarray]:
    """The form _centred_sums had before the series were stacked: one series at a time."""
    from features.layout import N_DAYS, series

    out = {key: np.zeros(len(raw)) for key in ("ll", "lt", "tt", "yl", "yt", "yy", "n")}
    t = np.arange(N_DAYS, dtype=float)[1:]
    logt = np.log(t)
    for name in ("cd4_cells_per_ul", "cd8_cells_per_ul"):
        block = series(raw, name)[:, 1:]
        ok = block > 0
        count = ok.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(ok, np.log(np.where(ok, block, 1.0)), 0.0)
        w = ok.astype(float)
        safe = np.maximum(count, 1)
        columns = {"y": y, "l": w * logt, "t": w * t}
        means = {key: v.sum(axis=1) / safe for key, v in columns.items()}
        centred = {key: w * (v - means[key][:, None]) for key, v in columns.items()}
        usable = count >= 2
        for key in ("ll", "lt", "tt", "yl", "yt", "yy"):
            a, b = key
            out[key] += np.where(usable, (centred[a] * centred[b]).sum(axis=1), 0.0)
        out["n"] += usable
    return out


def test_the_stacked_sums_are_the_sums_series_by_series():
    """_centred_sums computes both series at once: bit for bit the sums of the series one at a
    time (the form it replaced), in a batch and row by row, on random counts (zeros, gaps,
    one sample, none)."""
    from features.expansion_curve import _centred_sums

    rng = np.random.default_rng(4)
    raw = np.full((300, len(RAW_COLUMNS)), np.nan)
    for name in ("cd4_cells_per_ul", "cd8_cells_per_ul"):
        block = rng.lognormal(3, 2, size=(300, 29))
        block[rng.random(block.shape) < rng.uniform(0.5, 1.0, size=(300, 1))] = np.nan
        block[rng.random(block.shape) < 0.05] = 0.0
        raw[:, SERIES_SLICE[name]] = block
    reference = _reference_centred_sums(raw)
    ours = _centred_sums(raw)
    for key, value in reference.items():
        np.testing.assert_array_equal(ours[key].view(np.int64), value.view(np.int64))
    for i in range(0, 300, 7):
        alone = _centred_sums(raw[i : i + 1])
        for key, value in reference.items():
            assert alone[key].view(np.int64)[0] == value.view(np.int64)[i]
    assert {0.0, 1.0, 2.0} <= set(reference["n"].tolist())
