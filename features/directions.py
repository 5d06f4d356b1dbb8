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
# involvement (Gust 2017: marrow disease, multivariable, in ALL, NHL and CLL), ICANS not
# improving on steroids (the outcome's definition: features.treatment).
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
)
PUBLISHED_DECREASING = ("platelets_10e9_per_l",)
