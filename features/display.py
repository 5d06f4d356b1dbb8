"""How each predictor is shown to a clinician: a plain name and its value in clinical units."""

from __future__ import annotations

import math

# feature name -> (plain label, format of the value)
LABELS: dict[str, tuple[str, str]] = {
    "age_years": ("age", "{:.0f} y"),
    "log10_dose_cells_per_kg": ("CAR-T dose", "dose"),
    "marrow_blasts_pct": ("marrow blasts", "{:.0f}%"),
    "cns_involvement": ("CNS involvement", "yesno"),
    "neuro_comorbidity": ("neurologic comorbidity", "yesno"),
    "flu_cy_lymphodepletion": ("Flu/Cy lymphodepletion", "yesno"),
    "ldh_u_per_l": ("LDH", "{:.0f} U/L"),
    "crp_mg_per_l": ("CRP", "{:.0f} mg/L"),
    "ferritin_ng_per_ml": ("ferritin", "{:.0f} ng/mL"),
    "platelets_10e9_per_l": ("platelets", "{:.0f} x10^9/L"),
    "creatinine_mg_per_dl": ("creatinine", "{:.2f} mg/dL"),
    "m_easix": ("m-EASIX", "{:.1f}"),
    "easix": ("EASIX", "{:.2f}"),
    "landmark_day": ("day since infusion", "{:.0f}"),
    "crs_grade_today": ("CRS grade today", "{:.0f}"),
    "crs_max_grade_to_date": ("worst CRS grade so far", "{:.0f}"),
    "days_since_crs_onset": ("days since CRS onset", "{:.0f}"),
    "cd4_auc_to_date_cells_day_per_ul": ("CD4+ CAR-T AUC so far", "{:.0f} cells*day/uL"),
    "cd8_auc_to_date_cells_day_per_ul": ("CD8+ CAR-T AUC so far", "{:.0f} cells*day/uL"),
    "cd4_cd8_auc_ratio": ("CD4:CD8 AUC ratio", "{:.2f}"),
    "cd4_peak_to_date_cells_per_ul": ("CD4+ CAR-T peak so far", "{:.1f} cells/uL"),
    "cd4_latest_cells_per_ul": ("latest CD4+ CAR-T count", "{:.1f} cells/uL"),
    "cd4_expansion_vs_product": ("CD4+ CAR-T expansion vs the product's usual", "{:+.2f} log"),
    "lab_inflammation_index": (
        "inflammation labs index (LDH, CRP, ferritin, platelets)",
        "{:+.2f}",
    ),
    "icans_grade_today": ("ICANS grade today", "{:.0f}"),
    "icans_max_grade_to_date": ("worst ICANS grade so far", "{:.0f}"),
    "days_since_icans_onset": ("days since ICANS onset", "{:.0f}"),
    "days_since_icans_grade2": ("days since ICANS reached grade 2", "{:.0f}"),
}


def label(feature: str) -> str:
    """Plain name of a predictor ('car_target=CD19' -> 'CAR target CD19')."""
    if "=" in feature:
        field, value = feature.split("=", 1)
        return f"{field.replace('_', ' ').replace('car ', 'CAR ')} {value}"
    return LABELS.get(feature, (feature.replace("_", " "), ""))[0]


def value_text(feature: str, value: float) -> str:
    """The value in clinical units ('marrow blasts 45%'); 'not available' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if feature.startswith("days_since_"):
            return "none so far"
        return "not available"
    if "=" in feature:
        return "yes" if value >= 0.5 else "no"
    fmt = LABELS.get(feature, ("", "{:.3g}"))[1]
    if fmt == "yesno":
        return "yes" if value >= 0.5 else "no"
    if fmt == "dose":
        return f"{10**value:.2g} cells/kg"
    return fmt.format(value)
