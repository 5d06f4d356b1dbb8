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
have shown, given everything else. Copies keep their patient's id, so grouped splits keep them
on the patient's side. Held-out evaluation uses the original rows only.
"""

from __future__ import annotations

import numpy as np

from features.landmarks import LandmarkDataset
from features.layout import SERIES_SLICE

# Series that go missing together in practice: CAR-T counts come from one flow cytometry assay.
MISSING_GROUPS: tuple[tuple[str, ...], ...] = (
    ("crs_grade",),
    ("icans_grade",),
    ("cd4_cells_per_ul", "cd8_cells_per_ul"),
)


def with_missing_series(ds: LandmarkDataset, fraction: float, seed: int) -> LandmarkDataset:
    """``ds`` plus, for each group of :data:`MISSING_GROUPS`, a copy of a random ``fraction``
    of its rows with that group's series set to missing (labels and ids unchanged)."""
    if fraction <= 0:
        return ds
    rng = np.random.default_rng([seed, 2])
    n = len(ds)
    parts, picks = [ds.raw], [np.arange(n)]
    for group in MISSING_GROUPS:
        rows = np.sort(rng.choice(n, size=max(1, round(fraction * n)), replace=False))
        copy = ds.raw[rows].copy()
        for name in group:
            copy[:, SERIES_SLICE[name]] = np.nan
        parts.append(copy)
        picks.append(rows)
    index = np.concatenate(picks)
    return LandmarkDataset(
        np.vstack(parts),
        ds.label[index],
        ds.patient_id[index],
        ds.landmark_day[index],
        ds.true_risk[index],
        ds.subgroups.iloc[index].reset_index(drop=True),
    )
