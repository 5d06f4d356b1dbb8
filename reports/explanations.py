"""Global explanations of a risk model for the reviewers' report: SHAP values, their figures, and
the check of their directions against the effects a cohort's generator declares.

The contributions are exact: :class:`model.explain.RiskExplainer`, TreeSHAP of the trees (by
xgboost's ``pred_contribs``) plus the additive part's terms, in calibrated log-odds. The service
answers a request with its own compiled TreeSHAP (:mod:`runtime.compiled`), a second
implementation kept for speed on one row; ``tests/test_model_compiled.py`` checks that the two
agree within xgboost's float32 precision. The ``shap`` package only draws them. The directions
to check come from the cohort's metadata (the effects its generator declares on the contract's
inputs), never from the generator itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from features import display
from features.inputs import expected_direction, predictor_inputs
from icans.contract import LAB_FIELDS
from model.boosting import MONOTONE_DECREASING, MONOTONE_INCREASING
from model.explain import RiskExplainer
from reports import html as h
from reports import plots

DIRECTION_TABLE = "SHAP direction vs generator direction"
WEAK_RHO = 0.1  # |Spearman rho| below this is reported as weak
# A predictor whose contributions span less than this (log-odds) hardly moves any estimate: the
# sign of its rank correlation says nothing (a risk of 10% moves to 10.1%).
NEGLIGIBLE_SHAP = 0.01
# Dependence plots: the main continuous drivers, then every pre-infusion lab present.
DEPENDENCE_FEATURES = (
    "marrow_blasts_pct",
    "log10_dose_cells_per_kg",
    "cd4_auc_to_date_cells_day_per_ul",
    *LAB_FIELDS,
)
NOT_EVIDENCE = (
    "SHAP patterns here reproduce the generator's assumptions and are not clinical evidence."
)
NOT_CAUSAL = "SHAP values explain the model, not the patient's biology, and are not causal."
AXIS_LABELS = {
    "marrow_blasts_pct": "marrow blasts (%)",
    "log10_dose_cells_per_kg": "CAR-T dose (log10 CAR+ cells/kg)",
    "cd4_auc_to_date_cells_day_per_ul": "CD4+ CAR-T AUC so far (cells x day / uL)",
    "ldh_u_per_l": "LDH (U/L)",
    "crp_mg_per_l": "CRP (mg/L)",
    "ferritin_ng_per_ml": "ferritin (ng/mL)",
    "platelets_10e9_per_l": "platelets (10^9/L)",
    "creatinine_mg_per_dl": "creatinine (mg/dL)",
}

# --------------------------------------------------------------------------------------------
# Directions the cohort's generator declares, and the check of the SHAP values against them


@dataclass(frozen=True)
class ExpectedDirection:
    feature: str
    sign: int  # +1: the generator's risk rises with the predictor, -1: falls
    basis: str  # which declared effects set it


def expected_directions(
    names: Sequence[str], effects: Sequence[dict]
) -> tuple[list[ExpectedDirection], list[str]]:
    """Per predictor, the direction implied by the effects a generator declares on its inputs
    (:func:`features.inputs.expected_direction`), and the predictors whose inputs have no
    effect at all."""
    declared = {e["input"]: e["sign"] for e in effects}
    basis = {e["input"]: e["basis"] for e in effects}
    directions, no_signal = [], []
    for name in names:
        sign = expected_direction(name, declared)
        if sign == 0:
            no_signal.append(name)
        elif sign is not None:
            sources = [f for f, _ in predictor_inputs(name) if declared.get(f)]
            text = "; ".join(f"{f}: {basis[f]}" for f in sources)
            directions.append(ExpectedDirection(name, sign, text))
    return directions, no_signal


def _constraint(feature: str) -> str:
    if feature in MONOTONE_INCREASING:
        return "+ (monotone)"
    if feature in MONOTONE_DECREASING:
        return "- (monotone)"
    return "none"


def direction_check(
    names: Sequence[str],
    x: np.ndarray,
    shap_values: np.ndarray,
    directions: Sequence[ExpectedDirection],
) -> pd.DataFrame:
    """Sign of Spearman(feature value, SHAP value) per predictor vs the generator's direction."""
    rows = []
    for d in directions:
        if d.feature not in names:
            continue
        j = list(names).index(d.feature)
        v, s = x[:, j], shap_values[:, j]
        ok = np.isfinite(v) & np.isfinite(s)
        rho, note = float("nan"), ""
        if ok.sum() < 10 or np.ptp(v[ok]) == 0:
            verdict, note = "not estimable", "no variation in the sample"
        elif np.ptp(s[ok]) == 0:
            verdict, note = "not estimable", "not used by the model (SHAP constant)"
        elif np.ptp(s[ok]) < NEGLIGIBLE_SHAP:
            verdict = "not estimable"
            note = f"hardly used by the model (SHAP range < {NEGLIGIBLE_SHAP} log-odds)"
        else:
            r = spearmanr(v[ok], s[ok])  # a SignificanceResult, a class scipy makes with type()
            rho = float(r.statistic)  # pyright: ignore[reportAttributeAccessIssue]  # type()-built
            if not np.isfinite(rho) or rho == 0:
                verdict, note = "not estimable", "no rank correlation"
            else:
                verdict = "agrees" if int(np.sign(rho)) == d.sign else "differs"
                if abs(rho) < WEAK_RHO:
                    note = f"weak (|rho| < {WEAK_RHO}): no clear direction either way"
        rows.append(
            {
                "feature": d.feature,
                "label": display.label(d.feature),
                "generator_direction": "+" if d.sign > 0 else "-",
                "generator_basis": d.basis,
                "spearman_rho": rho,
                "shap_direction": "+" if rho > 0 else "-" if rho < 0 else "none",
                "mean_abs_shap": float(np.nanmean(np.abs(s))),
                "model_constraint": _constraint(d.feature),
                "verdict": verdict,
                "note": note,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# SHAP values and their figures


@dataclass
class ShapSummary:
    feature_names: list[str]
    x: np.ndarray
    contributions: np.ndarray  # calibrated log-odds per predictor (rows x predictors)
    base_log_odds: float
    additive: bool = True  # whether the model has an additive part (its terms are included)


def compute_shap(model, raw_sample: np.ndarray) -> ShapSummary:
    """Exact contributions of every predictor (TreeSHAP of the trees, by xgboost's own
    implementation of ``shap.TreeExplainer``'s algorithm, plus the additive part), in the
    calibrated log-odds the service returns. The endpoint computes the same numbers with the
    compiled model's TreeSHAP (agreement within float32 precision is tested)."""
    x = np.asarray(model.transform(raw_sample), dtype=float)
    explanation = RiskExplainer(model).explain_features(x)
    base = float(np.mean(explanation.base_log_odds))
    additive = getattr(model, "additive_", None) is not None
    return ShapSummary(list(model.feature_names_), x, explanation.contributions, base, additive)


def _summary_png(s: ShapSummary, labels: list[str], plot_type: str, xlabel: str, title: str):
    """One ``shap.summary_plot`` (bar or beeswarm) as PNG, with our axis label and caption."""
    import matplotlib.pyplot as plt
    import shap

    plt.figure()
    shap.summary_plot(
        s.contributions,
        s.x,
        feature_names=labels,
        plot_type=plot_type,
        max_display=20,
        show=False,
        rng=np.random.default_rng(0),
    )
    fig = plt.gcf()
    fig.axes[0].set_xlabel(xlabel)
    fig.suptitle(title, fontsize=10)
    return plots.to_png(fig)


def _dependence_png(s: ShapSummary, labels: list[str], present: list[str], note: str) -> bytes:
    """``shap.dependence_plot`` of each feature in ``present``, two to a row, as one PNG."""
    import matplotlib.pyplot as plt
    import shap

    ncols = 2
    nrows = -(-len(present) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(10, 3.4 * nrows), squeeze=False)
    for ax, feature in zip(axes.ravel(), present, strict=False):
        shap.dependence_plot(
            s.feature_names.index(feature),
            s.contributions,
            s.x,
            feature_names=labels,
            interaction_index=None,
            ax=ax,
            show=False,
            dot_size=8,
            alpha=0.6,
        )
        ax.axhline(0, color="grey", lw=0.6, ls=":")
        ax.set_xlabel(AXIS_LABELS.get(feature, display.label(feature)), fontsize=9)
        ax.set_ylabel("SHAP (log-odds)", fontsize=9)
        ax.set_title(display.label(feature), fontsize=9)
    for ax in axes.ravel()[len(present) :]:
        ax.set_visible(False)
    fig.suptitle(f"Dependence plots ({note})", fontsize=10)
    fig.tight_layout()
    return plots.to_png(fig)


def shap_figures(s: ShapSummary, note: str = plots.NOTE) -> dict[str, bytes]:
    """PNGs: ``bar`` (mean |SHAP|), ``beeswarm`` and, when any of :data:`DEPENDENCE_FEATURES`
    is a predictor, ``dependence``; ``note`` says what the rows are (in every caption)."""
    import matplotlib.pyplot as plt

    labels = [display.label(n) for n in s.feature_names]
    present = [f for f in DEPENDENCE_FEATURES if f in s.feature_names]
    out = {}
    plt.close("all")
    with warnings.catch_warnings():
        # shap's colour scaling takes quantiles of each column: an all-missing column in a
        # small sample (e.g. days since ICANS onset) warns and is drawn grey, as it should be.
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        out["bar"] = _summary_png(
            s, labels, "bar", "mean |SHAP| (calibrated log-odds)", f"Global importance ({note})"
        )
        out["beeswarm"] = _summary_png(
            s,
            labels,
            "dot",
            "SHAP value (calibrated log-odds; > 0 raises the risk)",
            f"Beeswarm: each dot is one landmark row ({note})",
        )
        if present:
            out["dependence"] = _dependence_png(s, labels, present, note)
    plt.close("all")
    return out


# --------------------------------------------------------------------------------------------
# The report's section


def _method_text(s: ShapSummary) -> str:
    additive = (
        " plus the additive part's term for each predictor (its coefficient on the row's "
        "landmark day times the standardised value, with its missing-indicator term, centred on "
        "the training rows)"
        if s.additive
        else ""
    )
    return (
        f"Exact contributions on {len(s.x):,} landmark rows: TreeSHAP of the trees "
        f"(xgboost's implementation of the shap.TreeExplainer algorithm){additive}, the same "
        "code as the service's explanations; in calibrated log-odds, so they add up to the "
        f"served log-odds (base log-odds {s.base_log_odds:.3f})."
    )


class _DirectionRow(Protocol):
    """A row of :func:`direction_check`'s table from ``itertuples()`` (pandas types the rows
    as bare tuples)."""

    label: str
    feature: str
    generator_direction: str
    generator_basis: str
    spearman_rho: float
    shap_direction: str
    mean_abs_shap: float
    model_constraint: str
    verdict: str
    note: str


def _direction_table(check: pd.DataFrame) -> str:
    rows = [
        (
            r.label,
            r.feature,
            r.generator_direction,
            r.generator_basis,
            h.num(r.spearman_rho),
            r.shap_direction,
            h.num(r.mean_abs_shap),
            r.model_constraint,
            r.verdict,
            r.note,
        )
        for r in cast("Iterable[_DirectionRow]", check.itertuples())
    ]
    n_agree = int((cast(pd.Series, check["verdict"]) == "agrees").sum()) if not check.empty else 0
    return h.p(
        "For each predictor with a direction built into the generator: the sign of the "
        "Spearman correlation between the predictor's value and its SHAP value, against "
        f"that direction. {n_agree} of {len(check)} agree. Where the model carries a "
        "monotone constraint, agreement is enforced by construction, so the row is a "
        "check of the pipeline rather than a finding."
    ) + h.table(
        [
            "predictor",
            "feature",
            "generator direction",
            "set by",
            "Spearman rho (value, SHAP)",
            "SHAP direction",
            "mean |SHAP|",
            "model constraint",
            "verdict",
            "note",
        ],
        rows,
        "directions",
    )


def shap_section(
    s: ShapSummary,
    check: pd.DataFrame,
    no_signal_features: list[str],
    *,
    trained_on_synthetic: bool = True,
    has_generator: bool = True,
    note: str = plots.NOTE,
) -> str:
    """Global explanations: method, figures, the direction check (when the cohort's generator
    declares effects) and the predictors it gives no effect. ``trained_on_synthetic``: the
    model learnt a generator's assumptions, and the warning says so."""
    figs = shap_figures(s, note)
    if trained_on_synthetic:
        caveat = h.warning(
            NOT_EVIDENCE,
            "The generator put every effect into the data; the model found them again. "
            + NOT_CAUSAL,
        )
    else:
        caveat = h.warning(NOT_CAUSAL)
    parts = [
        caveat,
        h.p(_method_text(s)),
        "<h3>Mean |SHAP|</h3>",
        h.img(figs["bar"], "Mean absolute SHAP value per predictor"),
        "<h3>Beeswarm</h3>",
        h.img(figs["beeswarm"], "SHAP beeswarm"),
    ]
    if "dependence" in figs:
        parts += [
            "<h3>Dependence plots</h3>",
            h.img(figs["dependence"], "SHAP dependence plots"),
        ]
    parts.append(f"<h3>{h.e(DIRECTION_TABLE)}</h3>")
    if has_generator:
        parts.append(_direction_table(check))
    else:
        parts.append(
            h.p(
                "The evaluated cohort was not generated, so it declares no effect directions "
                "and there is nothing to check the SHAP directions against."
            )
        )
    mean_abs = np.mean(np.abs(s.contributions), axis=0)
    no_signal = [
        f"{display.label(f)}: mean |SHAP| {mean_abs[s.feature_names.index(f)]:.3f}"
        for f in no_signal_features
    ]
    if no_signal:
        parts.append(
            h.p(
                "Predictors the generator gives no effect at all (whatever the model "
                "attributes to them is fitted noise): " + "; ".join(no_signal) + "."
            )
        )
    return "".join(parts)
