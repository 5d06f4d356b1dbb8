"""Features: the raw observation layout, and the predictors computed from it up to the
prediction day (one code path for training, batch scoring and serving).

Every predictor with the day its inputs are read up to (L = day_since_infusion):

=================================  ==========================================  ==============
predictor                          definition                                  read up to
=================================  ==========================================  ==============
car_target=<T>                     indicator per CAR target seen in training   baseline
costimulatory_domain=<D>           indicator per domain seen in training       baseline
car_product=<P>                    indicator per CAR-T product seen in         baseline
                                   training (none if not given)
disease_group=<G>                  indicator per disease group seen            baseline
age_years                          age at infusion                             baseline
log10_dose_cells_per_kg            log10 of CAR+ cells/kg                      baseline
marrow_blasts_pct                  marrow blasts before lymphodepletion        baseline
marrow_involvement                 1 if marrow involved (NaN unknown)          baseline
cns_involvement                    1 if CNS disease                            baseline
neuro_comorbidity                  1 if neurologic comorbidity (NaN unknown)   baseline
flu_cy_lymphodepletion             1 if fludarabine/cyclophosphamide           baseline
ldh/crp/ferritin/platelets/creat.  pre-lymphodepletion labs, contract units    baseline
m_easix                            LDH x CRP(mg/dL) / platelets                baseline
easix                              LDH x creatinine / platelets                baseline
landmark_day                       L                                           L
crs_grade_today                    CRS grade on day L (or latest before)       day L
crs_max_grade_to_date              worst CRS grade on days 0..L                day L
days_since_crs_onset               L - first day CRS >= 1 (NaN: no CRS yet)    day L
cd4_auc_to_date_cells_day_per_ul   trapezoid AUC of CD4+ samples, days 0..L    day L
cd8_auc_to_date_cells_day_per_ul   trapezoid AUC of CD8+ samples, days 0..L    day L
cd4_cd8_auc_ratio                  CD4+ AUC / CD8+ AUC to date                 day L
cd4_peak_to_date_cells_per_ul      highest CD4+ sample on days 0..L            day L
cd4_latest_cells_per_ul            latest CD4+ sample on days 1..L             day L
cd4_expansion_vs_product           mean log CD4+ minus product's typical log   day L
                                   CD4+ on the same day (training medians)
lab_inflammation_index             weighted sum of standardised log LDH, CRP,  baseline
                                   ferritin, -platelets (training PC1)
icans_grade_today                  ICANS grade on day L (or latest), 0-2       day L
icans_max_grade_to_date            worst ICANS grade on days 0..L, 0-2         day L
days_since_icans_onset             L - first day ICANS >= 1 (NaN: none yet)    day L
days_since_icans_grade2            L - first day ICANS >= 2 (NaN: none yet)    day L
steroid_mg_today                   latest corticosteroid dose on days 0..L,    day L
                                   dexamethasone-equivalent mg
days_since_steroid_start           L - steroid start for ICANS (grade >= 1,    day L
                                   >= 20 mg: icans.steroids; NaN: none yet)
prophylactic_steroid               1 if a dose on day 0-2 before any ICANS     day min(2, L)
                                   grade >= 1, 0 if none (NaN: not recorded)
tocilizumab_doses_to_date          tocilizumab doses on days 0..L              day L
icans_grade_at_steroid_start       ICANS grade on the steroid start day        day L
icans_unimproved_on_steroids       1 if within 3 days of the steroid start     day L
                                   and the grade is >= 2 and >= the grade then
cd4_log_slope_latest               log CD4+ change/day, two latest samples     day L
days_since_cd4_peak                L - day of the highest CD4+ sample          day L
cd4_cd8_latest_log_ratio           log CD4+/CD8+ of the latest paired sample   day L
cd4_slope_vs_product               that slope minus the product's median       day L
                                   slope ending on the same day (training)
cd4_rise_vs_product                log CD4+ change/day first to latest sample  day L
                                   minus the product's median that day
cd4_latest_vs_product              latest log CD4+ minus the product's median  day L
                                   log count that day (training medians)
expansion_delay_days               fitted peak day of the CD4+/CD8+ curve      day L
                                   minus the product's usual (training fit)
days_to_expansion_peak             fitted peak day minus L                     day L
fever_days_to_date                 days with max temperature >= 38.0 C         day L
days_since_fever_onset             L - first day with fever (NaN: none yet)    day L
temperature_max_to_date_c          highest daily max temperature               day L
ice_score_latest / _min_to_date    ICE score latest, lowest (ages >= 12)       day L
ice_score_fall_from_best           best ICE to date minus the latest           day L
capd_score_latest / _max_to_date   CAPD latest, highest (ages < 12)            day L
log_<lab>_latest_<unit>            log of the latest daily value, per lab      day L
                                   (CRP, ferritin, IL-6, platelets,
                                   fibrinogen, lymphocytes, LDH, creatinine)
log_<lab>_max_to_date_<unit>       log of the highest (platelets, fibrinogen:  day L
                                   _min_to_date_, the lowest) daily value
<lab>_log_slope_recent             log change/day, least squares over the 3    day L
                                   latest values (NaN with fewer than two)
platelets_latest_vs_baseline       latest / before lymphodepletion             day L
fibrinogen_latest_vs_baseline      latest / first daily value                  day L
m_easix_latest / easix_latest      the scores on the latest day with all       day L
                                   their labs charted
=================================  ==========================================  ==============

A daily series never charted up to day L gives NaN predictors (never imputed): missingness
tells about the centre, not the patient (:mod:`features.daily`). Input sets that leave groups
of predictors out: :mod:`features.input_sets`.
"""
