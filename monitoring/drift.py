"""Per-input drift of the window's case mix against the model's training reference, with
Evidently.

Each monitored column (:mod:`monitoring.columns`: the clinician's inputs, categories
re-assembled, then the derived predictors) is compared on its non-missing values by two of
Evidently's per-column drift measures (``ValueDrift``), chosen by the column's type:

==============  ===========================================  =================================
column          is it different beyond chance? (p-value)      by how much? (distance)
==============  ===========================================  =================================
numerical       two-sample Kolmogorov-Smirnov (``ks``)        Wasserstein distance / the
                                                              reference's SD (``wasserstein``)
categorical     chi-square (``chisquare``); two values:       Jensen-Shannon distance
                Z-test of proportions (``z``)                 (``jensenshannon``)
==============  ===========================================  =================================

Predictions cluster by patient: a patient is predicted on several days, and the reference
holds up to seven landmark rows of each held-out patient. Counted per row, an input known
before infusion (the same on every row of a patient) would seem to have several times more
independent values than there are patients, and the tests would flag chance differences. So a
baseline input is tested once per patient (rows with the same baseline values are one patient:
:func:`monitoring.columns.first_of_patient`), and the derived predictors, which change from day
to day, once per prediction (still somewhat correlated within a patient).

A column has **drifted** when both say so: p below :data:`ALPHA` divided by the number of
columns tested (Bonferroni: a window from the training case mix flags no column in 95% of
windows, although some 45 columns are tested) **and** a distance of at least
:data:`MIN_DISTANCE` (Evidently's own threshold for both distances), so that a large window does
not flag a difference too small to matter. Evidently alone picks one or the other by the
reference's size (distances above 1,000 rows, which every logged reference has); with a few
hundred predictions a month, its distances alone flag sampling noise (a window of 400
predictions from the training case mix showed normed Wasserstein distances of 0.10-0.16 on 8
of 46 columns), and its p-values alone flag trivial differences in large windows. The share of
missing values is shown beside (a centre that stops measuring CAR-T counts changes that, not
the values); a column without two values on either side is shown, not tested.

Why Evidently (0.7): maintained and open source (Apache 2.0), per-column statistical tests
for each column type with documented defaults, a self-contained HTML report (scripts inline:
it opens offline) written next to ours, and it runs offline (telemetry off, nothing
downloaded: :mod:`monitoring.evidently_compat`). NannyML 0.13.1 was rejected: it requires
``xgboost`` 2.1.4, which would be installed beside our ``xgboost-cpu`` 3.2.0 under the same
import name, and pulls in cloud SDKs. Evidently is imported inside :func:`input_drift`
(about 7 s), never by anything the service imports.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from monitoring.columns import Column, first_of_patient, monitored_columns, monitored_frame

MIN_VALUES = 2  # non-missing values on each side for a column to be tested
ALPHA = 0.05  # family-wise, over the columns tested (Bonferroni)
MIN_DISTANCE = 0.1  # Evidently's default drift threshold of both distances


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    label: str
    kind: str  # input or derived
    categorical: bool
    test: str | None  # Evidently's name of the test (None: not tested)
    p_value: float | None
    alpha: float | None  # the p-value threshold (Bonferroni)
    distance_method: str | None
    distance: float | None
    drifted: bool | None  # None: not tested
    n_reference: int  # values tested: a baseline input's once per patient, others' per row
    n_current: int
    missing_reference: float  # share of rows missing
    missing_current: float
    reference_summary: str
    current_summary: str
    note: str = ""


@dataclass(frozen=True)
class InputDrift:
    columns: list[ColumnDrift]
    html: str  # Evidently's report of the tested columns (self-contained), "" if none tested

    @property
    def tested(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted is not None]

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted) / len(self.tested) if self.tested else float("nan")


def input_drift(
    reference_rows: pd.DataFrame, current_rows: pd.DataFrame, predictors: list[str]
) -> InputDrift:
    """Drift of every monitored column of ``current_rows`` (log rows) against
    ``reference_rows`` (the reference) for a model with ``predictors``."""
    columns = monitored_columns(predictors, reference_rows)
    reference = monitored_frame(reference_rows, columns)
    current = monitored_frame(current_rows, columns)
    # what is tested: a baseline input once per patient, the rest once per prediction
    test_ref = once_per_patient(reference, reference_rows, columns)
    test_cur = once_per_patient(current, current_rows, columns)
    testable = [
        c
        for c in columns
        if _column(test_ref, c.name).notna().sum() >= MIN_VALUES
        and _column(test_cur, c.name).notna().sum() >= MIN_VALUES
    ]
    alpha = ALPHA / max(len(testable), 1)
    results, html = _evidently(test_ref, test_cur, testable, alpha) if testable else ({}, "")
    out = []
    for c in columns:
        ref, cur = _column(reference, c.name), _column(current, c.name)
        tested = c.name in results
        test, p_value, distance_method, distance = results.get(c.name, (None,) * 4)
        out.append(
            ColumnDrift(
                column=c.name,
                label=c.label,
                kind=c.kind,
                categorical=c.categorical,
                test=test,
                p_value=p_value,
                alpha=alpha if tested else None,
                distance_method=distance_method,
                distance=distance,
                drifted=(p_value < alpha and distance >= MIN_DISTANCE) if tested else None,
                n_reference=int(_column(test_ref, c.name).notna().sum()),
                n_current=int(_column(test_cur, c.name).notna().sum()),
                missing_reference=float(ref.isna().mean()) if len(ref) else float("nan"),
                missing_current=float(cur.isna().mean()) if len(cur) else float("nan"),
                reference_summary=summary(ref, c),
                current_summary=summary(cur, c),
                note="" if tested else f"not tested: fewer than {MIN_VALUES} values",
            )
        )
    return InputDrift(out, html)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, a column (pandas' annotations widen it to ``Series | DataFrame``)."""
    return cast(pd.Series, frame[name])


def once_per_patient(
    frame: pd.DataFrame, rows: pd.DataFrame, columns: list[Column]
) -> pd.DataFrame:
    """``frame`` with each baseline input missing on all but a patient's first row
    (:func:`monitoring.columns.first_of_patient`; Evidently drops missing values)."""
    repeat = ~first_of_patient(rows, columns)
    out = frame.copy()
    for c in columns:
        if c.baseline and repeat.any():
            values = out[c.name].to_numpy(dtype=object if c.categories else float, copy=True)
            values[repeat] = None if c.categories else np.nan
            out[c.name] = values
    return out


def methods(column: Column, reference: pd.Series, current: pd.Series) -> tuple[str, str]:
    """Evidently's (test, distance) for a column (see the module docstring)."""
    if not column.categorical:
        return "ks", "wasserstein"
    levels = pd.concat([reference, current]).dropna().nunique()
    return ("z" if levels <= 2 else "chisquare"), "jensenshannon"


def _evidently(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[Column], alpha: float
) -> tuple[dict[str, tuple], str]:
    """column -> (test, p-value, distance method, distance) from Evidently, and its HTML."""
    from monitoring.evidently_compat import evidently

    ev = evidently()
    names = [c.name for c in columns]
    definition = ev.DataDefinition(
        numerical_columns=[c.name for c in columns if not c.categorical],
        categorical_columns=[c.name for c in columns if c.categorical],
    )

    def dataset(frame: pd.DataFrame):
        frame = cast(pd.DataFrame, frame[names]).copy()
        for c in columns:
            if c.categorical:  # one type per categorical column: text, missing as None
                frame[c.name] = frame[c.name].map(_category_text).astype(object)
        return ev.Dataset.from_pandas(frame, data_definition=definition)

    chosen = {
        c.name: methods(c, _column(reference, c.name), _column(current, c.name)) for c in columns
    }
    metrics = []
    for name, (test, distance) in chosen.items():
        metrics.append(ev.ValueDrift(column=name, method=test, threshold=alpha))
        metrics.append(ev.ValueDrift(column=name, method=distance, threshold=MIN_DISTANCE))
    with warnings.catch_warnings():  # pandas' notices about Evidently's own calls
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        snapshot = ev.Report(metrics).run(dataset(current), dataset(reference))
    values: dict[tuple[str, str], float] = {}
    for result in snapshot.dict()["metrics"]:
        values[(result["config"]["column"], result["config"]["method"])] = float(result["value"])
    out = {
        name: (test, values[(name, test)], distance, values[(name, distance)])
        for name, (test, distance) in chosen.items()
    }
    return out, snapshot.get_html_str(as_iframe=False)


def _category_text(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def summary(values: pd.Series, column: Column) -> str:
    """A column's distribution in a few words: the commonest values with their shares, or the
    median and quartiles."""
    present = values.dropna()
    if not len(present):
        return "no values"
    if column.categorical:
        shares = present.map(_category_text).value_counts(normalize=True)
        if set(shares.index) <= {"0", "1"} and not column.categories:
            return f"yes {shares.get('1', 0.0):.0%}"
        text = ", ".join(f"{k} {v:.0%}" for k, v in shares.head(3).items())
        return text + (", ..." if len(shares) > 3 else "")
    q1, q2, q3 = np.quantile(present.to_numpy(float), [0.25, 0.5, 0.75])
    return f"median {q2:.3g} (IQR {q1:.3g}-{q3:.3g})"
