"""What is compared for drift: the clinician's inputs, then the predictors derived from them.

The prediction log and the reference hold the model's feature row (``predictor.<name>``: a
category as its 0/1 indicators). Drift is easier to act on per input the clinician entered,
so, with the mapping of :mod:`features.inputs`:

* the indicators of a category are re-assembled into one categorical column named by its field
  (``car_target``: ``CD19``, ``BCMA`` ...; all indicators 0, a category the model never saw in
  training: :data:`UNSEEN`); the disease is logged by its group, so the column is
  ``disease_group``;
* a predictor computed from one baseline field alone is that field's column, named by the field
  (``age_years``, the labs, ``dose_cells_per_kg`` on the log10 scale the model reads,
  ``day_since_infusion`` from the landmark day);
* every other predictor (m-EASIX, CRS and ICANS grades so far, CAR-T kinetics, treatment) is a
  derived column under its predictor name: the course series the clinician enters only reach
  the model through these.

The window predictor of a model of several horizons (``horizon_days``, :mod:`model.risk_model`)
is not monitored: on the logged day-28 row it is 28 minus the landmark day, the day already
monitored as ``day_since_infusion``.

A column is categorical when it is a re-assembled category or takes at most
:data:`MAX_LEVELS` distinct values in the reference (a yes/no input, a grade); otherwise
numerical. The drift tests are chosen from that type (:mod:`monitoring.drift`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import display
from features.inputs import input_fields
from icans.contract import FIELDS
from model.boosting import HORIZON_FEATURE

PREDICTOR = "predictor."
UNSEEN = "(not a training category)"
INPUT, DERIVED = "input", "derived"
MAX_LEVELS = 5  # as Evidently's own choice: a number with this few values is tested as a category
_RENAMED = {"landmark_day": "day_since_infusion", "log10_dose_cells_per_kg": "dose_cells_per_kg"}


@dataclass(frozen=True)
class Column:
    """One monitored column, and the predictors it is read from."""

    name: str  # a contract field (an input) or a predictor name (derived)
    label: str  # what a clinician calls it
    kind: str  # INPUT or DERIVED
    predictors: tuple[str, ...]
    categorical: bool
    baseline: bool  # from inputs known before infusion: the same on every row of a patient

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories of a re-assembled category column (its indicators' values)."""
        return tuple(p.split("=", 1)[1] for p in self.predictors if "=" in p)


def monitored_columns(predictors: list[str], reference: pd.DataFrame) -> list[Column]:
    """The columns compared for a model with these predictors (inputs first, then derived),
    typed from its reference rows (``predictor.<name>`` columns)."""
    categories: dict[str, list[str]] = {}
    inputs, derived = [], []
    for name in predictors:
        if name == HORIZON_FEATURE:  # 28 - the landmark day on the day-28 row: the day again
            continue
        if "=" in name:
            categories.setdefault(name.split("=", 1)[0], []).append(name)
            continue
        fields = input_fields(name)
        field = fields[0]
        levels = _discrete(reference.get(PREDICTOR + name))
        before = all(_baseline(f) for f in fields)
        if len(fields) == 1 and (before or field == "day_since_infusion"):
            column = _RENAMED.get(name, field)
            # the field as entered, or a yes/no of it (flu/cy lymphodepletion)
            label = FIELDS[column].label if column in (name, *_RENAMED.values()) else None
            label = label or display.label(name)
            if name == "log10_dose_cells_per_kg":
                label += " (log10)"
            inputs.append(Column(column, label, INPUT, (name,), levels, before))
        else:
            derived.append(Column(name, display.label(name), DERIVED, (name,), levels, before))
    grouped = [
        Column(field, _category_label(field), INPUT, tuple(names), True, True)
        for field, names in categories.items()
    ]
    return grouped + inputs + derived


def monitored_frame(rows: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """The monitored columns of log or reference rows (a predictor the rows lack: missing)."""
    out = {}
    for column in columns:
        if column.categories:
            out[column.name] = _category(rows, column)
        else:
            values = rows.get(PREDICTOR + column.predictors[0])
            out[column.name] = (
                np.full(len(rows), np.nan) if values is None else values.to_numpy(float)
            )
    return pd.DataFrame(out, index=rows.index)


def first_of_patient(rows: pd.DataFrame, columns: list[Column]) -> np.ndarray:
    """True on the first row of each patient, as far as rows can tell without an identifier
    (the log has none): rows with the same baseline predictors (the product, age, dose, labs
    ...: continuous values, so two patients practically never share them all) are one
    patient's predictions on several days."""
    names = [PREDICTOR + p for c in columns if c.baseline for p in c.predictors]
    present = [n for n in names if n in rows.columns]
    if not present:
        return np.ones(len(rows), dtype=bool)
    return ~rows[present].duplicated().to_numpy()


def _category(rows: pd.DataFrame, column: Column) -> np.ndarray:
    """The category each row's indicators say (UNSEEN when none is 1; None when missing)."""
    out = np.full(len(rows), UNSEEN, dtype=object)
    missing = np.zeros(len(rows), dtype=bool)
    for predictor, value in zip(column.predictors, column.categories, strict=True):
        indicator = rows.get(PREDICTOR + predictor)
        if indicator is None:
            continue
        x = indicator.to_numpy(float)
        missing |= np.isnan(x)
        out[(x >= 0.5) & (out == UNSEEN)] = value
    out[missing] = None
    return out


def _baseline(field: str) -> bool:
    """Whether a contract field is known before infusion (not the day, not a course series)."""
    return field in FIELDS and field != "day_since_infusion" and FIELDS[field].kind != "day_list"


def _discrete(values: pd.Series | None) -> bool:
    """Whether a predictor takes at most MAX_LEVELS distinct values (missing aside)."""
    if values is None:
        return False
    x = values.to_numpy(float)
    x = x[~np.isnan(x)]
    return len(x) > 0 and len(np.unique(x)) <= MAX_LEVELS


def _category_label(field: str) -> str:
    if field == "disease_group":
        return f"{FIELDS['disease'].label} (group)"
    return FIELDS[field].label if field in FIELDS else field.replace("_", " ")
