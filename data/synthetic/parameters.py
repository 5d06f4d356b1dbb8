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
    """Who is treated: disease shares, products per disease and centre-level modifiers."""

    name: str
    description: str
    disease_share: dict[str, float]
    # Probability of each product family within a disease.
    family_by_disease: dict[str, dict[str, float]]
    # Share of CD28 (vs 4-1BB) costimulation among experimental myeloid/T-cell products.
    myeloid_cd28_share: float
    # Multiplies the odds of CNS involvement of every disease.
    cns_odds_multiplier: float
    # Mean of the Poisson part of prior lines (prior_lines = 1 + Poisson(mean)).
    prior_lines_mean: float
    # Share of children/young people (age drawn from the paediatric range) per disease.
    paediatric_share: dict[str, float]
    source: str


_CD19_LYMPHOMA_PRODUCTS = {
    "LBCL": {"CD19-CD28": 0.55, "CD19-4-1BB": 0.45},
    "PMBCL": {"CD19-CD28": 0.70, "CD19-4-1BB": 0.30},
    "MCL": {"CD19-CD28": 0.85, "CD19-4-1BB": 0.15},
    "FL": {"CD19-CD28": 0.50, "CD19-4-1BB": 0.50},
    "CLL": {"CD19-CD28": 0.20, "CD19-4-1BB": 0.80},
}

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
        cns_odds_multiplier=1.0,
        prior_lines_mean=2.0,
        paediatric_share={"B-ALL": 0.45, "AML": 0.2, "T-ALL": 0.4},
        source=(
            "ASSUMPTION: shares chosen to resemble commercial practice (CD19 lymphoma dominant; "
            "axi-cel/brexu-cel vs tisa-cel/liso-cel split as in the real-world series of "
            f"{HAN_2024})"
        ),
    ),
    "myeloid-centre": CaseMix(
        name="myeloid-centre",
        description=(
            "An academic centre running experimental myeloid/T-cell CAR-T (AML with CLL1/CD123, "
            "T-ALL with CD7), resembling the source series; many patients with CNS involvement."
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
        cns_odds_multiplier=8.0,
        prior_lines_mean=5.5,
        paediatric_share={"B-ALL": 0.3, "AML": 0.15, "T-ALL": 0.3},
        source=(
            f"Disease mix, heavy pre-treatment (median 7 prior lines) and CNS involvement (9/13) "
            f"from {MENG_2025}; that series was selected ON the outcome, so its ICANS rate is "
            "NOT used: ICANS rates come from the product-family parameters"
        ),
    ),
    "paediatric-all": CaseMix(
        name="paediatric-all",
        description="Children and young adults with B-ALL (CD19 4-1BB and CD19-CD22 products).",
        disease_share={"B-ALL": 1.0},
        family_by_disease={"B-ALL": {"CD19-4-1BB": 0.75, "CD19-CD22": 0.25}},
        myeloid_cd28_share=0.0,
        cns_odds_multiplier=1.5,
        prior_lines_mean=2.5,
        paediatric_share={"B-ALL": 1.0},
        source=(
            "ASSUMPTION: ELIANA-like population (tisa-cel, ages 3-25) plus the NCI CD19/CD22 "
            "programme (Blood Adv 2023;7(18):5566)"
        ),
    ),
}


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
    marrow_involvement_probability: dict[str, float] = P(
        {
            "LBCL": 0.15,
            "PMBCL": 0.10,
            "MCL": 0.5,
            "FL": 0.3,
            "CLL": 0.8,
            "B-ALL": 1.0,
            "MM": 1.0,
            "AML": 1.0,
            "T-ALL": 1.0,
            "BPDCN": 0.6,
        },
        "ASSUMPTION: leukaemias always sampled; lymphoma marrow involvement is a minority "
        f"({KATSIN_2024} describes marrow involvement in PMBCL)",
    )
    # Beta(a, b) on the 0-1 scale for the marrow blast percentage when involved.
    marrow_blasts_beta: dict[str, tuple[float, float]] = P(
        {
            "LBCL": (1.2, 8.0),
            "PMBCL": (1.2, 8.0),
            "MCL": (1.3, 5.0),
            "FL": (1.2, 8.0),
            "CLL": (2.0, 3.0),
            "B-ALL": (0.8, 1.3),
            "MM": (1.0, 30.0),
            "AML": (1.5, 2.6),
            "T-ALL": (0.9, 2.2),
            "BPDCN": (1.2, 4.0),
        },
        f"Leukaemia medians near the 33% (5-78%) of {MENG_2025}; lymphoma low; MM near 0 "
        "because the field counts blasts, not plasma cells (ASSUMPTION for the shapes)",
    )
    cns_probability: dict[str, float] = P(
        {
            "LBCL": 0.05,
            "PMBCL": 0.03,
            "MCL": 0.05,
            "FL": 0.01,
            "CLL": 0.01,
            "B-ALL": 0.15,
            "MM": 0.01,
            "AML": 0.08,
            "T-ALL": 0.20,
            "BPDCN": 0.15,
        },
        "ASSUMPTION: plausible prevalence of current or prior CNS disease; the case-mix "
        "multiplier raises it for the myeloid centre",
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
    # Dose: log10-normal per family, median in CAR+ cells/kg.
    dose_median_cells_per_kg: dict[str, float] = P(
        fam(
            CD19_CD28=2.0e6,
            CD19_41BB=2.0e6,
            CD19_CD22=1.0e6,
            BCMA=2.5e6,
            CLL1=1.5e6,
            CD123=1.5e6,
            CD7=1.0e6,
        ),
        "Label doses: axi-cel 2e6/kg, tisa-cel/liso-cel flat doses (~1-5e6/kg), ide-cel "
        "~5e6/kg and cilta-cel 0.75e6/kg; CLL1 phase I 1-2e6/kg; median 2.0e6/kg in "
        f"{MENG_2025}",
    )
    dose_log10_sd: dict[str, float] = P(
        fam(
            CD19_CD28=0.08,
            CD19_41BB=0.30,
            CD19_CD22=0.25,
            BCMA=0.40,
            CLL1=0.20,
            CD123=0.20,
            CD7=0.20,
        ),
        "ASSUMPTION: fixed-per-kg products vary little; flat-dose products vary with weight",
    )
    dose_cap_total_cells: float = P(2.0e8, "axi-cel label: at most 2e8 CAR+ cells in total")
    # Labs are noisy readouts of the latent inflammation class r and of tumour burden:
    # log(lab) = log(median) + r_loading * r + blasts_loading * blasts/100 + N(0, sd)
    lab_median: dict[str, float] = P(
        {
            "ldh_u_per_l": 240.0,
            "crp_mg_per_l": 10.0,
            "ferritin_ng_per_ml": 550.0,
            "platelets_10e9_per_l": 150.0,
            "creatinine_mg_per_dl": 0.85,
        },
        "ASSUMPTION: typical pre-lymphodepletion values in relapsed/refractory disease",
    )
    lab_r_loading: dict[str, float] = P(
        {
            "ldh_u_per_l": 0.22,
            "crp_mg_per_l": 0.50,
            "ferritin_ng_per_ml": 0.30,
            "platelets_10e9_per_l": -0.18,
            "creatinine_mg_per_dl": 0.0,
        },
        "Direction from Pennisi 2021 (m-EASIX: high CRP, low platelets), Greenbaum 2021 "
        "(EASIX-FC: CRP and ferritin) and Gauthier (LDH); strengths are ASSUMPTIONS tuned so "
        "m-EASIX alone discriminates modestly (AUROC ~0.6-0.7)",
    )
    lab_blasts_loading: dict[str, float] = P(
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
            "ldh_u_per_l": 0.40,
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
    """The two hidden patient classes: CAR-T expansion propensity u and inflammation r."""

    expansion_classes: int = P(7, "Design: discrete so that the true risk is exact")
    inflammation_classes: int = P(5, "Design: discrete so that the true risk is exact")
    class_span_sd: float = P(2.1, "Design: classes span +/-2.1 SD of a standard normal")


@dataclass(frozen=True)
class ExpansionParameters:
    """CD4+/CD8+ CAR-T cells in blood: a gamma-variate curve per patient, measured with noise."""

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
        f"ASSUMPTION anchored to the peak of 77.7 CAR-T cells/uL (CD4-dominant) in "
        f"{KATSIN_2024}; CD28 products expand faster and higher than 4-1BB",
    )
    peak_day: dict[str, float] = P(
        fam(
            CD19_CD28=8.0,
            CD19_41BB=10.0,
            CD19_CD22=10.0,
            BCMA=11.0,
            CLL1=12.0,
            CD123=12.0,
            CD7=11.0,
        ),
        "ASSUMPTION: expansion peaks in the second week (peak at day 14 in the case report; "
        "CAR-T peak within 2 weeks in the CLL1 trial)",
    )
    shape: dict[str, float] = P(
        fam(CD19_CD28=3.0, CD19_41BB=2.0, CD19_CD22=2.0, BCMA=2.0, CLL1=2.5, CD123=2.5, CD7=2.5),
        "ASSUMPTION: gamma-variate sharpness; 4-1BB products persist longer",
    )
    dose_exponent: float = P(0.35, "ASSUMPTION: peak grows as dose^0.35")
    blasts_effect_per_100pct: float = P(0.8, "ASSUMPTION: antigen load drives expansion")
    log_sd_between_patients: float = P(1.0, "ASSUMPTION: peaks span ~2 orders of magnitude")
    cd8_to_cd4_log_ratio_mean: dict[str, float] = P(
        fam(CD19_CD28=0.4, CD19_41BB=0.0, CD19_CD22=0.4, BCMA=0.4, CLL1=0.4, CD123=0.4, CD7=0.4),
        "ASSUMPTION: CD8-leaning expansion except defined 1:1 products; the case report's "
        "CD4:CD8 of 89 sits in the tail",
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
        fam(CD19_CD28=0.35, CD19_41BB=-1.6, CD19_CD22=-0.6, BCMA=0.2, CLL1=0.6, CD123=0.2, CD7=0.8),
        "Tuned to CRS incidence: axi-cel ~93%, tisa-cel ~58%, liso-cel 42%, ide-cel 84%, "
        "cilta-cel 95%, CLL1 10/10, CD7 98% (facts: product table; CD7 Blood 2025)",
    )
    onset_day: dict[str, float] = P(
        fam(CD19_CD28=3.0, CD19_41BB=4.5, CD19_CD22=3.0, BCMA=3.0, CLL1=3.0, CD123=3.0, CD7=3.0),
        "Median CRS onset day 2 (axi-cel label), 1 (ide-cel), 7 (cilta-cel), 5 (liso-cel)",
    )
    onset_width_days: float = P(2.0, "ASSUMPTION: onset spread over the first week")
    last_onset_day: int = P(14, f"No new CRS after 2 weeks ({RW_9_CENTRE})")
    r_effect: float = P(1.0, "ASSUMPTION: inflammation drives CRS")
    u_effect: float = P(0.5, "ASSUMPTION: expansion drives CRS (Hay 2017: dose, burden)")
    escalate_logit: dict[str, float] = P(
        fam(
            CD19_CD28=-2.4,
            CD19_41BB=-2.5,
            CD19_CD22=-2.5,
            BCMA=-3.2,
            CLL1=-1.6,
            CD123=-2.0,
            CD7=-2.6,
        ),
        "Tuned to grade>=3 CRS: axi-cel ~10%, liso-cel 2%, ide-cel/cilta-cel 4-5%, CLL1 6/10 "
        "high grade, CD7 11% (facts: product and myeloid tables)",
    )
    escalate_grade_step: float = P(0.7, "ASSUMPTION: each grade is harder to exceed")
    improve_logit: float = P(-1.2, "Tuned to median CRS duration ~7 days (axi-cel label)")
    late_decline_per_day: float = P(0.35, "ASSUMPTION: CRS subsides after the expansion peak")


@dataclass(frozen=True)
class IcansParameters:
    """Daily ICANS chain (latent severity 0-4), findings emitted per level, grade derived."""

    drive_intercept: dict[str, float] = P(
        fam(
            CD19_CD28=-2.35,
            CD19_41BB=-4.05,
            CD19_CD22=-4.1,
            BCMA=-5.1,
            CLL1=-6.0,
            CD123=-6.0,
            CD7=-6.0,
        ),
        f"Tuned to grade>=3 ICANS: CD19-CD28 ~25-32%, CD19-4-1BB ~5-13% ({HAN_2024}), BCMA "
        "<=5% (CD19 vs BCMA OR 4.6), CLL1/CD123/CD7 rare and mostly grade 1 (CLL1 0/10, CD7 "
        "5/55 all grade 1)",
    )
    drive_quantum: float = P(0.05, "Design: drive rounded to 0.05 log-odds so risk is exact")
    marrow_blasts_per_25pct: float = P(
        0.40,
        f"{GUST_2017}: marrow disease 25.8% vs 0.6% (gr3-5 vs gr0); total OR per +25% "
        "blasts ~1.5-2 including the path through expansion",
    )
    neuro_comorbidity: float = P(0.69, f"{GUST_2017}: 28% vs ~15%, OR ~2")
    cns_involvement: float = P(0.26, "Weak/uncertain (Gust NS; CNSL series): OR ~1.3, ASSUMPTION")
    flu_cy: float = P(0.30, f"{GUST_2017}: Cy/Flu 22% vs 17% grade 3-5")
    age_per_10y: float = P(0.10, f"Weak: {GAUTHIER} OR 1.32/10 y (p=0.06); Gust no trend")
    expansion_effect: float = P(
        1.00,
        "Peak expansion higher in grade>=3 neurotoxicity (ZUMA-1; Santomasso 2018); CD4 "
        "AUC association (Baur 2023, unverified): effect size is an ASSUMPTION; with the dose "
        "exponent it gives OR ~2.2 per log10 dose",
    )
    inflammation_effect: float = P(
        1.25,
        "ASSUMPTION: shared inflammation explains the CRS-ICANS association (Gust 2017: "
        "CRS preceded all grade>=3 neurotoxicity; ELIANA 32% vs 7% by CRS grade 4)",
    )
    onset_day: dict[str, float] = P(
        fam(CD19_CD28=7.5, CD19_41BB=8.0, CD19_CD22=8.0, BCMA=9.0, CLL1=10.0, CD123=10.0, CD7=10.0),
        "Median onset day 5 (axi-cel, Strati 2020), 7 (brexu-cel), 8 (cilta-cel), 9 (Amidi "
        f"2022), 11 (3-20) in the myeloid-heavy {MENG_2025}",
    )
    onset_width_days: float = P(2.6, f"New onset after day 14 ~0.7% ({RW_9_CENTRE})")
    onset_offset: float = P(0.0, "Design: onset hazard logit = drive + offset + timing")
    entry_severity_offset: float = P(
        1.0,
        "ASSUMPTION: at onset, P(level >= 2) = expit(drive + offset), so ICANS in "
        "low-drive products (myeloid, CD7) starts and mostly stays grade 1 (CD7: 5/55, all "
        "grade 1) while high-drive products may present at grade 2-3",
    )
    entry_severe_share: float = P(0.15, "ASSUMPTION: share of level>=2 onsets entering level 3")
    progress_offset: tuple[float, float, float] = P(
        (2.4, 2.0, 0.4),
        "ASSUMPTION tuned so ~40-45% of ICANS in CD28 products and ~35% in 4-1BB products "
        "become grade>=3 (64%/28% axi-cel; 17%/6% tisa-cel)",
    )
    recover_offset: tuple[float, float, float, float] = P(
        (-1.9, -1.9, -2.2, -2.2), "ASSUMPTION tuned to median ICANS duration 6-8 days"
    )
    progress_family_offset: dict[str, float] = P(
        fam(CD19_CD28=0.0, CD19_41BB=0.0, CD19_CD22=0.0, BCMA=0.0, CLL1=-2.0, CD123=-2.0, CD7=-2.0),
        "ICANS after CLL1/CD123/CD7 CAR-T is rare and mostly grade 1 (CLL1 phase I 0/10 CRES; "
        "CD7 phase II 5/55, all grade 1): progression is damped for these families",
    )
    drive_weight_on_recovery: float = P(0.5, "ASSUMPTION")
    late_decline_per_day: float = P(0.25, "ASSUMPTION: neuro-inflammation wanes after the peak")
    dexamethasone_progress_effect: float = P(
        -2.0,
        "ASSUMPTION: dexamethasone (started at grade 2) slows progression; early steroid "
        "cohorts of ZUMA-1 had fewer grade>=3 events (28% -> 13-17%)",
    )
    dexamethasone_recover_effect: float = P(2.5, "ASSUMPTION: dexamethasone speeds recovery")
    dexamethasone_start_grade: int = P(
        2, "ASSUMPTION consistent with ASTCT/ASCO management: steroids from grade 2 ICANS"
    )
    steroid_response_days: int = P(3, "Operational definition: response judged after 72 h")
    death_probability_per_critical_day: float = P(
        0.10,
        "Tuned to fatal ICANS ~1-2% in CD28 products, <1% in 4-1BB; ~5-10% of "
        "steroid-refractory cases (facts: ICANS mortality)",
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
            (0.08, 0.2, 0.37, 0.3, 0.05),
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
        ((1.0, 0, 0), (1.0, 0, 0), (0.99, 0.01, 0), (0.87, 0.12, 0.01), (0.7, 0.2, 0.1)),
        "ASSUMPTION: none | rapidly resolving | life-threatening",
    )
    motor: tuple[tuple[float, ...], ...] = P(
        ((1.0, 0), (1.0, 0), (1.0, 0), (0.99, 0.01), (0.93, 0.07)),
        "ASSUMPTION: none | deep focal weakness",
    )
    cerebral_edema: tuple[tuple[float, ...], ...] = P(
        ((1.0, 0, 0), (1.0, 0, 0), (0.995, 0.005, 0), (0.94, 0.05, 0.01), (0.75, 0.15, 0.1)),
        "ASSUMPTION: none | focal | diffuse or raised ICP (ELIANA: no cerebral oedema)",
    )


@dataclass(frozen=True)
class GeneratorParameters:
    """All generator parameters; the fingerprint of this object is written with every cohort."""

    baseline: BaselineParameters = field(default_factory=BaselineParameters)
    latent: LatentParameters = field(default_factory=LatentParameters)
    expansion: ExpansionParameters = field(default_factory=ExpansionParameters)
    crs: CrsParameters = field(default_factory=CrsParameters)
    icans: IcansParameters = field(default_factory=IcansParameters)
    findings: FindingsParameters = field(default_factory=FindingsParameters)
    horizon_days: int = P(28, "Target defined through day 28 (data contract)")
    landmark_days: tuple[int, ...] = P(tuple(range(15)), "Issue: true risk for days 0-14")

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


# Published ranges the realism tests and `icans cohort summary` compare against.
PUBLISHED_SEVERE_ICANS_RANGE: dict[str, tuple[float, float, str]] = {
    "CD19-CD28": (0.25, 0.35, "axi-cel 26.4% pooled, 28% ZUMA-1, 31-33% real world; brexu-cel 30%"),
    "CD19-4-1BB": (0.05, 0.13, "tisa-cel 6.1% pooled, 13% ELIANA; liso-cel 10%; obe-cel 7.1%"),
    "CD19-CD22": (0.03, 0.15, "ASSUMPTION: 4-1BB-like (NCI CD19/CD22 programme)"),
    "BCMA": (0.0, 0.05, "ide-cel ~3%, cilta-cel ~2%; CD19 vs BCMA OR 4.6"),
    "CLL1": (0.0, 0.03, "CLL1 phase I: 0/10 CRES; paediatric 0/8"),
    "CD123": (0.0, 0.03, "No quantitative data; treated like other myeloid targets"),
    "CD7": (0.0, 0.03, "CD7 phase II: 5/55 ICANS, all grade 1"),
}
