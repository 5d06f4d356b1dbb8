"""Figures of an evaluation (PNG), shared by the training run's artefacts and the reports.

Every figure's caption says where its rows come from (``note``: by default :data:`NOTE`, a
synthetic cohort; :func:`data_note` for a cohort's provenance); axes are labelled in clinical
terms.
"""

from __future__ import annotations

import io
from typing import cast

import matplotlib

matplotlib.use("Agg")  # no display: figures are files

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from evaluation.held_out import CHAMPION, MODEL, TRUE_RISK, Evaluation

COLORS = {
    MODEL: "#1f77b4",
    TRUE_RISK: "#2ca02c",
    "logistic": "#ff7f0e",
    "m_easix": "#9467bd",
    CHAMPION: "#8c564b",
    "treat all": "#7f7f7f",
    "treat none": "#000000",
}
NOTE = "synthetic cohort: not clinical evidence"
REAL_NOTE = "real patient data"


def data_note(synthetic: bool) -> str:
    """The caption note for figures of a synthetic (:data:`NOTE`) or a real cohort."""
    return NOTE if synthetic else REAL_NOTE


def _label(name: str) -> str:
    return {
        MODEL: "model (xgboost)",
        TRUE_RISK: "true risk (ceiling)",
        "logistic": "penalised logistic",
        "m_easix": "m-EASIX alone",
        CHAMPION: "current champion",
    }.get(name, name)


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _landmark_subsets(ev: Evaluation) -> list[int]:
    return sorted(int(d) for d in ev.predictions["landmark_day"].unique())


def roc_pr_figure(ev: Evaluation, *, note: str = NOTE):
    """ROC and precision-recall curves, overall and per landmark day."""
    days = _landmark_subsets(ev)
    preds = [c for c in ev.predictions.columns if c not in ("patient_id", "landmark_day", "label")]
    fig, axes = plt.subplots(2, len(days) + 1, figsize=(3.0 * (len(days) + 1), 6.2))
    for j, day in enumerate([None, *days]):
        rows = (
            ev.predictions
            if day is None
            else cast(pd.DataFrame, ev.predictions[ev.predictions.landmark_day == day])
        )
        y = rows["label"].to_numpy()
        title = "all landmarks" if day is None else f"day {day}"
        for name in preds:
            if y.min() == y.max():
                continue
            fpr, tpr, _ = roc_curve(y, rows[name])
            axes[0, j].plot(fpr, tpr, color=COLORS.get(name), lw=1.2, label=_label(name))
            prec, rec, _ = precision_recall_curve(y, rows[name])
            axes[1, j].plot(rec, prec, color=COLORS.get(name), lw=1.2)
        axes[0, j].plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8)
        axes[0, j].set_title(f"ROC, {title}", fontsize=9)
        axes[1, j].set_title(f"PR, {title} (prev {y.mean():.2f})", fontsize=9)
        axes[0, j].set_xlabel("1 - specificity", fontsize=8)
        axes[1, j].set_xlabel("sensitivity (recall)", fontsize=8)
    axes[0, 0].set_ylabel("sensitivity")
    axes[1, 0].set_ylabel("precision (PPV)")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Discrimination on held-out patients ({note})", fontsize=10)
    return fig


def calibration_figure(
    ev: Evaluation, predictors: tuple[str, ...] = (MODEL, TRUE_RISK), *, note: str = NOTE
):
    """Observed vs predicted risk by decile, overall and per landmark day."""
    subsets = ["overall"] + [f"L={d}" for d in _landmark_subsets(ev)]
    fig, axes = plt.subplots(1, len(subsets), figsize=(2.8 * len(subsets), 3.2), sharey=False)
    for ax, s in zip(np.atleast_1d(axes), subsets, strict=True):
        _calibration_panel(ax, ev, s, predictors)
        slope = ev.value(MODEL, "calibration_slope", s)
        icpt = ev.value(MODEL, "calibration_intercept", s)
        ax.set_title(
            f"{'all' if s == 'overall' else 'day ' + s[2:]}: slope {slope:.2f}, int. {icpt:.2f}",
            fontsize=8,
        )
        ax.set_xlabel("predicted risk", fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("observed event rate")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(f"Calibration by decile of predicted risk ({note})", fontsize=10)
    return fig


def _calibration_panel(ax, ev: Evaluation, subset: str, predictors) -> None:
    """One panel: each predictor's observed event rate by decile of its predicted risk on the
    rows of ``subset``, and the diagonal of perfect calibration."""
    c = cast(pd.DataFrame, ev.calibration[ev.calibration["subset"] == subset])
    top = 0.0
    for name in predictors:
        b = c[c["predictor"] == name]
        if b.empty:
            continue
        ax.plot(
            b["mean_predicted"],
            b["observed"],
            "o-",
            ms=3,
            color=COLORS.get(name),
            label=_label(name),
        )
        top = max(top, b["mean_predicted"].max(), b["observed"].max())
    top = max(top * 1.05, 0.02)
    ax.plot([0, top], [0, top], ls=":", color="grey", lw=0.8)


def decision_curve_figure(ev: Evaluation, *, note: str = NOTE):
    """Net benefit over the 5-40% threshold range (Vickers & Elkin 2006)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, d in ev.decision_curve.groupby("predictor", sort=False):
        name = cast(str, key)  # a predictor's name
        ax.plot(
            d["threshold"],
            d["net_benefit"],
            color=COLORS.get(name),
            lw=1.4,
            ls="--" if name in ("treat all", "treat none") else "-",
            label=_label(name),
        )
    top = cast(pd.Series, ev.decision_curve["net_benefit"]).max()
    ax.set_ylim(-0.02, max(top * 1.1, 0.02))
    ax.set_xlabel("threshold probability for pre-emptive action")
    ax.set_ylabel("net benefit")
    ax.set_title(f"Decision curve, all landmarks ({note})", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def learning_curve_figure(curve: pd.DataFrame, true_auroc: float, *, note: str = NOTE):
    fig, ax = plt.subplots(figsize=(6, 4))
    if not curve.empty:
        g = curve.groupby("n_patients")["auroc"]
        mean, sd = cast(pd.Series, g.mean()), cast(pd.Series, g.std().fillna(0))
        ax.errorbar(
            mean.index,
            mean.to_numpy(),
            yerr=sd.to_numpy(),
            fmt="o-",
            capsize=3,
            color=COLORS[MODEL],
            label="model (mean +/- SD over draws)",
        )
    if np.isfinite(true_auroc):
        ax.axhline(true_auroc, color=COLORS[TRUE_RISK], ls="--", label="true risk (ceiling)")
    ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training patients (13 = the source case series)")
    ax.set_ylabel("held-out AUROC (all landmarks)")
    ax.set_title(f"Learning curve ({note})", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def lead_time_figure(
    curve: pd.DataFrame, threshold: float, horizon_label: str, *, note: str = NOTE
):
    """Alerting on the risk ``horizon_label`` at each threshold (:func:`evaluation.lead_time.
    lead_time_curve`): the share of event patients alerted before their event, the median lead
    time (quartiles shaded), and alerted patients per event patient alerted; the chosen
    ``threshold`` marked."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    t = curve["threshold"].to_numpy(float)
    share, per_event = (
        curve["share_alerted_before_event"].to_numpy(float),
        curve["alerted_per_event_alerted"].to_numpy(float),
    )
    axes[0].plot(t, share, color=COLORS[MODEL], lw=1.4)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("share of event patients alerted before the event", fontsize=8)
    axes[1].plot(t, curve["lead_time_median_days"], color=COLORS[MODEL], lw=1.4, label="median")
    axes[1].fill_between(
        t,
        curve["lead_time_q1_days"].to_numpy(float),
        curve["lead_time_q3_days"].to_numpy(float),
        color=COLORS[MODEL],
        alpha=0.2,
        label="quartiles",
    )
    axes[1].set_ylabel("days from first alert to the event", fontsize=8)
    axes[1].legend(fontsize=7)
    axes[2].plot(t, per_event, color=COLORS[MODEL], lw=1.4)
    axes[2].axhline(1.0, color="grey", ls=":", lw=0.8)
    axes[2].set_ylabel("alerted patients per event patient alerted", fontsize=8)
    for ax in axes:
        ax.axvline(threshold, color="#d62728", ls="--", lw=1.0)
        ax.set_xlabel(f"threshold on the risk {horizon_label}", fontsize=8)
    axes[0].set_title(f"chosen threshold {threshold:g} (dashed)", fontsize=8)
    fig.suptitle(f"First alert at or above the threshold ({note})", fontsize=10)
    fig.tight_layout()
    return fig


def horizons_calibration_figure(evaluations: dict[str, Evaluation], *, note: str = NOTE):
    """Observed vs predicted risk by decile, all landmark days together, one panel per horizon
    (name -> its evaluation), the model beside the horizon's true risk; slope and intercept in
    each title."""
    fig, axes = plt.subplots(1, len(evaluations), figsize=(3.2 * len(evaluations), 3.2))
    for ax, (name, ev) in zip(np.atleast_1d(axes), evaluations.items(), strict=True):
        _calibration_panel(ax, ev, "overall", (MODEL, TRUE_RISK))
        slope, icpt = ev.value(MODEL, "calibration_slope"), ev.value(MODEL, "calibration_intercept")
        ax.set_title(f"{name}: slope {slope:.2f}, int. {icpt:.2f}", fontsize=8)
        ax.set_xlabel("predicted risk", fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("observed event rate")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(f"Calibration by decile per horizon, all landmark days ({note})", fontsize=10)
    return fig
