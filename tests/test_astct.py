"""Golden tests of ASTCT 2019 ICANS/CRS grading (Lee et al., Biol Blood Marrow Transplant 2019).

Every expected grade below is written from the consensus tables (Table 3 for CRS, Tables 5-6
for ICANS), never computed by the implementation. Each row names the table cell it checks.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from icans.astct import (
    CAPD_AGE_LIMIT_YEARS,
    CONSCIOUSNESS_GRADE,
    EDEMA_GRADE,
    HYPOTENSION_GRADE,
    HYPOXIA_GRADE,
    ICE_UNABLE,
    MOTOR_GRADE,
    OXYGEN_DEVICES,
    SEIZURE_GRADE,
    CerebralEdema,
    Consciousness,
    Hypotension,
    Hypoxia,
    MotorFinding,
    Seizure,
    capd_domain_grade,
    classify_oxygen,
    classify_vasopressors,
    crs_grade_codes,
    grade_crs,
    grade_icans,
    icans_grade_codes,
    ice_domain_grade,
)
from icans.errors import InvalidInputError

C = Consciousness
ADULT = 40.0
CHILD = 8.0


def adult(**kw: Any) -> dict[str, Any]:
    """An awake, alert adult with a perfect ICE score, overridden by ``kw``."""
    base: dict[str, Any] = {"age_years": ADULT, "consciousness": C.ALERT, "ice_score": 10}
    return base | kw


def child(**kw: Any) -> dict[str, Any]:
    """An alert child < 12 y with CAPD 0, overridden by ``kw``."""
    base: dict[str, Any] = {"age_years": CHILD, "consciousness": C.ALERT, "capd_score": 0}
    return base | kw


UNABLE_ADULT = {"ice_score": None, "assessment_impossible": True, "consciousness": C.UNAROUSABLE}
UNABLE_CHILD = {"capd_score": None, "assessment_impossible": True, "consciousness": C.UNAROUSABLE}

# ------------------------------------------------------------------------------------------
# ICANS golden rows: (inputs, expected grade, table cell)
# ------------------------------------------------------------------------------------------

ICANS_GOLDEN: list[tuple[dict[str, Any], int, str]] = [
    # Table 5, ICE score row (adults, awake and alert)
    (adult(ice_score=10), 0, "ICE 10 -> no ICANS"),
    (adult(ice_score=9), 1, "ICE 7-9 -> grade 1 (upper)"),
    (adult(ice_score=8), 1, "ICE 7-9 -> grade 1"),
    (adult(ice_score=7), 1, "ICE 7-9 -> grade 1 (lower)"),
    (adult(ice_score=6), 2, "ICE 3-6 -> grade 2 (upper)"),
    (adult(ice_score=5), 2, "ICE 3-6 -> grade 2"),
    (adult(ice_score=4), 2, "ICE 3-6 -> grade 2"),
    (adult(ice_score=3), 2, "ICE 3-6 -> grade 2 (lower)"),
    (adult(ice_score=2), 3, "ICE 0-2 -> grade 3 (upper)"),
    (adult(ice_score=1), 3, "ICE 0-2 -> grade 3"),
    (adult(ice_score=0), 3, "ICE 0-2 -> grade 3: ICE 0 but awake with global aphasia"),
    (adult(**UNABLE_ADULT), 4, "ICE unable to perform, unarousable -> grade 4"),
    # Table 6, CAPD row (children < 12 y, alert)
    (child(capd_score=0), 0, "CAPD 0 -> no ICANS"),
    (child(capd_score=1), 1, "CAPD 1-8 -> grade 1 (lower)"),
    (child(capd_score=4), 1, "CAPD 1-8 -> grade 1"),
    (child(capd_score=8), 1, "CAPD 1-8 -> grade 1 (upper)"),
    (child(capd_score=9), 3, "CAPD >= 9 -> grade 3 (delirium threshold)"),
    (child(capd_score=20), 3, "CAPD >= 9 -> grade 3"),
    (child(capd_score=32), 3, "CAPD >= 9 -> grade 3 (maximum score)"),
    (child(**UNABLE_CHILD), 4, "CAPD unable to perform, unarousable -> grade 4"),
    # Tables 5-6, depressed level of consciousness row (cognition normal)
    (adult(consciousness=C.ALERT), 0, "consciousness alert -> 0"),
    (adult(consciousness=C.AWAKENS_SPONTANEOUSLY), 1, "awakens spontaneously -> grade 1"),
    (adult(consciousness=C.AWAKENS_TO_VOICE), 2, "awakens to voice -> grade 2"),
    (adult(consciousness=C.AWAKENS_TO_TACTILE), 3, "awakens only to tactile stimulus -> grade 3"),
    (adult(consciousness=C.UNAROUSABLE, ice_score=0), 4, "unarousable (ICE 0) -> grade 4"),
    (child(consciousness=C.AWAKENS_SPONTANEOUSLY), 1, "child awakens spontaneously -> grade 1"),
    (child(consciousness=C.AWAKENS_TO_VOICE), 2, "child awakens to voice -> grade 2"),
    (child(consciousness=C.AWAKENS_TO_TACTILE), 3, "child awakens to tactile -> grade 3"),
    (child(consciousness=C.UNAROUSABLE, capd_score=32), 4, "child unarousable -> grade 4"),
    # Tables 5-6, seizure row
    (adult(seizure=Seizure.NONE), 0, "no seizure -> 0"),
    (adult(seizure=Seizure.RAPIDLY_RESOLVING), 3, "rapidly resolving seizure -> grade 3"),
    (adult(seizure=Seizure.LIFE_THREATENING), 4, "life-threatening seizure -> grade 4"),
    (child(seizure=Seizure.RAPIDLY_RESOLVING), 3, "child rapidly resolving seizure -> grade 3"),
    (child(seizure=Seizure.LIFE_THREATENING), 4, "child life-threatening seizure -> grade 4"),
    # Tables 5-6, motor findings row
    (adult(motor=MotorFinding.NONE), 0, "no motor finding -> 0"),
    (adult(motor=MotorFinding.DEEP_FOCAL_WEAKNESS), 4, "deep focal motor weakness -> grade 4"),
    (child(motor=MotorFinding.DEEP_FOCAL_WEAKNESS), 4, "child hemiparesis -> grade 4"),
    # Tables 5-6, elevated ICP / cerebral oedema row
    (adult(cerebral_edema=CerebralEdema.NONE), 0, "no oedema -> 0"),
    (adult(cerebral_edema=CerebralEdema.FOCAL), 3, "focal/local oedema -> grade 3"),
    (adult(cerebral_edema=CerebralEdema.DIFFUSE_OR_RAISED_ICP), 4, "diffuse oedema -> grade 4"),
    (child(cerebral_edema=CerebralEdema.FOCAL), 3, "child focal oedema -> grade 3"),
    (child(cerebral_edema=CerebralEdema.DIFFUSE_OR_RAISED_ICP), 4, "child diffuse -> grade 4"),
    # Max rule: the most severe domain drives the grade
    (adult(ice_score=3, seizure=Seizure.RAPIDLY_RESOLVING), 3, "max(ICE 3-6:2, seizure:3)"),
    (adult(ice_score=8, consciousness=C.AWAKENS_TO_VOICE), 2, "max(ICE 7-9:1, voice:2)"),
    (adult(ice_score=10, cerebral_edema=CerebralEdema.FOCAL), 3, "max(ICE 10:0, focal:3)"),
    (adult(ice_score=7, consciousness=C.AWAKENS_SPONTANEOUSLY), 1, "max(ICE 7-9:1, spont:1)"),
    (adult(ice_score=5, consciousness=C.AWAKENS_TO_TACTILE), 3, "max(ICE 3-6:2, tactile:3)"),
    (adult(ice_score=2, motor=MotorFinding.DEEP_FOCAL_WEAKNESS), 4, "max(ICE 0-2:3, motor:4)"),
    (adult(ice_score=1, consciousness=C.AWAKENS_TO_VOICE), 3, "max(ICE 0-2:3, voice:2)"),
    (
        adult(ice_score=9, seizure=Seizure.LIFE_THREATENING, cerebral_edema=CerebralEdema.FOCAL),
        4,
        "max(ICE 7-9:1, life-threatening seizure:4, focal:3)",
    ),
    (
        adult(ice_score=6, seizure=Seizure.RAPIDLY_RESOLVING, cerebral_edema=CerebralEdema.FOCAL),
        3,
        "max(ICE 3-6:2, seizure:3, focal:3)",
    ),
    (child(capd_score=5, consciousness=C.AWAKENS_TO_VOICE), 2, "max(CAPD 1-8:1, voice:2)"),
    (child(capd_score=12, seizure=Seizure.LIFE_THREATENING), 4, "max(CAPD >=9:3, seizure:4)"),
    # Enum string values are accepted
    (adult(ice_score=8, consciousness="awakens_to_voice"), 2, "string 'awakens_to_voice' -> 2"),
    (adult(seizure="rapidly_resolving", motor="none", cerebral_edema="none"), 3, "strings"),
    # Age boundary and developmental delay: which tool applies
    ({"age_years": 11.9, "consciousness": "alert", "capd_score": 9}, 3, "11.9 y: CAPD >= 9"),
    ({"age_years": 12.0, "consciousness": "alert", "ice_score": 9}, 1, "12.0 y: ICE 7-9"),
    ({"age_years": 12, "consciousness": "alert", "ice_score": 2}, 3, "12 y (int): ICE 0-2"),
    (
        {"age_years": 15, "consciousness": "alert", "capd_score": 9, "developmental_delay": True},
        3,
        "15 y with developmental delay: CAPD >= 9",
    ),
    (
        {"age_years": 15, "consciousness": "alert", "capd_score": 8, "developmental_delay": True},
        1,
        "15 y with developmental delay: CAPD 1-8",
    ),
    ({"age_years": 0, "consciousness": "alert", "capd_score": 0}, 0, "newborn (age 0): CAPD 0"),
    ({"age_years": 120, "consciousness": "alert", "ice_score": 10}, 0, "age 120: ICE 10"),
    (
        {"age_years": 5, "consciousness": "alert", "capd_score": 9, "developmental_delay": True},
        3,
        "child < 12 with developmental delay still uses CAPD",
    ),
]


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [pytest.param(i, e, id=cell) for i, e, cell in ICANS_GOLDEN],
)
def test_grade_icans_golden(inputs: dict[str, Any], expected: int) -> None:
    grade = grade_icans(**inputs)
    assert grade == expected
    assert type(grade) is int


def test_capd_age_limit_is_12() -> None:
    assert CAPD_AGE_LIMIT_YEARS == 12


# ------------------------------------------------------------------------------------------
# CRS golden rows (Table 3)
# ------------------------------------------------------------------------------------------

H, OX = Hypotension, Hypoxia

CRS_GOLDEN: list[tuple[dict[str, Any], int, str]] = [
    # No fever -> no CRS, whatever the hypotension or hypoxia
    ({"temperature_c": 37.0}, 0, "no fever, nothing -> 0"),
    ({"temperature_c": 37.0, "hypotension": H.NO_VASOPRESSOR}, 0, "no fever + hypotension -> 0"),
    ({"temperature_c": 37.9, "hypotension": H.ONE_VASOPRESSOR}, 0, "37.9 + pressor -> 0"),
    ({"temperature_c": 36.5, "hypoxia": OX.LOW_FLOW}, 0, "no fever + low-flow O2 -> 0"),
    (
        {"temperature_c": 37.0, "hypotension": H.MULTIPLE_VASOPRESSORS, "hypoxia": OX.HIGH_FLOW},
        0,
        "no fever + multiple pressors + high flow -> 0",
    ),
    ({"temperature_c": 37.5, "hypoxia": OX.POSITIVE_PRESSURE}, 0, "no fever + ventilated -> 0"),
    # Fever threshold 38.0 C
    ({"temperature_c": 37.9}, 0, "37.9 C is not fever -> 0"),
    ({"temperature_c": 38.0}, 1, "38.0 C is fever, fever only -> grade 1"),
    ({"temperature_c": 39.5}, 1, "fever only -> grade 1"),
    # Hypotension column with fever
    ({"temperature_c": 38.0, "hypotension": H.NONE}, 1, "fever, no hypotension -> 1"),
    ({"temperature_c": 38.0, "hypotension": H.NO_VASOPRESSOR}, 2, "no vasopressor -> grade 2"),
    ({"temperature_c": 38.0, "hypotension": H.ONE_VASOPRESSOR}, 3, "one vasopressor -> grade 3"),
    ({"temperature_c": 38.0, "hypotension": H.MULTIPLE_VASOPRESSORS}, 4, "multiple -> grade 4"),
    # Hypoxia column with fever
    ({"temperature_c": 38.4, "hypoxia": OX.NONE}, 1, "fever, no hypoxia -> 1"),
    ({"temperature_c": 38.4, "hypoxia": OX.LOW_FLOW}, 2, "low-flow NC / blow-by -> grade 2"),
    ({"temperature_c": 38.4, "hypoxia": OX.HIGH_FLOW}, 3, "HFNC / facemask / NRB / Venturi -> 3"),
    ({"temperature_c": 38.4, "hypoxia": OX.POSITIVE_PRESSURE}, 4, "positive pressure -> 4"),
    # Mixed: the more severe of hypotension and hypoxia
    (
        {"temperature_c": 39.0, "hypotension": H.NO_VASOPRESSOR, "hypoxia": OX.LOW_FLOW},
        2,
        "max(no pressor:2, low flow:2)",
    ),
    (
        {"temperature_c": 39.0, "hypotension": H.NO_VASOPRESSOR, "hypoxia": OX.HIGH_FLOW},
        3,
        "max(no pressor:2, high flow:3)",
    ),
    (
        {"temperature_c": 39.0, "hypotension": H.ONE_VASOPRESSOR, "hypoxia": OX.LOW_FLOW},
        3,
        "max(one pressor:3, low flow:2)",
    ),
    (
        {"temperature_c": 39.0, "hypotension": H.MULTIPLE_VASOPRESSORS, "hypoxia": OX.LOW_FLOW},
        4,
        "max(multiple pressors:4, low flow:2)",
    ),
    (
        {"temperature_c": 39.0, "hypotension": H.ONE_VASOPRESSOR, "hypoxia": OX.POSITIVE_PRESSURE},
        4,
        "max(one pressor:3, positive pressure:4)",
    ),
    # Footnote: fever masked by antipyretics / anti-cytokine therapy
    ({"temperature_c": 37.0, "fever_masked_by_treatment": True}, 0, "masked, nothing -> 0"),
    (
        {"temperature_c": 37.0, "hypotension": H.NO_VASOPRESSOR, "fever_masked_by_treatment": True},
        2,
        "masked fever + no pressor -> 2",
    ),
    (
        {"temperature_c": 36.8, "hypoxia": OX.LOW_FLOW, "fever_masked_by_treatment": True},
        2,
        "masked fever + low flow -> 2",
    ),
    (
        {"temperature_c": 37.0, "hypoxia": OX.HIGH_FLOW, "fever_masked_by_treatment": True},
        3,
        "masked fever + high flow -> 3",
    ),
    (
        {
            "temperature_c": 37.0,
            "hypotension": H.MULTIPLE_VASOPRESSORS,
            "fever_masked_by_treatment": True,
        },
        4,
        "masked fever + multiple pressors -> 4",
    ),
    (
        {"temperature_c": 37.0, "hypoxia": OX.POSITIVE_PRESSURE, "fever_masked_by_treatment": True},
        4,
        "masked fever + positive pressure -> 4",
    ),
    (
        {"temperature_c": 38.5, "fever_masked_by_treatment": True},
        1,
        "actual fever while 'masked' flag set -> still grade 1",
    ),
    # String values accepted
    (
        {"temperature_c": 38.1, "hypotension": "one_vasopressor", "hypoxia": "low_flow"},
        3,
        "strings: max(one pressor:3, low flow:2)",
    ),
]


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [pytest.param(i, e, id=cell) for i, e, cell in CRS_GOLDEN],
)
def test_grade_crs_golden(inputs: dict[str, Any], expected: int) -> None:
    grade = grade_crs(**inputs)
    assert grade == expected
    assert type(grade) is int


# ------------------------------------------------------------------------------------------
# classify_oxygen (Table 3 footnotes)
# ------------------------------------------------------------------------------------------

OXYGEN_GOLDEN: list[tuple[str, float | None, Hypoxia]] = [
    ("none", None, OX.NONE),
    ("none", 0, OX.NONE),
    ("nasal_cannula", 0.5, OX.LOW_FLOW),
    ("nasal_cannula", 2, OX.LOW_FLOW),
    ("nasal_cannula", 6, OX.LOW_FLOW),  # <= 6 L/min is low flow
    ("nasal_cannula", 6.0, OX.LOW_FLOW),
    ("nasal_cannula", 6.1, OX.HIGH_FLOW),  # > 6 L/min is high flow
    ("nasal_cannula", 15, OX.HIGH_FLOW),
    ("blow_by", None, OX.LOW_FLOW),
    ("blow_by", 4, OX.LOW_FLOW),
    # the level of any cannula is set by the flow, not by the device's name
    ("high_flow_nasal_cannula", 4, OX.LOW_FLOW),
    ("high_flow_nasal_cannula", 6, OX.LOW_FLOW),
    ("high_flow_nasal_cannula", 6.5, OX.HIGH_FLOW),
    ("high_flow_nasal_cannula", 40, OX.HIGH_FLOW),
    ("facemask", None, OX.HIGH_FLOW),
    ("facemask", 8, OX.HIGH_FLOW),
    ("non_rebreather", 15, OX.HIGH_FLOW),
    ("venturi", None, OX.HIGH_FLOW),
    ("cpap", None, OX.POSITIVE_PRESSURE),
    ("bipap", None, OX.POSITIVE_PRESSURE),
    ("mechanical_ventilation", None, OX.POSITIVE_PRESSURE),
]


@pytest.mark.parametrize(("device", "flow", "expected"), OXYGEN_GOLDEN)
def test_classify_oxygen_golden(device: str, flow: float | None, expected: Hypoxia) -> None:
    assert classify_oxygen(device, flow) is expected


def test_classify_oxygen_covers_every_device() -> None:
    assert {d for d, _, _ in OXYGEN_GOLDEN} == set(OXYGEN_DEVICES)


# ------------------------------------------------------------------------------------------
# classify_vasopressors (Table 3: "a vasopressor with or without vasopressin"; "multiple
# vasopressors (excluding vasopressin)")
# ------------------------------------------------------------------------------------------

HY = Hypotension
VASOPRESSOR_GOLDEN: list[tuple[bool, tuple[str, ...], Hypotension]] = [
    (False, (), HY.NONE),
    (True, (), HY.NO_VASOPRESSOR),
    (True, ("norepinephrine",), HY.ONE_VASOPRESSOR),
    (True, ("vasopressin",), HY.ONE_VASOPRESSOR),
    (True, ("norepinephrine", "vasopressin"), HY.ONE_VASOPRESSOR),  # the exception: grade 3
    (True, ("vasopressin", "phenylephrine"), HY.ONE_VASOPRESSOR),
    (True, ("norepinephrine", "norepinephrine"), HY.ONE_VASOPRESSOR),  # one agent, twice
    (True, ("norepinephrine", "epinephrine"), HY.MULTIPLE_VASOPRESSORS),
    (True, ("norepinephrine", "epinephrine", "vasopressin"), HY.MULTIPLE_VASOPRESSORS),
    (True, ("dopamine", "angiotensin_ii"), HY.MULTIPLE_VASOPRESSORS),
]


@pytest.mark.parametrize(("hypotensive", "agents", "expected"), VASOPRESSOR_GOLDEN)
def test_classify_vasopressors_golden(
    hypotensive: bool, agents: tuple[str, ...], expected: Hypotension
) -> None:
    assert classify_vasopressors(hypotensive, agents) is expected
    assert classify_vasopressors(hypotensive, list(reversed(agents))) is expected


def test_classify_vasopressors_feeds_grade_crs() -> None:
    # fever + norepinephrine with vasopressin = grade 3; + a second catecholamine = grade 4
    pair = classify_vasopressors(True, ["norepinephrine", "vasopressin"])
    assert grade_crs(temperature_c=38.4, hypotension=pair) == 3
    multiple = classify_vasopressors(True, ["norepinephrine", "epinephrine"])
    assert grade_crs(temperature_c=38.4, hypotension=multiple) == 4


@pytest.mark.parametrize(
    ("hypotensive", "agents", "field", "value"),
    [
        (True, ["ecmo"], "vasopressors[0]", "ecmo"),
        (True, ["vasopressin", "Norepinephrine"], "vasopressors[1]", "Norepinephrine"),
        (True, "norepinephrine", "vasopressors", "norepinephrine"),
        (False, ["norepinephrine"], "hypotension", False),
        ("yes", [], "hypotension", "yes"),
    ],
)
def test_classify_vasopressors_rejects(hypotensive, agents, field, value) -> None:
    with pytest.raises(InvalidInputError) as info:
        classify_vasopressors(hypotensive, agents)
    assert info.value.field == field
    assert repr(value) in str(info.value)


def test_classify_oxygen_feeds_grade_crs() -> None:
    # Fever + nasal cannula at 6.1 L/min = high flow -> grade 3; at 6 L/min -> grade 2
    assert grade_crs(temperature_c=38.2, hypoxia=classify_oxygen("nasal_cannula", 6.1)) == 3
    assert grade_crs(temperature_c=38.2, hypoxia=classify_oxygen("nasal_cannula", 6)) == 2


# ------------------------------------------------------------------------------------------
# Tables and vectorised functions, checked against the consensus tables
# ------------------------------------------------------------------------------------------


def test_domain_tables_match_consensus() -> None:
    # integer grade codes, here and in the tests below: exact
    np.testing.assert_array_equal(CONSCIOUSNESS_GRADE, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(SEIZURE_GRADE, [0, 3, 4])
    np.testing.assert_array_equal(MOTOR_GRADE, [0, 4])
    np.testing.assert_array_equal(EDEMA_GRADE, [0, 3, 4])
    np.testing.assert_array_equal(HYPOTENSION_GRADE, [0, 2, 3, 4])
    np.testing.assert_array_equal(HYPOXIA_GRADE, [0, 2, 3, 4])
    for table, enum_cls in [
        (CONSCIOUSNESS_GRADE, Consciousness),
        (SEIZURE_GRADE, Seizure),
        (MOTOR_GRADE, MotorFinding),
        (EDEMA_GRADE, CerebralEdema),
        (HYPOTENSION_GRADE, Hypotension),
        (HYPOXIA_GRADE, Hypoxia),
    ]:
        assert table.size == len(enum_cls)
        assert not table.flags.writeable


def test_enum_declaration_order_is_the_code() -> None:
    assert [m.value for m in Consciousness] == [
        "alert",
        "awakens_spontaneously",
        "awakens_to_voice",
        "awakens_to_tactile",
        "unarousable",
    ]
    assert [m.value for m in Seizure] == ["none", "rapidly_resolving", "life_threatening"]
    assert [m.value for m in MotorFinding] == ["none", "deep_focal_weakness"]
    assert [m.value for m in CerebralEdema] == ["none", "focal", "diffuse_or_raised_icp"]
    assert [m.value for m in Hypotension] == [
        "none",
        "no_vasopressor",
        "one_vasopressor",
        "multiple_vasopressors",
    ]
    assert [m.value for m in Hypoxia] == ["none", "low_flow", "high_flow", "positive_pressure"]


def test_ice_domain_grade_every_value() -> None:
    assert ICE_UNABLE == -1
    ice = np.arange(-1, 11)
    #               unable 0  1  2  3  4  5  6  7  8  9  10
    expected = np.array([4, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 0])
    np.testing.assert_array_equal(ice_domain_grade(ice), expected)  # integer grades: exact


def test_capd_domain_grade_every_value() -> None:
    capd = np.arange(-1, 33)
    expected = np.array([4] + [0] + [1] * 8 + [3] * 24)  # unable, 0, 1-8, 9-32
    assert expected.size == capd.size
    np.testing.assert_array_equal(capd_domain_grade(capd), expected)  # integer grades: exact


def test_vectorised_keeps_shape_and_small_dtypes() -> None:
    ice = np.array([[10, 8], [2, -1]], dtype=np.int8)
    grades = ice_domain_grade(ice)
    np.testing.assert_array_equal(grades, [[0, 1], [3, 4]])  # integer grades: exact
    out = icans_grade_codes(
        grades,
        np.zeros((2, 2), dtype=np.int8),
        np.array([[0, 1], [0, 0]], dtype=np.uint8),
        np.zeros((2, 2), dtype=np.int16),
        np.array([[2, 0], [0, 0]]),
    )
    np.testing.assert_array_equal(out, [[4, 3], [3, 4]])
    assert out.dtype.itemsize == 1


def test_crs_grade_codes_golden_matrix() -> None:
    # Rows: hypotension none, no pressor, one pressor, multiple; cols: hypoxia levels.
    with_fever = np.array(
        [
            [1, 2, 3, 4],
            [2, 2, 3, 4],
            [3, 3, 3, 4],
            [4, 4, 4, 4],
        ]
    )
    masked_no_fever = np.array(
        [
            [0, 2, 3, 4],
            [2, 2, 3, 4],
            [3, 3, 3, 4],
            [4, 4, 4, 4],
        ]
    )
    hyp, oxy = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    ones = np.ones_like(hyp, dtype=bool)
    # integer grade codes: exact
    np.testing.assert_array_equal(crs_grade_codes(ones, hyp, oxy), with_fever)
    np.testing.assert_array_equal(crs_grade_codes(~ones, hyp, oxy), np.zeros((4, 4)))
    np.testing.assert_array_equal(
        crs_grade_codes(~ones, hyp, oxy, fever_masked=True), masked_no_fever
    )
    np.testing.assert_array_equal(crs_grade_codes(ones, hyp, oxy, fever_masked=ones), with_fever)


# ------------------------------------------------------------------------------------------
# Exhaustive equivalence: vectorised codes == scalar API
# ------------------------------------------------------------------------------------------


def _all_code_combinations(cognition: np.ndarray) -> list[np.ndarray]:
    grids = np.meshgrid(
        cognition,
        np.arange(len(Consciousness)),
        np.arange(len(Seizure)),
        np.arange(len(MotorFinding)),
        np.arange(len(CerebralEdema)),
        indexing="ij",
    )
    return [g.ravel() for g in grids]


@pytest.mark.parametrize(
    ("tool", "age", "developmental_delay"),
    [("ice", ADULT, False), ("capd", CHILD, False), ("capd", 15.0, True)],
)
def test_vectorised_equals_scalar_for_every_combination(
    tool: str, age: float, developmental_delay: bool
) -> None:
    top = 10 if tool == "ice" else 32
    domain = ice_domain_grade if tool == "ice" else capd_domain_grade
    score, cons, seiz, mot, ede = _all_code_combinations(np.arange(ICE_UNABLE, top + 1))
    vectorised = icans_grade_codes(domain(score), cons, seiz, mot, ede)
    members = [list(e) for e in (Consciousness, Seizure, MotorFinding, CerebralEdema)]
    checked = 0
    for i in range(score.size):
        unable = score[i] == ICE_UNABLE
        kwargs: dict[str, Any] = {
            "age_years": age,
            "developmental_delay": developmental_delay,
            "consciousness": members[0][cons[i]],
            "seizure": members[1][seiz[i]],
            "motor": members[2][mot[i]],
            "cerebral_edema": members[3][ede[i]],
            f"{tool}_score": None if unable else int(score[i]),
            "assessment_impossible": bool(unable),
        }
        if unable and members[0][cons[i]] is not Consciousness.UNAROUSABLE:
            with pytest.raises(InvalidInputError, match="assessment_impossible"):
                grade_icans(**kwargs)
            continue
        assert grade_icans(**kwargs) == vectorised[i], kwargs
        checked += 1
    n_other = len(Seizure) * len(MotorFinding) * len(CerebralEdema)
    assert checked == (top + 1) * len(Consciousness) * n_other + n_other


def test_vectorised_crs_equals_scalar_for_every_combination() -> None:
    for fever, masked, h, o in itertools.product(
        [False, True], [False, True], range(len(Hypotension)), range(len(Hypoxia))
    ):
        scalar = grade_crs(
            temperature_c=38.0 if fever else 37.9,
            hypotension=list(Hypotension)[h],
            hypoxia=list(Hypoxia)[o],
            fever_masked_by_treatment=masked,
        )
        vectorised = crs_grade_codes(
            np.array([fever]), np.array([h]), np.array([o]), fever_masked=np.array([masked])
        )
        assert scalar == vectorised[0]


# ------------------------------------------------------------------------------------------
# Validation errors: type, field and bad value named in the message
# ------------------------------------------------------------------------------------------

NAN = float("nan")

ICANS_ERRORS: list[tuple[dict[str, Any], str, Any]] = [
    # (inputs, field named, bad value named)
    (adult(age_years=True), "age_years", True),
    (adult(age_years=-1), "age_years", -1),
    (adult(age_years=121), "age_years", 121),
    (adult(age_years="40"), "age_years", "40"),
    (adult(age_years=None), "age_years", None),
    (adult(age_years=NAN), "age_years", NAN),
    (adult(age_years=math.inf), "age_years", math.inf),
    (adult(consciousness="sleepy"), "consciousness", "sleepy"),
    (adult(consciousness=2), "consciousness", 2),
    (adult(consciousness=None), "consciousness", None),
    (adult(consciousness="ALERT"), "consciousness", "ALERT"),
    (adult(seizure="focal"), "seizure", "focal"),
    (adult(seizure=True), "seizure", True),
    (adult(motor="tremor"), "motor", "tremor"),
    (adult(motor=Seizure.NONE), "motor", Seizure.NONE),  # another enum, same value
    (adult(cerebral_edema="global"), "cerebral_edema", "global"),
    (adult(ice_score=11), "ice_score", 11),
    (adult(ice_score=-1), "ice_score", -1),
    (adult(ice_score=7.5), "ice_score", 7.5),
    (adult(ice_score=7.0), "ice_score", 7.0),
    (adult(ice_score=True), "ice_score", True),
    (adult(ice_score="7"), "ice_score", "7"),
    (adult(ice_score=None), "ice_score", None),  # missing without assessment_impossible
    (adult(capd_score=3), "capd_score", 3),  # adult given a CAPD score as well
    (adult(ice_score=None, capd_score=3), "capd_score", 3),  # adult given only CAPD
    (child(capd_score=33), "capd_score", 33),
    (child(capd_score=-1), "capd_score", -1),
    (child(capd_score=4.0), "capd_score", 4.0),
    (child(capd_score=False), "capd_score", False),
    (child(capd_score=None), "capd_score", None),
    (child(ice_score=10), "ice_score", 10),  # child < 12 must use CAPD
    ({"age_years": 11.9, "consciousness": "alert", "ice_score": 10}, "ice_score", 10),
    ({"age_years": 12.0, "consciousness": "alert", "capd_score": 0}, "capd_score", 0),
    (
        {"age_years": 15, "consciousness": "alert", "ice_score": 10, "developmental_delay": True},
        "ice_score",
        10,
    ),
    # assessment_impossible consistency
    (adult(ice_score=0, assessment_impossible=True, consciousness=C.UNAROUSABLE), "ice_score", 0),
    (child(assessment_impossible=True, consciousness=C.UNAROUSABLE), "capd_score", 0),
    (adult(ice_score=None, assessment_impossible=True), "assessment_impossible", True),
    (
        adult(ice_score=None, assessment_impossible=True, consciousness=C.AWAKENS_TO_TACTILE),
        "assessment_impossible",
        True,
    ),
    (child(capd_score=None, assessment_impossible=True), "assessment_impossible", True),
    (adult(assessment_impossible="yes"), "assessment_impossible", "yes"),
    (adult(developmental_delay=1), "developmental_delay", 1),
]


@pytest.mark.parametrize(("inputs", "field", "value"), ICANS_ERRORS)
def test_grade_icans_rejects(inputs: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        grade_icans(**inputs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert field in str(info.value)
    assert repr(value) in str(info.value)


def test_grade_icans_enum_error_lists_allowed_values() -> None:
    with pytest.raises(InvalidInputError) as info:
        grade_icans(**adult(consciousness="sleepy"))
    for member in Consciousness:
        assert repr(member.value) in str(info.value)


def test_grade_icans_unable_error_names_consciousness() -> None:
    with pytest.raises(InvalidInputError) as info:
        grade_icans(**adult(ice_score=None, assessment_impossible=True))
    assert "'unarousable'" in str(info.value)
    assert "'alert'" in str(info.value)


def test_grade_functions_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        grade_icans(40, "alert", 10)  # type: ignore[misc]
    with pytest.raises(TypeError):
        grade_crs(38.5)  # type: ignore[misc]


CRS_ERRORS: list[tuple[dict[str, Any], str, Any]] = [
    ({"temperature_c": True}, "temperature_c", True),
    ({"temperature_c": 101.3}, "temperature_c", 101.3),  # Fahrenheit by mistake
    ({"temperature_c": 20}, "temperature_c", 20),
    ({"temperature_c": NAN}, "temperature_c", NAN),
    ({"temperature_c": "38.5"}, "temperature_c", "38.5"),
    ({"temperature_c": None}, "temperature_c", None),
    ({"temperature_c": 38.5, "hypotension": "pressor"}, "hypotension", "pressor"),
    ({"temperature_c": 38.5, "hypotension": 2}, "hypotension", 2),
    ({"temperature_c": 38.5, "hypoxia": "nasal_cannula"}, "hypoxia", "nasal_cannula"),
    ({"temperature_c": 38.5, "hypoxia": H.NONE}, "hypoxia", H.NONE),  # another enum
    ({"temperature_c": 38.5, "fever_masked_by_treatment": "no"}, "fever_masked_by_treatment", "no"),
]


@pytest.mark.parametrize(("inputs", "field", "value"), CRS_ERRORS)
def test_grade_crs_rejects(inputs: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        grade_crs(**inputs)
    assert info.value.field == field
    assert field in str(info.value)
    assert repr(value) in str(info.value)


OXYGEN_ERRORS: list[tuple[Any, Any, str, Any]] = [
    ("ecmo", None, "device", "ecmo"),
    ("Nasal_Cannula", 2, "device", "Nasal_Cannula"),
    (None, None, "device", None),
    (OX.LOW_FLOW, None, "device", OX.LOW_FLOW),
    ("nasal_cannula", None, "flow_l_per_min", None),  # flow decides low vs high
    ("high_flow_nasal_cannula", None, "flow_l_per_min", None),
    ("nasal_cannula", -1, "flow_l_per_min", -1),
    ("nasal_cannula", True, "flow_l_per_min", True),
    ("nasal_cannula", "6", "flow_l_per_min", "6"),
    ("nasal_cannula", NAN, "flow_l_per_min", NAN),
    ("facemask", 500, "flow_l_per_min", 500),
    ("none", 2, "flow_l_per_min", 2),
]


@pytest.mark.parametrize(("device", "flow", "field", "value"), OXYGEN_ERRORS)
def test_classify_oxygen_rejects(device: Any, flow: Any, field: str, value: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        classify_oxygen(device, flow)
    assert info.value.field == field
    assert field in str(info.value)
    assert repr(value) in str(info.value)


def test_classify_oxygen_error_lists_devices() -> None:
    with pytest.raises(InvalidInputError) as info:
        classify_oxygen("ecmo")
    for device in OXYGEN_DEVICES:
        assert repr(device) in str(info.value)


VECTOR_ERRORS: list[tuple[Any, tuple[Any, ...], str, Any]] = [
    (ice_domain_grade, (np.array([10, 11]),), "ice", 11),
    (ice_domain_grade, (np.array([-2, 3]),), "ice", -2),
    (capd_domain_grade, (np.array([0, 33]),), "capd", 33),
    (
        icans_grade_codes,
        (np.array([5]), np.array([0]), np.array([0]), np.array([0]), np.array([0])),
        "cognition_grade",
        5,
    ),
    (
        icans_grade_codes,
        (np.array([0]), np.array([5]), np.array([0]), np.array([0]), np.array([0])),
        "consciousness_code",
        5,
    ),
    (
        icans_grade_codes,
        (np.array([0]), np.array([0]), np.array([3]), np.array([0]), np.array([0])),
        "seizure_code",
        3,
    ),
    (
        icans_grade_codes,
        (np.array([0]), np.array([0]), np.array([0]), np.array([2]), np.array([0])),
        "motor_code",
        2,
    ),
    (
        icans_grade_codes,
        (np.array([0]), np.array([0]), np.array([0]), np.array([0]), np.array([-1])),
        "edema_code",
        -1,
    ),
    (crs_grade_codes, (np.array([True]), np.array([4]), np.array([0])), "hypotension_code", 4),
    (crs_grade_codes, (np.array([True]), np.array([0]), np.array([4])), "hypoxia_code", 4),
]


@pytest.mark.parametrize(("func", "args", "field", "value"), VECTOR_ERRORS)
def test_vectorised_rejects_out_of_range(
    func: Any, args: tuple[Any, ...], field: str, value: Any
) -> None:
    with pytest.raises(InvalidInputError) as info:
        func(*args)
    assert info.value.field == field
    assert f"{field}={value!r}" in str(info.value)


@pytest.mark.parametrize(
    ("func", "args", "field"),
    [
        (ice_domain_grade, (np.array([7.5]),), "ice"),
        (capd_domain_grade, (np.array([True]),), "capd"),
        (crs_grade_codes, (np.array([1]), np.array([0]), np.array([0])), "fever"),
    ],
)
def test_vectorised_rejects_wrong_dtype(func: Any, args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        func(*args)
    assert info.value.field == field
    assert "dtype" in str(info.value)
