"""The data contract: one specification of each field the cohort, endpoint and reports share.

Each :class:`FieldSpec` (the type, in :mod:`icans.field_spec`) says a field's public name, type,
unit, clinical label, allowed range or enumeration, whether it may be missing, and where it lives
in the cohort tables. Everything that checks, packs or shows a field is derived from these
specifications and never restates them:

* the request model of ``/v1/risk`` (:mod:`api.patient`);
* the cohort table schema (:mod:`cohort.schema`);
* the raw observation layout the feature pipeline reads (:mod:`features.layout`);
* the list of missing inputs, and the labels and units shown to clinicians
  (:mod:`features.display`);
* the data dictionary in ``docs/data-dictionary.md`` (:mod:`cohort.dictionary`).

Field names and enumerations are public: do not rename (add freely). Units are in the names:
``dose_cells_per_kg``, ``marrow_blasts_pct``, ``ldh_u_per_l`` ... The order of
:data:`BASELINE` and of :data:`COURSE` fixes the raw layout of every model ever logged: append,
never reorder, and never reorder an enumeration (categories are coded by their position).
"""

from __future__ import annotations

from icans.daily_routine import DAILY_ROUTINE
from icans.field_spec import FieldSpec
from icans.products import CAR_PRODUCTS

DISEASES = ("LBCL", "PMBCL", "B-ALL", "MCL", "FL", "CLL", "MM", "AML", "T-ALL", "BPDCN")
CAR_TARGETS = ("CD19", "CD19-CD22", "BCMA", "CLL1", "CD123", "CD7")
COSTIMULATORY_DOMAINS = ("CD28", "4-1BB")
LYMPHODEPLETION_REGIMENS = ("flu_cy", "bendamustine", "other")
# Marrow disease is counted as blasts in these; as involvement (biopsy) in the others.
LEUKAEMIAS = ("B-ALL", "AML", "T-ALL", "BPDCN")
DEATH_CAUSES = ("icans", "infection", "crs", "progression", "other")
# Anti-inflammatory potency: dexamethasone 0.75 mg ~ methylprednisolone 4 mg.
METHYLPREDNISOLONE_TO_DEXAMETHASONE = 0.1875

# Disease groups used as a predictor (fewer levels than diseases, each with enough patients).
DISEASE_GROUPS = {
    "LBCL": "b_cell_lymphoma",
    "PMBCL": "b_cell_lymphoma",
    "MCL": "b_cell_lymphoma",
    "FL": "b_cell_lymphoma",
    "CLL": "b_cell_lymphoma",
    "B-ALL": "b_all",
    "MM": "myeloma",
    "AML": "myeloid",
    "BPDCN": "myeloid",
    "T-ALL": "t_all",
}

HORIZON_DAYS = 28  # the target is assessed through day 28
MAX_ICANS_GRADE_BEFORE_EVENT = 2  # a patient at grade >= 3 has already had the event


def _lab(name: str, label: str, unit: str, high: float, low_open: bool = False) -> FieldSpec:
    return FieldSpec(
        name,
        "number",
        label,
        unit,
        note="before lymphodepletion; may be missing",
        low=0,
        high=high,
        low_open=low_open,
        required=False,
    )


LABS: tuple[FieldSpec, ...] = (
    _lab("ldh_u_per_l", "LDH", "U/L", 50_000),
    _lab("crp_mg_per_l", "CRP", "mg/L", 1_000),
    _lab("ferritin_ng_per_ml", "ferritin", "ng/mL", 500_000),
    _lab("platelets_10e9_per_l", "platelets", "x10^9/L", 2_000, low_open=True),
    _lab("creatinine_mg_per_dl", "creatinine", "mg/dL", 30),
)

# Known before infusion: one value per patient, columns of the ``patients`` table.
BASELINE: tuple[FieldSpec, ...] = (
    FieldSpec("age_years", "number", "age", "y", low=0, high=100, note="at infusion"),
    FieldSpec(
        "weight_kg", "number", "weight", "kg", low=0, high=300, low_open=True, required=False
    ),
    FieldSpec(
        "dose_cells_per_kg",
        "number",
        "CAR-T dose",
        "cells/kg",
        fmt="{:.3g}",
        note="CAR+ cells per kg, e.g. 2.0e6",
        low=0,
        high=1e9,
        low_open=True,
    ),
    FieldSpec(
        "marrow_blasts_pct",
        "number",
        "marrow blasts",
        "%",
        note="before lymphodepletion; measured in the leukaemias (B-ALL, T-ALL, AML, BPDCN), "
        "empty for lymphoma, CLL and myeloma (see marrow_involvement)",
        low=0,
        high=100,
        required=False,
        diseases=LEUKAEMIAS,
    ),
    FieldSpec("cns_involvement", "boolean", "CNS involvement"),
    FieldSpec("prior_lines", "integer", "prior lines of therapy", low=0, high=30, required=False),
    FieldSpec("neuro_comorbidity", "boolean", "neurologic comorbidity", required=False),
    *LABS,
    FieldSpec("disease", "category", "disease", values=DISEASES),
    FieldSpec("car_target", "category", "CAR target", values=CAR_TARGETS),
    FieldSpec(
        "costimulatory_domain", "category", "costimulatory domain", values=COSTIMULATORY_DOMAINS
    ),
    FieldSpec(
        "lymphodepletion",
        "category",
        "lymphodepletion",
        values=LYMPHODEPLETION_REGIMENS,
        required=False,
    ),
    FieldSpec(
        "marrow_involvement",
        "boolean",
        "marrow involvement",
        note="marrow involved by the disease before lymphodepletion (biopsy); how marrow "
        "disease is measured in lymphoma, CLL and myeloma",
        required=False,
        optional_column=True,
        diseases=tuple(d for d in DISEASES if d not in LEUKAEMIAS),
    ),
    # Last, not beside costimulatory_domain: the order of BASELINE fixes the raw layout, and a
    # field added after the first models were logged is appended (features.layout).
    FieldSpec(
        "car_product",
        "category",
        "CAR-T product",
        note="licensed products by their short INN names; anything else, academic products "
        "included, is investigational. A licensed product must match car_target, "
        "costimulatory_domain and its label's diseases and ages (icans.products.PRODUCT_LABELS)",
        values=CAR_PRODUCTS,
        required=False,
        optional_column=True,
    ),
)

# About the patient's record, not inputs of the model or the endpoint: for auditing a model by
# subgroup and for splitting a real cohort in time (patients table, optional columns).
SEXES = ("female", "male")
RECORD: tuple[FieldSpec, ...] = (
    FieldSpec(
        "sex",
        "category",
        "sex",
        note="for the subgroup audit only, not a model input: no effect of sex on ICANS is "
        "published (after axi-cel, n=214, no sex difference in grade >= 3 CRS or ICANS)",
        values=SEXES,
        required=False,
        optional_column=True,
    ),
    FieldSpec(
        "infusion_order",
        "number",
        "infusion order",
        note="any number that orders infusions in time (a date as YYYYMMDD, days since a centre "
        "epoch, a running number); used by the temporal split, never a model input",
        low=0,
        high=1e12,
        required=False,
        optional_column=True,
    ),
)

PREDICTION_DAY = FieldSpec(
    "day_since_infusion",
    "integer",
    "day since infusion",
    note="the prediction day: 0 = day of infusion, before any post-infusion data; at most "
    "the day before the last day of follow-up (every horizon ends by day 28, icans.horizons)",
    low=0,
    high=HORIZON_DAYS - 1,
    table="",
)


def _cells(subset: str) -> FieldSpec:
    """CD4+ or CD8+ CAR-T cells per uL on sampled days (one flow cytometry assay measures both,
    so a row of ``measurements`` may lack one of them)."""
    return FieldSpec(
        f"{subset.lower()}_car_t_cells_per_ul",
        "day_list",
        f"{subset}+ CAR-T cells",
        "cells/uL",
        fmt="{:.3g}",
        note=f"{subset}+ CAR-T cells per uL of blood on each sampled day",
        low=0,
        high=100_000,
        required=False,
        table="measurements",
        value_key="value",
        layout=f"{subset.lower()}_cells_per_ul",
        column_nullable=True,
        routine=False,  # flow cytometry at few centres (icans-facts-3)
    )


# The course after infusion, observed day by day up to the prediction day.
COURSE: tuple[FieldSpec, ...] = (
    FieldSpec(
        "crs_grade_by_day",
        "day_list",
        "CRS grade",
        note="ASTCT 2019 CRS grade on each observed day",
        low=0,
        high=4,
        required=False,
        table="daily",
        column="crs_grade",
        value_key="grade",
        layout="crs_grade",
    ),
    _cells("CD4"),
    _cells("CD8"),
    FieldSpec(
        "icans_grade_by_day",
        "day_list",
        "ICANS grade",
        note="ASTCT 2019 ICANS grade on each observed day (ICE >= 12 y, CAPD < 12 y); a "
        "request before the event holds grades 0-2 only",
        low=0,
        high=4,
        required=False,
        table="daily",
        column="icans_grade",
        value_key="grade",
        layout="icans_grade",
        request_high=MAX_ICANS_GRADE_BEFORE_EVENT,
    ),
    FieldSpec(
        "dexamethasone_mg_by_day",
        "day_list",
        "corticosteroid",
        "mg",
        note="corticosteroid given that day as dexamethasone-equivalent mg (methylprednisolone "
        f"mg x {METHYLPREDNISOLONE_TO_DEXAMETHASONE}); 0 on a day without; prophylaxis included",
        low=0,
        high=2_000,
        required=False,
        table="daily",
        column="dexamethasone_mg",
        value_key="mg",
        layout="dexamethasone_mg",
        optional_column=True,
    ),
    FieldSpec(
        "tocilizumab_doses_by_day",
        "day_list",
        "tocilizumab",
        "doses",
        note="tocilizumab doses given that day (at most 3 in 24 h, label); 0 on a day without",
        low=0,
        high=3,
        required=False,
        table="daily",
        column="tocilizumab_doses",
        value_key="doses",
        layout="tocilizumab_doses",
        optional_column=True,
    ),
    # Generation 3: what a CAR-T ward charts every day (icans-facts-3: guidelines ask for the ICE
    # score at least twice daily and serial CRP, ferritin, blood counts, chemistry and
    # fibrinogen; IL-6 at some centres). One value per day: the day's maximum temperature, the
    # day's worst ICE or CAPD score, the latest laboratory value of the day.
    *DAILY_ROUTINE,
    # Generation 4: second-line therapy for ICANS, an escalation after corticosteroids, which
    # the refractory definition counts as evidence that steroids failed (icans.steroids).
    # After generation 3, so that no column of a logged layout moves (features.layout).
    FieldSpec(
        "anakinra_doses_by_day",
        "day_list",
        "anakinra",
        "doses",
        note="anakinra doses given that day for ICANS (100-200 mg or 8 mg/kg/day in 2-4 doses, "
        "Gazeau TCT 2023); 0 on a day without",
        low=0,
        high=4,
        required=False,
        table="daily",
        column="anakinra_doses",
        value_key="doses",
        layout="anakinra_doses",
        optional_column=True,
    ),
    FieldSpec(
        "intrathecal_doses_by_day",
        "day_list",
        "intrathecal therapy",
        "doses",
        note="intrathecal doses given that day for ICANS (dexamethasone, hydrocortisone, "
        "methotrexate or cytarabine; Meng 2025, Katsin 2024); 0 on a day without",
        low=0,
        high=1,
        required=False,
        table="daily",
        column="intrathecal_doses",
        value_key="doses",
        layout="intrathecal_doses",
        optional_column=True,
    ),
)

# What happened by day 28: columns of the ``outcomes`` table (never inputs of the model).
OUTCOMES: tuple[FieldSpec, ...] = (
    FieldSpec(
        "severe_or_refractory_icans",
        "boolean",
        "severe or steroid-refractory ICANS",
        note="the model's target: severe_icans or steroid_refractory_icans",
        table="outcomes",
    ),
    FieldSpec(
        "event_day",
        "integer",
        "event day",
        note="first day on which the target was met; empty if never",
        low=0,
        high=HORIZON_DAYS,
        required=False,
        table="outcomes",
    ),
    FieldSpec(
        "icans_max_grade",
        "integer",
        "worst ICANS grade",
        note="worst ASTCT ICANS grade by day 28 (5 = death from ICANS)",
        low=0,
        high=5,
        required=False,
        table="outcomes",
        optional_column=True,
    ),
    FieldSpec(
        "icans_onset_day",
        "integer",
        "ICANS onset day",
        note="first day with grade >= 1; empty if none",
        low=0,
        high=HORIZON_DAYS,
        required=False,
        table="outcomes",
        optional_column=True,
    ),
    FieldSpec(
        "severe_icans",
        "boolean",
        "severe ICANS",
        note="icans_max_grade >= 3",
        required=False,
        table="outcomes",
        optional_column=True,
    ),
    FieldSpec(
        "steroid_refractory_icans",
        "boolean",
        "steroid-refractory ICANS",
        note="ICANS grade >= 2 persisting 48 and 72 h after corticosteroids started, or "
        "escalated to anakinra or intrathecal therapy (icans.steroids)",
        required=False,
        table="outcomes",
        optional_column=True,
    ),
    FieldSpec(
        "death_day",
        "integer",
        "death day",
        note="day of death from any cause by day 28; empty if alive at day 28",
        low=0,
        high=HORIZON_DAYS,
        required=False,
        table="outcomes",
        optional_column=True,
    ),
    FieldSpec(
        "death_cause",
        "category",
        "cause of death",
        note="principal cause of a death by day 28; a death from another cause before the "
        "event makes the patient a non-event (competing risk)",
        values=DEATH_CAUSES,
        required=False,
        table="outcomes",
        optional_column=True,
    ),
)

FIELDS: dict[str, FieldSpec] = {f.name: f for f in (*BASELINE, PREDICTION_DAY, *COURSE, *OUTCOMES)}
LAB_FIELDS = tuple(f.name for f in LABS)
PATIENT_ID_MAX_LENGTH = 128
