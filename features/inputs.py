"""Which clinical inputs each predictor is computed from, and in which direction it moves.

The clinician enters contract fields (:mod:`icans.contract`); the pipeline derives predictors
from them (:mod:`features.transformers`). For each predictor this module names its inputs and,
for each, whether the predictor rises (+1) or falls (-1) when the input rises, or 0 when the
relation has no fixed direction (days since CRS onset, say). A category indicator
``field=value`` comes from that field, and rises when the field takes that value.

Reports use it to compare what the model learnt with what a cohort's generator declares about
its inputs (:func:`expected_direction`); explanations use it to give contributions per input
the clinician entered (:func:`by_input`).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from features.daily import DAILY_LABS, lab_names
from icans.contract import LAB_FIELDS
from icans.daily_routine import DAILY_ROUTINE

_CD4 = "cd4_car_t_cells_per_ul"
_CD8 = "cd8_car_t_cells_per_ul"
_ICANS = "icans_grade_by_day"
_STEROIDS = "dexamethasone_mg_by_day"
_DAILY = {f.layout: f.name for f in DAILY_ROUTINE}  # layout series -> contract field


def _daily_lab_inputs(lab: str) -> dict[str, tuple[tuple[str, int], ...]]:
    """A daily lab's predictors (:class:`features.daily.DailyLabs`): the level rises with the
    lab, the trend has no fixed direction; the latest as a fraction of the baseline rises with
    the lab and falls with the baseline lab before lymphodepletion (fibrinogen's baseline is its
    own first daily value: no fixed direction)."""
    field = _DAILY[lab]
    latest, extreme, slope, *fall = lab_names(lab)
    out: dict[str, tuple[tuple[str, int], ...]] = {
        latest: ((field, 1),),
        extreme: ((field, 1),),
        slope: ((field, 0),),
    }
    for ratio in fall:
        out[ratio] = ((field, 1), (lab, -1)) if lab in LAB_FIELDS else ((field, 0),)
    return out


# predictor -> ((input field, direction of the predictor as the input rises), ...)
PREDICTOR_INPUTS: dict[str, tuple[tuple[str, int], ...]] = {
    "age_years": (("age_years", 1),),
    "log10_dose_cells_per_kg": (("dose_cells_per_kg", 1),),
    "marrow_blasts_pct": (("marrow_blasts_pct", 1),),
    "marrow_involvement": (("marrow_involvement", 1),),
    "cns_involvement": (("cns_involvement", 1),),
    "neuro_comorbidity": (("neuro_comorbidity", 1),),
    "flu_cy_lymphodepletion": (("lymphodepletion=flu_cy", 1),),
    **{lab: ((lab, 1),) for lab in LAB_FIELDS},
    # m-EASIX = LDH x CRP / platelets (Pennisi 2021); EASIX = LDH x creatinine / platelets
    "m_easix": (("ldh_u_per_l", 1), ("crp_mg_per_l", 1), ("platelets_10e9_per_l", -1)),
    "easix": (("ldh_u_per_l", 1), ("creatinine_mg_per_dl", 1), ("platelets_10e9_per_l", -1)),
    "landmark_day": (("day_since_infusion", 1),),
    # a model of several horizons: the days of the window, from the prediction day to the end of
    # the horizon asked for (model.risk_model); no one direction in the day (28 - L by day 28)
    "horizon_days": (("day_since_infusion", 0),),
    "crs_grade_today": (("crs_grade_by_day", 1),),
    "crs_max_grade_to_date": (("crs_grade_by_day", 1),),
    "days_since_crs_onset": (("crs_grade_by_day", 0),),
    "cd4_auc_to_date_cells_day_per_ul": ((_CD4, 1),),
    "cd8_auc_to_date_cells_day_per_ul": ((_CD8, 1),),
    "cd4_cd8_auc_ratio": ((_CD4, 1), (_CD8, -1)),
    "cd4_peak_to_date_cells_per_ul": ((_CD4, 1),),
    "cd4_latest_cells_per_ul": ((_CD4, 1),),
    "cd4_expansion_vs_product": ((_CD4, 1),),
    # the index weights the logs of LDH, CRP, ferritin (>= 0) and platelets (<= 0)
    "lab_inflammation_index": (
        ("ldh_u_per_l", 1),
        ("crp_mg_per_l", 1),
        ("ferritin_ng_per_ml", 1),
        ("platelets_10e9_per_l", -1),
    ),
    "icans_grade_today": ((_ICANS, 1),),
    "icans_max_grade_to_date": ((_ICANS, 1),),
    "days_since_icans_onset": ((_ICANS, 0),),
    "days_since_icans_grade2": ((_ICANS, 0),),
    "steroid_mg_today": ((_STEROIDS, 1),),
    # the start is the first day with ICANS and a treatment dose: earlier ICANS or an earlier
    # dose may move it either way
    "days_since_steroid_start": ((_STEROIDS, 0), (_ICANS, 0)),
    # a dose on day 0-2 makes it 1; ICANS before the dose makes it treatment instead
    "prophylactic_steroid": ((_STEROIDS, 1), (_ICANS, -1)),
    "tocilizumab_doses_to_date": (("tocilizumab_doses_by_day", 1),),
    "icans_grade_at_steroid_start": ((_ICANS, 1), (_STEROIDS, 0)),
    # a higher grade today keeps it persisting; the start (steroids) moves the window and, by
    # the start grade, the threshold
    "icans_unimproved_on_steroids": ((_ICANS, 0), (_STEROIDS, 0)),
    "cd4_log_slope_latest": ((_CD4, 0),),
    "days_since_cd4_peak": ((_CD4, 0),),
    "cd4_cd8_latest_log_ratio": ((_CD4, 1), (_CD8, -1)),
    "cd4_slope_vs_product": ((_CD4, 0),),
    "cd4_rise_vs_product": ((_CD4, 0),),
    "cd4_latest_vs_product": ((_CD4, 1),),
    # the fitted peak moves with the shape of both curves, not with their level
    "expansion_delay_days": ((_CD4, 0), (_CD8, 0)),
    "days_to_expansion_peak": ((_CD4, 0), (_CD8, 0)),
    # the daily routine (features.daily)
    "fever_days_to_date": ((_DAILY["temperature_max_c"], 1),),
    "days_since_fever_onset": ((_DAILY["temperature_max_c"], 0),),
    "temperature_max_to_date_c": ((_DAILY["temperature_max_c"], 1),),
    "ice_score_latest": ((_DAILY["ice_score"], 1),),
    "ice_score_min_to_date": ((_DAILY["ice_score"], 1),),
    "ice_score_fall_from_best": ((_DAILY["ice_score"], 0),),
    "capd_score_latest": ((_DAILY["capd_score"], 1),),
    "capd_score_max_to_date": ((_DAILY["capd_score"], 1),),
    **{k: v for lab in DAILY_LABS for k, v in _daily_lab_inputs(lab).items()},
    "m_easix_latest": (
        (_DAILY["ldh_u_per_l"], 1),
        (_DAILY["crp_mg_per_l"], 1),
        (_DAILY["platelets_10e9_per_l"], -1),
    ),
    "easix_latest": (
        (_DAILY["ldh_u_per_l"], 1),
        (_DAILY["creatinine_mg_per_dl"], 1),
        (_DAILY["platelets_10e9_per_l"], -1),
    ),
}


def predictor_inputs(predictor: str) -> tuple[tuple[str, int], ...]:
    """The inputs of a predictor; an indicator ``field=value`` is its field taking that value."""
    if predictor.startswith("disease_group="):  # a group of diseases: no one value of the field
        return (("disease", 0),)
    if "=" in predictor:
        return ((predictor, 1),)
    return PREDICTOR_INPUTS[predictor]


def expected_direction(predictor: str, effects: dict[str, int]) -> int | None:
    """The direction a predictor's effect must take if the inputs act as ``effects`` declares
    (input -> +1 raises the risk, -1 lowers it, 0 no effect).

    +1 or -1 when every input with an effect agrees (an input without one adds nothing), 0 when
    no input has an effect (whatever the model attributes to the predictor is noise), None when
    an input is undeclared, the relation has no direction, or the inputs disagree.
    """
    signs = set()
    for field, relation in predictor_inputs(predictor):
        if field not in effects:
            return None
        if effects[field] == 0:
            continue
        if relation == 0:
            return None
        signs.add(effects[field] * relation)
    if not signs:
        return 0
    return signs.pop() if len(signs) == 1 else None


def input_fields(predictor: str) -> tuple[str, ...]:
    """The contract fields a predictor is computed from (an indicator: its field)."""
    return tuple(dict.fromkeys(f.split("=")[0] for f, _ in predictor_inputs(predictor)))


def by_input(feature_names, contributions: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Contributions per input the clinician entered (rows x inputs), from those per predictor.

    The rule: a predictor computed from one input (a lab, the CRS grades, a category's
    indicators) gives that input its whole contribution, so the indicators of one category
    add up to one contribution of the field; a predictor computed from several inputs (m-EASIX
    from LDH, CRP and platelets; the CD4:CD8 ratio; days since corticosteroids started for
    ICANS) shares its contribution equally among them. Each predictor's contribution goes
    somewhere once, so the inputs' contributions add up to the same log-odds as the
    predictors'. Inputs are in the order they first appear among the predictors.
    """
    fields, rows, columns, shares = _terms(tuple(feature_names))
    c = np.asarray(contributions, dtype=float)
    out = np.zeros((len(c), len(fields)))
    # one unbuffered accumulation: each input's terms are added one by one in predictor order,
    # so a row gets the same bits alone or in a batch
    # (numpy's stub types ufunc.at's indices as integer arrays only; its documentation allows a
    # tuple of index arrays and slices for a multidimensional first operand, as here)
    np.add.at(
        out,
        (slice(None), columns),  # pyright: ignore[reportArgumentType]  # a valid index (above)
        c[:, rows] * shares,
    )
    return list(fields), out


@cache
def _terms(feature_names: tuple[str, ...]):
    """(inputs, then the predictor column, input column and share of every pair), the pairs
    grouped by input in predictor order."""
    parts = _parts(feature_names)
    terms = [(j, k, w) for k, terms in enumerate(parts.values()) for j, w in terms]
    rows = np.array([j for j, _, _ in terms], dtype=np.intp)
    columns = np.array([k for _, k, _ in terms], dtype=np.intp)
    shares = np.array([w for _, _, w in terms], dtype=float)
    return tuple(parts), rows, columns, shares


@cache
def _parts(feature_names: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    """input -> [(predictor column, its share)], in order of first appearance."""
    parts: dict[str, list[tuple[int, float]]] = {}
    for j, name in enumerate(feature_names):
        inputs = input_fields(name)
        for field in inputs:
            parts.setdefault(field, []).append((j, 1.0 / len(inputs)))
    return parts
