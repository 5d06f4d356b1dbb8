"""One validated patient packed into the raw layout: the row the feature pipeline reads.

The patient is any object with the contract's fields as attributes (the request model,
:class:`api.patient.PatientObservation`, in practice); this module reads them and never
validates: validation happens at the boundary, before a patient reaches it.
"""

from __future__ import annotations

import numpy as np

from features.inputs import PREDICTOR_INPUTS
from features.layout import CATEGORY_CODE, COLUMN_INDEX, COURSE_SERIES, NUMERIC_FIELDS, RAW_COLUMNS
from icans.contract import BASELINE, COURSE, PREDICTION_DAY

_BASELINE_INDEX = {f: COLUMN_INDEX[f] for f in NUMERIC_FIELDS}
_SERIES_START = {field: COLUMN_INDEX[f"{s}_d00"] for s, field in COURSE_SERIES.items()}
_VALUE_KEY = {spec.name: spec.value_key for spec in COURSE}


def to_raw(patient) -> np.ndarray:
    """The patient as one row of the raw layout (shape (1, n)), without building a DataFrame."""
    row = np.full(len(RAW_COLUMNS), np.nan)
    for field, i in _BASELINE_INDEX.items():
        value = getattr(patient, field)
        if value is not None:
            row[i] = float(value)
    for field, codes in CATEGORY_CODE.items():
        value = getattr(patient, field)
        if value is not None:
            row[COLUMN_INDEX[field]] = codes[value]
    row[COLUMN_INDEX[PREDICTION_DAY.name]] = patient.day_since_infusion
    for field, start in _SERIES_START.items():
        key = _VALUE_KEY[field]
        for obs in getattr(patient, field):
            row[start + obs.day] = getattr(obs, key)
    return row[None, :]


OPTIONAL_BASELINE = tuple(spec for spec in BASELINE if not spec.required)
# the contract fields some predictor is computed from (an indicator field=value: its field)
_READ_BY_MODEL = frozenset(f.split("=")[0] for i in PREDICTOR_INPUTS.values() for f, _ in i)


def missing_inputs(patient) -> list[str]:
    """Optional inputs the request left out (the model treats them as missing, never as 0).

    A field measured only in some diseases (marrow blasts in the leukaemias, marrow involvement
    in the others) is not missing for the rest, nor one charted only at some ages (the ICE score
    from 12 years, CAPD below: ``age_window``) at the other ages. A course list counts as left
    out only after day 0: on the day of infusion there is no course yet, and only if a predictor
    reads it (anakinra and intrathecal doses are read by the outcome check alone,
    :func:`api.patient.outcome_errors`: the model does not miss them)."""
    missing = [
        spec.name
        for spec in OPTIONAL_BASELINE
        if getattr(patient, spec.name) is None
        and (not spec.diseases or patient.disease in spec.diseases)
    ]
    if patient.day_since_infusion > 0:
        missing += [
            spec.name
            for spec in COURSE
            if not getattr(patient, spec.name)
            and spec.name in _READ_BY_MODEL
            and (
                spec.age_window is None
                or spec.age_window[0] <= patient.age_years < spec.age_window[1]
            )
        ]
    return missing
