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

Output columns, one row per patient and landmark day: ``patient_id``, ``landmark_day``,
``probability``, ``interval_low``, ``interval_high`` (the 95% bootstrap interval), ``log_odds``
(these four are the day-28 horizon's, the target every model estimates, as before horizons),
then per horizon ``h`` (:mod:`icans.horizons`: ``72h``, ``7d``, ``day28``) the same four as
``probability_<h>``, ``interval_low_<h>``, ``interval_high_<h>``, ``log_odds_<h>`` (every
horizon the model is fitted for, or those ``horizons`` selects: ``icans score --horizons
72h,day28``; a horizon that does not exist or that the model does not estimate is refused,
naming the option), then ``model_name`` and ``model_version``. A row's horizons never
contradict each other: ``probability_72h <= probability_7d <= probability_day28`` (and each
interval bound alike), by the model's construction. With ``explain``, ``base_log_odds`` and one
``contribution.<input>`` column per clinical input (log-odds; with the base they add up to
``log_odds``): **day 28 only**, whatever the horizons selected. A horizon's contributions differ
from day 28's by little more than the window's own term, and three sets of some forty columns
would triple the widest file for what the endpoint and ``icans explain`` already show per
horizon. The outcome is not written: scores are for use and monitoring, and a cohort's labels
stay in the cohort.
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
from icans.horizons import HORIZON_NAMES, TARGET_HORIZON, horizon
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
    horizons: tuple[str, ...] = ()  # the horizons written (columns probability_<h> ...)


def score_cohort(
    cohort_dir: Path,
    model_uri: str,
    out: Path,
    settings: Settings,
    landmarks: tuple[int, ...] = DEFAULT_LANDMARKS,
    explain: bool = False,
    patients_per_chunk: int = 5_000,
    progress: Callable[[int], None] = lambda _: None,
    horizons: str | tuple[str, ...] | None = None,
) -> ScoreSummary:
    """Score every landmark row of ``cohort_dir`` with ``model_uri`` into ``out`` (.parquet or
    .csv); ``progress`` is told the number of patients of each chunk done; ``horizons``: the
    horizons written (names, or one comma-separated text; None: every horizon of the model)."""
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InvalidInputError("out", str(out), "a file ending in .parquet or .csv")
    if patients_per_chunk < 1:
        raise InvalidInputError("patients_per_chunk", patients_per_chunk, "at least 1")
    read_metadata(cohort_dir)  # a clear error now if this is not a cohort
    started = time.perf_counter()
    registered = load_registered(model_uri, settings)
    selected = select_horizons(horizons, registered.model.horizons_)
    assessor = Assessor(registered.model)
    ref = registered.ref
    columns = ScoreColumns(ref.name, str(ref.version), selected, explain)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    writer = TableWriter(tmp, fmt)
    rows = patients = 0
    try:
        for tables in read_cohort_chunks(cohort_dir, patients_per_chunk):
            ds = build_landmark_dataset(tables, landmarks)
            if len(ds):
                writer.write(scores(assessor, ds, columns))
            rows += len(ds)
            patients += len(tables["patients"])
            progress(len(tables["patients"]))
        if writer.rows == 0:
            writer.write(scores(assessor, None, columns))
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
        selected,
    )


def select_horizons(
    requested: str | tuple[str, ...] | list[str] | None, fitted: tuple[str, ...]
) -> tuple[str, ...]:
    """The horizons written: ``requested`` (names, or one text of names separated by commas;
    None: every ``fitted`` one) in :data:`icans.horizons.HORIZONS` order; a name that is no
    horizon, or one the model is not fitted for, is refused naming the option and the rule."""
    if requested is None:
        return tuple(fitted)
    names = requested.split(",") if isinstance(requested, str) else list(requested)
    names = [name.strip() for name in names]
    text = ",".join(names)
    if not names or not all(names):
        rule = "horizons separated by commas, e.g. 72h,day28 (" + ", ".join(HORIZON_NAMES) + ")"
        raise InvalidInputError("horizons", text, rule)
    for name in names:
        try:
            horizon(name)
        except InvalidInputError:
            raise InvalidInputError(
                "horizons", text, f"horizons among {', '.join(HORIZON_NAMES)} ({name!r} is none)"
            ) from None
        if name not in fitted:
            raise InvalidInputError(
                "horizons",
                text,
                f"horizons the model estimates: {', '.join(fitted)} (not fitted for {name})",
            )
    return tuple(name for name in HORIZON_NAMES if name in names)


@dataclass(frozen=True)
class ScoreColumns:
    """What every chunk's rows carry: the model, the horizons written, the explanation."""

    model_name: str
    model_version: str
    horizons: tuple[str, ...]
    explain: bool


def scores(assessor: Assessor, ds, columns: ScoreColumns) -> pd.DataFrame:
    """The output rows of one chunk's landmark rows (no rows, with the columns, when ``ds`` is
    None). :meth:`runtime.assessor.Assessor.assess_rows` answers the n rows of every fitted
    horizon stacked horizon by horizon; row ``i`` of horizon ``k`` is row ``k * n + i``."""
    names = assessor.feature_names
    fitted = tuple(assessor.model.horizons_)
    if ds is None:
        n = 0
        probability, interval = np.zeros(0), np.zeros((0, 2))
        ids, days = np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64)
        log_odds, base = np.zeros(0), np.zeros(0)
        contributions = np.zeros((0, len(names)))
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
        interval = np.full((n * len(fitted), 2), np.nan)

    def block(name: str) -> slice:
        k = fitted.index(name) if n else 0
        return slice(k * n, (k + 1) * n)

    target = block(TARGET_HORIZON.name)
    data: dict[str, object] = {"patient_id": ids, "landmark_day": days}
    for name in (None, *columns.horizons):  # None: the day-28 figures under their old names
        rows, suffix = block(name or TARGET_HORIZON.name), "" if name is None else f"_{name}"
        data[f"probability{suffix}"] = probability[rows]
        data[f"interval_low{suffix}"] = interval[rows, 0]
        data[f"interval_high{suffix}"] = interval[rows, 1]
        data[f"log_odds{suffix}"] = log_odds[rows]
    data["model_name"] = np.full(n, columns.model_name, dtype=object)
    data["model_version"] = np.full(n, columns.model_version, dtype=object)
    frame = pd.DataFrame(data)
    if columns.explain:
        frame["base_log_odds"] = base[target]
        fields, values = by_input(names, contributions[target])
        for k, field in enumerate(fields):
            frame[f"contribution.{field}"] = values[:, k]
    return frame
