"""The published direction of each predictor's effect on the risk: the model's monotone
constraints, and the direction the behavioural tests check.

A predictor is listed only when a source gives its direction; treatment has none
(:mod:`features.treatment`), so none of its predictors is constrained.
"""

# Clinical direction of effect, used for monotone constraints and behavioural tests:
# more CRS, more blasts, a higher dose and more CD4+ expansion never lower the risk
# (CRS: Gust 2017, ELIANA; blasts: Gust 2017; dose: Gust 2017; expansion: ZUMA-1, Santomasso 2018).
KNOWN_INCREASING = (
    "crs_grade_today",
    "crs_max_grade_to_date",
    "marrow_blasts_pct",
    "log10_dose_cells_per_kg",
    "cd4_auc_to_date_cells_day_per_ul",
    "cd4_peak_to_date_cells_per_ul",
    "cd4_latest_cells_per_ul",
    "cd4_expansion_vs_product",
)
# Further published directions, used as monotone constraints too (fewer ways to overfit):
# LDH (Gauthier, OR 3.96/log10), CRP and ferritin (Greenbaum 2021 EASIX-FC), m-EASIX (Pennisi
# 2021) and EASIX (Korell 2022), neurologic comorbidity and Cy/Flu (Gust 2017), CNS disease
# (weak, CNSL series), CD8+ expansion (ZUMA-1 peak expansion), ICANS already present, marrow
# involvement (Gust 2017: marrow disease, multivariable, in ALL, NHL and CLL), ICANS persisting
# on steroids (the outcome's definition: features.treatment).
# Platelets lower the risk (Pennisi 2021; Hay 2017). Treatment has no published direction
# (features.treatment): none of its predictors is constrained.
PUBLISHED_INCREASING = (
    "ldh_u_per_l",
    "crp_mg_per_l",
    "ferritin_ng_per_ml",
    "m_easix",
    "easix",
    "neuro_comorbidity",
    "flu_cy_lymphodepletion",
    "cns_involvement",
    "cd8_auc_to_date_cells_day_per_ul",
    "icans_grade_today",
    "icans_max_grade_to_date",
    "lab_inflammation_index",
    "marrow_involvement",
    "icans_unimproved_on_steroids",  # the refractoriness definition itself (icans.steroids)
    # The daily routine (features.daily), levels only (never the trends, the fall from baseline
    # or from the best ICE: no source gives their direction at a given level):
    # peak and current CRP and ferritin higher with grade >= 3 ICANS (Strati, Blood Adv 2020;
    # 4:3943: peak ferritin p=0.03, CRP p=0.001); IL-6 rising earlier and higher with severe
    # neurotoxicity (Santomasso, Cancer Discov 2018;8:958; tocilizumab also raises the
    # measured IL-6, the receptor blocked, and marks CRS that needed it: the same direction);
    # m-EASIX after infusion (Pennisi 2021: day +1, +3; Blood Adv 2025;9:270: m-EASIX and
    # EASIX at day +3 best for ICANS in children); CAPD higher is worse by the scale's
    # definition (ASTCT 2019: >= 9 is delirium).
    "log_crp_latest_mg_per_l",
    "log_crp_max_to_date_mg_per_l",
    "log_ferritin_latest_ng_per_ml",
    "log_ferritin_max_to_date_ng_per_ml",
    "log_il6_latest_pg_per_ml",
    "log_il6_max_to_date_pg_per_ml",
    "m_easix_latest",
    "easix_latest",
    "capd_score_latest",
    "capd_score_max_to_date",
)
# Lower is worse: platelets (Pennisi 2021; Hay 2017), and after infusion platelets and
# fibrinogen, current and nadir (consumptive coagulopathy before and during severe CRS and
# neurotoxicity, Hay, Blood 2017;130:2295); the ICE score by its definition (ASTCT 2019, 10 =
# no deficit; 7-9 grade 1, 3-6 grade 2, 0-2 grade 3).
# Not constrained, for want of a published direction: fever and temperature (masked by
# tocilizumab and corticosteroids, features.daily), daily LDH, creatinine and lymphocytes.
PUBLISHED_DECREASING = (
    "platelets_10e9_per_l",
    "log_platelets_latest_10e9_per_l",
    "log_platelets_min_to_date_10e9_per_l",
    "log_fibrinogen_latest_mg_per_dl",
    "log_fibrinogen_min_to_date_mg_per_dl",
    "ice_score_latest",
    "ice_score_min_to_date",
)
