"""What a generated cohort should look like: published ranges, each with its source.

The realism table (:func:`data.synthetic.summary.realism_table`, printed by ``icans cohort
summary``) compares a cohort with these. A range marked ASSUMPTION widens a single published
figure or fills a gap; label rates (Lee/CTCAE grading) and ASTCT real-world rates are mixed
where the fact sheets do, so ranges are wide. The v3 targets (products, couplings, severity
structure, treatment and deaths) come from the source check ``v3-sources`` and carry its labels:
VERIFIED (the number was read in the cited source), FACT-SHEET (only in the project's fact
sheets ``icans-facts{,-2,-3}``: a soft prior) and ASSUMPTION (no published number; the range is
this project's proposal). A range around a published figure is always a proposal.

Groups (:func:`data.synthetic.summary.group_mask`): ``"all"``; a product family
(``product_family``); a product (``product``, e.g. ``"axi-cel"``, ``"tisa-cel NHL"``); ``"CD19"``
(``car_target``); ``"CD19 lymphoma"`` (CD19 products in LBCL, PMBCL, MCL or FL); any of these
followed by ``", no prophylaxis"`` or ``", prophylaxis"`` (``prophylactic_dexamethasone``).
Metrics (patients and outcomes merged, with the per-patient summaries of the daily course):

Rates and timing
``icans_any``/``icans_3plus``    share with ICANS grade >= 1 / >= 3 by day 28
``crs_any``/``crs_3plus``        share with CRS grade >= 1 / >= 3
``onset_median``                 median ICANS onset day among patients with ICANS
``duration_median``              median days from ICANS onset to the first day back at grade 0
``crs_onset_median``             median CRS onset day among patients with CRS
``crs_duration_median``          median days from CRS onset to the first later day charted at
                                 CRS grade 0 (daily ``crs_grade``; a CRS that never resolves by
                                 death or day 28 is left out, as for ICANS)
``onset_after_14``               share of all patients with a first ICANS after day 14

Severity structure (worst grade by day 28; grade 5 = died of ICANS)
``grade1_to_grade2``             patients with worst ICANS grade 1 over those with worst grade 2
``grade45_to_grade3``            patients with worst grade 4 or 5 over those with worst grade 3
``diffuse_edema``                share with diffuse cerebral oedema or raised ICP on any day
``fatal_edema``                  share dying of ICANS with diffuse cerebral oedema charted
``seizure``                      share with a seizure (any kind) on any day
``grade1_before_grade2``         among patients whose ICANS reaches grade >= 2, the share with a
                                 grade 1 day (ICE 7-9 / CAPD 1-8) before the first grade >= 2

Steroid-refractory ICANS (``steroid_refractory_icans``, icans.steroids)
``refractory``                   share of all patients refractory
``refractory_given_3plus``       share of patients with worst ICANS grade >= 3 who are refractory
``refractory_given_grade2``      share of patients with worst ICANS grade 2 who are refractory
``refractory_grade1_share``      share of refractory patients whose worst ICANS grade is 1
``refractory_death``             share of refractory patients dying by day 28 of a cause other
                                 than progression (treatment-related mortality)

Treatment
``tocilizumab``/``steroids``     share given tocilizumab / treatment-dose corticosteroid for ICANS
``toci_given_crs``               share of patients with CRS given tocilizumab
``toci_given_crs1``/``_crs2``/``_crs3plus``  the same by worst CRS grade 1 / 2 / >= 3
``steroids_given_icans``         share of patients with ICANS given treatment-dose steroids for
                                 it (``dexamethasone_start_day``)
``steroids_given_icans_2plus``   the same among patients with worst ICANS grade >= 2
``steroids_given_crs3plus``      share of patients with worst CRS grade >= 3 given a treatment
                                 dose (>= icans.steroids.TREATMENT_MG a day) on any day

Couplings (odds ratios from 2x2 tables or univariable logistic fits; undefined, so left empty,
when a cell or a class is empty)
``severe_icans_or_crs34``        OR of ICANS grade >= 3 for worst CRS grade >= 3 vs < 3
``p_severe_icans_given_crs34``   share with ICANS grade >= 3 among worst CRS grade >= 3
``severe_icans_without_crs``     share of ICANS grade >= 3 patients with no CRS (grade 0)
``icans_after_crs_onset``        share of patients with CRS and ICANS whose ICANS began on or
                                 after the CRS onset day
``ldh_or_per_log10``             OR of ICANS grade >= 3 per 10-fold baseline LDH
``dose_crs_or_per_doubling``     OR of any CRS per doubling of the total CAR+ cells infused
                                 (``dose_cells_per_kg`` x ``weight_kg``)
``or_tisa_vs_axi_icans``         OR of any ICANS, tisa-cel NHL vs axi-cel (a group containing
                                 both products, e.g. ``"all"``)

Deaths (the cohort records deaths by day 28 only)
``nrm``                          share dying of another cause by day 28 (competing deaths)
``icans_death``                  share dying of ICANS by day 28
``early_death``                  share dying of any cause by day 28
``death_share_icans``/``_crs``/``_infection``  share of the deaths by day 28 due to ICANS / CRS /
                                 infection

Daily routine series
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
    group: str  # "all", a product family, a product, ... (data.synthetic.summary.group_mask)
    low: float
    high: float
    source: str
    # Why the generated world is known to depart from this target (empty: it must be inside).
    # A departure is a design limit explained in the data card, never a tuning shortfall.
    departure: str = ""


def _t(
    metric: str, group: str, low: float, high: float, source: str, departure: str = ""
) -> Target:
    return Target(metric, group, low, high, source, departure)


# Design limits of the exact true risk (data/synthetic/README.md, known departures): whatever
# acts on the ICANS course or on survival must be decided by the ICANS course, the patient's
# baseline or the day, never by the future CRS, which the backward table does not carry.
_NO_CRS_STEROIDS = (
    "no corticosteroids for CRS alone: they would act on ICANS on days set by the future CRS"
)
_NO_CRS_DEATHS = (
    "deaths from other causes do not follow CRS (their timing would need the future CRS); a "
    "death is labelled CRS only after a day of CRS grade >= 3"
)
_MODERN_STEROIDS = (
    "steroids from grade 2 as ASCO 2021 recommends; the 2016-2019 registry treated fewer"
)


TARGETS: tuple[Target, ...] = (
    # ICANS grade >= 3 (icans-facts 2.1-2.2)
    _t(
        "icans_3plus",
        "CD19-CD28",
        0.15,
        0.35,
        "axi-cel 26.4% pooled, 28% ZUMA-1; brexu-cel 30%. Low end lowered from 0.25 (v3 source "
        "check s4): axi-cel with prophylactic steroids 13% (ZUMA-1 cohort 6, VERIFIED), and the "
        "family mixes patients with and without prophylaxis",
    ),
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
    _t(
        "crs_any",
        "CD19-CD28",
        0.80,
        0.97,
        "axi-cel label 94%, ZUMA-1 93%. Low end lowered from 0.85 (v3 source check s4): 80% "
        "with prophylactic dexamethasone (ZUMA-1 cohort 6, Oluwole BJH 2021, VERIFIED)",
    ),
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
    # ---- v3 source check (the labels are its own) -------------------------------------------
    # Steroid-refractory ICANS (s1)
    _t(
        "refractory_given_3plus",
        "CD19",
        0.10,
        0.25,
        "MDACC axi-cel (Strati, Blood Adv 2020;4:3123, VERIFIED counts): 8 given anakinra among "
        "41 with grade >= 3 ICANS, so <= 20% refractory; range ASSUMPTION around it",
    ),
    _t(
        "refractory_given_grade2",
        "CD19",
        0.02,
        0.10,
        "ASSUMPTION: no published rate (Gazeau, TCT 2023;29:430 defines refractoriness from "
        "grade 2, VERIFIED)",
    ),
    _t(
        "refractory_grade1_share",
        "all",
        0.0,
        0.10,
        "ASSUMPTION: grade 1 'refractory' only as a rare label (Gazeau requires grade >= 2; the "
        "seed series, Meng 2025, enrolled grade 1-2, VERIFIED definition, no rate)",
    ),
    _t(
        "refractory",
        "axi-cel",
        0.03,
        0.09,
        "MDACC axi-cel: 8/100 given anakinra (Strati 2020, VERIFIED upper proxy 8%); range "
        "ASSUMPTION (no series reports the share refractory)",
    ),
    _t(
        "refractory",
        "CD19-4-1BB",
        0.005,
        0.03,
        "ASSUMPTION: the axi-cel range scaled by the grade >= 3 ICANS rates of 4-1BB products",
    ),
    _t(
        "refractory_death",
        "all",
        0.04,
        0.13,
        "treatment-related mortality by day 28 after anakinra for refractory ICANS: 7% (2-17) "
        "(Gazeau 2023, VERIFIED); FHCC/OHSU n=124: 7% (4-13) (ASH 2025, VERIFIED)",
    ),
    # Tocilizumab and steroids (s2)
    _t(
        "toci_given_crs",
        "tisa-cel NHL",
        0.20,
        0.45,
        "CIBMTR tisa-cel NHL 42.9% of CRS patients (Pasquini, Blood Adv 2020;4:5414, VERIFIED); "
        "Kymriah label DLBCL 21% (VERIFIED)",
    ),
    _t(
        "toci_given_crs",
        "tisa-cel ALL",
        0.40,
        0.55,
        "CIBMTR tisa-cel ALL 45% of CRS patients (Pasquini 2020, VERIFIED); ELIANA 48% (Maude, "
        "NEJM 2018, VERIFIED); Kymriah label ALL 50% (VERIFIED)",
    ),
    _t(
        "toci_given_crs",
        "axi-cel",
        0.40,
        0.70,
        "ZUMA-1 43-45%, axi-cel real world 63-67% (FACT-SHEET)",
    ),
    _t(
        "toci_given_crs",
        "cilta-cel",
        0.60,
        0.80,
        "CARTITUDE-1 tocilizumab 69.1% (all patients; CRS 94.8%) (VERIFIED)",
    ),
    _t(
        "toci_given_crs1",
        "all",
        0.05,
        0.30,
        "ASSUMPTION: no rate by CRS grade published; guidelines give tocilizumab from grade 2 "
        "(ASCO-derived guideline card, VERIFIED)",
    ),
    _t("toci_given_crs2", "all", 0.60, 0.95, "ASSUMPTION: as above (grade 2: guideline use)"),
    _t("toci_given_crs3plus", "all", 0.90, 1.0, "ASSUMPTION: as above (grade >= 3)"),
    _t(
        "steroids_given_crs3plus",
        "all",
        0.80,
        1.0,
        "ASSUMPTION, guideline-implied: dexamethasone 10 mg q6h for grade 3 CRS, "
        "methylprednisolone 1 g/day for grade 4 (J Clin Med 2023, PMC10573998, VERIFIED)",
        _NO_CRS_STEROIDS,
    ),
    _t(
        "steroids_given_icans_2plus",
        "all",
        0.70,
        1.0,
        "ASSUMPTION: guidelines treat grade >= 2 ICANS with dexamethasone (ASCO-derived card, "
        "VERIFIED)",
    ),
    _t(
        "steroids_given_icans",
        "tisa-cel NHL",
        0.30,
        0.70,
        "CIBMTR tisa-cel: steroids for 50% of NHL patients with ICANS (any grade) (Pasquini "
        "2020, VERIFIED); range ASSUMPTION. Was group CD19 0.20-0.60: the figure is tisa-cel's "
        "and axi-cel practice treats more (v3 source check s2)",
        _MODERN_STEROIDS,
    ),
    _t(
        "steroids_given_icans",
        "tisa-cel ALL",
        0.10,
        0.40,
        "CIBMTR tisa-cel: steroids for 21.7% of ALL patients with ICANS (any grade) (Pasquini "
        "2020, VERIFIED); range ASSUMPTION",
        _MODERN_STEROIDS,
    ),
    # Products (s4): grade >= 3 ICANS, ASTCT era, real world unless noted
    _t(
        "icans_3plus",
        "axi-cel, no prophylaxis",
        0.20,
        0.40,
        "ZUMA-1 cohorts 1+2 grade >= 3 NE 28% (Locke, ASH 2017, VERIFIED); MDACC real world "
        "41/100 (Strati 2020, VERIFIED)",
    ),
    _t(
        "icans_3plus",
        "axi-cel, prophylaxis",
        0.10,
        0.20,
        "ZUMA-1 cohort 6 (dexamethasone prophylaxis) grade >= 3 NE 13% (Oluwole, BJH 2021, "
        "VERIFIED); cohort 4 (early steroids) 17% (FACT-SHEET)",
    ),
    _t(
        "icans_3plus",
        "tisa-cel NHL",
        0.0,
        0.08,
        "CIBMTR tisa-cel NHL 5.1% (Pasquini 2020, VERIFIED); Riedell 0% (FACT-SHEET)",
    ),
    _t("icans_3plus", "liso-cel", 0.05, 0.12, "TRANSCEND NHL 001 grade >= 3 NE 10% (VERIFIED)"),
    _t(
        "icans_3plus",
        "brexu-cel MCL",
        0.20,
        0.35,
        "brexu-cel MCL real world (n=476) grade >= 3 ICANS 30% (VERIFIED table)",
    ),
    _t(
        "icans_3plus",
        "ide-cel",
        0.02,
        0.06,
        "KarMMa NT grade 3 4%, no grade 4-5 (ide-cel HCP site, VERIFIED)",
    ),
    # Products (s4): any ICANS
    _t(
        "icans_any",
        "tisa-cel NHL",
        0.12,
        0.25,
        "CIBMTR tisa-cel NHL 18.1% (Pasquini 2020, VERIFIED); Riedell 14% (FACT-SHEET)",
    ),
    _t("icans_any", "liso-cel", 0.25, 0.35, "TRANSCEND NHL 001 NE 30% (VERIFIED)"),
    _t(
        "icans_any",
        "axi-cel",
        0.50,
        0.70,
        "axi-cel real world 53-69% (FACT-SHEET); ZUMA-1 cohort 6 with prophylaxis 58% (VERIFIED)",
    ),
    # Products (s4): CRS rates. Ranges are proposals around the tabled figures.
    _t(
        "crs_any",
        "axi-cel, no prophylaxis",
        0.85,
        0.97,
        "axi-cel label (ZUMA-1 n=108) 94% (VERIFIED)",
    ),
    _t(
        "crs_any",
        "axi-cel, prophylaxis",
        0.70,
        0.90,
        "ZUMA-1 cohort 6 (dexamethasone prophylaxis, n=40) 80% (Oluwole 2021, VERIFIED)",
    ),
    _t(
        "crs_any",
        "tisa-cel NHL",
        0.35,
        0.60,
        "CIBMTR tisa-cel NHL 45.2% (Pasquini 2020, VERIFIED); JULIET 57.4% (VERIFIED)",
    ),
    _t(
        "crs_any",
        "tisa-cel ALL",
        0.45,
        0.80,
        "CIBMTR tisa-cel ALL 54.9% (Pasquini 2020, VERIFIED); ELIANA 77% (VERIFIED)",
    ),
    _t(
        "crs_any",
        "liso-cel",
        0.35,
        0.55,
        "TRANSCEND NHL 001 42% (VERIFIED); CLL 85% (TRANSCEND CLL, VERIFIED) is a small share "
        "of liso-cel patients",
    ),
    _t("crs_any", "brexu-cel MCL", 0.82, 0.95, "brexu-cel MCL real world 89% (VERIFIED table)"),
    _t("crs_any", "ide-cel", 0.75, 0.92, "KarMMa 85% (ide-cel HCP site, VERIFIED)"),
    _t("crs_any", "cilta-cel", 0.88, 0.99, "CARTITUDE-1 94.8% (VERIFIED)"),
    _t(
        "crs_3plus",
        "axi-cel, no prophylaxis",
        0.07,
        0.18,
        "ZUMA-1 cohorts 1+2 13% (Locke, ASH 2017, VERIFIED); MDACC real world 9/100 (Strati "
        "2020, VERIFIED)",
    ),
    _t(
        "crs_3plus",
        "axi-cel, prophylaxis",
        0.0,
        0.08,
        "ZUMA-1 cohort 6: all CRS grade <= 2 (0/40; Oluwole 2021, VERIFIED)",
    ),
    _t(
        "crs_3plus",
        "tisa-cel NHL",
        0.02,
        0.10,
        "CIBMTR tisa-cel NHL 4.5% (ASTCT era; Pasquini 2020, VERIFIED); JULIET 22.6% used Penn "
        "grading and is not comparable",
    ),
    _t("crs_3plus", "tisa-cel ALL", 0.10, 0.25, "CIBMTR tisa-cel ALL 16.1% (Pasquini, VERIFIED)"),
    _t("crs_3plus", "liso-cel", 0.01, 0.06, "TRANSCEND NHL 001 2% (VERIFIED)"),
    _t(
        "crs_3plus",
        "brexu-cel MCL",
        0.06,
        0.16,
        "brexu-cel MCL real world 11% (VERIFIED table)",
    ),
    _t("crs_3plus", "ide-cel", 0.04, 0.13, "KarMMa 9% (ide-cel HCP site, VERIFIED)"),
    _t(
        "crs_3plus",
        "cilta-cel",
        0.02,
        0.09,
        "CARTITUDE-1 grade 3 4.1% + grade 5 1.0% (VERIFIED)",
    ),
    # Products (s4): median CRS duration (days); section 8 conflicts 2 and 3 settled here
    _t(
        "crs_duration_median",
        "axi-cel",
        6,
        8,
        "axi-cel label (ZUMA-1) 7 d (2-58) (VERIFIED)",
    ),
    _t(
        "crs_duration_median",
        "tisa-cel NHL",
        5,
        12,
        "CIBMTR tisa-cel NHL 5 d (Pasquini, VERIFIED); JULIET 7 d (eviQ) vs 12 d (CIBMTR table), "
        "both VERIFIED: range 5-12",
    ),
    _t(
        "crs_duration_median",
        "tisa-cel ALL",
        5,
        12,
        "CIBMTR tisa-cel ALL 7 d (Pasquini, VERIFIED); ELIANA 8 d (VERIFIED)",
    ),
    _t(
        "crs_duration_median",
        "liso-cel",
        4,
        7,
        "ASSUMPTION: no NHL figure found; TRANSCEND CLL resolution 6 d (VERIFIED)",
    ),
    _t(
        "crs_duration_median",
        "ide-cel",
        5,
        7,
        "KarMMa 7 d (HCP site) vs 5 d (patient site), both VERIFIED: range 5-7",
    ),
    _t("crs_duration_median", "cilta-cel", 3, 5, "CARTITUDE-1 4 d (1-27) (VERIFIED)"),
    # Products (s4): median CRS onset day; section 8 conflict 4 (ELIANA 3 d) settled here
    _t("crs_onset_median", "axi-cel", 1, 3, "axi-cel label (ZUMA-1) 2 d (1-12) (VERIFIED)"),
    _t(
        "crs_onset_median",
        "tisa-cel NHL",
        3,
        5,
        "CIBMTR tisa-cel NHL 4 d (Pasquini, VERIFIED); JULIET 3 d (VERIFIED)",
    ),
    _t(
        "crs_onset_median",
        "tisa-cel ALL",
        3,
        5,
        "ELIANA 3 d (NEJM, VERIFIED; the CIBMTR table's 7 d for ELIANA is not used)",
    ),
    _t("crs_onset_median", "liso-cel", 4, 6, "liso-cel EU SmPC 5 d (1-14) (VERIFIED)"),
    _t("crs_onset_median", "ide-cel", 1, 2, "KarMMa 1 d (1-23) (ide-cel HCP site, VERIFIED)"),
    _t("crs_onset_median", "cilta-cel", 6, 8, "CARTITUDE-1 7 d (1-12) (VERIFIED)"),
    # Products (s4): median ICANS onset day
    _t("onset_median", "axi-cel", 4, 6, "axi-cel label (ZUMA-1) NT onset 4 d (VERIFIED)"),
    _t(
        "onset_median",
        "tisa-cel NHL",
        6,
        8,
        "CIBMTR tisa-cel NHL 8 d (Pasquini, VERIFIED); JULIET 6 d (eviQ, VERIFIED)",
    ),
    _t("onset_median", "tisa-cel ALL", 6, 8, "CIBMTR tisa-cel ALL 7 d (Pasquini, VERIFIED)"),
    _t("onset_median", "ide-cel", 2, 3, "KarMMa NT onset 2 d (1-42) (ide-cel HCP, VERIFIED)"),
    _t("onset_median", "cilta-cel", 7, 9, "CARTITUDE-2 8 d (7-11) (FACT-SHEET)"),
    # Couplings (s5)
    _t(
        "severe_icans_or_crs34",
        "CD19-4-1BB",
        3,
        8,
        "ELIANA: grade 3 NE in 6/19 with grade 4 CRS vs 4/56 with grade 0-3, OR 6.0 (VERIFIED "
        "counts, OR derived; another CRS cut point)",
    ),
    _t(
        "severe_icans_or_crs34",
        "CD19-CD28",
        3,
        12,
        "ASSUMPTION: the ELIANA OR 6.0 (VERIFIED for 4-1BB) carried over to CD28, high end "
        "12 from the CD28 targets themselves: grade >= 3 ICANS in 45-80% after CRS grade >= 3 "
        "against about 25-30% overall gives odds ratios up to about 12 (was 3-8, inconsistent "
        "with them)",
    ),
    _t(
        "p_severe_icans_given_crs34",
        "CD19-4-1BB",
        0.20,
        0.45,
        "ELIANA: grade 3 NE in 32% (6/19) with grade 4 CRS (VERIFIED proxy)",
    ),
    _t(
        "p_severe_icans_given_crs34",
        "CD19-CD28",
        0.45,
        0.80,
        "ASSUMPTION: not found; above the CD28 marginal of ~0.30",
    ),
    _t(
        "severe_icans_without_crs",
        "CD19",
        0.0,
        0.05,
        "Gust 2017 (Cancer Discov 7(12)): CRS preceded all 28 grade >= 3 neurotoxicity cases "
        "(VERIFIED, 0/28); late ICANS without CRS exists (Katsin 2024 case)",
    ),
    _t(
        "icans_after_crs_onset",
        "all",
        0.85,
        1.0,
        "ASSUMPTION; KarMMa: NT began during CRS in 29, before CRS in 3, after in 2 of 36 "
        "(ide-cel HCP site, VERIFIED)",
    ),
    _t(
        "ldh_or_per_log10",
        "CD19",
        1.5,
        5,
        "Gauthier: OR 3.96 per log10 LDH (FACT-SHEET via a secondary table; wide CI, p=0.04)",
    ),
    _t(
        "dose_crs_or_per_doubling",
        "tisa-cel NHL",
        1.5,
        3.5,
        "CIBMTR tisa-cel NHL: any-grade CRS OR 2.874 (1.508-5.478) per doubling of dose "
        "(Pasquini 2020, VERIFIED)",
    ),
    _t(
        "or_tisa_vs_axi_icans",
        "all",
        0.08,
        0.35,
        "Gauthier (R/R aggressive B-NHL, n=129): ICANS aOR 0.17 (0.06-0.48), tisa-cel vs "
        "axi-cel (VERIFIED primary abstract; section 8 conflict 1: not the fact sheet's 0.14)",
    ),
    # Severity structure (s6); section 8 conflict 6: checked per product, not pooled
    *(
        _t(
            "grade1_to_grade2",
            product,
            0.3,
            0.8,
            "pooled CD19 trials (Socolov, Blood 2023;142 Suppl 1): 69 grade 1 / 166 grade 2 = "
            "0.42 (VERIFIED, derived; a selected dataset); TRANSCEND CLL 0.73 (VERIFIED)",
        )
        for product in ("axi-cel", "brexu-cel MCL", "tisa-cel NHL", "tisa-cel ALL", "liso-cel")
    ),
    *(
        _t(
            "grade45_to_grade3",
            product,
            0.15,
            0.45,
            "brexu-cel MCL real world (4+5):3 = 9:21 = 0.43 (VERIFIED, derived); pooled CD19 "
            "trials 13/75 = 0.17 (Socolov, VERIFIED, derived, no grade 5)",
        )
        for product in ("axi-cel", "brexu-cel MCL")
    ),
    *(
        _t(
            "grade45_to_grade3",
            product,
            0.05,
            0.25,
            "pooled CD19 trials 0.17 (Socolov, VERIFIED, derived); TRANSCEND CLL 1:18 = 0.06 "
            "(VERIFIED, derived)",
        )
        for product in ("tisa-cel NHL", "tisa-cel ALL", "liso-cel")
    ),
    _t(
        "fatal_edema",
        "CD19-CD28",
        0.001,
        0.005,
        "ASSUMPTION around 1/274 (~0.4%) fatal cerebral oedema after axi-cel (FACT-SHEET)",
    ),
    _t(
        "fatal_edema",
        "CD19-4-1BB",
        0.0,
        0.002,
        "ASSUMPTION; no fatal oedema in ELIANA or JULIET (VERIFIED)",
    ),
    _t(
        "diffuse_edema",
        "CD19-CD28",
        0.001,
        0.01,
        "ASSUMPTION: diffuse oedema is mostly fatal, so at most about twice the fatal range "
        "(fatal 1/274 after axi-cel, FACT-SHEET)",
    ),
    _t(
        "diffuse_edema",
        "CD19-4-1BB",
        0.0,
        0.005,
        "ASSUMPTION; no cerebral oedema in ELIANA (VERIFIED)",
    ),
    _t(
        "seizure",
        "CD19 lymphoma",
        0.02,
        0.06,
        "anti-CD19 NHL (Pensato 2024, n=156): 3.2%; Mayo tri-site (n=180, all CAR-T): 4.4% "
        "(both VERIFIED)",
    ),
    _t(
        "grade1_before_grade2",
        "CD19",
        0.40,
        0.90,
        "ASSUMPTION: a fall of the ICE score within grade 1 (ASTCT: ICE 7-9) usually comes "
        "before grade 2-3, the writing item first (icans-facts-3, CLOX-M; v3 source check s7); "
        "some patients present at grade 2-3 (a seizure, a sudden fall of consciousness)",
    ),
    # Deaths by day 28 (s6)
    _t(
        "early_death",
        "all",
        0.005,
        0.03,
        "FACT-SHEET assumption: DESCAR-T 0.9% before day 28; Kymriah label and ELIANA 2.6-2.7% "
        "by day 30",
    ),
    _t(
        "death_share_icans",
        "all",
        0.05,
        0.25,
        "ICANS drives early NRM to day 28 (9-centre real world, Blood Adv 2024;8:5346, "
        "VERIFIED); DESCAR-T early deaths 4% ICANS (FACT-SHEET); range ASSUMPTION",
    ),
    _t(
        "death_share_crs",
        "all",
        0.05,
        0.25,
        "ICANS + CRS + HLH 11.5% of all NRM (Cordas dos Santos, Nat Med 2024, VERIFIED); "
        "DESCAR-T early deaths 10% CRS (FACT-SHEET); range ASSUMPTION for deaths by day 28",
        _NO_CRS_DEATHS,
    ),
    _t(
        "death_share_infection",
        "all",
        0.30,
        0.60,
        "infection 50.9% of NRM (Cordas dos Santos 2024, VERIFIED); DESCAR-T early deaths 56% "
        "(FACT-SHEET)",
        _NO_CRS_DEATHS,
    ),
)
