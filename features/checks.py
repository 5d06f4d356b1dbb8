"""Warnings about one patient's inputs, against what the fitted pipeline saw in training.

Three kinds, each a plain sentence for the clinical app:

* a predictor outside its central 99% training range (the model has seen few such patients);
* a category never seen in training (encoded as none of the seen categories);
* an optional input that was not given (treated as missing, never as 0).
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline

from features import display
from features.layout import COURSE_SERIES

COURSE_FIELDS = set(COURSE_SERIES.values())


def input_warnings(
    feature_pipeline: Pipeline, raw: np.ndarray, features: np.ndarray, missing: list[str]
) -> list[str]:
    """Warnings for one row (``raw`` and its ``features``, both 2-D with one row)."""
    out = []
    categories = dict(feature_pipeline.named_steps["features"].steps_)["categories"]
    for field, value in categories.unseen(raw):
        out.append(
            f"{field} {value!r} was not seen in training: the model uses the other "
            "predictors only for it"
        )
    ranges = feature_pipeline.named_steps["ranges"]
    names = feature_pipeline.get_feature_names_out()
    x = features[0]
    low = np.where(np.isnan(ranges.lower_), -np.inf, ranges.lower_)
    high = np.where(np.isnan(ranges.upper_), np.inf, ranges.upper_)
    outside = np.flatnonzero((x < low) | (x > high))
    for j in outside:
        name = names[j]
        if "=" in name:
            continue  # indicators: covered by the unseen-category warning
        out.append(
            f"{display.label(name)} {display.value_text(name, x[j])} is outside the "
            f"training range ({display.value_text(name, low[j])} to "
            f"{display.value_text(name, high[j])}): the estimate is less reliable"
        )
    for field in missing:
        if field in COURSE_FIELDS:
            out.append(
                f"{field} not given: the estimate averages over what it might have shown "
                "and is less reliable; give the course so far if it is known"
            )
        else:
            out.append(f"{field} not given: treated as missing")
    return out
