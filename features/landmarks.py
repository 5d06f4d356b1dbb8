"""Landmark dataset: one row per (patient, landmark day) for patients still event-free.

For landmark day L the row holds what was observable up to and including day L (baseline, CRS
and ICANS grades and treatment on days 0..L, CAR-T samples dated <= L), in the raw layout of
:mod:`features.layout`; the label is the target event on days L+1..28; the generator's true risk
is attached for evaluation only (never a predictor); ``patient_id`` is kept for grouped splits.
Beside the target (by day 28) each row holds the event within every horizon
(:mod:`icans.horizons`: the next 72 hours, the next 7 days, by day 28), from ``event_day`` alone,
and, from a synthetic cohort, each horizon's true risk (``true_risk_72h``, ``true_risk_7d``).

A synthetic cohort's true-risk table may hold, beside ``true_risk`` (given everything observed),
the exact risk given an input set's observations only (:mod:`features.input_sets`), in the
column ``true_risk_<set>`` (the generator writes ``true_risk_routine``); each such column is
attached too (``LandmarkDataset.set_true_risk``), to judge the models fitted on that set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from cohort.reader import TRUE_RISK
from cohort.schema import validate_tables
from features.input_sets import INPUT_SETS
from features.layout import (
    BASELINE_FIELDS,
    BASELINE_INDEX,
    CATEGORY_CODE,
    COLUMN_INDEX,
    N_DAYS,
    RAW_COLUMNS,
    SERIES_SLICE,
)
from icans.contract import BASELINE, COURSE, PREDICTION_DAY
from icans.errors import InvalidInputError
from icans.horizons import HORIZON_NAMES, HORIZONS, TARGET_HORIZON, horizon_events

DAILY_LANDMARKS = tuple(range(22))
"""Every day from infusion to day 21: a prediction is asked on any day, and the short horizons
(72 hours, 7 days) change from one day to the next (issue 28: days 0-21 at least; days 22-27,
which the contract also accepts, hold few patients at risk and fewer events)."""
DEFAULT_LANDMARKS = DAILY_LANDMARKS
SPARSE_LANDMARKS = (0, 1, 3, 5, 7, 10, 14)
"""The landmarks before daily prediction (what ``benchmarks/bench_landmarks.py`` compares the
daily rows with, and what tests use where the point is not the landmarks: fewer rows)."""
DAY_GROUPS = ((0, 0), (1, 2), (3, 4), (5, 7), (8, 10), (11, 14), (15, 21), (22, 27))
"""Prediction days pooled for evaluation per day group (first, last): one day has too few
events to judge a short horizon (a few dozen 72-hour events on a late day of the demo), a group
has enough; day 0 (prophylaxis, at infusion) stands alone."""


def day_group(first: int, last: int) -> str:
    """The label of a group of prediction days: ``"3"`` or ``"3-4"``."""
    return str(first) if first == last else f"{first}-{last}"


# Baseline descriptors carried beside the rows for subgroup metrics (never predictors).
SUBGROUP_COLUMNS = (
    "car_target",
    "costimulatory_domain",
    "car_product",  # where the cohort records it (an optional column)
    "disease",
    "age_years",
    "cns_involvement",
    "sex",
    "infusion_order",  # not a subgroup: the temporal split orders patients by it
)


@dataclass
class LandmarkDataset:
    """Rows in the raw layout plus what evaluation needs alongside them."""

    raw: np.ndarray  # float, columns in RAW_COLUMNS order, one row per (patient, landmark)
    label: np.ndarray  # target event on days L+1..28 (the day-28 horizon)
    patient_id: np.ndarray
    landmark_day: np.ndarray
    true_risk: np.ndarray  # NaN where the cohort has no true-risk table
    subgroups: pd.DataFrame  # baseline descriptors for subgroup metrics (not predictors)
    # input set (not "all") -> its exact true risk per row, where the true-risk table has it
    set_true_risk: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    # horizon name -> the event within it per row (icans.horizons); "day28" is ``label``
    horizon_labels: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    # horizon name -> its exact true risk given everything, where the true-risk table has it
    # ("day28" is ``true_risk``)
    horizon_true_risk: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label)

    def frame(self, rows=slice(None)) -> pd.DataFrame:
        """Rows of the raw layout as a DataFrame (for MLflow examples and inspection)."""
        return pd.DataFrame(self.raw[rows], columns=list(RAW_COLUMNS))

    def subset(self, mask: np.ndarray) -> LandmarkDataset:
        return LandmarkDataset(
            self.raw[mask],
            self.label[mask],
            self.patient_id[mask],
            self.landmark_day[mask],
            self.true_risk[mask],
            cast(pd.DataFrame, self.subgroups[mask]).reset_index(drop=True),
            {name: risk[mask] for name, risk in self.set_true_risk.items()},
            {name: label[mask] for name, label in self.horizon_labels.items()},
            {name: risk[mask] for name, risk in self.horizon_true_risk.items()},
        )

    def labels(self, horizons: tuple[str, ...]) -> np.ndarray:
        """The event within each of ``horizons`` (rows x horizons), or the target alone (one
        label per row) when it is the only one: what :class:`model.risk_model.RiskModel`
        fits."""
        if tuple(horizons) == (TARGET_HORIZON.name,):
            return self.label
        return np.column_stack([self.horizon_labels[name] for name in horizons])

    def for_horizon(self, name: str) -> LandmarkDataset:
        """The same rows judged on the horizon ``name``: its event as the label and its true
        risk (NaN where the cohort has none) as the true risk."""
        if name == TARGET_HORIZON.name:
            return self
        truth = self.horizon_true_risk.get(name, np.full(len(self), np.nan))
        return dataclasses.replace(self, label=self.horizon_labels[name], true_risk=truth)

    def true_risk_of(self, inputs: str) -> np.ndarray | None:
        """The exact true risk given the input set ``inputs`` per row (``"all"``:
        ``true_risk``), or None when the cohort's true-risk table has no such column."""
        if inputs == "all":
            return self.true_risk if np.isfinite(self.true_risk).any() else None
        return self.set_true_risk.get(inputs)


def true_risk_column(inputs: str) -> str:
    """The true-risk table's column of the exact risk given the input set ``inputs``."""
    return TRUE_RISK if inputs == "all" else f"{TRUE_RISK}_{inputs}"


def _day_blocks(
    patient_index: pd.Index, frame: pd.DataFrame, columns: dict[str, str]
) -> dict[str, np.ndarray]:
    """Scatter a long (patient_id, day, value) table into patients x 29-day blocks; a column
    the table lacks (an optional one) is a series never observed (NaN)."""
    rows = patient_index.get_indexer(cast(pd.Series, frame["patient_id"]))
    days = frame["day"].to_numpy(np.int64)
    keep = rows >= 0
    blocks = {}
    for series_name, column in columns.items():
        block = np.full((len(patient_index), N_DAYS), np.nan)
        if column in frame.columns:
            block[rows[keep], days[keep]] = frame[column].to_numpy(float)[keep]
        blocks[series_name] = block
    return blocks


def baseline_matrix(patients: pd.DataFrame) -> np.ndarray:
    """Baseline fields of a patients table in the contract's order (:data:`BASELINE_FIELDS`,
    placed in a raw row by ``BASELINE_INDEX``; categoricals as codes, booleans as 0/1); a
    column the table lacks is missing (NaN) for every patient."""
    out = np.full((len(patients), len(BASELINE_FIELDS)), np.nan)
    for j, field in enumerate(BASELINE_FIELDS):
        if field not in patients.columns:
            continue
        values = cast(pd.Series, patients[field])
        if field in CATEGORY_CODE:
            out[:, j] = values.map(CATEGORY_CODE[field]).to_numpy(float)
        else:
            out[:, j] = cast(pd.Series, pd.to_numeric(values, errors="coerce")).to_numpy(float)
    return out


def build_landmark_dataset(
    tables: dict[str, pd.DataFrame],
    landmarks: tuple[int, ...] = DEFAULT_LANDMARKS,
    validate: bool = True,
) -> LandmarkDataset:
    """Landmark rows from cohort tables (``patients``, ``daily``, ``measurements``,
    ``outcomes`` and optionally ``true_risk``): one row per landmark day L and patient still
    at risk on it (no event by L, and alive on L: a patient who died of any cause is never
    scored after death)."""
    bad = [d for d in landmarks if not isinstance(d, (int, np.integer)) or not 0 <= d <= 27]
    if bad or not landmarks:
        raise InvalidInputError("landmarks", list(landmarks), "whole days from 0 to 27")
    if validate:
        tables = validate_tables(tables)
    patients = tables["patients"].reset_index(drop=True)
    index = pd.Index(patients["patient_id"])
    base = baseline_matrix(patients)
    blocks = {}
    for table in dict.fromkeys(spec.table for spec in COURSE):
        columns = {spec.layout: spec.table_column for spec in COURSE if spec.table == table}
        blocks |= _day_blocks(index, tables[table], columns)
    outcomes = tables["outcomes"].set_index("patient_id").reindex(index)
    event_day = outcomes["event_day"].to_numpy(float)  # NaN = no event by day 28
    # NaN = alive at day 28 (or not recorded); a patient who dies on day d is seen last on d - 1
    death_day = (
        cast(pd.Series, pd.to_numeric(outcomes["death_day"], errors="coerce")).to_numpy(float)
        if "death_day" in outcomes.columns
        else np.full(len(index), np.nan)
    )
    risk = tables.get(TRUE_RISK)
    indexed = risk.set_index(["patient_id", "landmark_day"]) if risk is not None else None
    # the true risk given everything, then given each input set the table has a column for
    risk_columns = {
        inputs: true_risk_column(inputs)
        for inputs in INPUT_SETS
        if indexed is not None and true_risk_column(inputs) in indexed.columns
    }
    set_risks: dict[str, list[np.ndarray]] = {"all": []} | {i: [] for i in risk_columns}
    # the shorter horizons' true risk given everything (day 28's is "all" above)
    horizon_columns = {
        h.name: f"{TRUE_RISK}_{h.name}"
        for h in HORIZONS
        if h is not TARGET_HORIZON
        and indexed is not None
        and f"{TRUE_RISK}_{h.name}" in indexed.columns
    }
    horizon_risks: dict[str, list[np.ndarray]] = {name: [] for name in horizon_columns}

    parts, ids, days, rows_idx = [], [], [], []
    labels: dict[str, list[np.ndarray]] = {name: [] for name in HORIZON_NAMES}
    future = np.arange(N_DAYS)[None, :]
    for landmark in sorted(set(int(d) for d in landmarks)):
        alive = np.isnan(death_day) | (death_day > landmark)
        at_risk = (np.isnan(event_day) | (event_day > landmark)) & alive
        n = int(at_risk.sum())
        raw = np.full((n, len(RAW_COLUMNS)), np.nan)
        raw[:, BASELINE_INDEX] = base[at_risk]
        raw[:, COLUMN_INDEX[PREDICTION_DAY.name]] = landmark
        for name, block in blocks.items():
            raw[:, SERIES_SLICE[name]] = np.where(future <= landmark, block[at_risk], np.nan)
        parts.append(raw)
        for name, events in horizon_events(event_day[at_risk], landmark).items():
            labels[name].append(events)
        pid = index.to_numpy()[at_risk]
        ids.append(pid)
        days.append(np.full(n, landmark))
        rows_idx.append(np.flatnonzero(at_risk))
        key = pd.MultiIndex.from_arrays([pid, np.full(n, landmark)])
        for inputs, values in set_risks.items():
            if indexed is None or inputs not in risk_columns:
                values.append(np.full(n, np.nan))  # no true-risk table (a real cohort)
            else:
                values.append(indexed[risk_columns[inputs]].reindex(key).to_numpy(float))
        for name, values in horizon_risks.items():
            assert indexed is not None  # a column was found in it
            values.append(indexed[horizon_columns[name]].reindex(key).to_numpy(float))
    raw_all = np.concatenate(parts)
    sub_cols = [c for c in SUBGROUP_COLUMNS if c in patients.columns]
    subgroups = patients.loc[np.concatenate(rows_idx), sub_cols].reset_index(drop=True)
    horizon_labels = {name: np.concatenate(v) for name, v in labels.items()}
    return LandmarkDataset(
        raw_all,
        horizon_labels[TARGET_HORIZON.name],
        np.concatenate(ids),
        np.concatenate(days),
        np.concatenate(set_risks.pop("all")),
        subgroups,
        {inputs: np.concatenate(values) for inputs, values in set_risks.items()},
        horizon_labels,
        {name: np.concatenate(values) for name, values in horizon_risks.items()},
    )


def patient_record(tables: dict[str, pd.DataFrame], patient_id: str, day: int) -> dict:
    """One patient as the endpoint's JSON (contract vocabulary), observed up to ``day``."""
    patients = tables["patients"]
    p = patients[patients["patient_id"] == patient_id].iloc[0]
    record: dict = {"patient_id": patient_id, PREDICTION_DAY.name: int(day)}
    cast = {"boolean": bool, "integer": int, "number": float, "category": str}
    for spec in BASELINE:
        if spec.table_column in p.index and not pd.isna(p[spec.table_column]):
            record[spec.name] = cast[spec.kind](p[spec.table_column])
    observed = {}  # each course table's rows of the patient up to the day, selected once
    for spec in COURSE:
        if spec.table_column not in tables[spec.table].columns:
            continue  # an optional column this cohort does not have: not given
        if spec.table not in observed:
            t = tables[spec.table]
            observed[spec.table] = t[(t["patient_id"] == patient_id) & (t["day"] <= day)]
        rows = observed[spec.table]
        value = int if spec.whole else float
        record[spec.name] = [
            {"day": int(d), spec.value_key: value(v)}
            for d, v in zip(rows["day"], rows[spec.table_column], strict=True)
            if not pd.isna(v)
        ]
    return record
