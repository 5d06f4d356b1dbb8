"""Performance sections of the reviewers' report: metrics per landmark day, subgroups, the
learning curve, each from an :class:`~evaluation.held_out.Evaluation`, and what each input set
reaches (the table of :mod:`training.input_sets`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, cast

import numpy as np
import pandas as pd

from evaluation.held_out import (
    CHAMPION,
    MIN_SUBGROUP_EVENTS,
    MODEL,
    TRUE_RISK,
    Evaluation,
    ordered_subsets,
)
from features.input_sets import INPUT_SET_LABELS
from reports import html as h
from reports import plots

PREDICTOR_LABELS = {
    MODEL: "model (xgboost)",
    TRUE_RISK: "true risk (ceiling)",
    "logistic": "penalised logistic (baseline)",
    "m_easix": "m-EASIX alone (baseline)",
    CHAMPION: "current champion (same patients)",
}
METRICS = (  # (metric, column header)
    ("auroc", "AUROC"),
    ("auprc", "AUPRC"),
    ("brier", "Brier"),
    ("calibration_slope", "calibration slope"),
    ("calibration_intercept", "calibration intercept"),
    ("ici", "ICI"),
    ("auroc_gap_to_true_risk", "AUROC gap to true risk"),
    ("brier_gap_to_true_risk", "Brier gap to true risk"),
    ("auroc_gap_to_champion", "AUROC vs champion"),
)


class SubgroupRow(Protocol):
    """A row of ``ev.subgroups`` from ``itertuples()``: the columns read here (pandas types the
    rows as bare tuples)."""

    subgroup: str
    predictor: str
    n_patients: int
    n_rows: int
    n_events: int
    observed_rate: float
    mean_predicted: float


def subgroup_rows(subgroups: pd.DataFrame) -> Iterable[SubgroupRow]:
    """``subgroups.itertuples()``, typed."""
    return cast("Iterable[SubgroupRow]", subgroups.itertuples())


def metric_cell(m: pd.DataFrame, subset: str, predictor: str, metric: str) -> str:
    """'estimate (low to high)' from ``ev.metrics`` indexed by (subset, predictor, metric);
    '-' when the metric is missing or not finite."""
    key = (subset, predictor, metric)
    if key not in m.index:
        return "-"
    r = m.loc[key]
    if not np.isfinite(r["estimate"]):
        return "-"
    text = f"{r['estimate']:.3f}"
    if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
        text += f" ({r['ci_low']:.3f} to {r['ci_high']:.3f})"
    return text


def indexed_metrics(ev: Evaluation) -> pd.DataFrame:
    """``ev.metrics`` indexed for :func:`metric_cell`."""
    return ev.metrics.set_index(["subset", "predictor", "metric"])


def predictors(ev: Evaluation) -> list[str]:
    """The evaluated predictors: model, true risk, the baselines, then any other."""
    present = list(dict.fromkeys(ev.metrics["predictor"]))
    order = [MODEL, TRUE_RISK, "logistic", "m_easix"]
    return [p for p in order if p in present] + [p for p in present if p not in order]


def performance_section(ev: Evaluation, note: str = plots.NOTE) -> str:
    """A metrics table per landmark day (and all together), then the evaluation's figures."""
    m = indexed_metrics(ev)
    preds = predictors(ev)
    header = ["predictor", *(title for _, title in METRICS)]
    parts = [
        h.p(
            "Every predictor is scored on the same landmark rows. Cells are estimate (95% "
            "patient-level bootstrap CI); the gaps are model minus true risk and model minus "
            "the registry's current champion (when there is one), from a paired bootstrap. "
            "The true risk is the best any model can do from the observable data (in "
            "expectation: on rows it was trained on, a model can appear to beat it)."
        )
    ]
    for s in ordered_subsets(ev.metrics["subset"].unique()):
        rows = [
            [PREDICTOR_LABELS.get(p, p), *(metric_cell(m, s, p, k) for k, _ in METRICS)]
            for p in preds
        ]
        first = ev.metrics[ev.metrics["subset"] == s].iloc[0]
        title = "All landmark days" if s == "overall" else f"Landmark day {s[2:]}"
        parts.append(
            f"<h3>{h.e(title)}</h3>"
            + h.p(
                f"{int(first['n_rows']):,} rows, {int(first['n_events']):,} events "
                f"({first['n_events'] / max(first['n_rows'], 1):.1%})."
            )
            + h.table(header, rows, "metrics")
        )
    parts.append("<h3>Figures</h3>")
    figures = (
        (plots.roc_pr_figure, "ROC and precision-recall curves"),
        (plots.calibration_figure, "Calibration by decile"),
        (plots.decision_curve_figure, "Decision curve"),
    )
    parts += [h.img(plots.to_png(draw(ev, note=note)), alt) for draw, alt in figures]
    return "".join(parts)


def _with_ci(r, metric: str) -> str:
    """'estimate (low to high)' for the model's rows, the estimate alone for the others."""
    text = h.num(getattr(r, metric))
    low, high = getattr(r, f"{metric}_ci_low", np.nan), getattr(r, f"{metric}_ci_high", np.nan)
    if text != "-" and np.isfinite(low) and np.isfinite(high):
        text += f" ({low:.3f} to {high:.3f})"
    return text


def subgroups_section(ev: Evaluation) -> str:
    """One row per subgroup and predictor, the model's with 95% intervals; subgroups too small
    to judge (:func:`evaluation.held_out.too_small`) are flagged."""
    sub = ev.subgroups
    if sub.empty:
        return h.p("No subgroup could be formed from the evaluated rows.")
    rows = [
        (
            r.subgroup,
            PREDICTOR_LABELS.get(r.predictor, r.predictor),
            f"{r.n_patients:,}",
            f"{r.n_rows:,}",
            f"{r.n_events:,}",
            _with_ci(r, "auroc"),
            _with_ci(r, "calibration_intercept"),
            _with_ci(r, "calibration_slope"),
            h.num(r.observed_rate),
            h.num(r.mean_predicted),
            "too small to judge" if getattr(r, "too_small", r.n_events < 10) else "",
        )
        for r in subgroup_rows(sub)
    ]
    return h.p(
        "Subgroups: CAR target, costimulatory domain, disease, age (< 12, CAPD, vs >= 12, ICE; "
        "12-17, 18-64, >= 65), sex where recorded, CNS involvement. The model's rows carry 95% "
        "patient-level bootstrap intervals. A subgroup with fewer than "
        f"{MIN_SUBGROUP_EVENTS} rows with or without the event is flagged too small to judge; "
        "AUROC is blank where a subgroup has no event."
    ) + h.table(
        [
            "subgroup",
            "predictor",
            "patients",
            "rows",
            "events",
            "AUROC",
            "calibration intercept",
            "calibration slope",
            "observed rate",
            "mean predicted",
            "note",
        ],
        rows,
        "subgroups",
    )


def learning_curve_section(
    curve: pd.DataFrame | None, ev: Evaluation, note: str = plots.NOTE
) -> str:
    """Held-out AUROC by training size (figure and table), or why there is none."""
    if curve is None or curve.empty:
        return h.p(
            "No learning curve was recorded for this model, so this section is empty; "
            "'icans train' records one with every training run."
        )
    g = curve.groupby("n_patients")
    table = pd.DataFrame(
        {
            "draws": g.size(),
            "train_events": g["train_events"].mean(),
            "auroc_mean": g["auroc"].mean(),
            "auroc_sd": g["auroc"].std(),
            "brier": g["brier"].mean(),
            "slope": g["calibration_slope"].mean(),
        }
    )
    rows = [
        (
            f"{n:,}",
            int(r.draws),
            h.num(r.train_events, "{:.0f}"),
            h.num(r.auroc_mean),
            h.num(r.auroc_sd),
            h.num(r.brier),
            h.num(r.slope),
        )
        for n, r in table.iterrows()
    ]
    fig = plots.learning_curve_figure(curve, ev.value(TRUE_RISK, "auroc"), note=note)
    return (
        h.p(
            "Held-out AUROC against the number of training patients, from 13 (the size of "
            "the source case series) upwards; small sizes are repeated with different draws."
        )
        + h.img(plots.to_png(fig), "Learning curve")
        + h.table(
            [
                "training patients",
                "draws",
                "mean training events",
                "AUROC (mean)",
                "AUROC (SD)",
                "Brier",
                "calibration slope",
            ],
            rows,
            "learning",
        )
    )


INPUT_SETS_READING = (
    "Each input set's model is fitted on the same training patients as the model above "
    "('all') and scored on the same held-out rows; beside it, the AUROC of the generator's "
    "exact true risk given the same observations, the best any model of that set can do. The "
    "gap between 'all' and 'routine' is what the CAR-T counts (CD4+/CD8+ flow cytometry) and "
    "IL-6 add to what every CAR-T ward charts. Point models only (tuned and calibrated as the "
    "model above, without uncertainty refits) and no bootstrap intervals, to keep the cost of "
    "a training run small: read a difference against the number of events of its row."
)
NOT_COMPUTED = "not computed"


def input_sets_section(table: pd.DataFrame | None, synthetic: bool) -> str:
    """What each input set reaches (:mod:`training.input_sets`): one row per landmark day (all
    days first) and input set, the model's AUROC beside its set's exact true risk; or why
    there is no table."""
    if table is None or table.empty:
        return h.p(
            "No input-set comparison was recorded for this model, so this section is empty: "
            "'icans train' records one when its configuration's input_sets is not empty "
            "(never for a recalibrated model, nor on another cohort than the training one)."
        )
    finite = np.isfinite(table["true_risk_auroc"].to_numpy(float))
    has_truth = bool(finite.any())
    # sets without any true-risk figure while others have one: the generator has none for them
    lacking = sorted(set(table["input_set"]) - set(table.loc[finite, "input_set"]))
    lacking = lacking if has_truth else []  # a real cohort: no true risk for any set
    rows = []
    for s in ordered_subsets(table["subset"].unique()):
        for r in cast(pd.DataFrame, table[table["subset"] == s]).to_dict("records"):
            truth = h.num(r["true_risk_auroc"])
            if r["input_set"] in lacking:
                truth = NOT_COMPUTED
            rows.append(
                (
                    "all days" if s == "overall" else s[2:],
                    r["input_set"],
                    INPUT_SET_LABELS.get(str(r["input_set"]), ""),
                    f"{int(r['n_rows']):,}",
                    f"{int(r['n_events']):,}",
                    h.num(r["model_auroc"]),
                    truth,
                )
            )
    notes = [INPUT_SETS_READING]
    if lacking:
        notes.append(
            f"True risk '{NOT_COMPUTED}' ({', '.join(lacking)}): the generator's exact filter "
            "conditions on the daily ICANS course (the ICE or CAPD scores and ICANS grades "
            "charted each day), which these sets leave out, so it gives no exact risk for them."
        )
    if not has_truth:
        notes.append("The cohort has no true risk (real patients): only the models are compared.")
    if synthetic:
        notes.append(
            "Trained and scored on SYNTHETIC patients: the gaps show what the generator's "
            "assumptions let each input add, not clinical evidence of it."
        )
    return "".join(h.p(n) for n in notes) + h.table(
        [
            "landmark day",
            "input set",
            "inputs",
            "rows",
            "events",
            "model AUROC",
            "true-risk AUROC (same observations)",
        ],
        rows,
        "input-sets",
    )
