"""The FHIR R4 codes and units the service reads: one table per kind of resource.

Every rule of the mapping from FHIR resources to the data contract that depends on a code or a
unit is here, and nowhere else: the reader (:mod:`serving.fhir.mapping`), the CDS Hooks prefetch
templates (:mod:`serving.cds.hooks`) and the mapping table of ``docs/fhir-mapping.md``
(:func:`render_tables`, checked current by a test) are derived from it.

Where a standard code exists it is used: LOINC for the baseline laboratory values and body
weight (icans-facts-2 section 10: CRP 1988-5, creatinine 2160-0 / 14682-9, ferritin 2276-4,
platelets 777-3, LDH 2532-0 / 14804-9), RxNorm ingredients for the drugs, UCUM for units. No
standard code exists for ASTCT CRS and ICANS grades, CAR-T cell counts, CAR-T products by
target, or the other items marked "ours" (icans-facts-2 section 10: "NOT FOUND"): they use
the product's own code systems, ``urn:icans-risk:<name>``, which a hospital's FHIR facade
maps its local codes onto.
"""

from __future__ import annotations

from dataclasses import dataclass

from icans.contract import (
    CAR_TARGETS,
    COSTIMULATORY_DOMAINS,
    DISEASES,
    FIELDS,
    LYMPHODEPLETION_REGIMENS,
    METHYLPREDNISOLONE_TO_DEXAMETHASONE,
)

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
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
class QuantityCode:
    """An Observation with a ``valueQuantity``, read into one contract field.

    ``units``: UCUM code -> factor to the contract's unit (value x factor). ``lookback_days``:
    for a baseline value, how long before the end of its window a value may be (the latest in
    the window is used); ``None`` for a course observation (one value per day since infusion).
    ``until``: the end of the window, the start of ``"lymphodepletion"`` (values "before
    lymphodepletion", as the contract says) or the ``"infusion"`` day."""

    field: str
    codes: tuple[Coding, ...]
    units: dict[str, float]
    lookback_days: int | None = None
    until: str = "lymphodepletion"


@dataclass(frozen=True)
class ValueCode:
    """An Observation with a ``valueInteger`` or ``valueBoolean``, read into one field."""

    field: str
    code: Coding
    value_type: str  # "valueInteger" or "valueBoolean"
    lookback_days: int | None = None
    until: str = "lymphodepletion"


# ASSUMPTION (no published rule): a baseline lab counts within 30 days before
# lymphodepletion, a marrow assessment within 60 (a biopsy may precede the infusion by longer).
BASELINE_LAB_LOOKBACK_DAYS = 30
MARROW_LOOKBACK_DAYS = 60

QUANTITIES: tuple[QuantityCode, ...] = (
    QuantityCode(
        "weight_kg",
        ((LOINC, "29463-7"), (LOINC, "3141-9")),
        {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237},
        BASELINE_LAB_LOOKBACK_DAYS,
        until="infusion",
    ),
    QuantityCode(
        "ldh_u_per_l",
        ((LOINC, "2532-0"), (LOINC, "14804-9")),
        {"U/L": 1.0, "[IU]/L": 1.0, "ukat/L": 60.0},  # 1 ukat/L = 60 U/L
        BASELINE_LAB_LOOKBACK_DAYS,
    ),
    QuantityCode(
        "crp_mg_per_l",
        ((LOINC, "1988-5"),),
        {"mg/L": 1.0, "mg/dL": 10.0},
        BASELINE_LAB_LOOKBACK_DAYS,
    ),
    QuantityCode(
        "ferritin_ng_per_ml",
        ((LOINC, "2276-4"),),
        {"ng/mL": 1.0, "ug/L": 1.0},
        BASELINE_LAB_LOOKBACK_DAYS,
    ),
    QuantityCode(
        "platelets_10e9_per_l",
        ((LOINC, "777-3"),),
        {"10*9/L": 1.0, "10*3/uL": 1.0, "/nL": 1.0},
        BASELINE_LAB_LOOKBACK_DAYS,
    ),
    QuantityCode(
        "creatinine_mg_per_dl",
        ((LOINC, "2160-0"), (LOINC, "14682-9")),
        {"mg/dL": 1.0, "umol/L": 1 / 88.42},  # creatinine 113.12 g/mol: 1 mg/dL = 88.42 umol/L
        BASELINE_LAB_LOOKBACK_DAYS,
    ),
    QuantityCode(
        "marrow_blasts_pct",
        ((OBSERVATION, "marrow-blasts"),),
        {"%": 1.0},
        MARROW_LOOKBACK_DAYS,
    ),
    QuantityCode(
        "cd4_car_t_cells_per_ul",
        ((OBSERVATION, "cd4-car-t-cells"),),
        {"/uL": 1.0, "{cells}/uL": 1.0, "/mm3": 1.0, "10*6/L": 1.0},
    ),
    QuantityCode(
        "cd8_car_t_cells_per_ul",
        ((OBSERVATION, "cd8-car-t-cells"),),
        {"/uL": 1.0, "{cells}/uL": 1.0, "/mm3": 1.0, "10*6/L": 1.0},
    ),
)

VALUES: tuple[ValueCode, ...] = (
    ValueCode("crs_grade_by_day", (OBSERVATION, "crs-grade-astct"), "valueInteger"),
    ValueCode("icans_grade_by_day", (OBSERVATION, "icans-grade-astct"), "valueInteger"),
    ValueCode("prior_lines", (OBSERVATION, "prior-lines"), "valueInteger", 3650, "infusion"),
    ValueCode(
        "marrow_involvement",
        (OBSERVATION, "marrow-involvement"),
        "valueBoolean",
        MARROW_LOOKBACK_DAYS,
    ),
)

# Conditions: present (confirmed, or no verificationStatus) -> true, refuted -> false.
CONDITION_FLAGS: dict[Coding, str] = {
    (CONDITION, "cns-involvement"): "cns_involvement",
    (CONDITION, "neuro-comorbidity"): "neuro_comorbidity",
}
DISEASE_CODES: dict[Coding, str] = {(DISEASE, d): d for d in DISEASES}

# The CAR-T infusion: a MedicationAdministration whose medication names the product, or its
# CAR target and costimulatory domain. Licensed products by their target and domain
# (icans-facts section 2.1).
PRODUCTS: dict[str, tuple[str, str]] = {
    "axi-cel": ("CD19", "CD28"),
    "brexu-cel": ("CD19", "CD28"),
    "tisa-cel": ("CD19", "4-1BB"),
    "liso-cel": ("CD19", "4-1BB"),
    "obe-cel": ("CD19", "4-1BB"),
    "ide-cel": ("BCMA", "4-1BB"),
    "cilta-cel": ("BCMA", "4-1BB"),
}
TARGET_CODES: dict[Coding, str] = {(CAR_TARGET, t): t for t in CAR_TARGETS}
DOMAIN_CODES: dict[Coding, str] = {(COSTIMULATORY_DOMAIN, d): d for d in COSTIMULATORY_DOMAINS}
# The dose: CAR+ cells per kg, or in total (divided by the body weight).
DOSE_PER_KG_UNITS = {"{cells}/kg": 1.0, "10*6{cells}/kg": 1e6, "/kg": 1.0}
DOSE_TOTAL_UNITS = {"{cells}": 1.0, "10*6{cells}": 1e6, "10*8{cells}": 1e8, "1": 1.0}

# Corticosteroids (RxNorm ingredients) as dexamethasone-equivalent mg, and tocilizumab.
STEROIDS: dict[Coding, float] = {
    (RXNORM, "3264"): 1.0,  # dexamethasone
    (RXNORM, "6902"): METHYLPREDNISOLONE_TO_DEXAMETHASONE,  # methylprednisolone
}
STEROID_UNITS = {"mg": 1.0, "g": 1000.0}
TOCILIZUMAB: Coding = (RXNORM, "612865")

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


def render_tables() -> str:
    """The code and unit tables of ``docs/fhir-mapping.md`` (between its markers)."""
    lines = [
        "| Contract field | Resource | Codes | Units accepted (factor to the contract unit) |",
        "|---|---|---|---|",
    ]
    for q in QUANTITIES:
        units = ", ".join(f"`{u}` x{f:.6g}" for u, f in q.units.items())
        lines.append(
            f"| `{q.field}` ({FIELDS[q.field].unit}) | Observation.valueQuantity | "
            f"{_codes(q.codes)} | {units} |"
        )
    for v in VALUES:
        lines.append(f"| `{v.field}` | Observation.{v.value_type} | {_codes([v.code])} | - |")
    for coding, field in CONDITION_FLAGS.items():
        lines.append(f"| `{field}` | Condition (refuted: false) | {_codes([coding])} | - |")
    lines.append(f"| `disease` | Condition | `{DISEASE}` {', '.join(DISEASES)} | - |")
    lines.append(
        f"| `lymphodepletion` | Procedure | `{LYMPHODEPLETION}` "
        f"{', '.join(LYMPHODEPLETION_REGIMENS)} | - |"
    )
    products = ", ".join(f"{p} ({t}, {d})" for p, (t, d) in PRODUCTS.items())
    lines.append(
        f"| `car_target`, `costimulatory_domain` | MedicationAdministration.medication"
        f"CodeableConcept | `{CAR_T_PRODUCT}` {products}; or `{CAR_TARGET}` "
        f"{', '.join(CAR_TARGETS)} with `{COSTIMULATORY_DOMAIN}` "
        f"{', '.join(COSTIMULATORY_DOMAINS)} | - |"
    )
    per_kg = ", ".join(f"`{u}` x{f:g}" for u, f in DOSE_PER_KG_UNITS.items())
    total = ", ".join(f"`{u}` x{f:g}" for u, f in DOSE_TOTAL_UNITS.items())
    lines.append(
        f"| `dose_cells_per_kg` (cells/kg) | MedicationAdministration.dosage.dose (the "
        f"CAR-T infusion) | - | per kg: {per_kg}; total (divided by weight_kg): {total} |"
    )
    steroids = ", ".join(f"`{s}` `{c}` x{f:g}" for (s, c), f in STEROIDS.items())
    lines.append(
        f"| `dexamethasone_mg_by_day` (mg) | MedicationAdministration.dosage.dose, summed "
        f"per day | {steroids} | "
        f"{', '.join(f'`{u}` x{f:g}' for u, f in STEROID_UNITS.items())} |"
    )
    lines.append(
        f"| `tocilizumab_doses_by_day` (doses) | MedicationAdministration, counted per day | "
        f"{_codes([TOCILIZUMAB])} | - |"
    )
    return "\n".join(lines) + "\n"
