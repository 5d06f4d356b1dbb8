"""Input sets: which predictors a model may use, by the inputs they are computed from.

For comparing models fitted on less than everything (an "input-set" table): a centre without
CAR-T flow cytometry or IL-6, a decision before infusion, the predictors the product's owner
named. :class:`features.transformers.ClinicalFeatures` takes one as ``inputs``:

``"all"``
    every predictor.
``"routine"``
    what every CAR-T ward charts: everything except the predictors read from the CD4+/CD8+
    CAR-T counts (flow cytometry, at few centres; "unclear utility in short-term management",
    How I treat CAR-T toxicities 2023) and from IL-6 (measured at some centres only).
``"baseline"``
    what is known before infusion (product, disease, dose, marrow disease, comorbidity, the
    labs before lymphodepletion and the scores from them), and the landmark day.
``"named"``
    the predictors computed from the fields the owner named in the project's shared vocabulary
    (the contract's first generation, :data:`features.layout.GENERATIONS`: the patient fields,
    CRS grade, CD4+/CD8+ CAR-T cells and ICANS grade), and the landmark day; not the fields
    added since (marrow involvement, treatment, the daily routine, the CAR-T product).

The landmark day is in every set: it is when the prediction is made, not an observation, and
the risk after day L changes with L.
"""

from __future__ import annotations

import numpy as np

from features.daily import daily_steps, lab_names
from features.layout import GENERATIONS
from icans.contract import BASELINE
from icans.errors import InvalidInputError

# The input group each default step of ClinicalFeatures reads (by the step's name there).
STEP_GROUP: dict[str, str] = {
    "categories": "baseline",
    "baseline": "baseline",
    "labs": "baseline",
    "inflammation": "baseline",
    "landmark": "day",
    "crs": "grades",
    "icans": "grades",
    "expansion": "car_t",
    "expansion_level": "car_t",
    "expansion_shape": "car_t",
    "expansion_timing": "car_t",
    "expansion_curve": "car_t",
    "treatment": "treatment",
    # the daily routine (features.daily); IL-6's predictors apart (IL6_PREDICTORS)
    **{name: "routine" for name, _ in daily_steps()},
}
# IL-6 is measured at some centres only: its predictors are a group of their own, by name
# (the daily labs are one step).
IL6_PREDICTORS = frozenset(lab_names("il6_pg_per_ml"))
# Baseline fields added to the contract after the owner's first generation (predictors that
# are such a field as entered carry its name; a category's indicators, ``field=value``).
ADDED_BASELINE = frozenset(f.name for f in BASELINE[GENERATIONS[0][0] :])

_EVERY = frozenset({*STEP_GROUP.values(), "baseline_added", "il6"})
INPUT_SETS: dict[str, frozenset[str]] = {
    "all": _EVERY,
    "routine": _EVERY - {"car_t", "il6"},
    "baseline": frozenset({"baseline", "baseline_added", "day"}),
    "named": frozenset({"baseline", "day", "grades", "car_t"}),
}
# What each set holds, in a few words (for tables).
INPUT_SET_LABELS: dict[str, str] = {
    "all": "every input",
    "routine": "no CAR-T counts, no IL-6",
    "baseline": "known before infusion",
    "named": "the owner's named predictors",
}


def check_inputs(inputs: str) -> None:
    """Refuse an input set that is not one of :data:`INPUT_SETS`, naming the allowed ones."""
    if inputs not in INPUT_SETS:
        raise InvalidInputError("inputs", inputs, "one of " + ", ".join(INPUT_SETS))


def kept(step: str, names: np.ndarray, inputs: str) -> np.ndarray:
    """Which of a step's predictors ``names`` the input set ``inputs`` keeps (a boolean mask).

    Every predictor is kept with ``"all"``, whatever the step; otherwise a step not in
    :data:`STEP_GROUP` is refused (its inputs are not known)."""
    check_inputs(inputs)
    if inputs == "all":
        return np.ones(len(names), dtype=bool)
    if step not in STEP_GROUP:
        raise InvalidInputError(
            "inputs",
            inputs,
            f"'all' with the feature step {step!r}, whose inputs are not classified "
            "(features.input_sets.STEP_GROUP)",
        )
    group = STEP_GROUP[step]
    groups = [
        "il6"
        if name in IL6_PREDICTORS
        else "baseline_added"
        if group == "baseline" and name.split("=", 1)[0] in ADDED_BASELINE
        else group
        for name in names
    ]
    return np.array([g in INPUT_SETS[inputs] for g in groups], dtype=bool)
