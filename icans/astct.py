"""ASTCT 2019 consensus grading of ICANS and CRS, as a library.

This module grades immune effector cell-associated neurotoxicity syndrome (ICANS) and cytokine
release syndrome (CRS) exactly as the ASTCT consensus tables define them:

    Lee DW, Santomasso BD, Locke FL, et al. "ASTCT Consensus Grading for Cytokine Release
    Syndrome and Neurologic Toxicity Associated with Immune Effector Cells."
    Biol Blood Marrow Transplant 2019;25(4):625-638. doi:10.1016/j.bbmt.2018.12.758

Children younger than 12 years (and older patients with baseline developmental delay, as the
ASCO guideline allows) are assessed with the Cornell Assessment of Pediatric Delirium (CAPD)
instead of the ICE score:

    Traube C, Silver G, Kearney J, et al. "Cornell Assessment of Pediatric Delirium: a valid,
    rapid, observational tool for screening delirium in the PICU." Crit Care Med
    2014;42(3):656-663. (8 items scored 0-4, total 0-32; a total >= 9 indicates delirium.)

One rule, one place
-------------------
Every grading rule lives in exactly one place, :mod:`icans.astct_rules`: the integer look-up
tables and the vectorised functions (:func:`ice_domain_grade`, :func:`capd_domain_grade`,
:func:`icans_grade_codes`, :func:`crs_grade_codes`), re-exported here. The fast cohort
generator calls those on numpy arrays of small integer codes (one element per patient-day); the
scalar public API (:func:`grade_icans`, :func:`grade_crs`) only validates its inputs, converts
them to codes and calls the same functions, so the two can never disagree.

An enum member's *code* is its position in the enum's declaration order (``Consciousness.ALERT``
is 0 ... ``Consciousness.UNAROUSABLE`` is 4). The unable-to-perform ICE/CAPD assessment (patient
unarousable) is coded :data:`ICE_UNABLE` (-1) in ICE and CAPD arrays.

Out of scope (as in the consensus)
----------------------------------
* Grade 5 (death due to ICANS or CRS) is an outcome, not an assessment; it is never returned.
* Tremor, myoclonus and other neurological or organ toxicities are graded with CTCAE v5.0 and do
  not influence the ICANS or CRS grade, so they are not modelled.
* Whether a fever is "attributable to another cause" (e.g. infection) is a clinical judgement
  the caller makes before passing the temperature.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import Enum
from typing import Any, TypeVar

import numpy as np

from icans.astct_rules import (
    CANNULAS,
    CAPD_AGE_LIMIT_YEARS,
    CAPD_DELIRIUM_THRESHOLD,
    CAPD_MAX,
    CONSCIOUSNESS_GRADE,
    EDEMA_GRADE,
    FEVER_THRESHOLD_C,
    HYPOTENSION_GRADE,
    HYPOXIA_GRADE,
    ICE_MAX,
    ICE_UNABLE,
    LOW_FLOW_MAX_L_PER_MIN,
    MOTOR_GRADE,
    OXYGEN_DEVICES,
    SEIZURE_GRADE,
    VASOPRESSORS,
    CerebralEdema,
    Consciousness,
    Hypotension,
    Hypoxia,
    MotorFinding,
    Seizure,
    capd_domain_grade,
    crs_grade_codes,
    icans_grade_codes,
    ice_domain_grade,
)
from icans.errors import InvalidInputError

_AGE_RANGE_YEARS = (0.0, 120.0)
# Plausible body temperature in Celsius; anything outside is a unit or typing error (98.6 F).
_TEMPERATURE_RANGE_C = (25.0, 45.0)
_FLOW_RANGE_L_PER_MIN = (0.0, 100.0)

__all__ = [
    "CANNULAS",
    "CAPD_AGE_LIMIT_YEARS",
    "CAPD_DELIRIUM_THRESHOLD",
    "CAPD_MAX",
    "CONSCIOUSNESS_GRADE",
    "EDEMA_GRADE",
    "FEVER_THRESHOLD_C",
    "HYPOTENSION_GRADE",
    "HYPOXIA_GRADE",
    "ICE_MAX",
    "ICE_UNABLE",
    "LOW_FLOW_MAX_L_PER_MIN",
    "MOTOR_GRADE",
    "OXYGEN_DEVICES",
    "SEIZURE_GRADE",
    "VASOPRESSORS",
    "CerebralEdema",
    "Consciousness",
    "Hypotension",
    "Hypoxia",
    "MotorFinding",
    "Seizure",
    "capd_domain_grade",
    "classify_oxygen",
    "classify_vasopressors",
    "crs_grade_codes",
    "grade_crs",
    "grade_icans",
    "icans_grade_codes",
    "ice_domain_grade",
]


# --------------------------------------------------------------------------------------------
# Scalar public API: validate, convert to codes, call the vectorised rules
# --------------------------------------------------------------------------------------------

_E = TypeVar("_E", bound=Enum)


def _enum(enum_cls: type[_E], value: Any, field: str) -> _E:
    allowed = ", ".join(repr(m.value) for m in enum_cls)
    expected = f"a {enum_cls.__name__} or one of {allowed}"
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, Enum):  # a member of another enum, even if its value matches
        raise InvalidInputError(field, value, expected)
    if isinstance(value, str):
        try:
            return enum_cls(value)
        except ValueError:
            pass
    raise InvalidInputError(field, value, expected)


def _code(member: Enum) -> int:
    return list(type(member)).index(member)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_bool(value: Any, field: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(field, value, "True or False")
    return bool(value)


def _check_number(value: Any, field: str, bounds: tuple[float, float], unit: str) -> float:
    low, high = bounds
    if not _is_real(value) or not low <= value <= high:
        raise InvalidInputError(field, value, f"a number {low:g}-{high:g} {unit}")
    return float(value)


def grade_icans(
    *,
    age_years: float,
    consciousness: Consciousness | str,
    ice_score: int | None = None,
    capd_score: int | None = None,
    assessment_impossible: bool = False,
    seizure: Seizure | str = Seizure.NONE,
    motor: MotorFinding | str = MotorFinding.NONE,
    cerebral_edema: CerebralEdema | str = CerebralEdema.NONE,
    developmental_delay: bool = False,
) -> int:
    """ASTCT ICANS grade (0-4) of one assessment.

    Implements Lee DW, Santomasso BD, Locke FL, et al., Biol Blood Marrow Transplant
    2019;25(4):625-638, Table 5 (adults and children >= 12 y, ICE score) and Table 6 (children
    < 12 y, CAPD; Traube et al., Crit Care Med 2014;42(3):656). Following the ASCO guideline,
    CAPD is also used from 12 years when the patient has baseline developmental delay. The grade
    is the most severe of the domains:

    ======================  =====  ======  =======  ==============  ====================
    domain                  0      1       2        3               4
    ======================  =====  ======  =======  ==============  ====================
    ICE (0-10 points)       10     7-9     3-6      0-2             unable, unarousable
    CAPD (0-32 points)      0      1-8     --       >= 9            unable, unarousable
    consciousness           alert  spont.  voice    tactile         unarousable / coma
    seizure                 none   --      --       rapidly resolv  life-threatening
    motor                   none   --      --       --              deep focal weakness
    ICP / oedema            none   --      --       focal           diffuse / raised ICP
    ======================  =====  ======  =======  ==============  ====================

    Grade 5 (death due to ICANS) is an outcome and is never returned. Tremor and myoclonus are
    graded with CTCAE and do not affect the ICANS grade. The grade is computed by
    :func:`ice_domain_grade` / :func:`capd_domain_grade` and :func:`icans_grade_codes`.

    Parameters
    ----------
    age_years : float
        Age in years, 0-120. Below :data:`CAPD_AGE_LIMIT_YEARS` (12) the CAPD is used.
    consciousness : Consciousness or str
        Depressed level of consciousness.
    ice_score : int, optional
        ICE score, points 0-10; required (unless ``assessment_impossible``) for patients
        >= 12 y without developmental delay, forbidden otherwise.
    capd_score : int, optional
        CAPD total, points 0-32; required (unless ``assessment_impossible``) for children < 12 y
        or with developmental delay, forbidden otherwise.
    assessment_impossible : bool, default False
        The ICE/CAPD could not be performed because the patient is unarousable; the score must
        then be None and ``consciousness`` must be ``UNAROUSABLE``.
    seizure : Seizure or str, default NONE
    motor : MotorFinding or str, default NONE
    cerebral_edema : CerebralEdema or str, default NONE
        Elevated intracranial pressure / cerebral oedema.
    developmental_delay : bool, default False
        Baseline developmental delay (CAPD instead of ICE from 12 years).

    Returns
    -------
    int
        ICANS grade 0-4.

    Raises
    ------
    InvalidInputError
        Any input breaking the rules above (field, value and rule are named).
    """
    age = _check_number(age_years, "age_years", _AGE_RANGE_YEARS, "years")
    consciousness_m = _enum(Consciousness, consciousness, "consciousness")
    seizure_m = _enum(Seizure, seizure, "seizure")
    motor_m = _enum(MotorFinding, motor, "motor")
    edema_m = _enum(CerebralEdema, cerebral_edema, "cerebral_edema")
    impossible = _check_bool(assessment_impossible, "assessment_impossible")
    delayed = _check_bool(developmental_delay, "developmental_delay")

    uses_capd = age < CAPD_AGE_LIMIT_YEARS or delayed
    who = (
        f"age < {CAPD_AGE_LIMIT_YEARS} y or developmental delay"
        if uses_capd
        else f"age >= {CAPD_AGE_LIMIT_YEARS} y without developmental delay"
    )
    if uses_capd:
        used, used_value, top = "capd_score", capd_score, CAPD_MAX
        other, other_value = "ice_score", ice_score
    else:
        used, used_value, top = "ice_score", ice_score, ICE_MAX
        other, other_value = "capd_score", capd_score

    if other_value is not None:
        raise InvalidInputError(other, other_value, f"None: with {who}, {used} is the assessment")
    if impossible:
        if used_value is not None:
            raise InvalidInputError(
                used, used_value, "None when assessment_impossible=True (patient unarousable)"
            )
        if consciousness_m is not Consciousness.UNAROUSABLE:
            raise InvalidInputError(
                "assessment_impossible",
                True,
                "True only when consciousness is 'unarousable' (unable to perform ICE/CAPD "
                f"because unarousable); consciousness is {consciousness_m.value!r}",
            )
        score = ICE_UNABLE
    else:
        if used_value is None:
            raise InvalidInputError(
                used,
                None,
                f"an integer 0-{top} (with {who}), or assessment_impossible=True if the patient "
                "is unarousable",
            )
        if not _is_int(used_value) or not 0 <= used_value <= top:
            raise InvalidInputError(used, used_value, f"an integer 0-{top} (with {who})")
        score = int(used_value)

    domain = capd_domain_grade if uses_capd else ice_domain_grade
    grade = icans_grade_codes(
        domain(np.array([score])),
        np.array([_code(consciousness_m)]),
        np.array([_code(seizure_m)]),
        np.array([_code(motor_m)]),
        np.array([_code(edema_m)]),
    )
    return int(grade[0])


def grade_crs(
    *,
    temperature_c: float,
    hypotension: Hypotension | str = Hypotension.NONE,
    hypoxia: Hypoxia | str = Hypoxia.NONE,
    fever_masked_by_treatment: bool = False,
) -> int:
    """ASTCT CRS grade (0-4) of one assessment.

    Implements Lee DW, Santomasso BD, Locke FL, et al., Biol Blood Marrow Transplant
    2019;25(4):625-638, Table 3. Fever is a temperature >= 38.0 C not attributable to any other
    cause (the caller decides attribution). Without fever there is no CRS (grade 0). With fever
    the grade is the more severe of:

    ===========  ================  ====================  ===========================
    grade        2                 3                     4
    ===========  ================  ====================  ===========================
    hypotension  no vasopressor    one vasopressor       multiple vasopressors
                                   (+/- vasopressin)     (excluding vasopressin)
    hypoxia      low-flow nasal    high-flow nasal       positive pressure (CPAP,
                 cannula <= 6      cannula > 6 L/min,    BiPAP, intubation and
                 L/min, blow-by    facemask, NRB,        mechanical ventilation)
                                   Venturi
    ===========  ================  ====================  ===========================

    and at least grade 1 (fever alone). Consensus footnote: in patients who had CRS and then
    received antipyretics or anti-cytokine therapy (tocilizumab, steroids), fever is no longer
    required: with ``fever_masked_by_treatment=True`` and no fever the grade is the more severe
    of hypotension and hypoxia (grade 1 cannot be assigned without fever). Grade 5 (death due to
    CRS) is never returned; organ toxicities (CTCAE) do not influence the grade. The grade is
    computed by :func:`crs_grade_codes`.

    Parameters
    ----------
    temperature_c : float
        Body temperature, degrees Celsius (25-45; values outside are rejected as unit errors).
    hypotension : Hypotension or str, default NONE
    hypoxia : Hypoxia or str, default NONE
        Oxygen support required; see :func:`classify_oxygen`.
    fever_masked_by_treatment : bool, default False
        CRS was already treated with antipyretics or anti-cytokine therapy.

    Returns
    -------
    int
        CRS grade 0-4.

    Raises
    ------
    InvalidInputError
        Any input breaking the rules above (field, value and rule are named).
    """
    temperature = _check_number(temperature_c, "temperature_c", _TEMPERATURE_RANGE_C, "degrees C")
    hypotension_m = _enum(Hypotension, hypotension, "hypotension")
    hypoxia_m = _enum(Hypoxia, hypoxia, "hypoxia")
    masked = _check_bool(fever_masked_by_treatment, "fever_masked_by_treatment")
    grade = crs_grade_codes(
        np.array([temperature >= FEVER_THRESHOLD_C]),
        np.array([_code(hypotension_m)]),
        np.array([_code(hypoxia_m)]),
        fever_masked=np.array([masked]),
    )
    return int(grade[0])


def classify_oxygen(device: str, flow_l_per_min: float | None = None) -> Hypoxia:
    """Hypoxia level (ASTCT CRS parameter) implied by the oxygen support a patient requires.

    Lee DW, Santomasso BD, Locke FL, et al., Biol Blood Marrow Transplant 2019;25(4):625-638,
    Table 3 and footnotes: low-flow nasal cannula is oxygen at <= 6 L/min, and blow-by is also
    low flow; high-flow nasal cannula is oxygen at > 6 L/min; facemask, non-rebreather and
    Venturi masks count with high flow; CPAP, BiPAP, intubation and mechanical ventilation are
    positive pressure. The consensus defines the cannula's level by the flow, not by the name of
    the device: a "high-flow" cannula running at 4 L/min is low flow.

    Parameters
    ----------
    device : str
        One of the keys of :data:`OXYGEN_DEVICES`: ``"none"``, ``"nasal_cannula"``,
        ``"blow_by"``, ``"high_flow_nasal_cannula"``, ``"facemask"``, ``"non_rebreather"``,
        ``"venturi"``, ``"cpap"``, ``"bipap"``, ``"mechanical_ventilation"``.
    flow_l_per_min : float, optional
        Oxygen flow, L/min (0-100). Required for either cannula (:data:`CANNULAS`: > 6 L/min is
        high flow, so the level cannot be known without it); must be None or 0 for ``"none"``;
        checked but not used for the other devices (their level is fixed by the device).

    Returns
    -------
    Hypoxia

    Raises
    ------
    InvalidInputError
        Unknown device, a flow that is not a number 0-100, a missing cannula flow, or a
        positive flow with device ``"none"``.
    """
    if not isinstance(device, str) or device not in OXYGEN_DEVICES:
        allowed = ", ".join(repr(d) for d in OXYGEN_DEVICES)
        raise InvalidInputError("device", device, f"one of {allowed}")
    flow = None
    if flow_l_per_min is not None:
        flow = _check_number(flow_l_per_min, "flow_l_per_min", _FLOW_RANGE_L_PER_MIN, "L/min")
    if device == "none" and flow:
        raise InvalidInputError("flow_l_per_min", flow_l_per_min, "None or 0 when device is 'none'")
    if device in CANNULAS:
        if flow is None:
            raise InvalidInputError(
                "flow_l_per_min",
                None,
                f"a number 0-100 L/min for {device!r} (> {LOW_FLOW_MAX_L_PER_MIN:g} L/min is "
                "high flow)",
            )
        if flow > LOW_FLOW_MAX_L_PER_MIN:
            return Hypoxia.HIGH_FLOW
    return OXYGEN_DEVICES[device]


def classify_vasopressors(hypotension: bool, vasopressors: Iterable[str] = ()) -> Hypotension:
    """Hypotension level (ASTCT CRS parameter) implied by the vasopressors a patient requires.

    Lee DW, Santomasso BD, Locke FL, et al., Biol Blood Marrow Transplant 2019;25(4):625-638,
    Table 3: grade 2 "hypotension not requiring vasopressors"; grade 3 "requiring a vasopressor
    with or without vasopressin"; grade 4 "requiring multiple vasopressors (excluding
    vasopressin)". So vasopressin plus one other agent is one vasopressor (grade 3), vasopressin
    alone is one vasopressor (grade 3), and two agents other than vasopressin are multiple
    (grade 4). An agent named twice counts once.

    Parameters
    ----------
    hypotension : bool
        Whether the patient is hypotensive (with or without vasopressors).
    vasopressors : iterable of str
        Agents running, each one of :data:`VASOPRESSORS`.

    Raises
    ------
    InvalidInputError
        ``hypotension`` not a bool, an unknown agent, or vasopressors without hypotension.
    """
    hypotension = _check_bool(hypotension, "hypotension")
    if isinstance(vasopressors, str):
        raise InvalidInputError("vasopressors", vasopressors, "a list of agent names")
    agents = set()
    for i, agent in enumerate(vasopressors):
        if agent not in VASOPRESSORS:
            allowed = ", ".join(repr(v) for v in VASOPRESSORS)
            raise InvalidInputError(f"vasopressors[{i}]", agent, f"one of {allowed}")
        agents.add(agent)
    if agents and not hypotension:
        raise InvalidInputError(
            "hypotension", False, "True when vasopressors are given (they treat hypotension)"
        )
    others = agents - {"vasopressin"}
    if len(others) >= 2:
        return Hypotension.MULTIPLE_VASOPRESSORS
    if agents:
        return Hypotension.ONE_VASOPRESSOR
    return Hypotension.NO_VASOPRESSOR if hypotension else Hypotension.NONE
