"""Landmark dataset: one row per (patient, landmark day) for patients still event-free.

For landmark day L the row holds what was observable up to and including day L (baseline, CRS
and ICANS grades on days 0..L, CAR-T samples dated <= L), in the raw layout of
:mod:`features.layout`; the label is the target event on days L+1..28; the generator's true risk
is attached for evaluation only (never a predictor); ``patient_id`` is kept for grouped splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cohort.schema import validate_tables
from features.layout import (
    BASELINE_FIELDS,
    CATEGORY_CODE,
    COLUMN_INDEX,
    N_DAYS,
    RAW_COLUMNS,
    SERIES_SLICE,
)
from icans.errors import InvalidInputError

DEFAULT_LANDMARKS = (0, 1, 3, 5, 7, 10, 14)
SUBGROUP_COLUMNS = (
    "car_target",
    "costimulatory_domain",
    "disease",
    "age_years",
    "cns_involvement",
    "product_family",
)


@dataclass
class LandmarkDataset:
    """Rows in the raw layout plus what evaluation needs alongside them."""

    raw: np.ndarray  # float, columns in RAW_COLUMNS order, one row per (patient, landmark)
    label: np.ndarray  # target event on days L+1..28
    patient_id: np.ndarray
    landmark_day: np.ndarray
    true_risk: np.ndarray  # NaN where the cohort has no true-risk table
    subgroups: pd.DataFrame  # baseline descriptors for subgroup metrics (not predictors)

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
            self.subgroups[mask].reset_index(drop=True),
        )


def _day_blocks(
    patient_index: pd.Index, frame: pd.DataFrame, columns: dict[str, str]
) -> dict[str, np.ndarray]:
    """Scatter a long (patient_id, day, value) table into patients x 29-day blocks."""
    rows = patient_index.get_indexer(frame["patient_id"])
    days = frame["day"].to_numpy(np.int64)
    keep = rows >= 0
    blocks = {}
    for series_name, column in columns.items():
        block = np.full((len(patient_index), N_DAYS), np.nan)
        block[rows[keep], days[keep]] = frame[column].to_numpy(float)[keep]
        blocks[series_name] = block
    return blocks


def baseline_matrix(patients: pd.DataFrame) -> np.ndarray:
    """Baseline fields of a patients table in layout order (categoricals as codes)."""
    out = np.full((len(patients), len(BASELINE_FIELDS)), np.nan)
    for j, field in enumerate(BASELINE_FIELDS):
        if field not in patients.columns:
            continue
        values = patients[field]
        if field in CATEGORY_CODE:
            out[:, j] = values.map(CATEGORY_CODE[field]).to_numpy(float)
        else:
            out[:, j] = pd.to_numeric(values, errors="coerce").to_numpy(float)
    return out


def build_landmark_dataset(
    tables: dict[str, pd.DataFrame],
    landmarks: tuple[int, ...] = DEFAULT_LANDMARKS,
    validate: bool = True,
) -> LandmarkDataset:
    """Landmark rows from cohort tables (``patients``, ``daily``, ``measurements``,
    ``outcomes`` and optionally ``true_risk``)."""
    bad = [d for d in landmarks if not isinstance(d, (int, np.integer)) or not 0 <= d <= 27]
    if bad or not landmarks:
        raise InvalidInputError("landmarks", list(landmarks), "whole days from 0 to 27")
    if validate:
        tables = validate_tables(tables)
    patients = tables["patients"].reset_index(drop=True)
    index = pd.Index(patients["patient_id"])
    base = baseline_matrix(patients)
    blocks = _day_blocks(
        index, tables["daily"], {"crs_grade": "crs_grade", "icans_grade": "icans_grade"}
    )
    blocks |= _day_blocks(
        index,
        tables["measurements"],
        {
            "cd4_cells_per_ul": "cd4_car_t_cells_per_ul",
            "cd8_cells_per_ul": "cd8_car_t_cells_per_ul",
        },
    )
    outcomes = tables["outcomes"].set_index("patient_id").reindex(index)
    event_day = outcomes["event_day"].to_numpy(float)  # NaN = no event by day 28
    risk = tables.get("true_risk")
    risk_lookup = (
        risk.set_index(["patient_id", "landmark_day"])["true_risk"] if risk is not None else None
    )

    parts, labels, ids, days, risks, rows_idx = [], [], [], [], [], []
    future = np.arange(N_DAYS)[None, :]
    for landmark in sorted(set(int(d) for d in landmarks)):
        at_risk = np.isnan(event_day) | (event_day > landmark)
        n = int(at_risk.sum())
        raw = np.full((n, len(RAW_COLUMNS)), np.nan)
        raw[:, : len(BASELINE_FIELDS)] = base[at_risk]
        raw[:, COLUMN_INDEX["day_since_infusion"]] = landmark
        for name, block in blocks.items():
            raw[:, SERIES_SLICE[name]] = np.where(future <= landmark, block[at_risk], np.nan)
        parts.append(raw)
        labels.append(~np.isnan(event_day[at_risk]))
        pid = index.to_numpy()[at_risk]
        ids.append(pid)
        days.append(np.full(n, landmark))
        rows_idx.append(np.flatnonzero(at_risk))
        if risk_lookup is not None:
            key = pd.MultiIndex.from_arrays([pid, np.full(n, landmark)])
            risks.append(risk_lookup.reindex(key).to_numpy(float))
        else:
            risks.append(np.full(n, np.nan))
    raw_all = np.concatenate(parts)
    sub_cols = [c for c in SUBGROUP_COLUMNS if c in patients.columns]
    subgroups = patients.loc[np.concatenate(rows_idx), sub_cols].reset_index(drop=True)
    return LandmarkDataset(
        raw_all,
        np.concatenate(labels),
        np.concatenate(ids),
        np.concatenate(days),
        np.concatenate(risks),
        subgroups,
    )


def load_cohort_tables(cohort_dir: Path) -> dict[str, pd.DataFrame]:
    """The tables the landmark builder needs, read from a generated cohort directory."""
    from data.synthetic.cohort import read_manifest, read_table

    manifest = read_manifest(cohort_dir)
    names = ["patients", "daily", "measurements", "outcomes"]
    names += ["true_risk"] if "true_risk" in manifest["tables"] else []
    columns = {"daily": ["patient_id", "day", "crs_grade", "icans_grade"]}
    return {name: read_table(cohort_dir, name, columns.get(name)) for name in names}


def patient_record(tables: dict[str, pd.DataFrame], patient_id: str, day: int) -> dict:
    """One patient as the endpoint's JSON (contract vocabulary), observed up to ``day``."""
    p = tables["patients"].set_index("patient_id").loc[patient_id]
    record: dict = {"patient_id": patient_id, "day_since_infusion": int(day)}
    for field in BASELINE_FIELDS:
        if field in p.index and not pd.isna(p[field]):
            value = p[field]
            record[field] = value.item() if hasattr(value, "item") else value
    for field in ("cns_involvement", "neuro_comorbidity"):
        if field in record:
            record[field] = bool(record[field])
    if "prior_lines" in record:
        record["prior_lines"] = int(record["prior_lines"])
    daily = tables["daily"].query("patient_id == @patient_id and day <= @day")
    record["crs_grade_by_day"] = [
        {"day": int(d), "grade": int(g)}
        for d, g in zip(daily["day"], daily["crs_grade"], strict=True)
    ]
    record["icans_grade_by_day"] = [
        {"day": int(d), "grade": int(g)}
        for d, g in zip(daily["day"], daily["icans_grade"], strict=True)
    ]
    m = tables["measurements"].query("patient_id == @patient_id and day <= @day")
    for field, column in (
        ("cd4_car_t_cells_per_ul", "cd4_car_t_cells_per_ul"),
        ("cd8_car_t_cells_per_ul", "cd8_car_t_cells_per_ul"),
    ):
        record[field] = [
            {"day": int(d), "value": float(v)}
            for d, v in zip(m["day"], m[column], strict=True)
            if not pd.isna(v)
        ]
    return record
