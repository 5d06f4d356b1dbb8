"""The FHIR R4 codes and units the service reads: one table per kind of resource.

Every rule of the mapping from FHIR resources to the data contract that depends on a code or a
unit is here, and nowhere else: the reader (:mod:`serving.fhir.mapping`), the CDS Hooks prefetch
templates (:mod:`serving.cds.hooks`) and the mapping table of ``docs/fhir-mapping.md``
(:func:`render_tables`, checked current by a test) are derived from it.

Where a standard code exists it is used: LOINC for the laboratory values, body temperature and
body weight (icans-facts-2 section 10: CRP 1988-5, creatinine 2160-0 / 14682-9, ferritin 2276-4,
platelets 777-3, LDH 2532-0 / 14804-9; body temperature 8310-5, IL-6 26881-3, fibrinogen
3255-7, lymphocytes 731-0), RxNorm ingredients for the drugs, UCUM for units. No standard code
exists for ASTCT CRS and ICANS grades, the ICE and CAPD scores, CAR-T cell counts, CAR-T
products by target, or the other items marked "ours" (icans-facts-2 section 10: "NOT FOUND"):
they use the product's own code systems, ``urn:icans-risk:<name>``, which a hospital's FHIR
facade maps its local codes onto.

One laboratory code feeds two fields: the baseline value (dated in its window before
lymphodepletion) and the daily course series (dated day 0 on); :data:`ROUTES` says, for each
code, which fields it may be read into, and the mapping chooses by the date.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from icans.contract import (
    CAR_PRODUCTS,
    CAR_TARGETS,
    COSTIMULATORY_DOMAINS,
    DISEASES,
    FIELDS,
    LYMPHODEPLETION_REGIMENS,
    METHYLPREDNISOLONE_TO_DEXAMETHASONE,
)
from icans.products import INVESTIGATIONAL, PRODUCT_LABELS

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION = "urn:icans-risk:observation"
CONDITION = "urn:icans-risk:condition"
DISEASE = "urn:icans-risk:disease"
CAR_T_PRODUCT = "urn:icans-risk:car-t-product"
CAR_TARGET = "urn:icans-risk:car-target"
COSTIMULATORY_DOMAIN = "urn:icans-risk:costimulatory-domain"
LYMPHODEPLETION = "urn:icans-risk:lymphodepletion"
OUTCOME = "urn:icans-risk:outcome"
MODEL = "urn:icans-risk:model"
INTERVAL_EXTENSION = "urn:icans-risk:extension:probability-interval"

Coding = tuple[str, str]  # (system, code)


@dataclass(frozen=True)
class Scale:
    """How a unit converts to the contract's: ``(value - zero) x factor``.

    ``zero`` is the reading in this unit of the contract unit's zero: 0 for the ratio scales of
    laboratory values and weights (a factor alone), 32 for degrees Fahrenheit to Celsius
    (0 °C reads 32 °F, and a step of 1 °F is 5/9 of a step of 1 °C: an affine conversion, not
    a factor)."""

    factor: float
    zero: float = 0.0

    def __call__(self, value: float) -> float:
        return (value - self.zero) * self.factor

    def __str__(self) -> str:
        if self.zero == 0:
            return f"x{self.factor:.6g}"
        return f"(value - {self.zero:g}) x{self.factor:.6g}"


# A course field keeps one value a day: the latest (a laboratory value, a cell count), or the
# worst of the day (the highest grade, temperature or CAPD score, the lowest ICE score).
PerDay = Literal["latest", "highest", "lowest"]


@dataclass(frozen=True)
class QuantityCode:
    """An Observation with a ``valueQuantity``, read into one contract field.

    ``units``: UCUM code -> its conversion to the contract's unit. ``lookback_days``: for a
    baseline value, how long before the end of its window a value may be (the latest in the
    window is used); ``None`` for a course observation (one value per day since infusion,
    chosen by ``per_day``). ``until``: the end of the window, the start of
    ``"lymphodepletion"`` (values "before lymphodepletion", as the contract says) or the
    ``"infusion"`` day."""

    field: str
    codes: tuple[Coding, ...]
    units: dict[str, Scale]
    lookback_days: int | None = None
    until: str = "lymphodepletion"
    per_day: PerDay = "latest"


@dataclass(frozen=True)
class ValueCode:
    """An Observation with a ``valueInteger`` or ``valueBoolean``, read into one field."""

    field: str
    code: Coding
    value_type: str  # "valueInteger" or "valueBoolean"
    lookback_days: int | None = None
    until: str = "lymphodepletion"
    per_day: PerDay = "latest"

    @property
    def codes(self) -> tuple[Coding, ...]:
        return (self.code,)


# ASSUMPTION (no published rule): a baseline lab counts within 30 days before
# lymphodepletion, a marrow assessment within 60 (a biopsy may precede the infusion by longer).
BASELINE_LAB_LOOKBACK_DAYS = 30
MARROW_LOOKBACK_DAYS = 60


def _scales(units: dict[str, float]) -> dict[str, Scale]:
    """Units that differ from the contract's by a factor only."""
    return {unit: Scale(factor) for unit, factor in units.items()}


# The laboratory values, each by its codes and the units it is reported in: the baseline value
# and the daily series read the same codes in the same units.
_COUNT_10E9_PER_L = _scales({"10*9/L": 1.0, "10*3/uL": 1.0, "/nL": 1.0})
_LAB: dict[str, tuple[tuple[Coding, ...], dict[str, Scale]]] = {
    "ldh": (
        ((LOINC, "2532-0"), (LOINC, "14804-9")),
        _scales({"U/L": 1.0, "[IU]/L": 1.0, "ukat/L": 60.0}),  # 1 ukat/L = 60 U/L
    ),
    "crp": (((LOINC, "1988-5"),), _scales({"mg/L": 1.0, "mg/dL": 10.0})),
    "ferritin": (((LOINC, "2276-4"),), _scales({"ng/mL": 1.0, "ug/L": 1.0})),
    "platelets": (((LOINC, "777-3"),), _COUNT_10E9_PER_L),
    "creatinine": (
        ((LOINC, "2160-0"), (LOINC, "14682-9")),
        # creatinine 113.12 g/mol: 1 mg/dL = 88.42 umol/L
        _scales({"mg/dL": 1.0, "umol/L": 1 / 88.42}),
    ),
    "il6": (((LOINC, "26881-3"),), _scales({"pg/mL": 1.0, "ng/L": 1.0})),
    "fibrinogen": (((LOINC, "3255-7"),), _scales({"mg/dL": 1.0, "g/L": 100.0})),
    "lymphocytes": (((LOINC, "731-0"),), _COUNT_10E9_PER_L),
}
_CELLS_PER_UL = _scales({"/uL": 1.0, "{cells}/uL": 1.0, "/mm3": 1.0, "10*6/L": 1.0})

QUANTITIES: tuple[QuantityCode, ...] = (
    QuantityCode(
        "weight_kg",
        ((LOINC, "29463-7"), (LOINC, "3141-9")),
        _scales({"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237}),
        BASELINE_LAB_LOOKBACK_DAYS,
        until="infusion",
    ),
    QuantityCode("ldh_u_per_l", *_LAB["ldh"], BASELINE_LAB_LOOKBACK_DAYS),
    QuantityCode("crp_mg_per_l", *_LAB["crp"], BASELINE_LAB_LOOKBACK_DAYS),
    QuantityCode("ferritin_ng_per_ml", *_LAB["ferritin"], BASELINE_LAB_LOOKBACK_DAYS),
    QuantityCode("platelets_10e9_per_l", *_LAB["platelets"], BASELINE_LAB_LOOKBACK_DAYS),
    QuantityCode("creatinine_mg_per_dl", *_LAB["creatinine"], BASELINE_LAB_LOOKBACK_DAYS),
    QuantityCode(
        "marrow_blasts_pct",
        ((OBSERVATION, "marrow-blasts"),),
        _scales({"%": 1.0}),
        MARROW_LOOKBACK_DAYS,
    ),
    QuantityCode("cd4_car_t_cells_per_ul", ((OBSERVATION, "cd4-car-t-cells"),), _CELLS_PER_UL),
    QuantityCode("cd8_car_t_cells_per_ul", ((OBSERVATION, "cd8-car-t-cells"),), _CELLS_PER_UL),
    # The daily routine series (course observations, one value a day since infusion).
    QuantityCode(
        "temperature_max_c_by_day",
        ((LOINC, "8310-5"),),
        {"Cel": Scale(1.0), "[degF]": Scale(5 / 9, zero=32.0)},
        per_day="highest",
    ),
    QuantityCode("crp_mg_per_l_by_day", *_LAB["crp"]),
    QuantityCode("ferritin_ng_per_ml_by_day", *_LAB["ferritin"]),
    QuantityCode("il6_pg_per_ml_by_day", *_LAB["il6"]),
    QuantityCode("platelets_10e9_per_l_by_day", *_LAB["platelets"]),
    QuantityCode("fibrinogen_mg_per_dl_by_day", *_LAB["fibrinogen"]),
    QuantityCode("lymphocytes_10e9_per_l_by_day", *_LAB["lymphocytes"]),
    QuantityCode("ldh_u_per_l_by_day", *_LAB["ldh"]),
    QuantityCode("creatinine_mg_per_dl_by_day", *_LAB["creatinine"]),
)

VALUES: tuple[ValueCode, ...] = (
    # the worst grade of a day: the daily ASTCT grade
    ValueCode(
        "crs_grade_by_day", (OBSERVATION, "crs-grade-astct"), "valueInteger", per_day="highest"
    ),
    ValueCode(
        "icans_grade_by_day", (OBSERVATION, "icans-grade-astct"), "valueInteger", per_day="highest"
    ),
    ValueCode("prior_lines", (OBSERVATION, "prior-lines"), "valueInteger", 3650, "infusion"),
    ValueCode(
        "marrow_involvement",
        (OBSERVATION, "marrow-involvement"),
        "valueBoolean",
        MARROW_LOOKBACK_DAYS,
    ),
    # the worst score of a day: ICE from 0 (worst) to 10, CAPD from 0 to 32 (worst)
    ValueCode("ice_score_by_day", (OBSERVATION, "ice-score"), "valueInteger", per_day="lowest"),
    ValueCode("capd_score_by_day", (OBSERVATION, "capd-score"), "valueInteger", per_day="highest"),
)

ObservationCode = QuantityCode | ValueCode


@dataclass(frozen=True)
class Route:
    """The fields one Observation code is read into: a ``baseline`` value (dated in its window
    before lymphodepletion or the infusion) and a ``course`` series (dated day 0 on)."""

    baseline: ObservationCode | None = None
    course: ObservationCode | None = None

    def on_day(self, day: int) -> ObservationCode:
        """The field an Observation dated ``day`` since infusion is read into: the course
        series from day 0 on, the baseline field before (the caller then checks its window);
        a code with only one of the two always reads into that one."""
        first, other = (self.course, self.baseline) if day >= 0 else (self.baseline, self.course)
        spec = first or other
        assert spec is not None  # a route is made for a field
        return spec


def _routes(specs: tuple[ObservationCode, ...]) -> dict[Coding, Route]:
    """Each code's :class:`Route`; a code claimed by two baseline or two course fields is a
    mistake in the tables above (an Observation must have one meaning on a given day)."""
    routes: dict[Coding, Route] = {}
    for spec in specs:
        kind = "course" if spec.lookback_days is None else "baseline"
        for coding in spec.codes:
            route = routes.get(coding, Route())
            if getattr(route, kind) is not None:
                raise ValueError(f"{coding} is read into two {kind} fields")
            routes[coding] = replace(route, **{kind: spec})
    return routes


ROUTES: dict[Coding, Route] = _routes((*QUANTITIES, *VALUES))

# Conditions: present (confirmed, or no verificationStatus) -> true, refuted -> false.
CONDITION_FLAGS: dict[Coding, str] = {
    (CONDITION, "cns-involvement"): "cns_involvement",
    (CONDITION, "neuro-comorbidity"): "neuro_comorbidity",
}
DISEASE_CODES: dict[Coding, str] = {(DISEASE, d): d for d in DISEASES}

# The CAR-T infusion: a MedicationAdministration whose medication names the product, or its
# CAR target and costimulatory domain. Licensed products by their target and domain: the
# contract's labels (icans.products.PRODUCT_LABELS), and obe-cel (Aucatzyl, CD19/4-1BB, adult
# B-ALL; icans-facts section 2.1), which the contract's list of products does not name.
PRODUCTS: dict[str, tuple[str, str]] = {
    **{p: (label.car_target, label.costimulatory_domain) for p, label in PRODUCT_LABELS.items()},
    "obe-cel": ("CD19", "4-1BB"),
}
# The contract's car_product of each product code: the licensed products it names, and
# "investigational" for a product it does not (obe-cel, licensed after the contract's list was
# drawn up: the contract calls every product outside its list investigational).
CAR_PRODUCT_OF: dict[str, str] = {p: p if p in CAR_PRODUCTS else INVESTIGATIONAL for p in PRODUCTS}
TARGET_CODES: dict[Coding, str] = {(CAR_TARGET, t): t for t in CAR_TARGETS}
DOMAIN_CODES: dict[Coding, str] = {(COSTIMULATORY_DOMAIN, d): d for d in COSTIMULATORY_DOMAINS}
# The dose: CAR+ cells per kg, or in total (divided by the body weight).
DOSE_PER_KG_UNITS = {"{cells}/kg": 1.0, "10*6{cells}/kg": 1e6, "/kg": 1.0}
DOSE_TOTAL_UNITS = {"{cells}": 1.0, "10*6{cells}": 1e6, "10*8{cells}": 1e8, "1": 1.0}

# Corticosteroids (RxNorm ingredients) as dexamethasone-equivalent mg, tocilizumab, and the
# second-line therapy of ICANS (icans.steroids): anakinra, and intrathecal therapy, told by its
# route (SNOMED CT 72607000 "Intrathecal route") whatever the drug; the drugs given that way
# for ICANS (dexamethasone, hydrocortisone, methotrexate, cytarabine: Meng 2025, Katsin 2024)
# are named only so that a search by code finds them (serving.cds.hooks).
STEROIDS: dict[Coding, float] = {
    (RXNORM, "3264"): 1.0,  # dexamethasone
    (RXNORM, "6902"): METHYLPREDNISOLONE_TO_DEXAMETHASONE,  # methylprednisolone
}
STEROID_UNITS = {"mg": 1.0, "g": 1000.0}
TOCILIZUMAB: Coding = (RXNORM, "612865")
ANAKINRA: Coding = (RXNORM, "72435")
INTRATHECAL_ROUTE: Coding = (SNOMED, "72607000")
INTRATHECAL_DRUGS: tuple[Coding, ...] = (
    (RXNORM, "3264"),  # dexamethasone
    (RXNORM, "5492"),  # hydrocortisone
    (RXNORM, "6851"),  # methotrexate
    (RXNORM, "3041"),  # cytarabine
)

LYMPHODEPLETION_CODES: dict[Coding, str] = {
    (LYMPHODEPLETION, r): r for r in LYMPHODEPLETION_REGIMENS
}
# Lymphodepletion starts about day -5 (icans-facts section 1.1-1.2: the pre-lymphodepletion
# scores, CAR-HEMATOTOX and paediatric m-EASIX, are measured on day -5): without a dated
# lymphodepletion Procedure, baseline values are those on or before day -5.
DEFAULT_LYMPHODEPLETION_DAY = -5

OUTCOME_CODING = {
    "system": OUTCOME,
    "code": "severe-or-steroid-refractory-icans",
    "display": "Severe (ASTCT grade 3-4) or steroid-refractory ICANS through day 28",
}


def _codes(codes) -> str:
    return ", ".join(f"`{system}` `{code}`" for system, code in codes)


def _dated(spec: ObservationCode) -> str:
    if spec.lookback_days is None:
        return f"day 0 on; a day's {spec.per_day}"
    end = "the start of lymphodepletion" if spec.until == "lymphodepletion" else "the infusion"
    return f"the latest in the {spec.lookback_days} days up to {end}"


def render_tables() -> str:
    """The code and unit tables of ``docs/fhir-mapping.md`` (between its markers)."""
    lines = [
        "| Contract field | Resource | Codes | Dated (value used) "
        "| Units accepted (conversion to the contract unit) |",
        "|---|---|---|---|---|",
    ]
    for q in QUANTITIES:
        units = ", ".join(f"`{u}` {scale}" for u, scale in q.units.items())
        lines.append(
            f"| `{q.field}` ({FIELDS[q.field].unit}) | Observation.valueQuantity | "
            f"{_codes(q.codes)} | {_dated(q)} | {units} |"
        )
    for v in VALUES:
        lines.append(
            f"| `{v.field}` | Observation.{v.value_type} | {_codes(v.codes)} | {_dated(v)} | - |"
        )
    for coding, field in CONDITION_FLAGS.items():
        lines.append(f"| `{field}` | Condition (refuted: false) | {_codes([coding])} | - | - |")
    lines.append(f"| `disease` | Condition | `{DISEASE}` {', '.join(DISEASES)} | - | - |")
    lines.append(
        f"| `lymphodepletion` | Procedure | `{LYMPHODEPLETION}` "
        f"{', '.join(LYMPHODEPLETION_REGIMENS)} | its start bounds the baseline window | - |"
    )
    products = ", ".join(f"{p} ({t}, {d})" for p, (t, d) in PRODUCTS.items())
    lines.append(
        f"| `car_target`, `costimulatory_domain` | MedicationAdministration.medication"
        f"CodeableConcept | `{CAR_T_PRODUCT}` {products}; or `{CAR_TARGET}` "
        f"{', '.join(CAR_TARGETS)} with `{COSTIMULATORY_DOMAIN}` "
        f"{', '.join(COSTIMULATORY_DOMAINS)} | day 0 | - |"
    )
    same = ", ".join(p for p, c in CAR_PRODUCT_OF.items() if p == c)
    other = ", ".join(f"{p} as {c}" for p, c in CAR_PRODUCT_OF.items() if p != c)
    lines.append(
        f"| `car_product` | MedicationAdministration.medicationCodeableConcept | "
        f"`{CAR_T_PRODUCT}` {same} as coded; {other}; not given when the medication is coded "
        "by target and domain only | day 0 | - |"
    )
    per_kg = ", ".join(f"`{u}` x{f:g}" for u, f in DOSE_PER_KG_UNITS.items())
    total = ", ".join(f"`{u}` x{f:g}" for u, f in DOSE_TOTAL_UNITS.items())
    lines.append(
        f"| `dose_cells_per_kg` (cells/kg) | MedicationAdministration.dosage.dose (the "
        f"CAR-T infusion) | - | day 0 | per kg: {per_kg}; total (divided by weight_kg): "
        f"{total} |"
    )
    steroids = ", ".join(f"`{s}` `{c}` x{f:g}" for (s, c), f in STEROIDS.items())
    lines.append(
        f"| `dexamethasone_mg_by_day` (mg) | MedicationAdministration.dosage.dose | "
        f"{steroids} | day 0 on; a day's sum | "
        f"{', '.join(f'`{u}` x{f:g}' for u, f in STEROID_UNITS.items())} |"
    )
    lines.append(
        f"| `tocilizumab_doses_by_day` (doses) | MedicationAdministration | "
        f"{_codes([TOCILIZUMAB])} | day 0 on; a day's count | - |"
    )
    lines.append(
        f"| `anakinra_doses_by_day` (doses) | MedicationAdministration | "
        f"{_codes([ANAKINRA])} | day 0 on; a day's count | - |"
    )
    lines.append(
        f"| `intrathecal_doses_by_day` (doses) | MedicationAdministration.dosage.route "
        f"(any drug; not counted as corticosteroid mg) | {_codes([INTRATHECAL_ROUTE])} | "
        "day 0 on; a day's count | - |"
    )
    return "\n".join(lines) + "\n"
