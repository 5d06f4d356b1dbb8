"""Warnings about one patient's inputs, against what the fitted pipeline saw in training.

Four kinds, each a plain sentence for the clinical app:

* a predictor outside its central 99% training range (the model has seen few such patients);
* a category never seen in training (encoded as none of the seen categories);
* a category seen in training with fewer than :data:`MIN_CATEGORY_EVENTS` patients who had the
  outcome: what the model says about it rests on few outcomes (a CAR target given to 92
  patients in the real-world mix, none of whom had the outcome, says little about the one
  patient who will);
* an optional input that was not given (treated as missing, never as 0); the daily series
  not charted in one sentence, and none for a series only some centres measure.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from sklearn.pipeline import Pipeline

from features import display
from features.learned import CATEGORY_VOCABULARY, category_codes
from icans.contract import COURSE
from icans.daily_routine import DAILY_ROUTINE

_COURSE = {spec.name: spec for spec in COURSE}
MIN_CATEGORY_EVENTS = 10

Support = dict[str, dict[str, tuple[int, int]]]


def category_support(raw: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Support:
    """Per category field (CAR target, costimulatory domain, CAR-T product, disease group) and
    value: the training patients with it and those among them with the outcome (a patient has
    it when any of its landmark rows has ``y = 1``)."""
    patients, first = np.unique(groups, return_index=True)
    event = np.zeros(len(patients), dtype=bool)
    np.logical_or.at(event, np.searchsorted(patients, groups), np.asarray(y) == 1)
    out: Support = {}
    for field, codes in category_codes(np.asarray(raw, dtype=float)[first]).items():
        out[field] = {
            value: (int((codes == c).sum()), int(event[codes == c].sum()))
            for c, value in enumerate(CATEGORY_VOCABULARY[field])
            if (codes == c).any()
        }
    return out


def input_warnings(
    feature_pipeline: Pipeline,
    raw: np.ndarray,
    features: np.ndarray,
    missing: list[str],
    support: Support | None = None,
) -> list[str]:
    """Warnings for one row (``raw`` and its ``features``, both 2-D with one row); ``support``
    from :func:`category_support` (None: a model fitted before it was recorded)."""
    return batch_warnings(feature_pipeline, raw, features, [missing], support)[0]


def batch_warnings(
    feature_pipeline: Pipeline,
    raw: np.ndarray,
    features: np.ndarray,
    missing: list[list[str]],
    support: Support | None = None,
) -> list[list[str]]:
    """:func:`input_warnings` of every row: the comparisons with training made once for all
    rows, the sentences per row. ``features`` starts with the pipeline's predictors; a column
    the model adds after them (a horizon's window, :mod:`model.risk_model`) is no input and is
    not checked."""
    categories = dict(feature_pipeline.named_steps["features"].steps_)["categories"]
    seen = {field: set(codes.tolist()) for field, codes in categories.codes_.items()}
    # the fields the model reads: one fitted before the CAR-T product was a field, or on a
    # cohort that never recorded it, has no indicator of it and nothing to warn about
    codes = {
        f: c.tolist()
        for f, c in category_codes(np.asarray(raw, dtype=float)).items()
        if seen.get(f)
    }
    ranges = feature_pipeline.named_steps["ranges"]
    low = np.where(np.isnan(ranges.lower_), -np.inf, ranges.lower_)
    high = np.where(np.isnan(ranges.upper_), np.inf, ranges.upper_)
    features = np.asarray(features)[:, : len(low)]
    outside = (features < low) | (features > high)
    names = feature_pipeline.get_feature_names_out() if outside.any() else []
    return [
        _category_warnings({f: c[i] for f, c in codes.items()}, seen, support)
        + _range_warnings(names, features[i], np.flatnonzero(outside[i]), low, high)
        + _missing_warnings(missing[i])
        for i in range(len(raw))
    ]


def _category_warnings(codes: dict[str, float], seen: dict[str, set], support) -> list[str]:
    """A category never seen in training, or seen with few outcomes."""
    out, few = [], []
    for field, code in codes.items():
        if code != code:  # NaN: not given
            continue
        value = CATEGORY_VOCABULARY[field][int(code)]
        if code not in seen[field]:
            out.append(
                f"{field} {value!r} was not seen in training: the model uses the other "
                "predictors only for it"
            )
            continue
        if support is None or value not in support.get(field, {}):
            continue
        patients, events = support[field][value]
        if events < MIN_CATEGORY_EVENTS:
            few.append(
                f"{display.label(field + '=' + value)}: {patients:,} training patients, "
                f"{events} with the outcome (fewer than {MIN_CATEGORY_EVENTS}): what the model "
                "says about it rests on few outcomes and is less reliable"
            )
    return out + few


def _range_warnings(names, x: np.ndarray, outside: np.ndarray, low, high) -> list[str]:
    """Predictors outside their central training range (indicators are covered by the
    unseen-category warning)."""
    out = []
    for j in outside:
        name = names[j]
        if "=" in name:
            continue
        value = cast(float, x[j])  # x is a row of floats: a float64, a float subclass
        out.append(
            f"{display.label(name)} {display.value_text(name, value)} is outside the "
            f"training range ({display.value_text(name, low[j])} to "
            f"{display.value_text(name, high[j])}): the estimate is less reliable"
        )
    return out


def _missing_warnings(missing: list[str]) -> list[str]:
    """Inputs not given (``missing``: field names, :func:`features.packing.missing_inputs`).

    An optional baseline field: one sentence each (treated as missing). A course of grades or
    treatment: one sentence each (the estimate averages over what it might have shown). The
    daily series a ward charts: one sentence for all of them, since a centre that does not chart
    one usually leaves out several, and seven sentences would bury the others. A series only some
    centres measure (``FieldSpec.routine`` False: CAR-T counts, IL-6): none, since leaving it out
    is the usual case and the model answers without it (the model report's input-set table says
    how well)."""
    out, uncharted = [], []
    for field in missing:
        spec = _COURSE.get(field)
        if spec is None:
            out.append(f"{field} not given: treated as missing")
        elif not spec.routine:
            continue
        elif spec in DAILY_ROUTINE:
            uncharted.append(spec.label)
        else:
            out.append(
                f"{field} not given: the estimate averages over what it might have shown "
                "and is less reliable; give the course so far if it is known"
            )
    if uncharted:
        out.append(
            f"daily series not given ({', '.join(uncharted)}): the estimate averages over what "
            "they might have shown and is less reliable; give them if they were charted"
        )
    return out
