"""Rules between the daily charted series: who may have which score charted, and what an ICE or
CAPD score says about the day's ICANS grade.

Lee DW, Santomasso BD, Locke FL, et al. "ASTCT Consensus Grading for Cytokine Release Syndrome
and Neurologic Toxicity Associated with Immune Effector Cells." Biol Blood Marrow Transplant
2019;25(4):625-638: encephalopathy is assessed with the ICE score from 12 years and with the
CAPD below 12 (Tables 5 and 6), and the ICANS grade is the worst of its domains, so a day's
ICANS grade is at least the grade its ICE (or CAPD) score gives on its own.

Both rules are read from the contract (``FieldSpec.age_window``) and the ASTCT tables
(:func:`icans.astct_rules.ice_domain_grade`, :func:`icans.astct_rules.capd_domain_grade`):
nothing here restates an age or a band. The endpoint (:mod:`api.patient`) and the cohort checks
(:mod:`cohort.consistency`) both call these functions, so a request and a cohort row are judged
alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from icans.astct_rules import capd_domain_grade, ice_domain_grade
from icans.contract import COURSE, FieldSpec

#: The course fields charted only in an age window (the ICE score, the CAPD score).
AGE_WINDOWED: tuple[FieldSpec, ...] = tuple(f for f in COURSE if f.age_window is not None)

# The ASTCT domain grade of each encephalopathy score, by the score's table column.
_DOMAIN_GRADE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ice_score": ice_domain_grade,
    "capd_score": capd_domain_grade,
}
#: The course fields whose value bounds the day's ICANS grade from below.
GRADE_BOUNDING: tuple[FieldSpec, ...] = tuple(f for f in COURSE if f.table_column in _DOMAIN_GRADE)
assert {f.table_column for f in GRADE_BOUNDING} == set(_DOMAIN_GRADE)


def age_span(spec: FieldSpec) -> str:
    """'from 12 years', 'below 12 years' or 'from 2 to below 12 years'."""
    assert spec.age_window is not None
    low, high = spec.age_window
    if math.isinf(high):
        return f"from {low:g} years"
    if low <= 0:
        return f"below {high:g} years"
    return f"from {low:g} to below {high:g} years"


def in_age_window(spec: FieldSpec, age_years: np.ndarray | list[float]) -> np.ndarray:
    """Whether each age lies in the field's window (``low <= age < high``); True where the
    field has no window or the age is unknown (NaN: nothing to judge)."""
    age = np.asarray(age_years, dtype=float)
    if spec.age_window is None:
        return np.ones(age.shape, dtype=bool)
    low, high = spec.age_window
    return np.isnan(age) | ((age >= low) & (age < high))


def age_window_rule(spec: FieldSpec, age_years: float) -> str:
    """Why ``spec`` may not be charted for a patient of ``age_years``, in words: 'no ICE score
    for a patient aged 9 years: ASTCT 2019 charts the ICE score from 12 years; the CAPD score
    below 12 years is the one for this age'."""
    others = [
        f
        for f in AGE_WINDOWED
        if f is not spec and f.value_key == spec.value_key and in_age_window(f, [age_years])[0]
    ]
    instead = "".join(f"; the {f.label} {age_span(f)} is the one for this age" for f in others)
    return (
        f"no {spec.label} for a patient aged {age_years:g} years: ASTCT 2019 charts the "
        f"{spec.label} {age_span(spec)}{instead}"
    )


def domain_grade(spec: FieldSpec, scores: np.ndarray) -> np.ndarray:
    """The ICANS domain grade each score gives (float; NaN where the score is missing, not a
    whole number or outside the field's range: such a value is refused by its own rule)."""
    values = np.asarray(scores, dtype=float)
    assert spec.low is not None and spec.high is not None
    with np.errstate(invalid="ignore"):  # inf % 1 is NaN: not whole, no warning
        whole = values % 1 == 0
    ok = np.isfinite(values) & whole & (values >= spec.low) & (values <= spec.high)
    out = np.full(values.shape, np.nan)
    out[ok] = _DOMAIN_GRADE[spec.table_column](values[ok].astype(np.int64))
    return out


def grade_floor_rule(spec: FieldSpec, score: float, floor: float) -> str:
    """The rule an ICANS grade below its day's score's domain grade breaks, in words."""
    return (
        f"at least {floor:g} on a day with {spec.label} {score:g} (ASTCT 2019: the ICANS grade "
        f"is the worst of its domains, and {spec.label} {score:g} alone is grade {floor:g})"
    )
