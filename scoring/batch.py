"""Batch scoring: every landmark row of a cohort scored by a registered model (``icans score``).

The cohort (generated or imported) is read a chunk of patients at a time
(:func:`cohort.reader.read_cohort_chunks`); each chunk becomes landmark rows
(:func:`features.landmarks.build_landmark_dataset`: every landmark day on which the patient is
still at risk, the data observed up to that day only) and is scored by the same
:class:`runtime.assessor.Assessor` the endpoint uses, so each row's probability, interval and
contributions are the numbers ``POST /v1/risk`` returns for that patient on that day. The rows
are appended to the output file as each chunk is done, so memory holds one chunk, whatever the
cohort's size. The file is written beside its destination and renamed into place when
complete: an interrupted run leaves no partial file.

Output columns: ``patient_id``, ``landmark_day``, ``probability``, ``interval_low``,
``interval_high`` (the 95% bootstrap interval), ``log_odds``, ``model_name``,
``model_version``; with ``explain``, ``base_log_odds`` and one ``contribution.<input>``
column per clinical input (log-odds; with the base they add up to ``log_odds``). The outcome
is not written: scores are for use and monitoring, and a cohort's labels stay in the cohort.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cohort.reader import read_cohort_chunks, read_metadata
from cohort.store import TableWriter
from features.inputs import by_input
from features.landmarks import DEFAULT_LANDMARKS, build_landmark_dataset
from icans.config import Settings
from icans.errors import InvalidInputError, UnknownCategoryWarning
from registry.store import load_registered
from reports.provenance import trained_on_synthetic
from runtime.assessor import Assessor

FORMATS = {".parquet": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class ScoreSummary:
    out: Path
    rows: int
    patients: int
    model_name: str
    model_version: str
    seconds: float
    synthetic_model: bool  # trained on synthetic data: its scores are for development only


def score_cohort(
    cohort_dir: Path,
    model_uri: str,
    out: Path,
    settings: Settings,
    landmarks: tuple[int, ...] = DEFAULT_LANDMARKS,
    explain: bool = False,
    patients_per_chunk: int = 5_000,
    progress: Callable[[int], None] = lambda _: None,
) -> ScoreSummary:
    """Score every landmark row of ``cohort_dir`` with ``model_uri`` into ``out`` (.parquet or
    .csv); ``progress`` is told the number of patients of each chunk done."""
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InvalidInputError("out", str(out), "a file ending in .parquet or .csv")
    if patients_per_chunk < 1:
        raise InvalidInputError("patients_per_chunk", patients_per_chunk, "at least 1")
    read_metadata(cohort_dir)  # a clear error now if this is not a cohort
    started = time.perf_counter()
    registered = load_registered(model_uri, settings)
    assessor = Assessor(registered.model)
    ref = registered.ref
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    writer = TableWriter(tmp, fmt)
    rows = patients = 0
    try:
        for tables in read_cohort_chunks(cohort_dir, patients_per_chunk):
            ds = build_landmark_dataset(tables, landmarks)
            if len(ds):
                writer.write(_scores(assessor, ds, ref.name, str(ref.version), explain))
            rows += len(ds)
            patients += len(tables["patients"])
            progress(len(tables["patients"]))
        if writer.rows == 0:
            writer.write(_scores(assessor, None, ref.name, str(ref.version), explain))
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return ScoreSummary(
        out,
        rows,
        patients,
        ref.name,
        str(ref.version),
        time.perf_counter() - started,
        trained_on_synthetic(registered.card),
    )


def _scores(assessor: Assessor, ds, name: str, version: str, explain: bool) -> pd.DataFrame:
    """The output rows of one chunk's landmark rows (no rows, with the columns, when ``ds`` is
    None)."""
    names = assessor.feature_names
    if ds is None:
        n, probability, interval = 0, np.zeros(0), np.zeros((0, 2))
        ids, days = np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64)
        log_odds, base, contributions = np.zeros(0), np.zeros(0), np.zeros((0, len(names)))
    else:
        with warnings.catch_warnings():
            # an unseen category is encoded as none of the seen ones, as the endpoint does
            # (which warns per patient); a batch has no one to tell per row
            warnings.simplefilter("ignore", UnknownCategoryWarning)
            _, probability, interval, explanation = assessor.assess_rows(ds.raw)
        n, ids, days = len(ds), ds.patient_id.astype(str), ds.landmark_day.astype(np.int64)
        log_odds, base = explanation.log_odds, explanation.base_log_odds
        contributions = explanation.contributions
    if interval is None:  # a model fitted without refits
        interval = np.full((n, 2), np.nan)
    frame = pd.DataFrame(
        {
            "patient_id": ids,
            "landmark_day": days,
            "probability": probability,
            "interval_low": interval[:, 0],
            "interval_high": interval[:, 1],
            "log_odds": log_odds,
            "model_name": np.full(n, name, dtype=object),
            "model_version": np.full(n, version, dtype=object),
        }
    )
    if explain:
        frame["base_log_odds"] = base
        fields, values = by_input(names, contributions)
        for k, field in enumerate(fields):
            frame[f"contribution.{field}"] = values[:, k]
    return frame
