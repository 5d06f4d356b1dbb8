"""How each predictor is shown to a clinician: a plain name and its value in clinical units.

A predictor that is a contract field as entered (age, marrow blasts, the labs ...) takes its
label and unit from the field's specification (:mod:`icans.contract`); the predictors the
pipeline derives (:mod:`features.transformers`) are described here.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

from features.daily import DAILY_LABS, FALLING_LABS, CognitionFeatures, lab_names
from features.definitions import RECENT_SAMPLES
from icans.contract import FIELDS, LAB_FIELDS
from icans.daily_routine import DAILY_ROUTINE

# derived predictor -> (plain label, format of the value)
DERIVED: dict[str, tuple[str, str]] = {
    "log10_dose_cells_per_kg": ("CAR-T dose", "dose"),
    "flu_cy_lymphodepletion": ("Flu/Cy lymphodepletion", "yesno"),
    "m_easix": ("m-EASIX", "{:.1f}"),
    "easix": ("EASIX", "{:.2f}"),
    "landmark_day": ("day since infusion", "{:.0f}"),
    "horizon_days": ("days ahead (the horizon)", "{:.0f}"),
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
    "steroid_mg_today": ("corticosteroid, latest dose (dexamethasone-equivalent)", "{:.4g} mg"),
    "days_since_steroid_start": ("days since corticosteroids started for ICANS", "{:.0f}"),
    "prophylactic_steroid": ("prophylactic corticosteroid (day 0-2, before ICANS)", "yesno"),
    "tocilizumab_doses_to_date": ("tocilizumab doses so far", "{:.0f}"),
    "icans_grade_at_steroid_start": ("ICANS grade when corticosteroids started", "{:.0f}"),
    "icans_unimproved_on_steroids": (
        "ICANS grade >= 2 persisting on corticosteroids (72-h response pending)",
        "yesno",
    ),
    "cd4_log_slope_latest": ("CD4+ CAR-T trend (latest samples)", "{:+.2f} log/day"),
    "days_since_cd4_peak": ("days since the CD4+ CAR-T peak so far", "{:.0f}"),
    "cd4_cd8_latest_log_ratio": ("CD4:CD8 of the latest sample", "{:+.2f} log"),
    "cd4_slope_vs_product": ("CD4+ CAR-T trend vs the product's usual", "{:+.2f} log/day"),
    "cd4_rise_vs_product": ("CD4+ CAR-T rise so far vs the product's usual", "{:+.2f} log/day"),
    "cd4_latest_vs_product": ("latest CD4+ CAR-T count vs the product's usual", "{:+.2f} log"),
    "expansion_delay_days": (
        "CAR-T expansion peak vs the product's usual (fitted curve)",
        "{:+.1f} days",
    ),
    "days_to_expansion_peak": ("days to the CAR-T expansion peak (fitted curve)", "{:+.1f}"),
    "fever_days_to_date": ("days with fever (>= 38 °C) so far", "{:.0f}"),
    "days_since_fever_onset": ("days since fever began", "{:.0f}"),
    "temperature_max_to_date_c": ("highest temperature so far", "{:.1f} °C"),
    "m_easix_latest": ("m-EASIX, latest day with LDH, CRP and platelets", "{:.1f}"),
    "easix_latest": ("EASIX, latest day with LDH, creatinine and platelets", "{:.2f}"),
}


def _daily_labels() -> dict[str, tuple[str, str]]:
    """Labels of the daily routine's predictors (:mod:`features.daily`), each lab's name and
    unit from its contract field. A log level is shown as the value ("exp:" formats), a log
    trend as the factor per day ("fold")."""
    spec = {f.layout: f for f in DAILY_ROUTINE}
    out: dict[str, tuple[str, str]] = {}
    for lab in DAILY_LABS:
        name, unit = spec[lab].label, spec[lab].unit
        latest, extreme, slope, *fall = lab_names(lab)
        worst = "lowest" if lab in FALLING_LABS else "highest"
        out[latest] = (f"{name}, latest", f"exp:{{:.3g}} {unit}")
        out[extreme] = (f"{name}, {worst} so far", f"exp:{{:.3g}} {unit}")
        out[slope] = (f"{name} trend (latest {RECENT_SAMPLES} values)", "fold")
        for ratio in fall:
            before = "before lymphodepletion" if lab in LAB_FIELDS else "the first daily value"
            out[ratio] = (f"{name}, latest vs {before}", "{:.0%}")
    ice, capd = spec["ice_score"], spec["capd_score"]
    ice_latest, ice_min, ice_fall, capd_latest, capd_max = CognitionFeatures.names
    out[ice_latest] = (f"{ice.label}, latest", f"{{:.0f}}/{ice.high:.0f}")
    out[ice_min] = (f"lowest {ice.label} so far", f"{{:.0f}}/{ice.high:.0f}")
    out[ice_fall] = (f"{ice.label} below its best so far", "{:.0f} points")
    out[capd_latest] = (f"{capd.label}, latest", f"{{:.0f}}/{capd.high:.0f}")
    out[capd_max] = (f"highest {capd.label} so far", f"{{:.0f}}/{capd.high:.0f}")
    return out


DERIVED.update(_daily_labels())


@cache
def label(feature: str) -> str:
    """Plain name of a predictor ('car_target=CD19' -> 'CAR target CD19'); cached: it depends
    on the name only, and a response labels every predictor."""
    if "=" in feature:
        field, value = feature.split("=", 1)
        spec = FIELDS.get(field)
        return f"{spec.label if spec else field.replace('_', ' ')} {value}"
    if feature in FIELDS:
        return FIELDS[feature].label
    return DERIVED.get(feature, (feature.replace("_", " "), ""))[0]


@lru_cache(maxsize=65_536)
def value_text(feature: str, value: float) -> str:
    """The value in clinical units ('marrow blasts 45%'); 'not available' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if feature.startswith("days_since_"):
            return "none so far"
        return "not available"
    if "=" in feature:
        return "yes" if value >= 0.5 else "no"
    if feature in FIELDS:
        return FIELDS[feature].text(
            bool(value >= 0.5) if FIELDS[feature].kind == "boolean" else value
        )
    fmt = DERIVED.get(feature, ("", "{:.3g}"))[1]
    if fmt == "yesno":
        return "yes" if value >= 0.5 else "no"
    if fmt == "dose":
        return f"{10**value:.2g} cells/kg"
    if fmt.startswith("exp:"):  # a natural-log level, shown in its unit
        return fmt[4:].format(math.exp(value))
    if fmt == "fold":  # a natural-log change per day, shown as the factor per day
        return f"x{math.exp(value):.2g} per day"
    return fmt.format(value)


def input_text(field: str, patient) -> str:
    """An input as the clinician entered it: a value in clinical units, or for a course
    series its latest value and day ('2 on day 5, 4 days recorded'); 'not given' when absent."""
    value = getattr(patient, field)
    spec = FIELDS[field]
    if spec.kind != "day_list":
        return _field_text(field, value) if field != "day_since_infusion" else f"{value}"
    if not value:
        return "not given"
    last = max(value, key=lambda obs: obs.day)
    shown = _field_text(field, getattr(last, spec.value_key))  # cached: a text per value
    return f"{shown} on day {last.day}, {len(value)} day{'s' if len(value) > 1 else ''} recorded"


@lru_cache(maxsize=65_536, typed=True)
def _field_text(field: str, value) -> str:
    """:meth:`icans.contract.Field.text` of a single-valued field, cached: a page of patients
    repeats the same products, doses and grades."""
    return FIELDS[field].text(value)
