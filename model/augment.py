"""Training rows with a whole course series left out, so the model knows what to do without it.

A clinical app may send a patient without a course series: CAR-T kinetics (CD4+/CD8+ counts) are
measured at few centres, and a CRS or ICANS grade list may simply not be integrated. In the
synthetic cohort every series is recorded (only single CAR-T samples go missing), so a tree
model trained on it has never seen, say, "ICANS grade today: not given" after day 0. XGBoost then
sends the missing value down the default branch it picked without any missing data to learn from,
and the explanation shows an arbitrary contribution for it (+0.74 log-odds was seen).

Copies of a random share of the training rows, each with one group of series blanked, let
xgboost's sparsity-aware split finding (Chen & Guestrin, KDD 2016) learn the direction of a
missing series from data: the estimate for such a request averages over what the series might
have shown, given everything else. The copies belong to the model's fit
(:class:`model.risk_model.RiskModel`), keep their patient (grouped folds and bootstrap keep them
on the patient's side) and never reach an evaluation.
"""

from __future__ import annotations

import numpy as np

from features.layout import SERIES_SLICE

# Series that go missing together in practice: CAR-T counts come from one flow cytometry assay;
# corticosteroid and tocilizumab doses from one medication administration record. Append only:
# the random rows of the groups before stay the same.
MISSING_GROUPS: tuple[tuple[str, ...], ...] = (
    ("crs_grade",),
    ("icans_grade",),
    ("cd4_cells_per_ul", "cd8_cells_per_ul"),
    ("dexamethasone_mg", "tocilizumab_doses"),
)


def with_missing_series(
    raw: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``raw`` plus, for each group of :data:`MISSING_GROUPS`, a copy of a random ``fraction``
    of its rows with that group's series set to missing.

    Returns the rows and, for each of them, the index of the row it copies (the originals
    first, in order), so labels and patients follow: ``y[index]``, ``groups[index]``.
    """
    n = len(raw)
    if fraction <= 0:
        return raw, np.arange(n)
    rng = np.random.default_rng([seed, 2])
    parts, picks = [raw], [np.arange(n)]
    for group in MISSING_GROUPS:
        rows = np.sort(rng.choice(n, size=max(1, round(fraction * n)), replace=False))
        copy = raw[rows].copy()
        for name in group:
            copy[:, SERIES_SLICE[name]] = np.nan
        parts.append(copy)
        picks.append(rows)
    return np.vstack(parts), np.concatenate(picks)
