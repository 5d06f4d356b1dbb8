"""What a generated cohort should look like: published ranges, each with its source.

The realism table (:func:`data.synthetic.summary.realism_table`, printed by ``icans cohort
summary``) compares a cohort with these. A range marked ASSUMPTION widens a single published
figure or fills a gap; label rates (Lee/CTCAE grading) and ASTCT real-world rates are mixed
where the fact sheets do, so ranges are wide. Metrics:

``icans_any``/``icans_3plus``    share with ICANS grade >= 1 / >= 3 by day 28
``crs_any``/``crs_3plus``        share with CRS grade >= 1 / >= 3
``onset_median``                 median ICANS onset day among patients with ICANS
``duration_median``              median days from ICANS onset to the first day back at grade 0
``tocilizumab``/``steroids``     share given tocilizumab / treatment-dose corticosteroid
``nrm``                          share dying of another cause by day 28 (competing deaths)
``icans_death``                  share dying of ICANS by day 28
``onset_after_14``               share of all patients with a first ICANS after day 14
``crp_peak_crs_1_2``/``_3plus``  median peak CRP (mg/L) of patients whose worst CRS is 1-2 / >= 3
``ferritin_peak_crs_1_2``/...    the same for ferritin (ng/mL)
``fever_first_at_crs_onset``     share of CRS patients whose first fever is on the CRS onset day
``crp_peak_after_crs_onset``     median days from CRS onset to the peak CRP
``crp_early_auroc``              AUROC of the highest CRP on days 0-3 alone for the target event
                                 after day 3 (partial: Teachey 2016)
``easix_fc_icans_2plus_ratio``   ICANS grade >= 2 in the highest third of EASIX-FC before
                                 lymphodepletion over the lowest third (Greenbaum 2021)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    metric: str
    family: str  # a product family, or "all"
    low: float
    high: float
    source: str


def _t(metric: str, family: str, low: float, high: float, source: str) -> Target:
    return Target(metric, family, low, high, source)


TARGETS: tuple[Target, ...] = (
    # ICANS grade >= 3 (icans-facts 2.1-2.2)
    _t("icans_3plus", "CD19-CD28", 0.25, 0.35, "axi-cel 26.4% pooled, 28% ZUMA-1; brexu-cel 30%"),
    _t("icans_3plus", "CD19-4-1BB", 0.05, 0.13, "tisa-cel 6.1% pooled, 13% ELIANA; liso-cel 10%"),
    _t("icans_3plus", "CD19-CD22", 0.03, 0.15, "ASSUMPTION: 4-1BB-like (NCI CD19/CD22)"),
    _t("icans_3plus", "BCMA", 0.0, 0.05, "ide-cel ~3%, cilta-cel ~2%; CD19 vs BCMA OR 4.6"),
    _t("icans_3plus", "CLL1", 0.0, 0.03, "CLL1 phase I: 0/10 CRES; paediatric 0/8"),
    _t("icans_3plus", "CD123", 0.0, 0.03, "No quantitative data; like other myeloid targets"),
    _t("icans_3plus", "CD7", 0.0, 0.03, "CD7 phase II: 5/55 ICANS, all grade 1"),
    # any ICANS
    _t("icans_any", "CD19-CD28", 0.50, 0.70, "axi-cel RW 53-69%, pooled 54%; brexu-cel 55-63%"),
    _t("icans_any", "CD19-4-1BB", 0.14, 0.45, "tisa-cel LBCL 14-18%, ELIANA 40%; liso-cel 30%"),
    _t("icans_any", "BCMA", 0.08, 0.30, "ide-cel 18%, cilta-cel ~17-20%"),
    _t("icans_any", "CLL1", 0.0, 0.10, "CLL1 phase I 0/10"),
    _t("icans_any", "CD7", 0.0, 0.15, "CD7 phase II 9% (5/55)"),
    # CRS
    _t("crs_any", "CD19-CD28", 0.85, 0.97, "axi-cel label 94%, ZUMA-1 93%"),
    _t("crs_any", "CD19-4-1BB", 0.40, 0.80, "tisa-cel 58%, liso-cel 42%, ELIANA 77%"),
    _t("crs_any", "BCMA", 0.80, 0.97, "ide-cel 84%, cilta-cel 95%"),
    _t("crs_any", "CLL1", 0.85, 1.0, "CLL1 phase I 10/10"),
    _t("crs_any", "CD7", 0.85, 1.0, "CD7 phase II 98%"),
    _t("crs_3plus", "CD19-CD28", 0.05, 0.15, "axi-cel label 13%, ZUMA-1 ~10%; brexu-cel RW 8%"),
    _t("crs_3plus", "CD19-4-1BB", 0.01, 0.12, "liso-cel 2%; tisa-cel ELIANA higher (Penn)"),
    _t("crs_3plus", "BCMA", 0.02, 0.10, "ide-cel 5-9%, cilta-cel 4%"),
    _t("crs_3plus", "CLL1", 0.30, 0.70, "CLL1 phase I 6/10 high grade"),
    _t("crs_3plus", "CD7", 0.05, 0.20, "CD7 phase II 11%"),
    # timing and duration (icans-facts 2.6; icans-facts-2 section 7)
    _t("onset_median", "CD19-CD28", 4, 8, "axi-cel 5 d (Strati 2020), brexu-cel 7 d"),
    _t("onset_median", "CD19-4-1BB", 5, 9, "tisa-cel label 5-8 d, RW 7-8 d; TRANSCEND CLL 7"),
    _t("onset_median", "BCMA", 2, 9, "KarMMa 2 d, CARTITUDE-2 8 d"),
    _t("onset_median", "CLL1", 8, 14, "Meng 2025: 11 d (3-20), AML-heavy"),
    _t("duration_median", "CD19-CD28", 5, 10, "axi-cel 6 d (Strati 2020), brexu-cel RW 8 d"),
    _t("duration_median", "CD19-4-1BB", 5, 17, "tisa-cel RW 6.5-7 d, label 7-17 d; TRANSCEND 7"),
    _t("duration_median", "BCMA", 2, 6, "KarMMa 5 d, CARTITUDE-2 2 d"),
    _t(
        "onset_after_14",
        "CD19-CD28",
        0.002,
        0.015,
        "9-centre RW (Blood Adv 2024, axi-cel, tisa-cel, liso-cel): 0.7% after day 14",
    ),
    _t("onset_after_14", "CD19-4-1BB", 0.002, 0.015, "9-centre RW (Blood Adv 2024): 0.7%"),
    # treatment (icans-facts-2 section 4)
    _t("tocilizumab", "CD19-CD28", 0.40, 0.70, "ZUMA-1 43%, axi-cel RW 63-67%"),
    _t("tocilizumab", "CD19-4-1BB", 0.14, 0.40, "JULIET 14%, TRANSCEND 20%, ELIANA 37%"),
    _t("tocilizumab", "BCMA", 0.45, 0.75, "CARTITUDE-1 69%, BCMA single centre 49%"),
    _t("steroids", "CD19-CD28", 0.25, 0.65, "ZUMA-1 27%, axi-cel RW 55-64% (incl. for CRS)"),
    _t("steroids", "CD19-4-1BB", 0.05, 0.25, "JULIET 10%, TRANSCEND 21%"),
    _t("steroids", "BCMA", 0.05, 0.35, "CARTITUDE-1 22%, BCMA single centre 34%"),
    # deaths (icans-facts-2 section 6; icans-facts 2.8)
    _t("nrm", "CD19-CD28", 0.005, 0.04, "DESCAR-T <d28 0.9%; suggested 1-3% by day 28"),
    _t("nrm", "CD19-4-1BB", 0.005, 0.04, "ELIANA 2.7% <= 30 d; KYM-PI 2.6%"),
    _t("nrm", "BCMA", 0.01, 0.05, "suggested 2-3% (MM NRM 8% all time)"),
    _t("icans_death", "CD19-CD28", 0.003, 0.03, "fatal ICANS ~1-2% CD28; brexu-cel grade 5 2%"),
    _t("icans_death", "CD19-4-1BB", 0.0, 0.01, "fatal ICANS <1% in 4-1BB products"),
    # the daily routine series (icans-facts-3; the sources behind RoutineParameters)
    _t(
        "ferritin_peak_crs_1_2",
        "all",
        1_000,
        4_000,
        "maximum ferritin median 2,035 ng/mL (IQR 855-4,048) without high-grade CRS (Blood, "
        "table of maximum ferritin by CRS grade, n=184)",
    ),
    _t(
        "ferritin_peak_crs_3plus",
        "all",
        3_000,
        15_000,
        "maximum ferritin median 5,467 ng/mL (IQR 2,186-14,614) with high-grade CRS (same table)",
    ),
    _t(
        "crp_peak_crs_1_2",
        "all",
        50,
        200,
        "ASSUMPTION: CRP rises with CRS and its peak with the grade (Lee, Lancet 2015: CRP "
        "follows IL-6, Spearman 0.81); no published median peak found",
    ),
    _t("crp_peak_crs_3plus", "all", 150, 400, "ASSUMPTION: as above, for CRS grade >= 3"),
    _t(
        "fever_first_at_crs_onset",
        "all",
        0.85,
        1.0,
        "ASTCT 2019: fever >= 38.0 °C defines CRS onset; fever from another cause "
        "(infection) may come first (ASSUMPTION: in at most 15%)",
    ),
    _t(
        "crp_peak_after_crs_onset",
        "all",
        0,
        4,
        "ASSUMPTION: CRP lags IL-6 by about a day and peaks within days of CRS onset",
    ),
    _t(
        "crp_early_auroc",
        "all",
        0.55,
        0.78,
        "Teachey 2016 (Cancer Discov): CRP and ferritin associated with severe CRS but failed "
        "to predict it early; ASSUMPTION range for CRP alone, below the models that use the "
        "whole course",
    ),
    _t(
        "easix_fc_icans_2plus_ratio",
        "CD19-CD28",
        1.5,
        4.0,
        "Greenbaum, Blood Adv 2021;5:2799 (axi-cel LBCL, n=171): ICANS grade 2-4 74% in the high "
        "EASIX-FC group vs 29% in the low (2.6x; HR 3.6); ASSUMPTION: thirds of an equal-weight "
        "log score stand for its groups, range widened",
    ),
)
