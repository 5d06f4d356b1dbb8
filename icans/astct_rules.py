"""The ASTCT 2019 grading rules as data and vectorised functions: every rule in one place.

Lee DW, Santomasso BD, Locke FL, et al. "ASTCT Consensus Grading for Cytokine Release Syndrome
and Neurologic Toxicity Associated with Immune Effector Cells." Biol Blood Marrow Transplant
2019;25(4):625-638 (Tables 3, 5 and 6); CAPD for children < 12 years: Traube C et al., Crit
Care Med 2014;42(3):656-663.

The vocabulary of the findings (enums), the integer look-up tables of each domain's grade, and
the vectorised functions that grade arrays of small integer codes (one element per patient-day).
The cohort generator calls these directly; :mod:`icans.astct` validates one assessment, converts
it to codes and calls the same functions, so the two can never disagree. An enum member's code
is its position in the enum's declaration order.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from icans.errors import InvalidInputError

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


class Consciousness(StrEnum):
    """Depressed level of consciousness (ICANS domain; Lee et al. 2019, Table 5)."""

    ALERT = "alert"
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice"
    AWAKENS_TO_TACTILE = "awakens_to_tactile"
    UNAROUSABLE = "unarousable"  # or needs vigorous/repetitive tactile stimuli; stupor; coma


class Seizure(StrEnum):
    """Seizure (ICANS domain; Lee et al. 2019, Table 5)."""

    NONE = "none"
    # any clinical seizure, focal or generalized, that resolves rapidly, or non-convulsive
    # seizures on EEG that resolve with intervention
    RAPIDLY_RESOLVING = "rapidly_resolving"
    # prolonged seizure (> 5 min), or repetitive clinical or electrical seizures without return
    # to baseline in between
    LIFE_THREATENING = "life_threatening"


class MotorFinding(StrEnum):
    """Motor findings (ICANS domain; Lee et al. 2019, Table 5). Tremor/myoclonus: CTCAE only."""

    NONE = "none"
    DEEP_FOCAL_WEAKNESS = "deep_focal_weakness"  # hemiparesis, paraparesis


class CerebralEdema(StrEnum):
    """Elevated ICP / cerebral oedema (ICANS domain; Lee et al. 2019, Table 5)."""

    NONE = "none"
    FOCAL = "focal"  # focal/local oedema on neuroimaging
    # diffuse cerebral oedema on neuroimaging, decerebrate or decorticate posturing, cranial
    # nerve VI palsy, papilloedema, or Cushing's triad
    DIFFUSE_OR_RAISED_ICP = "diffuse_or_raised_icp"


class Hypotension(StrEnum):
    """Hypotension (CRS parameter; Lee et al. 2019, Table 3)."""

    NONE = "none"
    NO_VASOPRESSOR = "no_vasopressor"
    ONE_VASOPRESSOR = "one_vasopressor"  # with or without vasopressin
    MULTIPLE_VASOPRESSORS = "multiple_vasopressors"  # excluding vasopressin


class Hypoxia(StrEnum):
    """Hypoxia, by the oxygen support it requires (CRS parameter; Lee et al. 2019, Table 3)."""

    NONE = "none"
    LOW_FLOW = "low_flow"  # low-flow nasal cannula (<= 6 L/min) or blow-by
    HIGH_FLOW = "high_flow"  # high-flow nasal cannula (> 6 L/min), facemask, NRB, Venturi
    POSITIVE_PRESSURE = "positive_pressure"  # CPAP, BiPAP, intubation and mechanical ventilation


# --------------------------------------------------------------------------------------------
# Constants and the grading tables (the single source of every rule)
# --------------------------------------------------------------------------------------------

#: Children younger than this (years) are assessed with CAPD instead of ICE.
CAPD_AGE_LIMIT_YEARS = 12
#: ICE score range is 0..ICE_MAX.
ICE_MAX = 10
#: CAPD total range is 0..CAPD_MAX (8 items scored 0-4).
CAPD_MAX = 32
#: CAPD total at or above which delirium is present (ICANS grade 3).
CAPD_DELIRIUM_THRESHOLD = 9
#: Code, in ICE or CAPD arrays, for "unable to perform the assessment because unarousable".
ICE_UNABLE = -1
#: Fever for CRS: temperature >= this (degrees Celsius).
FEVER_THRESHOLD_C = 38.0
#: Oxygen via nasal cannula up to and including this flow (L/min) is low flow; above is high.
LOW_FLOW_MAX_L_PER_MIN = 6.0


def _table(values: list[int]) -> np.ndarray:
    array = np.asarray(values, dtype=np.int8)
    array.setflags(write=False)  # the rule cannot be edited at run time by accident
    return array


# Domain grade per enum code (position in declaration order).
CONSCIOUSNESS_GRADE = _table([0, 1, 2, 3, 4])  # alert, spontaneous, voice, tactile, unarousable
SEIZURE_GRADE = _table([0, 3, 4])  # none, rapidly resolving, life-threatening
MOTOR_GRADE = _table([0, 4])  # none, deep focal motor weakness
EDEMA_GRADE = _table([0, 3, 4])  # none, focal, diffuse / raised ICP
HYPOTENSION_GRADE = _table([0, 2, 3, 4])  # none, no pressor, one pressor, multiple pressors
HYPOXIA_GRADE = _table([0, 2, 3, 4])  # none, low flow, high flow, positive pressure

# ICE domain grade indexed by ``ice - ICE_UNABLE`` (index 0 is "unable", index 1 is ICE 0).
_ICE_GRADE = _table(
    [4]  # unable to perform ICE, unarousable -> grade 4
    + [3] * 3  # ICE 0-2 -> grade 3
    + [2] * 4  # ICE 3-6 -> grade 2
    + [1] * 3  # ICE 7-9 -> grade 1
    + [0]  # ICE 10 -> grade 0
)
# CAPD domain grade indexed by ``capd - ICE_UNABLE`` (index 0 is "unable", index 1 is CAPD 0).
_CAPD_GRADE = _table(
    [4]  # unable to perform CAPD, unarousable -> grade 4
    + [0]  # CAPD 0 -> grade 0
    + [1] * (CAPD_DELIRIUM_THRESHOLD - 1)  # CAPD 1-8 -> grade 1
    + [3] * (CAPD_MAX - CAPD_DELIRIUM_THRESHOLD + 1)  # CAPD 9-32 -> grade 3
)
assert _ICE_GRADE.size == ICE_MAX + 2 and _CAPD_GRADE.size == CAPD_MAX + 2

#: Oxygen delivery device -> hypoxia level. For a nasal cannula, whatever it is called, the
#: consensus defines the level by the flow (<= :data:`LOW_FLOW_MAX_L_PER_MIN` L/min low flow,
#: above it high flow): its entry here is the level at low flow (see :func:`classify_oxygen`).
OXYGEN_DEVICES: Mapping[str, Hypoxia] = MappingProxyType(
    {
        "none": Hypoxia.NONE,
        "nasal_cannula": Hypoxia.LOW_FLOW,
        "blow_by": Hypoxia.LOW_FLOW,
        "high_flow_nasal_cannula": Hypoxia.LOW_FLOW,
        "facemask": Hypoxia.HIGH_FLOW,
        "non_rebreather": Hypoxia.HIGH_FLOW,
        "venturi": Hypoxia.HIGH_FLOW,
        "cpap": Hypoxia.POSITIVE_PRESSURE,
        "bipap": Hypoxia.POSITIVE_PRESSURE,
        "mechanical_ventilation": Hypoxia.POSITIVE_PRESSURE,
    }
)
#: Devices whose level the flow decides (Lee et al. 2019, Table 3: "low-flow nasal cannula" is
#: oxygen delivered at <= 6 L/min, "high-flow nasal cannula" at > 6 L/min).
CANNULAS = ("nasal_cannula", "high_flow_nasal_cannula")

#: Vasopressors counted for the CRS hypotension level. Lee et al. 2019, Table 3: grade 3
#: "requiring a vasopressor with or without vasopressin", grade 4 "requiring multiple
#: vasopressors (excluding vasopressin)": vasopressin counts as a vasopressor only when it is the
#: only one.
VASOPRESSORS = (
    "norepinephrine",
    "epinephrine",
    "phenylephrine",
    "dopamine",
    "angiotensin_ii",
    "vasopressin",
)


# --------------------------------------------------------------------------------------------
# Vectorised rules (used by the cohort generator and, through them, by the scalar API)
# --------------------------------------------------------------------------------------------


def _int_codes(values: Any, field: str, low: int, high: int, expected: str) -> np.ndarray:
    """``values`` as an integer array with every element in ``low..high``, or raise."""
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise InvalidInputError(
            field, f"array of dtype {array.dtype}", f"an integer array of {expected}"
        )
    bad = (array < low) | (array > high)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0]) if array.ndim else ()
        where = f"index {index[0] if len(index) == 1 else index}" if index else None
        raise InvalidInputError(field, array[bad].flat[0].item(), expected, where=where)
    return array


def _codes_of(enum_cls: type[Enum], values: Any, field: str) -> np.ndarray:
    n = len(enum_cls)
    names = ", ".join(f"{i}={m.value}" for i, m in enumerate(enum_cls))
    return _int_codes(values, field, 0, n - 1, f"{enum_cls.__name__} codes 0-{n - 1} ({names})")


def ice_domain_grade(ice: np.ndarray) -> np.ndarray:
    """ICANS grade of the ICE-score domain, element-wise.

    Lee et al. 2019 (Biol Blood Marrow Transplant 25:625-638), Table 5, adults and children
    >= 12 years: ICE 10 -> 0; 7-9 -> 1; 3-6 -> 2; 0-2 -> 3; unable to perform ICE because the
    patient is unarousable -> 4.

    Parameters
    ----------
    ice : array_like of int
        ICE scores (points, 0-10), or :data:`ICE_UNABLE` (-1) for "unable, unarousable".

    Returns
    -------
    numpy.ndarray of int8
        Domain grade 0-4, same shape as ``ice``.

    Raises
    ------
    InvalidInputError
        Non-integer array, or an element outside -1..10.
    """
    codes = _int_codes(ice, "ice", ICE_UNABLE, ICE_MAX, f"ICE scores 0-{ICE_MAX} or -1 (unable)")
    return _ICE_GRADE[codes.astype(np.intp) - ICE_UNABLE]


def capd_domain_grade(capd: np.ndarray) -> np.ndarray:
    """ICANS grade of the CAPD domain (children < 12 y or developmental delay), element-wise.

    Lee et al. 2019 (Biol Blood Marrow Transplant 25:625-638), Table 6 (children); CAPD from
    Traube et al., Crit Care Med 2014;42(3):656 (8 items scored 0-4, total 0-32, >= 9 is
    delirium): CAPD 0 -> 0; 1-8 -> 1; >= 9 -> 3; unable to perform CAPD because the patient is
    unarousable -> 4.

    Parameters
    ----------
    capd : array_like of int
        CAPD totals (points, 0-32), or :data:`ICE_UNABLE` (-1) for "unable, unarousable".

    Returns
    -------
    numpy.ndarray of int8
        Domain grade 0-4, same shape as ``capd``.

    Raises
    ------
    InvalidInputError
        Non-integer array, or an element outside -1..32.
    """
    codes = _int_codes(
        capd, "capd", ICE_UNABLE, CAPD_MAX, f"CAPD totals 0-{CAPD_MAX} or -1 (unable)"
    )
    return _CAPD_GRADE[codes.astype(np.intp) - ICE_UNABLE]


def icans_grade_codes(
    cognition_grade: np.ndarray,
    consciousness_code: np.ndarray,
    seizure_code: np.ndarray,
    motor_code: np.ndarray,
    edema_code: np.ndarray,
) -> np.ndarray:
    """ICANS grade (0-4) as the most severe domain, element-wise.

    Lee et al. 2019 (Biol Blood Marrow Transplant 25:625-638), Tables 5-6: the ICANS grade is
    determined by the most severe event among ICE/CAPD, depressed level of consciousness,
    seizure, motor findings and elevated ICP/cerebral oedema, not attributable to another cause.
    Grade 5 (death) is an outcome and is never produced.

    Parameters
    ----------
    cognition_grade : array_like of int
        Grade 0-4 of the cognition domain, from :func:`ice_domain_grade` or
        :func:`capd_domain_grade`.
    consciousness_code, seizure_code, motor_code, edema_code : array_like of int
        Codes (declaration order) of :class:`Consciousness`, :class:`Seizure`,
        :class:`MotorFinding` and :class:`CerebralEdema`.

    Returns
    -------
    numpy.ndarray of int8
        ICANS grade 0-4, broadcast shape of the inputs.

    Raises
    ------
    InvalidInputError
        A non-integer array or an out-of-range grade or code.
    """
    cognition = _int_codes(cognition_grade, "cognition_grade", 0, 4, "grades 0-4")
    consciousness = _codes_of(Consciousness, consciousness_code, "consciousness_code")
    seizure = _codes_of(Seizure, seizure_code, "seizure_code")
    motor = _codes_of(MotorFinding, motor_code, "motor_code")
    edema = _codes_of(CerebralEdema, edema_code, "edema_code")
    grade = np.maximum(cognition.astype(np.int8), CONSCIOUSNESS_GRADE[consciousness])
    grade = np.maximum(grade, SEIZURE_GRADE[seizure])
    grade = np.maximum(grade, MOTOR_GRADE[motor])
    return np.maximum(grade, EDEMA_GRADE[edema])


def crs_grade_codes(
    fever: np.ndarray,
    hypotension_code: np.ndarray,
    hypoxia_code: np.ndarray,
    *,
    fever_masked: np.ndarray | bool = False,
) -> np.ndarray:
    """ASTCT CRS grade (0-4), element-wise.

    Lee et al. 2019 (Biol Blood Marrow Transplant 25:625-638), Table 3. Without fever there is
    no CRS (grade 0, whatever the hypotension or hypoxia). With fever the grade is the more
    severe of the hypotension and hypoxia grades, and at least 1 (fever alone is grade 1).
    Footnote: after antipyretic or anti-cytokine therapy (tocilizumab, steroids) for CRS, fever
    is no longer required; then the grade is driven by hypotension and/or hypoxia only, so a
    masked fever with neither gives grade 0 (grade 1 needs a fever). Grade 5 is never produced.

    Parameters
    ----------
    fever : array_like of bool
        Temperature >= 38.0 C not attributable to another cause.
    hypotension_code, hypoxia_code : array_like of int
        Codes (declaration order) of :class:`Hypotension` and :class:`Hypoxia`.
    fever_masked : array_like of bool or bool, default False
        Fever no longer required because CRS was already treated with antipyretics or
        anti-cytokine therapy.

    Returns
    -------
    numpy.ndarray of int8
        CRS grade 0-4, broadcast shape of the inputs.

    Raises
    ------
    InvalidInputError
        ``fever``/``fever_masked`` not boolean, or an out-of-range code.
    """
    fever = _bools(fever, "fever")
    masked = _bools(fever_masked, "fever_masked")
    hypotension = _codes_of(Hypotension, hypotension_code, "hypotension_code")
    hypoxia = _codes_of(Hypoxia, hypoxia_code, "hypoxia_code")
    organ = np.maximum(HYPOTENSION_GRADE[hypotension], HYPOXIA_GRADE[hypoxia])
    with_fever = np.maximum(organ, np.int8(1))
    return np.where(fever, with_fever, np.where(masked, organ, np.int8(0))).astype(np.int8)


def _bools(values: Any, field: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind != "b":
        raise InvalidInputError(field, f"array of dtype {array.dtype}", "a boolean array")
    return array
