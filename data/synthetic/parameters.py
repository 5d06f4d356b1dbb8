"""Every parameter of the synthetic CAR-T cohort, in one place, each with its source.

A parameter's ``source`` names the publication it is anchored to, or starts with ``ASSUMPTION``
when no published number fixes it (then it says what it was tuned or reasoned from). The data
card (``data/synthetic/README.md``) is written from this module, and a test checks that no
parameter lacks a source.

Units follow the data contract: doses in CAR+ cells per kg, labs as named, days since infusion.
Effects on the ICANS *drive* are on the log-odds scale of the daily ICANS onset/progression
hazards (see :mod:`data.synthetic.process`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from icans.contract import DISEASES

# Product families used for parameters and for the realism table.
FAMILIES = ("CD19-CD28", "CD19-4-1BB", "CD19-CD22", "BCMA", "CLL1", "CD123", "CD7")
MYELOID_OR_T_FAMILIES = ("CLL1", "CD123", "CD7")


GUST_2017 = "Gust J et al., Cancer Discov 2017;7(12):1404, Table 1"
HAN_2024 = "Han MW et al., Front Neurol 2024;15:1392831 (meta-analysis, 3,184 patients)"
GAUTHIER = "Gauthier J et al. (n=136 NHL), as tabulated in PMC9197870 Table 2"
MENG_2025 = "Meng J et al., Front Immunol 2025, doi:10.3389/fimmu.2025.1716317 (13-patient series)"
KATSIN_2024 = "Katsin M et al., Front Immunol 2024;15:1380451 (case report)"
RW_9_CENTRE = "9-centre real-world cohort, Blood Adv 2024;8(20):5346 (n=475)"


def P(value: Any, source: str) -> Any:
    """Declare a parameter with its source (kept in the dataclass field's metadata)."""
    if isinstance(value, (dict, list, tuple)):
        return field(default_factory=lambda: value, metadata={"source": source})
    return field(default=value, metadata={"source": source})


def fam(**values: Any) -> dict[str, Any]:
    """Per-family values written with identifiers (CD19_CD28=...) mapped to family names."""
    return {k.replace("_41BB", "-4-1BB").replace("_", "-"): v for k, v in values.items()}


@dataclass(frozen=True)
class CaseMix:
    """Who is treated and how a centre manages toxicity: disease shares, products per disease,
    the centre's steroid and tocilizumab policy, and any deliberate enrichment."""

    name: str
    description: str
    disease_share: dict[str, float]
    # Probability of each product family within a disease (before the products' age limits).
    family_by_disease: dict[str, dict[str, float]]
    # Share of CD28 (vs 4-1BB) costimulation among experimental myeloid/T-cell products.
    myeloid_cd28_share: float
    # Mean of the Poisson part of prior lines (prior_lines = 1 + Poisson(mean)).
    prior_lines_mean: float
    # Share of children/young people (age drawn from the paediatric range) per disease.
    paediatric_share: dict[str, float]
    # ICANS grade at which the centre starts dexamethasone (2: ASTCT/ASCO; 1: early treatment).
    steroid_start_grade: int
    # Share of patients given prophylactic dexamethasone (10 mg on days 0-2), per family.
    prophylaxis_share: dict[str, float]
    source: str
    # CNS involvement probability per disease replacing the population values (an enrichment by
    # design, e.g. a centre that treats patients with CNS disease); empty = population values.
    cns_probability: dict[str, float] = field(default_factory=dict)
    # What the centre charts after infusion (RoutineParameters): the share of patients followed
    # as outpatients after day 7 (daily labs to day 7, then twice weekly), the share whose centre
    # measures IL-6, and the share whose centre counts CAR-T cells in blood.
    outpatient_share: float = 0.0
    il6_share: float = 0.3
    car_t_count_share: float = 0.2


_CD19_LYMPHOMA_PRODUCTS = {
    "LBCL": {"CD19-CD28": 0.55, "CD19-4-1BB": 0.45},
    "PMBCL": {"CD19-CD28": 0.70, "CD19-4-1BB": 0.30},
    "MCL": {"CD19-CD28": 0.85, "CD19-4-1BB": 0.15},
    "FL": {"CD19-CD28": 0.50, "CD19-4-1BB": 0.50},
    "CLL": {"CD19-4-1BB": 1.0},
}
# Axi-cel label: "consider prophylactic corticosteroid"; 11/22 US centres use it (ASH survey,
# icans-facts-2 section 1). Cilta-cel label: avoid prophylactic steroids.
_US_PROPHYLAXIS = fam(
    CD19_CD28=0.5, CD19_41BB=0.0, CD19_CD22=0.0, BCMA=0.0, CLL1=0.0, CD123=0.0, CD7=0.0
)
_NO_PROPHYLAXIS = {f: 0.0 for f in FAMILIES}
_MYELOID_SOURCE = (
    "the myeloid targets' ICANS rates come from the product-family parameters (CLL1 0/10, CD7 "
    "5/55 grade 1), never from the outcome-selected seed series"
)

CASE_MIXES: dict[str, CaseMix] = {
    "real-world": CaseMix(
        name="real-world",
        description="Commercial CAR-T practice: mostly CD19 lymphoma, then myeloma and B-ALL.",
        disease_share={
            "LBCL": 0.50,
            "PMBCL": 0.03,
            "MCL": 0.07,
            "FL": 0.06,
            "CLL": 0.02,
            "B-ALL": 0.12,
            "MM": 0.17,
            "AML": 0.015,
            "T-ALL": 0.01,
            "BPDCN": 0.005,
        },
        family_by_disease={
            **_CD19_LYMPHOMA_PRODUCTS,
            "B-ALL": {"CD19-4-1BB": 0.55, "CD19-CD28": 0.30, "CD19-CD22": 0.15},
            "MM": {"BCMA": 1.0},
            "AML": {"CLL1": 0.6, "CD123": 0.4},
            "T-ALL": {"CD7": 1.0},
            "BPDCN": {"CD123": 1.0},
        },
        myeloid_cd28_share=0.3,
        prior_lines_mean=2.0,
        paediatric_share={"B-ALL": 0.45, "AML": 0.2, "T-ALL": 0.4},
        steroid_start_grade=2,
        prophylaxis_share=_US_PROPHYLAXIS,
        outpatient_share=0.3,
        il6_share=0.3,
        car_t_count_share=0.2,
        source=(
            "ASSUMPTION: shares chosen to resemble commercial practice (CD19 lymphoma dominant; "
            "axi-cel/brexu-cel vs tisa-cel/liso-cel split as in the real-world series of "
            f"{HAN_2024}); steroids from grade 2 (ASCO 2021); prophylaxis with axi-cel at half "
            "of centres (ASH survey, 11/22); ASSUMPTION: 30% outpatient after day 7 (outpatient "
            "models: daily visits to day 7-10, then twice weekly, Blood Adv 2024;8(16):4320), "
            "IL-6 at 30% and CAR-T counts at 20% of patients' centres (EBMT 2025 survey: "
            "practice heterogeneous, shares not published)"
        ),
    ),
    "myeloid-centre": CaseMix(
        name="myeloid-centre",
        description=(
            "An academic centre running experimental myeloid/T-cell CAR-T (AML with CLL1/CD123, "
            "T-ALL with CD7) besides CD19 and BCMA products, treating ICANS with steroids from "
            "grade 1. CNS involvement at population rates."
        ),
        disease_share={
            "AML": 0.50,
            "B-ALL": 0.22,
            "T-ALL": 0.06,
            "MM": 0.08,
            "LBCL": 0.08,
            "BPDCN": 0.06,
        },
        family_by_disease={
            "AML": {"CLL1": 0.65, "CD123": 0.35},
            "B-ALL": {"CD19-4-1BB": 0.6, "CD19-CD22": 0.4},
            "T-ALL": {"CD7": 1.0},
            "MM": {"BCMA": 1.0},
            "LBCL": {"CD19-CD28": 0.5, "CD19-4-1BB": 0.5},
            "BPDCN": {"CD123": 1.0},
        },
        myeloid_cd28_share=0.4,
        prior_lines_mean=5.5,
        paediatric_share={"B-ALL": 0.3, "AML": 0.15, "T-ALL": 0.3},
        steroid_start_grade=1,
        prophylaxis_share=_NO_PROPHYLAXIS,
        il6_share=0.6,
        car_t_count_share=0.8,
        source=(
            f"Disease mix and heavy pre-treatment (median 7 prior lines) from {MENG_2025}; "
            "ASSUMPTION: steroids from grade 1 (early treatment as in that centre's practice of "
            f"intrathecal therapy within 12 h of onset); {_MYELOID_SOURCE}; ASSUMPTION: an "
            "academic centre on a trial measures IL-6 (60%) and CAR-T cells (80%), inpatient"
        ),
    ),
    "seed-series": CaseMix(
        name="seed-series",
        description=(
            "Patients like those of the seed series: AML-heavy with CLL1/CD123/CD7 targets, "
            "heavily pre-treated, most with CNS involvement, steroids from grade 1. The CNS "
            "enrichment is by design (not a population rate); ICANS rates are the published "
            "per-product ones."
        ),
        disease_share={
            "AML": 0.54,
            "B-ALL": 0.23,
            "MM": 0.08,
            "LBCL": 0.08,
            "BPDCN": 0.04,
            "T-ALL": 0.03,
        },
        family_by_disease={
            "AML": {"CLL1": 0.75, "CD123": 0.15, "CD7": 0.10},
            "B-ALL": {"CD19-4-1BB": 0.6, "CD19-CD22": 0.4},
            "T-ALL": {"CD7": 1.0},
            "MM": {"BCMA": 1.0},
            "LBCL": {"CD19-CD28": 0.5, "CD19-4-1BB": 0.5},
            "BPDCN": {"CD123": 1.0},
        },
        myeloid_cd28_share=0.4,
        prior_lines_mean=6.0,
        paediatric_share={"B-ALL": 0.2, "AML": 0.1, "T-ALL": 0.2},
        steroid_start_grade=1,
        prophylaxis_share=_NO_PROPHYLAXIS,
        il6_share=0.6,
        car_t_count_share=0.8,
        cns_probability={d: 0.7 for d in DISEASES},
        source=(
            f"Diseases (7 AML, 3 ALL, 1 MM, 1 lymphoma, 1 BPDCN of 13), targets, 7 prior lines "
            f"and CNS involvement in 9/13 from {MENG_2025}; that series was selected ON the "
            f"outcome, so the CNS enrichment is a design choice and {_MYELOID_SOURCE}; CAR-T "
            "counts as in the trial centres of the series (ASSUMPTION 80%)"
        ),
    ),
    "paediatric-all": CaseMix(
        name="paediatric-all",
        description="Children and young adults with B-ALL (CD19 4-1BB and CD19-CD22 products).",
        disease_share={"B-ALL": 1.0},
        family_by_disease={"B-ALL": {"CD19-4-1BB": 0.75, "CD19-CD22": 0.25}},
        myeloid_cd28_share=0.0,
        prior_lines_mean=2.5,
        paediatric_share={"B-ALL": 1.0},
        steroid_start_grade=2,
        prophylaxis_share=_NO_PROPHYLAXIS,
        il6_share=0.4,
        car_t_count_share=0.5,
        source=(
            "ASSUMPTION: ELIANA-like population (tisa-cel, ages 3-25) plus the NCI CD19/CD22 "
            "programme (Blood Adv 2023;7(18):5566); ASSUMPTION: paediatric centres measure IL-6 "
            "(40%) and CAR-T cells (50%) more often"
        ),
    ),
}


@dataclass(frozen=True)
class Product:
    """A CAR-T product's label: family, diseases, ages and dosing rule.

    ``rule``: ``per_kg`` (cells/kg, capped at ``cap_total`` cells), ``flat`` (total cells,
    whatever the weight) or ``weight_band`` (per kg up to ``band_kg``, flat above). The dose
    given is log10-normal around ``median`` with ``log10_sd``, kept inside ``[low, high]``.
    """

    family: str
    diseases: tuple[str, ...]
    min_age: float
    max_age: float
    rule: str
    median: float
    low: float
    high: float
    log10_sd: float
    cap_total: float = float("inf")
    # weight_band only: the flat part above band_kg
    band_kg: float = 0.0
    flat_median: float = 0.0
    flat_low: float = 0.0
    flat_high: float = 0.0
    weight: float = 1.0  # relative share among a family's products allowed for a patient
    # The product as the data contract names it (car_product): one licensed product may have
    # two labels here (tisa-cel for B-ALL and for NHL); every trial product is investigational.
    car_product: str = "investigational"


PRODUCTS: dict[str, Product] = {
    "axi-cel": Product(
        "CD19-CD28",
        ("LBCL", "PMBCL", "FL"),
        18,
        100,
        "per_kg",
        2e6,
        1.6e6,
        2.2e6,
        0.03,
        cap_total=2e8,
        car_product="axi-cel",
    ),
    "brexu-cel MCL": Product(
        "CD19-CD28",
        ("MCL",),
        18,
        100,
        "per_kg",
        2e6,
        1.6e6,
        2.2e6,
        0.03,
        cap_total=2e8,
        car_product="brexu-cel",
    ),
    "brexu-cel ALL": Product(
        "CD19-CD28",
        ("B-ALL",),
        18,
        100,
        "per_kg",
        1e6,
        0.8e6,
        1.1e6,
        0.03,
        cap_total=1e8,
        car_product="brexu-cel",
    ),
    "tisa-cel ALL": Product(
        "CD19-4-1BB",
        ("B-ALL",),
        0,
        25,
        "weight_band",
        2.5e6,
        0.2e6,
        5e6,
        0.25,
        band_kg=50,
        flat_median=0.9e8,
        flat_low=0.1e8,
        flat_high=2.5e8,
        car_product="tisa-cel",
    ),
    "tisa-cel NHL": Product(
        "CD19-4-1BB",
        ("LBCL", "FL"),
        18,
        100,
        "flat",
        2.5e8,
        0.6e8,
        6e8,
        0.2,
        car_product="tisa-cel",
    ),
    "liso-cel": Product(
        "CD19-4-1BB",
        ("LBCL", "PMBCL", "MCL", "FL", "CLL"),
        18,
        100,
        "flat",
        1e8,
        0.5e8,
        1.1e8,
        0.05,
        car_product="liso-cel",
    ),
    "CD19-CD22 (NCI)": Product(
        "CD19-CD22", ("B-ALL", "LBCL"), 0, 100, "per_kg", 1e6, 3e5, 3e6, 0.15
    ),
    "ide-cel": Product(
        "BCMA", ("MM",), 18, 100, "flat", 4e8, 3e8, 5.1e8, 0.05, car_product="ide-cel"
    ),
    "cilta-cel": Product(
        "BCMA",
        ("MM",),
        18,
        100,
        "per_kg",
        0.75e6,
        0.5e6,
        1e6,
        0.06,
        cap_total=1e8,
        car_product="cilta-cel",
    ),
    "CLL1 (phase I)": Product("CLL1", ("AML",), 0, 100, "per_kg", 1.5e6, 1e6, 2e6, 0.08),
    "CD123 (phase I)": Product("CD123", ("AML", "BPDCN"), 0, 100, "per_kg", 1e6, 3e5, 1e7, 0.3),
    "CD7 (phase I/II)": Product("CD7", ("T-ALL", "AML"), 0, 100, "per_kg", 1e6, 5e5, 5e6, 0.2),
}
PRODUCTS_SOURCE = (
    "Labels (icans-facts-2 section 1): axi-cel and brexu-cel MCL 2e6/kg (max 2e8), brexu-cel "
    "adult B-ALL 1e6/kg (max 1e8), adults only; tisa-cel B-ALL <= 25 y: <= 50 kg 0.2-5.0e6/kg, "
    "> 50 kg 0.1-2.5e8 (medians 2.0e6/kg and 0.9e8 in CIBMTR-tisa), NHL 0.6-6.0e8 flat; "
    "liso-cel 50-110e6; ide-cel 300-510e6; cilta-cel 0.5-1.0e6/kg (max 1e8); CLL1 1-2e6/kg; "
    "CD123 dose levels 0.3-10e6/kg; CD7 0.5-5e6/kg. ASSUMPTION: the NCI CD19-CD22 dose (1e6/kg) "
    "and the spreads around label targets"
)
# The products in a fixed order: the generator's dynamics are indexed by product (code =
# position), each taking its family's parameter unless the parameter names the product.
PRODUCT_NAMES = tuple(PRODUCTS)
PRODUCT_FAMILY = {name: product.family for name, product in PRODUCTS.items()}


@dataclass(frozen=True)
class BaselineParameters:
    """Distributions of the fields known before infusion."""

    adult_age_mean_sd: dict[str, tuple[float, float]] = P(
        {
            "LBCL": (60, 12),
            "PMBCL": (35, 10),
            "MCL": (65, 9),
            "FL": (60, 10),
            "CLL": (65, 9),
            "B-ALL": (42, 15),
            "MM": (62, 9),
            "AML": (45, 15),
            "T-ALL": (30, 10),
            "BPDCN": (65, 12),
        },
        "ASSUMPTION: typical ages of trial/real-world populations per disease; AML centred on "
        f"the median age 39 (11-65) of {MENG_2025}",
    )
    adult_age_range: tuple[float, float] = P((18.0, 85.0), "ASSUMPTION: eligibility range")
    paediatric_age_range: tuple[float, float] = P(
        (1.0, 21.0), "ASSUMPTION: ELIANA enrolled 3-25 y; CAPD validated up to 21 y"
    )
    adult_weight_median_kg: float = P(75.0, "ASSUMPTION: adult population median")
    weight_log_sd: float = P(0.18, "ASSUMPTION: ~18% coefficient of variation")
    female_share: float = P(
        0.41,
        "Female share ~41% (CIBMTR tisa-cel registry); recorded only: no effect of sex on ICANS "
        "is published (axi-cel n=214, no sex difference in grade >= 3 CRS or ICANS), so none "
        "in this world",
    )
    products: dict[str, Product] = P(PRODUCTS, PRODUCTS_SOURCE)
    marrow_involvement_probability: dict[str, float] = P(
        {"LBCL": 0.15, "PMBCL": 0.10, "MCL": 0.5, "FL": 0.3, "CLL": 0.8, "MM": 0.95},
        "ASSUMPTION: lymphoma marrow involvement is a minority, CLL and myeloma mostly involved "
        f"({KATSIN_2024} describes marrow involvement in PMBCL)",
    )
    marrow_involvement_missing: float = P(0.10, "ASSUMPTION: biopsy not reported")
    involvement_burden: float = P(
        0.25,
        "ASSUMPTION: a marrow involved by lymphoma, CLL or myeloma carries the tumour burden of "
        "25% leukaemic blasts (Gust 2017 pooled ALL, CLL and NHL marrow disease)",
    )
    # Beta(a, b) on the 0-1 scale for the marrow blast percentage of the leukaemias.
    marrow_blasts_beta: dict[str, tuple[float, float]] = P(
        {"B-ALL": (0.8, 1.3), "AML": (1.5, 2.6), "T-ALL": (0.9, 2.2), "BPDCN": (1.2, 4.0)},
        f"Leukaemia medians near the 33% (5-78%) of {MENG_2025} (ASSUMPTION for the shapes)",
    )
    cns_probability: dict[str, float] = P(
        {
            "LBCL": 0.02,
            "PMBCL": 0.01,
            "MCL": 0.02,
            "FL": 0.005,
            "CLL": 0.005,
            "B-ALL": 0.094,
            "MM": 0.007,
            "AML": 0.03,
            "T-ALL": 0.10,
            "BPDCN": 0.10,
        },
        "Population sources (icans-facts-2 section 2): B-ALL prior CNS 9.4% (CIBMTR-tisa); LBCL "
        "CNS lymphoma 1.0% plus CNS history (axi-cel RW); myeloma 0.7% (Mayo); AML 2.9% at "
        "relapse. ASSUMPTION: MCL 2%, FL/CLL 0.5%, T-ALL and BPDCN 10%",
    )
    neuro_comorbidity_probability_adult: float = P(
        0.30, f"ASSUMPTION below the 44% (58/133, broad definition) of {GUST_2017}"
    )
    neuro_comorbidity_probability_child: float = P(0.10, "ASSUMPTION")
    lymphodepletion_share: dict[str, float] = P(
        {"flu_cy": 0.85, "bendamustine": 0.07, "other": 0.08},
        "ASSUMPTION: fludarabine/cyclophosphamide is standard; bendamustine only with "
        "CD19 4-1BB lymphoma products",
    )
    # Labs are noisy readouts of the latent inflammation class r, of tumour burden and of the
    # disease: log(lab) = log(median) + disease shift + r_loading * r + burden_loading * burden
    lab_median: dict[str, float] = P(
        {
            "ldh_u_per_l": 240.0,
            "crp_mg_per_l": 10.0,
            "ferritin_ng_per_ml": 550.0,
            "platelets_10e9_per_l": 150.0,
            "creatinine_mg_per_dl": 0.85,
        },
        "ASSUMPTION: typical pre-lymphodepletion values in relapsed/refractory lymphoma",
    )
    lab_disease_log_shift: dict[str, dict[str, float]] = P(
        {
            "ldh_u_per_l": {"b_all": 0.25, "myeloid": 0.25, "t_all": 0.35, "myeloma": -0.15},
            "crp_mg_per_l": {"b_all": -0.2, "myeloid": 0.2, "myeloma": -0.4},
            "ferritin_ng_per_ml": {"b_all": 0.5, "myeloid": 0.9, "t_all": 0.4, "myeloma": 0.1},
            "platelets_10e9_per_l": {
                "b_all": -0.6,
                "myeloid": -0.9,
                "t_all": -0.4,
                "myeloma": -0.3,
            },
            "creatinine_mg_per_dl": {"myeloma": 0.3},
        },
        "ASSUMPTION (directions from the diseases, sizes not sourced): leukaemias lower "
        "platelets (marrow failure) and raise ferritin (transfusions, most in AML); myeloma "
        "raises creatinine (myeloma kidney); aggressive lymphoma and T-ALL raise LDH; log-scale "
        "shifts from the lymphoma medians",
    )
    lab_r_loading: dict[str, float] = P(
        {
            "ldh_u_per_l": 0.12,
            "crp_mg_per_l": 0.50,
            "ferritin_ng_per_ml": 0.30,
            "platelets_10e9_per_l": -0.18,
            "creatinine_mg_per_dl": 0.0,
        },
        "Direction from Pennisi 2021 (m-EASIX: high CRP, low platelets), Greenbaum 2021 "
        "(EASIX-FC: CRP and ferritin) and Gauthier (LDH); strengths are ASSUMPTIONS tuned so "
        "m-EASIX alone discriminates modestly (AUROC ~0.6-0.7)",
    )
    lab_burden_loading: dict[str, float] = P(
        {
            "ldh_u_per_l": 0.8,
            "crp_mg_per_l": 0.2,
            "ferritin_ng_per_ml": 0.3,
            "platelets_10e9_per_l": -1.2,
            "creatinine_mg_per_dl": 0.0,
        },
        "ASSUMPTION: tumour burden raises LDH and lowers platelets",
    )
    lab_log_sd: dict[str, float] = P(
        {
            "ldh_u_per_l": 0.55,
            "crp_mg_per_l": 1.0,
            "ferritin_ng_per_ml": 0.8,
            "platelets_10e9_per_l": 0.5,
            "creatinine_mg_per_dl": 0.25,
        },
        "ASSUMPTION: wide biological spread of these labs between patients",
    )
    lab_missing_probability: dict[str, float] = P(
        {
            "ldh_u_per_l": 0.03,
            "crp_mg_per_l": 0.05,
            "ferritin_ng_per_ml": 0.12,
            "platelets_10e9_per_l": 0.01,
            "creatinine_mg_per_dl": 0.02,
        },
        "ASSUMPTION: missing completely at random",
    )
    lab_plausible_range: dict[str, tuple[float, float]] = P(
        {
            "ldh_u_per_l": (80.0, 10_000.0),
            "crp_mg_per_l": (0.1, 500.0),
            "ferritin_ng_per_ml": (5.0, 100_000.0),
            "platelets_10e9_per_l": (2.0, 1_000.0),
            "creatinine_mg_per_dl": (0.1, 15.0),
        },
        "ASSUMPTION: labs are log-normal truncated to physiologically plausible limits "
        f"(CRP 340 mg/L in {KATSIN_2024} sits inside)",
    )
    child_creatinine_factor: float = P(0.5, "ASSUMPTION: lower creatinine in children")


@dataclass(frozen=True)
class LatentParameters:
    """The hidden patient classes: expansion magnitude u, inflammation r, expansion timing k
    and CAR-T composition c. Discrete, so that the true risk is exact."""

    expansion_classes: int = P(5, "Design: discrete so that the true risk is exact")
    inflammation_classes: int = P(5, "Design: discrete so that the true risk is exact")
    class_span_sd: float = P(2.0, "Design: classes span +/-2 SD of a standard normal")
    timing_shift_days: tuple[float, ...] = P(
        (-3.0, 0.0, 5.0),
        "Expansion early, on time or late relative to the product's typical peak: tisa-cel "
        "Tmax 9.9 d (range 5.7-28) in responders, cilta-cel 12.7 d (8.7-330) (icans-facts-2 "
        f"section 3); the late class holds the day-14 peak of {KATSIN_2024}",
    )
    timing_prior: tuple[float, ...] = P(
        (0.25, 0.55, 0.20), "ASSUMPTION: about a fifth of patients expand late"
    )
    cd4_dominant_prior: float = P(
        0.08,
        "ASSUMPTION: a minority expand with CD4+ cells dominating (product CD4:CD8 median 1.44, "
        f"Galli 2023; 85% CD4+ product and blood CD4:CD8 of 89 in {KATSIN_2024})",
    )


@dataclass(frozen=True)
class ExpansionParameters:
    """CD4+/CD8+ CAR-T cells in blood: a gamma-variate curve per patient, measured with noise.

    Peak size (class u), peak day (class k) and composition (class c) vary between patients.
    """

    cd4_peak_median_cells_per_ul: dict[str, float] = P(
        fam(
            CD19_CD28=20.0,
            CD19_41BB=9.0,
            CD19_CD22=10.0,
            BCMA=25.0,
            CLL1=12.0,
            CD123=10.0,
            CD7=30.0,
        ),
        "Axi-cel real-world median peak 16 CAR+ cells/uL (Blood Adv 2021;5:2523); ASSUMPTION "
        f"for the others, anchored to the 77.7 cells/uL peak of {KATSIN_2024}; CD28 products "
        "expand higher than 4-1BB",
    )
    peak_day: dict[str, float] = P(
        fam(
            CD19_CD28=8.0,
            CD19_41BB=10.0,
            CD19_CD22=10.0,
            BCMA=12.0,
            CLL1=12.0,
            CD123=12.0,
            CD7=11.0,
        ),
        "Typical peak day: tisa-cel Tmax ~10 d (label), liso-cel 10 d, cilta-cel 12.7 d; CLL1 "
        "peak within 2 weeks; ASSUMPTION: CD28 products peak earlier (day 8)",
    )
    shape: dict[str, float] = P(
        fam(CD19_CD28=3.0, CD19_41BB=2.0, CD19_CD22=2.0, BCMA=2.0, CLL1=2.5, CD123=2.5, CD7=2.5),
        "ASSUMPTION: gamma-variate sharpness; 4-1BB products persist longer",
    )
    dose_exponent: dict[str, float] = P(
        fam(
            CD19_CD28=0.35,
            CD19_41BB=0.0,
            CD19_CD22=0.35,
            BCMA=0.35,
            CLL1=0.35,
            CD123=0.35,
            CD7=0.35,
        ),
        "Peak grows as dose^exponent. ELIANA (tisa-cel): no dose-expansion relation "
        "(r^2 < 0.001), so 0 for CD19-4-1BB; ASSUMPTION 0.35 elsewhere (Gust 2017 dose effect)",
    )
    burden_effect: float = P(0.8, "ASSUMPTION: antigen load (tumour burden) drives expansion")
    log_sd_between_patients: float = P(
        1.1, "Label Cmax CVs of 155-408% give a log-SD of ~1.1-1.7 (icans-facts-2 section 3)"
    )
    cd8_to_cd4_log_ratio_mean: dict[str, float] = P(
        fam(CD19_CD28=0.4, CD19_41BB=0.0, CD19_CD22=0.4, BCMA=0.4, CLL1=0.4, CD123=0.4, CD7=0.4),
        "ASSUMPTION: CD8-leaning expansion except defined 1:1 products (liso-cel)",
    )
    cd4_dominant_log_ratio_mean: float = P(
        -3.0,
        f"ASSUMPTION: CD4:CD8 ~20 in a CD4-dominant expansion; the 89 of {KATSIN_2024} sits "
        "within two SD",
    )
    cd8_to_cd4_log_ratio_sd: float = P(0.8, "ASSUMPTION")
    measurement_log_sd: float = P(0.25, "ASSUMPTION: ~25% flow-cytometry CV")
    sampling_days: tuple[int, ...] = P(
        (0, 3, 7, 10, 14, 21, 28), "Typical trial schedule (issue text); day 0 pre-infusion"
    )
    missed_sample_probability: float = P(0.10, "ASSUMPTION")


@dataclass(frozen=True)
class CrsParameters:
    """Daily CRS chain: pre-onset -> grade 1-4 -> resolved (no recurrence)."""

    onset_logit: dict[str, float] = P(
        fam(CD19_CD28=0.35, CD19_41BB=-1.6, CD19_CD22=-0.6, BCMA=0.2, CLL1=0.6, CD123=0.2, CD7=0.8)
        | {"liso-cel": -2.0, "ide-cel": -0.1},
        "Tuned to CRS incidence: axi-cel ~93%, tisa-cel ~58% (real-world NHL 45%, Pasquini "
        "2020), liso-cel 42% (TRANSCEND), ide-cel 84% (KarMMa), cilta-cel 95%, CLL1 10/10, CD7 "
        "98% (facts: product table; CD7 Blood 2025)",
    )
    onset_day: dict[str, float] = P(
        fam(CD19_CD28=3.0, CD19_41BB=4.5, CD19_CD22=3.0, BCMA=3.0, CLL1=3.0, CD123=3.0, CD7=3.0)
        | {"liso-cel": 6.0, "ide-cel": 1.5, "cilta-cel": 8.0},
        "Median CRS onset day 2 (axi-cel label), 3-4 (tisa-cel: JULIET 3, CIBMTR 4), 1 "
        "(ide-cel, KarMMa), 7 (cilta-cel, CARTITUDE-1), 5 (liso-cel SmPC)",
    )
    onset_width_days: float = P(2.0, "ASSUMPTION: onset spread over the first week")
    last_onset_day: int = P(14, f"No new CRS after 2 weeks ({RW_9_CENTRE})")
    r_effect: float = P(1.0, "ASSUMPTION: inflammation drives CRS")
    u_effect: float = P(0.5, "ASSUMPTION: expansion drives CRS (Hay 2017: dose, burden)")
    escalate_logit: dict[str, float] = P(
        fam(
            CD19_CD28=-1.6,
            CD19_41BB=-2.0,
            CD19_CD22=-2.0,
            BCMA=-2.1,
            CLL1=0.4,
            CD123=-1.5,
            CD7=-1.7,
        )
        | {"tisa-cel ALL": -1.4, "tisa-cel NHL": -2.5, "liso-cel": -2.4, "ide-cel": -2.4},
        "Tuned to grade>=3 CRS: axi-cel ~10%, liso-cel 2%, tisa-cel ALL 16% (CIBMTR), "
        "ide-cel/cilta-cel 4-5%, CLL1 6/10 "
        "high grade, CD7 11% (facts: product and myeloid tables)",
    )
    escalate_grade_step: float = P(1.5, "ASSUMPTION: each grade is harder to exceed")
    improve_logit: dict[str, float] = P(
        fam(
            CD19_CD28=-2.3,
            CD19_41BB=-1.9,
            CD19_CD22=-1.6,
            BCMA=-1.8,
            CLL1=-1.6,
            CD123=-1.6,
            CD7=-1.6,
        )
        | {"cilta-cel": -1.3, "liso-cel": -1.6},
        "Tuned to median CRS duration: axi-cel 7 d (label), tisa-cel 5-12 d (CIBMTR 5, JULIET "
        "7-12), ide-cel 5-7 d (KarMMa), cilta-cel 4 d (CARTITUDE-1), liso-cel 4-7 d "
        "(ASSUMPTION; TRANSCEND CLL 6)",
    )
    dose_per_doubling: dict[str, float] = P(
        fam(CD19_CD28=0.0, CD19_41BB=0.0, CD19_CD22=0.0, BCMA=0.0, CLL1=0.0, CD123=0.0, CD7=0.0)
        | {"tisa-cel NHL": 0.9},
        "CRS intensity per doubling of the total dose: CIBMTR tisa-cel NHL OR 2.87 (1.51-5.48) "
        "per doubling for any CRS, none in ALL (Pasquini 2020); no dose effect reported within "
        "the other labels (axi-cel is dosed at one level): 0",
    )
    late_decline_per_day: float = P(0.35, "ASSUMPTION: CRS subsides after the expansion peak")


@dataclass(frozen=True)
class TreatmentParameters:
    """Tocilizumab for CRS and corticosteroids for ICANS, given by rule from the observed grades.

    The rules are the centre's (case mix: steroid start grade, prophylaxis); the doses are
    written to the course in dexamethasone-equivalent mg (:mod:`icans.steroids`)."""

    tocilizumab_probability: tuple[float, float, float, float, float] = P(
        (0.0, 0.0, 0.3, 0.7, 0.9),
        "ASSUMPTION (no source gives use by grade): daily probability of a dose by CRS grade "
        "0-4 (grade 1: tocilizumab_grade_1_probability). Guidelines give it from grade 2 "
        "(ASCO 2021), yet only 43-48% of CRS patients get it (ELIANA 48%, CIBMTR tisa-cel ALL "
        "45%, NHL 43%; ZUMA-1 43%)",
    )
    tocilizumab_use: dict[str, float] = P(
        fam(CD19_CD28=1.0, CD19_41BB=1.0, CD19_CD22=1.0, BCMA=1.0, CLL1=1.0, CD123=1.0, CD7=1.0)
        | {"tisa-cel ALL": 0.4, "tisa-cel NHL": 0.7},
        "ASSUMPTION: practice by product scales the daily probabilities; tisa-cel centres give "
        "less (CIBMTR: 45% of CRS patients in ALL, 43% in NHL, Pasquini 2020; ELIANA 48%) for "
        "the same grades",
    )
    tocilizumab_grade_1_probability: dict[str, float] = P(
        fam(CD19_CD28=0.12, CD19_41BB=0.05, CD19_CD22=0.1, BCMA=0.35, CLL1=0.2, CD123=0.2, CD7=0.2)
        | {"cilta-cel": 0.8, "tisa-cel NHL": 0.03},
        "ASSUMPTION: daily probability for persistent grade 1 fever (ASCO 2021 allows it); "
        "higher after cilta-cel (CARTITUDE-1: 69% given tocilizumab, CRS mostly grade 1-2)",
    )
    tocilizumab_fever_days: int = P(
        3,
        "ASSUMPTION: tocilizumab for grade 1 CRS only from its third day of fever running "
        "(ASCO 2021: persistent fever)",
    )
    tocilizumab_max_doses: int = P(4, "KYMRIAH label: at most 4 doses in total")
    tocilizumab_improve_effect: float = P(
        1.0, "ASSUMPTION: tocilizumab speeds CRS resolution (log-odds of improving)"
    )
    steroid_start_probability: tuple[float, float, float, float] = P(
        (0.0, 0.35, 0.5, 1.0),
        "ASSUMPTION: daily probability of starting steroids by ICANS grade 0-3 once the grade "
        "reaches the centre's start grade (ASCO 2021: dexamethasone from grade 2; CIBMTR: 50% "
        "of NHL and 22% of ALL ICANS patients got steroids, Pasquini 2020); certain from "
        "grade 3",
    )
    second_line_on_refractory: float = P(
        0.6,
        "ASSUMPTION: share of patients judged refractory (grade >= 2 persisting 72 h) given "
        "anakinra or intrathecal therapy that day (Gazeau 2023: 43 patients with refractory "
        "ICANS/CRS at 9 centres; MDACC 8 of 41 grade >= 3 given anakinra, Strati 2020)",
    )
    early_second_line: dict[str, float] = P(
        fam(
            CD19_CD28=0.02,
            CD19_41BB=0.02,
            CD19_CD22=0.02,
            BCMA=0.02,
            CLL1=0.25,
            CD123=0.25,
            CD7=0.25,
        ),
        "ASSUMPTION: daily probability of second-line therapy on the day after the steroid "
        "start or the next, ICANS grade >= 1 (an escalation before the 72-h judgement). High "
        "where the seed series was treated: intrathecal dexamethasone and methotrexate a "
        "median 12 h after onset in 13 patients, 7 with AML (Meng 2025)",
    )
    intrathecal_share: dict[str, float] = P(
        fam(
            CD19_CD28=0.15, CD19_41BB=0.15, CD19_CD22=0.15, BCMA=0.15, CLL1=0.8, CD123=0.8, CD7=0.8
        ),
        "ASSUMPTION: intrathecal therapy rather than anakinra as the second line (anakinra is "
        "the usual escalation: Gazeau 2023, FHCC/OHSU n=124; intrathecal at the seed centre, "
        "Meng 2025, and in small series, Katsin 2024)",
    )
    anakinra_doses_per_day: int = P(2, "Gazeau 2023: 100-200 mg every 8-12 h")
    anakinra_days: int = P(
        7, "ASSUMPTION: anakinra for at most 7 days while ICANS lasts (Gazeau 2023: 2-3 weeks)"
    )
    intrathecal_max_doses: int = P(3, "Meng 2025: median 1 (1-3) intrathecal doses")
    steroid_fever_masked_probability: float = P(
        0.7,
        "ASSUMPTION: corticosteroids at a treatment dose mask fever (of CRS or another cause) on "
        "most days; ASTCT then grades CRS by hypotension and hypoxia",
    )
    fever_masked_probability: float = P(
        0.9,
        "ASSUMPTION: after tocilizumab most patients are afebrile; ASTCT then grades CRS by "
        "hypotension and hypoxia alone (fever no longer required)",
    )
    prophylaxis_mg: float = P(10.0, "ZUMA-1 cohort 6 (Oluwole BJH 2021): dexamethasone 10 mg d0-2")
    prophylaxis_days: int = P(3, "Days 0-2 (Oluwole BJH 2021)")
    prophylaxis_crs_effect: float = P(
        -0.8,
        "ASSUMPTION tuned to ZUMA-1 cohort 6 (prophylactic dexamethasone): CRS 80%, none grade "
        ">= 3, against 93% and 13% in cohorts 1-2 (Oluwole BJH 2021)",
    )
    prophylaxis_drive_effect: float = P(
        -0.9,
        "Prophylaxis lowers the ICANS drive: ZUMA-1 grade>=3 NE 13% (cohort 6) vs 28% "
        "(cohorts 1-2), OR ~0.4, part of it from earlier treatment; ASSUMPTION -0.9 "
        "(switch: 0), bounded by -1.0",
    )
    standard_mg: float = P(40.0, "ASCO 2021: dexamethasone 10 mg every 6 h for ICANS grade 2")
    taper_mg: float = P(20.0, "ASSUMPTION: after a response, 10 mg every 12 h until grade 0")
    high_dose_mg: float = P(
        187.5,
        "Methylprednisolone 1 g (KYMRIAH label, grade 4 or not improving) = 187.5 mg "
        "dexamethasone-equivalent",
    )


@dataclass(frozen=True)
class DeathParameters:
    """Deaths by day 28: from ICANS (after the event) and from other causes (competing)."""

    nrm_28_day: dict[str, float] = P(
        fam(
            CD19_CD28=0.02,
            CD19_41BB=0.02,
            CD19_CD22=0.025,
            BCMA=0.025,
            CLL1=0.04,
            CD123=0.04,
            CD7=0.03,
        ),
        "Non-ICANS deaths by day 28: ~1-2% CD19 LBCL (DESCAR-T <d28 0.9%, ELIANA 2.7% <= 30 d, "
        "KYM-PI 2.6%), ~2-3% ALL/MCL/MM (icans-facts-2 section 6); ASSUMPTION 3-4% for the "
        "myeloid and T-cell products (CLL1 phase I: 2/10 infection deaths, all with aplasia)",
    )
    cause_share: dict[str, float] = P(
        {"infection": 0.6, "crs": 0.2, "progression": 0.2},
        "Infection ~50-56%, CRS/HLH ~10-20% of early NRM (Cordas dos Santos 2024; DESCAR-T); "
        "a death is labelled CRS only on a day of CRS grade >= 3 (otherwise infection or "
        "progression)",
    )
    high_dose_steroid_hazard_ratio: float = P(
        4.0,
        "ASSUMPTION: deaths from other causes (mostly infection) four times as likely during "
        "and after a high-dose corticosteroid course (prolonged high-dose steroids went with "
        "shorter survival after axi-cel, Strati Blood 2021; infection is half of non-relapse "
        "deaths, Cordas dos Santos 2024)",
    )
    icans_death_per_grade_4_day: float = P(
        0.06,
        "Tuned to fatal ICANS ~1-2% in CD28 products, <1% in 4-1BB (facts: ICANS mortality; "
        "brexu-cel grade 5 2%)",
    )
    icans_death_per_diffuse_edema_day: float = P(
        0.3,
        "Diffuse cerebral oedema is mostly fatal (case fatality > 50%: JCAR015, axi-cel RW 1 "
        "death in 274; icans-facts-2 section 8), ASSUMPTION per day",
    )


@dataclass(frozen=True)
class IcansParameters:
    """Daily ICANS chain (latent severity 0-4), findings emitted per level, grade derived."""

    drive_intercept: dict[str, float] = P(
        fam(
            CD19_CD28=-2.05,
            CD19_41BB=-3.9,
            CD19_CD22=-4.6,
            BCMA=-5.1,
            CLL1=-6.3,
            CD123=-6.0,
            CD7=-6.0,
        )
        | {"tisa-cel NHL": -4.5, "liso-cel": -4.0},
        f"Tuned to grade>=3 ICANS: CD19-CD28 ~25-32%, CD19-4-1BB ~5-13% ({HAN_2024}), BCMA "
        "<=5% (CD19 vs BCMA OR 4.6), CLL1/CD123/CD7 rare and mostly grade 1 (CLL1 0/10, CD7 "
        "5/55 all grade 1). Products of one family differ: tisa-cel NHL ICANS 18.1% / grade "
        ">= 3 5.1% real-world (Pasquini 2020) against liso-cel 30% / 10% (TRANSCEND), "
        "adjusted ICANS OR tisa-cel vs axi-cel 0.17 (Gauthier 2021)",
    )
    drive_quantum: float = P(0.05, "Design: drive rounded to 0.05 log-odds so risk is exact")
    marrow_burden_per_25pct: float = P(
        0.40,
        f"{GUST_2017}: marrow disease 25.8% vs 0.6% (gr3-5 vs gr0); total OR per +25% "
        "blasts ~1.5-2 including the path through expansion",
    )
    neuro_comorbidity: float = P(0.69, f"{GUST_2017}: 28% vs ~15%, OR ~2")
    cns_involvement: dict[str, float] = P(
        {"b_cell_lymphoma": 0.1, "b_all": 1.1, "myeloma": 0.3, "myeloid": 0.7, "t_all": 0.7},
        "Lymphoma: no consistent effect (SCNSL/PCNSL meta 'no increased signal', OR ~1.1); "
        "B-ALL: CNS burden matters (China n=48 22.9% gr3-4; Boren 4/5 high burden) OR ~3 "
        "(icans-facts-2 section 2 suggests 1.0-1.3 low and 3-5 high burden); myeloma OR ~1.35 "
        "(BCMA in CNS-MM gr3 10%); ASSUMPTION OR ~2 for myeloid and T-cell leukaemia",
    )
    flu_cy: float = P(0.30, f"{GUST_2017}: Cy/Flu 22% vs 17% grade 3-5")
    age_per_10y: float = P(
        0.10, f"Weak: {GAUTHIER} OR 1.32/10 y (p=0.06); CIBMTR DLBCL HR 1.03/yr; Gust no trend"
    )
    expansion_effect: dict[str, float] = P(
        fam(CD19_CD28=1.0, CD19_41BB=0.3, CD19_CD22=0.6, BCMA=0.6, CLL1=0.6, CD123=0.6, CD7=0.6),
        "Per product family, following the evidence: peak expansion higher with grade>=3 "
        "neurotoxicity after axi-cel (ZUMA-1) and 19-28z (Santomasso 2018) and in brexu/axi-cel "
        "(Blood Adv 2024, n=236): 1.0; JULIET (tisa-cel): expansion linked to CRS, not to "
        "neurological events: 0.3; cilta-cel neurotoxicity with high expansion (Cohen 2022): "
        "0.6; ASSUMPTION 0.6 for the others",
    )
    cd4_dominance_effect: float = P(
        0.7,
        f"ASSUMPTION (Baur 2023 via {KATSIN_2024}: ICANS severity correlated with CD4+ AUC, no "
        "effect size): a CD4-dominant expansion doubles the odds (OR 2.0), bounded at OR 3; "
        "0 turns it off",
    )
    inflammation_effect: float = P(
        1.1,
        "ASSUMPTION: shared inflammation explains the CRS-ICANS association (Gust 2017: "
        "CRS preceded all grade>=3 neurotoxicity; ELIANA 32% vs 7% by CRS grade 4)",
    )
    onset_day: dict[str, float] = P(
        fam(CD19_CD28=6.5, CD19_41BB=7.5, CD19_CD22=7.5, BCMA=8.0, CLL1=11.0, CD123=11.0, CD7=10.0)
        | {"ide-cel": 2.0},
        "Median onset day 5 (axi-cel, Strati 2020), 6-8 (tisa-cel label/RW), 7 (brexu-cel, "
        "TRANSCEND CLL), 2 (ide-cel, KarMMa), 8 (cilta-cel), 11 (3-20) in the myeloid-heavy "
        f"{MENG_2025}; the patient's expansion timing class shifts it",
    )
    onset_width_days: float = P(2.6, f"New onset after day 14 ~0.7% ({RW_9_CENTRE})")
    onset_offset: float = P(0.0, "Design: onset hazard logit = drive + offset + timing")
    entry_severity_offset: float = P(
        0.0,
        "ASSUMPTION: at onset, P(level >= 2) = expit(drive + offset), so ICANS in "
        "low-drive products (myeloid, CD7) starts and mostly stays grade 1 (CD7: 5/55, all "
        "grade 1) while high-drive products may present at grade 2-3",
    )
    entry_severe_share: float = P(0.15, "ASSUMPTION: share of level>=2 onsets entering level 3")
    progress_offset: tuple[float, float, float] = P(
        (2.1, 2.0, 0.3),
        "ASSUMPTION tuned so ~40-45% of ICANS in CD28 products and ~35% in 4-1BB products "
        "become grade>=3 (64%/28% axi-cel; 17%/6% tisa-cel)",
    )
    recover_offset: tuple[float, float, float, float] = P(
        (-2.5, -2.3, -2.4, -2.4), "ASSUMPTION tuned with the family offsets to ICANS duration"
    )
    recover_family_offset: dict[str, float] = P(
        fam(CD19_CD28=0.0, CD19_41BB=-1.3, CD19_CD22=-1.3, BCMA=0.0, CLL1=0.0, CD123=0.0, CD7=0.0),
        "Median ICANS duration by product: axi-cel 6 d (Strati 2020), brexu-cel 8 d, tisa-cel "
        "RW 6.5-7 d, TRANSCEND CLL 7 d, ide-cel 5 d (KarMMa), cilta-cel 2 d (icans-facts-2 "
        "section 7); ASSUMPTION like BCMA for the myeloid and T-cell products",
    )
    progress_family_offset: dict[str, float] = P(
        fam(CD19_CD28=0.0, CD19_41BB=0.0, CD19_CD22=0.0, BCMA=0.0, CLL1=-2.0, CD123=-2.0, CD7=-2.0),
        "ICANS after CLL1/CD123/CD7 CAR-T is rare and mostly grade 1 (CLL1 phase I 0/10 CRES; "
        "CD7 phase II 5/55, all grade 1): progression is damped for these families",
    )
    drive_weight_on_recovery: float = P(0.5, "ASSUMPTION")
    late_decline_per_day: float = P(0.15, "ASSUMPTION: neuro-inflammation wanes after the peak")
    steroid_progress_effect: float = P(
        -2.0,
        "ASSUMPTION: corticosteroids slow progression; early steroid cohorts of ZUMA-1 had "
        "fewer grade>=3 events (28% -> 13-17%)",
    )
    steroid_recover_effect: tuple[float, float, float, float] = P(
        (1.5, 4.5, 4.5, 3.0),
        "ASSUMPTION: corticosteroids speed recovery from each level 1-4, most from moderate and "
        "severe encephalopathy; tuned so that about 20% of grade >= 3 ICANS stays at grade >= 2 "
        "48 and 72 h after the start (MDACC: 8 of 41 grade >= 3 given anakinra, Strati 2020)",
    )


@dataclass(frozen=True)
class FindingsParameters:
    """Probabilities of each ICANS finding given the latent severity level (0-4).

    Rows are levels 0 (none), 1 (mild), 2 (moderate), 3 (severe), 4 (critical). Level 0 emits
    normal findings only. Findings are drawn independently given the level, except that an
    unarousable patient cannot do the ICE/CAPD assessment. ASSUMPTION throughout: chosen so the
    derived grade usually equals the level but not always (a moderate patient may have a
    seizure, a severe one may still score ICE 3-6).
    """

    # P(ICE band) for bands 10 | 7-9 | 3-6 | 0-2, uniform within a band.
    ice_band: tuple[tuple[float, ...], ...] = P(
        (
            (1.0, 0, 0, 0),
            (0.12, 0.88, 0, 0),
            (0, 0.22, 0.76, 0.02),
            (0, 0, 0.28, 0.72),
            (0, 0, 0.05, 0.95),
        ),
        "ASSUMPTION",
    )
    # P(CAPD band) for bands 0 | 1-8 | 9-32 (children < 12 y).
    capd_band: tuple[tuple[float, ...], ...] = P(
        ((1.0, 0, 0), (0.10, 0.90, 0), (0, 0.95, 0.05), (0, 0.35, 0.65), (0, 0.05, 0.95)),
        "ASSUMPTION",
    )
    # P(consciousness) alert | spontaneously | voice | tactile | unarousable, adults.
    consciousness_adult: tuple[tuple[float, ...], ...] = P(
        (
            (1.0, 0, 0, 0, 0),
            (0.6, 0.4, 0, 0, 0),
            (0.32, 0.34, 0.32, 0.02, 0),
            (0.08, 0.2, 0.37, 0.305, 0.045),
            (0, 0.05, 0.2, 0.4, 0.35),
        ),
        "ASSUMPTION",
    )
    # Children: grade 2 by the CAPD table needs 'awakens to voice', so level 2 leans on it.
    consciousness_child: tuple[tuple[float, ...], ...] = P(
        (
            (1.0, 0, 0, 0, 0),
            (0.5, 0.5, 0, 0, 0),
            (0.04, 0.1, 0.84, 0.02, 0),
            (0.05, 0.15, 0.4, 0.35, 0.05),
            (0, 0.05, 0.2, 0.4, 0.35),
        ),
        "ASSUMPTION",
    )
    seizure: tuple[tuple[float, ...], ...] = P(
        ((1.0, 0, 0), (1.0, 0, 0), (0.997, 0.003, 0), (0.96, 0.035, 0.005), (0.8, 0.15, 0.05)),
        "ASSUMPTION: none | rapidly resolving | life-threatening",
    )
    motor: tuple[tuple[float, ...], ...] = P(
        ((1.0, 0), (1.0, 0), (1.0, 0), (0.99, 0.01), (0.93, 0.07)),
        "ASSUMPTION: none | deep focal weakness",
    )
    cerebral_edema: tuple[tuple[float, ...], ...] = P(
        ((1.0, 0, 0), (1.0, 0, 0), (0.998, 0.002, 0), (0.985, 0.014, 0.001), (0.89, 0.08, 0.03)),
        "ASSUMPTION: none | focal | diffuse or raised ICP (ELIANA: no cerebral oedema)",
    )


@dataclass(frozen=True)
class RoutineParameters:
    """The daily routine series a ward charts: maximum temperature and laboratory values.

    Each lab is log-normal around a mean built from the patient's level before lymphodepletion,
    the inflammation class ``r``, the CRS the team has seen (an exponentially smoothed grade:
    the lab lags the CRS), the latent ICANS level (concurrent, for the labs of endothelial
    activation and consumption), CAR-T expansion (IL-6 and lymphocytes) and treatment, with a
    day-to-day noise (see :mod:`data.synthetic.routine`). What is charted depends on the
    centre (case mix: outpatient share, IL-6, CAR-T counts), never on the patient's state.
    """

    median: dict[str, float] = P(
        {"il6_pg_per_ml": 8.0, "fibrinogen_mg_per_dl": 350.0, "lymphocytes_10e9_per_l": 0.15},
        "ASSUMPTION: IL-6 ~5-10 pg/mL after lymphodepletion before CRS; fibrinogen mid-normal "
        "(200-400 mg/dL); lymphocytes ~0.1-0.2 x10^9/L after fludarabine/cyclophosphamide; the "
        "other labs start from the patient's pre-lymphodepletion level (baseline)",
    )
    baseline_carry_over: float = P(
        0.8,
        "ASSUMPTION: 80% of a patient's pre-lymphodepletion level (log scale) persists in the "
        "daily values, so repeated values identify the inflammation class only weakly (CRP "
        "and ferritin predict only partially: Teachey 2016)",
    )
    r_loading: dict[str, float] = P(
        {"il6_pg_per_ml": 0.3, "fibrinogen_mg_per_dl": 0.05, "lymphocytes_10e9_per_l": 0.0},
        "ASSUMPTION: inflammation raises IL-6 before CRS; the labs with a baseline take that "
        "lab's loading (BaselineParameters.lab_r_loading)",
    )
    crs_lag: dict[str, float] = P(
        {
            "crp_mg_per_l": 0.6,
            "ferritin_ng_per_ml": 0.85,
            "il6_pg_per_ml": 0.3,
            "platelets_10e9_per_l": 0.7,
            "fibrinogen_mg_per_dl": 0.6,
            "ldh_u_per_l": 0.6,
            "creatinine_mg_per_dl": 0.5,
        },
        "ASSUMPTION: share of yesterday's CRS load carried into today's; IL-6 tracks CRS "
        "within a day, CRP lags IL-6 (CRP correlates with IL-6, Spearman 0.81: Lee, Lancet "
        "2015), ferritin rises late and stays high (ELIANA: transient rises during CRS)",
    )
    crs_response: dict[str, float] = P(
        {
            "crp_mg_per_l": 1.8,
            "ferritin_ng_per_ml": 0.55,
            "il6_pg_per_ml": 0.9,
            "platelets_10e9_per_l": -0.12,
            "fibrinogen_mg_per_dl": 0.1,
            "ldh_u_per_l": 0.12,
            "creatinine_mg_per_dl": 0.0,
        },
        "ASSUMPTION sizes, per log(1 + CRS load): CRP 50-200 mg/L in grade 1-2 CRS and "
        "150-400 in grade >= 3; ferritin peak median ~2,000 ng/mL without and ~5,500 with "
        "high-grade CRS (v3-sources: Blood table of maximum ferritin by CRS grade); IL-6, "
        "ferritin and CRP rise during CRS (ELIANA; Teachey 2016); fibrinogen is an acute-phase "
        "protein (rises in mild CRS)",
    )
    crs_response_r: dict[str, float] = P(
        {
            "crp_mg_per_l": 0.15,
            "ferritin_ng_per_ml": 0.1,
            "il6_pg_per_ml": 0.2,
            "platelets_10e9_per_l": -0.05,
            "fibrinogen_mg_per_dl": 0.0,
            "ldh_u_per_l": 0.04,
            "creatinine_mg_per_dl": 0.0,
        },
        "ASSUMPTION: the inflammation class steepens the response to CRS (per unit r); kept "
        "small for CRP and ferritin, which predict severe CRS only partially (Teachey 2016: "
        "they 'failed to predict' where a 3-cytokine signature succeeded)",
    )
    severe_crs: dict[str, float] = P(
        {"fibrinogen_mg_per_dl": -0.45, "platelets_10e9_per_l": -0.2, "creatinine_mg_per_dl": 0.3},
        "Consumptive coagulopathy and capillary leak in severe CRS (Hay 2017, Blood 130:2295): "
        "on a day of CRS grade >= 3 fibrinogen and platelets fall, creatinine rises (acute "
        "kidney injury with shock); sizes ASSUMPTION",
    )
    icans_level: dict[str, tuple[float, float, float, float, float]] = P(
        {
            "crp_mg_per_l": (0.0, 0.0, 0.15, 0.3, 0.4),
            "ferritin_ng_per_ml": (0.0, 0.1, 0.3, 0.5, 0.6),
            "platelets_10e9_per_l": (0.0, 0.0, -0.15, -0.3, -0.4),
            "fibrinogen_mg_per_dl": (0.0, 0.0, -0.1, -0.3, -0.45),
            "ldh_u_per_l": (0.0, 0.0, 0.1, 0.2, 0.25),
        },
        "Concurrent shift (log) by latent ICANS level 0-4: severe neurotoxicity with "
        "endothelial activation and consumption (Hay 2017; Santomasso 2018), lower platelet and "
        "fibrinogen nadirs with grade >= 3 ICANS (Blood Adv 2021;5(21):4465); sizes ASSUMPTION",
    )
    expansion_loading: dict[str, float] = P(
        {"il6_pg_per_ml": 0.6, "lymphocytes_10e9_per_l": 1.5},
        "Per log(1 + CAR-T cells relative to 20/uL): IL-6 rises early and higher with "
        "expansion before severe neurotoxicity (Santomasso 2018); the lymphocyte count "
        "tracks CAR-T counts (R = 0.79 at day 14 after cilta-cel, icans-facts-3); sizes "
        "ASSUMPTION",
    )
    expansion_reference_cells_per_ul: float = P(
        20.0, "Axi-cel real-world median peak 16 CAR+ cells/uL (Blood Adv 2021;5:2523), rounded"
    )
    after_tocilizumab: dict[str, float] = P(
        {"crp_mg_per_l": -1.0, "il6_pg_per_ml": 1.2},
        "After tocilizumab: serum IL-6 rises (the receptor is blocked; unbound IL-6, Blood Adv "
        "2022;6(11):3398) and CRP, made in response to IL-6 signalling, falls; sizes "
        "ASSUMPTION (IL-6 x3.3, CRP /2.7)",
    )
    on_steroids: dict[str, float] = P(
        {"crp_mg_per_l": -0.3, "il6_pg_per_ml": -0.3, "lymphocytes_10e9_per_l": -0.3},
        "ASSUMPTION: corticosteroids (treatment dose that day) dampen inflammation and lymphocytes",
    )
    lymphodepletion_nadir: dict[str, float] = P(
        {"platelets_10e9_per_l": -0.4},
        "ASSUMPTION: platelets fall after lymphodepletion (nadir ~x0.67 by the second week; "
        "CAR-HEMATOTOX describes the cytopenias), as 1 - exp(-day / 3)",
    )
    log_sd: dict[str, float] = P(
        {
            "crp_mg_per_l": 0.35,
            "ferritin_ng_per_ml": 0.25,
            "il6_pg_per_ml": 0.6,
            "platelets_10e9_per_l": 0.15,
            "fibrinogen_mg_per_dl": 0.15,
            "lymphocytes_10e9_per_l": 0.35,
            "ldh_u_per_l": 0.15,
            "creatinine_mg_per_dl": 0.12,
        },
        "ASSUMPTION: day-to-day biological and analytic variation around the course",
    )
    inpatient_daily_until: int = P(
        14, "ASSUMPTION: inpatients have daily labs to day 14 (guidelines: serial labs)"
    )
    outpatient_daily_until: int = P(
        7, "Outpatient models: daily visits days 0-7/10, then twice weekly (Blood Adv 2024;8:4320)"
    )
    twice_weekly_days: tuple[int, ...] = P(
        (17, 21, 24, 28), "Twice weekly to day 28 after the daily period (Blood Adv 2024;8:4320)"
    )
    missed_probability: dict[str, float] = P(
        {
            "crp_mg_per_l": 0.05,
            "ferritin_ng_per_ml": 0.2,
            "il6_pg_per_ml": 0.2,
            "platelets_10e9_per_l": 0.03,
            "fibrinogen_mg_per_dl": 0.25,
            "lymphocytes_10e9_per_l": 0.05,
            "ldh_u_per_l": 0.2,
            "creatinine_mg_per_dl": 0.05,
        },
        "ASSUMPTION: a charted day misses a value at random (blood counts and CRP nearly "
        "always drawn; ferritin, fibrinogen and LDH less often)",
    )
    other_fever_per_day: float = P(
        0.02,
        "ASSUMPTION: fever from another cause (neutropenic infection) on 2% of days, graded "
        "CRS 0 by the team (ASTCT: CRS fever has no other attributable cause)",
    )


@dataclass(frozen=True)
class GeneratorParameters:
    """All generator parameters; the fingerprint of this object is written with every cohort."""

    baseline: BaselineParameters = field(default_factory=BaselineParameters)
    latent: LatentParameters = field(default_factory=LatentParameters)
    expansion: ExpansionParameters = field(default_factory=ExpansionParameters)
    crs: CrsParameters = field(default_factory=CrsParameters)
    icans: IcansParameters = field(default_factory=IcansParameters)
    treatment: TreatmentParameters = field(default_factory=TreatmentParameters)
    death: DeathParameters = field(default_factory=DeathParameters)
    findings: FindingsParameters = field(default_factory=FindingsParameters)
    routine: RoutineParameters = field(default_factory=RoutineParameters)
    horizon_days: int = P(28, "Target defined through day 28 (data contract)")
    landmark_days: tuple[int, ...] = P(
        tuple(range(28)), "Issue 28: true risk on every prediction day, 0-27"
    )

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of every parameter (first 16 hex digits)."""
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def iter_parameters(obj: Any = None, prefix: str = "") -> list[tuple[str, Any, str]]:
    """Every parameter as (dotted name, value, source), for the data card and its test."""
    obj = GeneratorParameters() if obj is None else obj
    rows: list[tuple[str, Any, str]] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if is_dataclass(value):
            rows.extend(iter_parameters(value, prefix=f"{name}."))
        else:
            rows.append((name, value, f.metadata.get("source", "")))
    return rows
