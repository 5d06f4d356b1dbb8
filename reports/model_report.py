"""A reviewer-facing model report: one self-contained HTML file (``icans report``).

Sections: a model card (Mitchell et al., FAT* 2019), a summary of the data card, performance by
landmark day against the true risk and the baselines, subgroups, the learning curve, global
SHAP explanations checked against the directions built into the generator, and the TRIPOD+AI
checklist (Collins et al., BMJ 2024;385:e078378) with where the report answers each item.

The document has no JavaScript and no external resources: CSS is inline and every figure is an
embedded base64 PNG, so it can be attached to a review or archived as it is. Every text value is
HTML-escaped.

The model was trained and evaluated on SYNTHETIC data only. The report says so in every section
that could be mistaken for clinical evidence.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cohort.reader import CohortMetadata
from evaluation.evaluate import MODEL, TRUE_RISK, Evaluation, ordered_subsets
from features import display
from features.inputs import expected_direction, predictor_inputs
from icans.config import INTENDED_USE
from icans.contract import LAB_FIELDS
from model.boosting import MONOTONE_DECREASING, MONOTONE_INCREASING
from model.explain import RiskExplainer
from reports import html as h
from reports import plots

SECTIONS = (
    "Model card",
    "Data card summary",
    "Performance by landmark day",
    "Subgroups",
    "Learning curve",
    "Global explanations (SHAP)",
    "TRIPOD+AI checklist",
)
MODEL_CARD_SECTIONS = (
    "Model details",
    "Intended use",
    "Out-of-scope uses",
    "Factors",
    "Metrics",
    "Training and evaluation data",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
)
DIRECTION_TABLE = "SHAP direction vs generator direction"
SAMPLE_ROWS = 2000
WEAK_RHO = 0.1  # |Spearman rho| below this is reported as weak
# Dependence plots: the main continuous drivers, then every pre-infusion lab present.
DEPENDENCE_FEATURES = (
    "marrow_blasts_pct",
    "log10_dose_cells_per_kg",
    "cd4_auc_to_date_cells_day_per_ul",
    *LAB_FIELDS,
)
PREDICTOR_LABELS = {
    MODEL: "model (xgboost)",
    TRUE_RISK: "true risk (ceiling)",
    "logistic": "penalised logistic (baseline)",
    "m_easix": "m-EASIX alone (baseline)",
}
NOT_EVIDENCE = (
    "SHAP patterns here reproduce the generator's assumptions and are not clinical evidence."
)


# --------------------------------------------------------------------------------------------
# Directions the cohort's generator declares, for the SHAP check.


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


def _sign(x: float) -> int:
    return int(np.sign(x))


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
        else:
            rho = float(spearmanr(v[ok], s[ok]).statistic)
            if not np.isfinite(rho) or rho == 0:
                verdict, note = "not estimable", "no rank correlation"
            else:
                verdict = "agrees" if _sign(rho) == d.sign else "differs"
                if abs(rho) < WEAK_RHO:
                    note = f"weak (|rho| < {WEAK_RHO}): no clear direction either way"
        shap_sign = "+" if rho > 0 else "-" if rho < 0 else "none"
        constraint = (
            "+ (monotone)"
            if d.feature in MONOTONE_INCREASING
            else "- (monotone)"
            if d.feature in MONOTONE_DECREASING
            else "none"
        )
        rows.append(
            {
                "feature": d.feature,
                "label": display.label(d.feature),
                "generator_direction": "+" if d.sign > 0 else "-",
                "generator_basis": d.basis,
                "spearman_rho": rho,
                "shap_direction": shap_sign,
                "mean_abs_shap": float(np.nanmean(np.abs(s))),
                "model_constraint": constraint,
                "verdict": verdict,
                "note": note,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# SHAP


@dataclass
class ShapSummary:
    feature_names: list[str]
    x: np.ndarray
    contributions: np.ndarray  # calibrated log-odds per predictor (rows x predictors)
    base_log_odds: float


def compute_shap(model, raw_sample: np.ndarray) -> ShapSummary:
    """Exact contributions of every predictor (TreeSHAP of the trees, by xgboost's own
    implementation of ``shap.TreeExplainer``'s algorithm, plus the additive part), in the
    calibrated log-odds the service returns: the same code as the endpoint's explanations."""
    x = np.asarray(model.transform(raw_sample), dtype=float)
    explanation = RiskExplainer(model).explain_features(x)
    base = float(np.mean(explanation.base_log_odds))
    return ShapSummary(list(model.feature_names_), x, explanation.contributions, base)


def _shap_figures(s: ShapSummary) -> dict[str, bytes]:
    import matplotlib.pyplot as plt
    import shap

    with warnings.catch_warnings():
        # shap's colour scaling takes quantiles of each column: an all-missing column in a
        # small sample (e.g. days since ICANS onset) warns and is drawn grey, as it should be.
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        return _draw_shap_figures(s, plt, shap)


def _summary_png(s, labels: list[str], plot_type: str, xlabel: str, title: str) -> bytes:
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


def _draw_shap_figures(s: ShapSummary, plt, shap) -> dict[str, bytes]:
    labels = [display.label(n) for n in s.feature_names]
    out = {}
    plt.close("all")
    out["bar"] = _summary_png(
        s, labels, "bar", "mean |SHAP| (calibrated log-odds)", f"Global importance ({plots.NOTE})"
    )
    out["beeswarm"] = _summary_png(
        s,
        labels,
        "dot",
        "SHAP value (calibrated log-odds; > 0 raises the risk)",
        f"Beeswarm: each dot is one landmark row ({plots.NOTE})",
    )

    present = [f for f in DEPENDENCE_FEATURES if f in s.feature_names]
    if present:
        ncols = 2
        nrows = -(-len(present) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(10, 3.4 * nrows), squeeze=False)
        for ax, feature in zip(axes.ravel(), present, strict=False):
            j = s.feature_names.index(feature)
            shap.dependence_plot(
                j,
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
            ax.set_xlabel(_axis_label(feature), fontsize=9)
            ax.set_ylabel("SHAP (log-odds)", fontsize=9)
            ax.set_title(display.label(feature), fontsize=9)
        for ax in axes.ravel()[len(present) :]:
            ax.set_visible(False)
        fig.suptitle(f"Dependence plots ({plots.NOTE})", fontsize=10)
        fig.tight_layout()
        out["dependence"] = plots.to_png(fig)
    plt.close("all")
    return out


def _axis_label(feature: str) -> str:
    units = {
        "marrow_blasts_pct": "marrow blasts (%)",
        "log10_dose_cells_per_kg": "CAR-T dose (log10 CAR+ cells/kg)",
        "cd4_auc_to_date_cells_day_per_ul": "CD4+ CAR-T AUC so far (cells x day / uL)",
        "ldh_u_per_l": "LDH (U/L)",
        "crp_mg_per_l": "CRP (mg/L)",
        "ferritin_ng_per_ml": "ferritin (ng/mL)",
        "platelets_10e9_per_l": "platelets (10^9/L)",
        "creatinine_mg_per_dl": "creatinine (mg/dL)",
    }
    return units.get(feature, display.label(feature))


# --------------------------------------------------------------------------------------------
# Sections


def _metric_cell(m: pd.DataFrame, subset: str, predictor: str, metric: str) -> str:
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


def _predictors(ev: Evaluation) -> list[str]:
    present = list(dict.fromkeys(ev.metrics["predictor"]))
    order = [MODEL, TRUE_RISK, "logistic", "m_easix"]
    return [p for p in order if p in present] + [p for p in present if p not in order]


def _augmentation_text(aug: dict | None) -> str:
    if not aug or not aug.get("copies"):
        return "Training rows: as observed (no copies with missing course series)."
    return (
        f"Training rows: {aug['observed_rows']:,} as observed plus {aug['copies']:,} copies "
        f"({aug['fraction']:.0%} of rows per group: {', '.join(aug['groups'])}) with that course "
        "series blanked, so the model has learnt what to do when a request lacks it. Evaluation "
        "uses observed rows only."
    )


def _model_card(
    card: dict, ev: Evaluation, cohort: CohortMetadata, evaluation_label: str, n_features: int
) -> str:
    hm = card.get("headline_metrics", {})
    gate = card.get("gate", {})
    calib = card.get("calibration", {})
    params = card.get("hyperparameters", {})
    n_boot = ev.meta.get("n_boot", "?")
    m = ev.metrics.set_index(["subset", "predictor", "metric"])
    name = card.get("model_name", "icans-risk")
    version = card.get("model_version")
    parts = [
        '<p class="warning"><strong>'
        + h.e(h.SYNTHETIC_WARNING)
        + "</strong> This card describes decision support trained on SYNTHETIC data; it has "
        "not been validated on real patients and is not a medical device.</p>"
    ]
    details = [
        f"Name: {name}" + (f", version {version}" if version else ""),
        "Type: gradient-boosted trees (xgboost) with monotone constraints where the clinical "
        "direction is published"
        + (
            ", boosted from a sign-constrained penalised logistic regression on the same "
            "predictors (the additive part"
            + (
                f"; its coefficients vary smoothly with the landmark day, a polynomial of degree "
                f"{params['day_degree']}"
                if int(params.get("day_degree") or 0)
                else ""
            )
            + "; the trees add interactions and thresholds)"
            if params.get("linear_offset")
            else ""
        )
        + "; logistic recalibration of the log-odds when needed "
        f"(recalibrated: {calib.get('recalibrated', 'unknown')}, intercept "
        f"{h.num(calib.get('intercept'))}, slope {h.num(calib.get('slope'))}).",
        "Input: the raw observations up to the prediction day (baseline fields, labs, daily "
        f"CRS and ICANS findings, CAR-T samples); {n_features} derived predictors.",
        "Output: probability of severe (ASTCT grade 3-4) or steroid-refractory ICANS after the "
        "prediction day, through day 28, with exact TreeSHAP contributions.",
        "Hyper-parameters: "
        + (", ".join(f"{k}={v}" for k, v in params.items()) if params else "not recorded"),
    ]
    if card.get("uncertainty_refits"):
        details.append(
            f"Uncertainty: each probability comes with a 95% interval from "
            f"{card['uncertainty_refits']} refits on patient-level bootstrap resamples of the "
            "training data (estimation uncertainty only)."
        )
    if card.get("run_id"):
        details.append(f"MLflow run: {card['run_id']}")
    if card.get("model_uri"):
        details.append(f"Registry URI: {card['model_uri']}")
    details.append("Licence: proprietary (project licence).")
    sections = {
        "Model details": h.ul(details),
        "Intended use": h.p(card.get("intended_use", INTENDED_USE))
        + h.p(
            "Intended users: data scientists and clinical reviewers assessing the method. "
            "Intended setting: research and demonstration of the pipeline; any clinical use "
            "would first need development and validation on real patient data."
        ),
        "Out-of-scope uses": h.ul(
            [
                "Any decision about a real patient: treatment, monitoring intensity, "
                "prophylaxis or discharge.",
                "Patients whose target event (grade >= 3 or steroid-refractory ICANS) has "
                "already happened.",
                "Predicting CRS, grade 1-2 ICANS or events after day 28.",
                "Prediction days outside the trained landmarks, products or CAR targets not "
                "seen in training (they are encoded as none of the seen categories).",
                "Causal conclusions from SHAP values (they explain the model, not biology).",
            ]
        ),
        "Factors": h.p(
            "Performance is reported per landmark day and for the subgroups of the "
            "'Subgroups' section: CAR target, costimulatory domain, disease, age < 12 vs "
            ">= 12 years (CAPD vs ICE grading) and CNS involvement. Sex, ethnicity and "
            "socio-economic factors are not in the synthetic data, so fairness across them "
            "cannot be assessed."
        ),
        "Metrics": h.p(
            "AUROC, AUPRC, Brier score, calibration intercept and slope, ICI, and net benefit "
            "over thresholds of 5-40%. 95% confidence intervals from a patient-level "
            f"bootstrap ({n_boot} replicates); the model-minus-true-risk gap is paired. The "
            "generator's exact true risk is the ceiling; the penalised logistic regression and "
            "m-EASIX alone are the baselines."
        ),
        "Training and evaluation data": h.ul(
            [
                f"Training cohort: SYNTHETIC, {h.num(card.get('cohort_patients'), '{:,.0f}')} "
                "patients, "
                f"case mix {card.get('cohort_case_mix', '?')}, fingerprint "
                f"{card.get('cohort_fingerprint', '?')}; 75% of patients for training, 25% "
                "held out (patients, never rows, are split).",
                _augmentation_text(card.get("augmentation")),
                f"Evaluation in this report: {evaluation_label}; "
                f"{h.num(ev.meta.get('n_patients'), '{:,.0f}')} patients, "
                f"{h.num(ev.meta.get('n_rows'), '{:,.0f}')} landmark rows, "
                f"{h.num(ev.meta.get('n_events'), '{:,.0f}')} events (cohort "
                f"{cohort.describe()}).",
            ]
        ),
        "Quantitative analyses": h.ul(
            [
                f"AUROC, all landmarks: model {_metric_cell(m, 'overall', MODEL, 'auroc')}; "
                f"true risk {_metric_cell(m, 'overall', TRUE_RISK, 'auroc')}; gap "
                f"{_metric_cell(m, 'overall', MODEL, 'auroc_gap_to_true_risk')}.",
                f"Calibration slope {_metric_cell(m, 'overall', MODEL, 'calibration_slope')}, "
                "intercept "
                f"{_metric_cell(m, 'overall', MODEL, 'calibration_intercept')}; Brier "
                f"{_metric_cell(m, 'overall', MODEL, 'brier')}.",
                "Baselines (AUROC): penalised logistic "
                f"{_metric_cell(m, 'overall', 'logistic', 'auroc')}; m-EASIX alone "
                f"{_metric_cell(m, 'overall', 'm_easix', 'auroc')}.",
                "At training (held-out patients of the training cohort): AUROC "
                f"{h.num(hm.get('auroc'))} vs true risk {h.num(hm.get('true_risk_auroc'))}.",
                "Quality gates at training: "
                + (
                    "passed"
                    if gate.get("passed")
                    else "not passed: " + "; ".join(gate.get("reasons", []))
                    if gate
                    else "not recorded"
                )
                + ".",
                "Per landmark, subgroup and training size: see the sections below.",
            ]
        ),
        "Ethical considerations": h.ul(
            [
                "No real patient data were used: there is no privacy risk, and no evidence "
                "about real patients either.",
                "Every association the model learned was put into the synthetic data by its "
                "generator from published summary numbers or stated assumptions.",
                "A risk score can invite automation bias; the explanations are associations "
                "in the model and must not be read as causes.",
                "Fairness across sex, ethnicity or socio-economic groups cannot be assessed "
                "here (those fields do not exist).",
            ]
        ),
        "Caveats and recommendations": h.ul(
            [
                "The penalised logistic baseline reaches AUROC "
                f"{_metric_cell(m, 'overall', 'logistic', 'auroc')} against the model's "
                f"{_metric_cell(m, 'overall', MODEL, 'auroc')} on these rows. The generator "
                "is nearly logistic in its drive, so trees have little to add: prefer the "
                "simpler model unless real data show otherwise.",
                "Before any clinical use: develop and validate externally on real, "
                "representative patients, with prospective evaluation and recalibration per "
                "centre.",
                "The source case series (13 patients) was selected on the outcome; a model "
                "cannot be developed from it (see the learning curve).",
                "Known departures of the generator from the literature are listed in the "
                "data card.",
            ]
        ),
    }
    for title in MODEL_CARD_SECTIONS:
        parts.append(f'<h3 id="mc-{h.slug(title)}">{h.e(title)}</h3>{sections[title]}')
    return "".join(parts)


def _data_card(cohort: CohortMetadata, ev: Evaluation) -> str:
    generator = cohort.generator or {}
    facts = [
        ("provenance", cohort.provenance),
        ("patients", h.num(cohort.n_patients, "{:,.0f}")),
        ("cohort fingerprint", cohort.fingerprint),
    ]
    facts += [
        (label, generator[key])
        for key, label in (
            ("case_mix", "case mix"),
            ("seed", "seed"),
            ("parameters_fingerprint", "generator parameters fingerprint"),
            ("version", "generator version"),
        )
        if key in generator
    ]
    facts += [
        (f"rows in table '{k}'", h.num(v.get("rows"), "{:,.0f}")) for k, v in cohort.tables.items()
    ]
    parts = [
        h.p(
            "The cohort is SYNTHETIC: every row was drawn by a program from published summary "
            "numbers and stated assumptions. No real patient-level CAR-T toxicity data were "
            "used, and nothing learned from it is clinical evidence."
            if cohort.synthetic
            else "The cohort is real patient data (provenance recorded when it was imported)."
        ),
        h.table(["field", "value"], facts),
    ]
    sub = ev.subgroups
    if not sub.empty and "predictor" in sub.columns:
        first = sub[sub["predictor"] == sub["predictor"].iloc[0]]
        rows = [
            (r.subgroup, f"{r.n_patients:,}", f"{r.n_events:,}", h.num(r.observed_rate, "{:.1%}"))
            for r in first.itertuples()
        ]
        parts.append(
            "<h3>Case mix of the evaluated patients</h3>"
            + h.table(["group", "patients", "events (landmark rows)", "event rate per row"], rows)
        )
    if generator.get("assumptions"):
        parts.append("<h3>Main assumptions</h3>" + h.ul(generator["assumptions"]))
    if cohort.synthetic:
        parts.append(f'<p class="warning"><strong>{h.e(NOT_EVIDENCE)}</strong></p>')
    if generator.get("data_card"):
        card = generator["data_card"]
        parts.append(
            "<p>Full data card (process, parameters with their sources, known departures from "
            f'the literature): <a href="{h.e(card)}">{h.e(card)}</a> in the project '
            "repository.</p>"
        )
    return "".join(parts)


def _performance(ev: Evaluation) -> str:
    m = ev.metrics.set_index(["subset", "predictor", "metric"])
    preds = _predictors(ev)
    header = [
        "predictor",
        "AUROC",
        "AUPRC",
        "Brier",
        "calibration slope",
        "calibration intercept",
        "ICI",
        "AUROC gap to true risk",
        "Brier gap to true risk",
    ]
    metrics = (
        "auroc",
        "auprc",
        "brier",
        "calibration_slope",
        "calibration_intercept",
        "ici",
        "auroc_gap_to_true_risk",
        "brier_gap_to_true_risk",
    )
    parts = [
        h.p(
            "Every predictor is scored on the same landmark rows. Cells are estimate (95% "
            "patient-level bootstrap CI); the gaps are model minus true risk, from a paired "
            "bootstrap. The true risk is the best any model can do from the observable data "
            "(in expectation: on rows it was trained on, a model can appear to beat it)."
        )
    ]
    for s in ordered_subsets(ev.metrics["subset"].unique()):
        rows = [
            [PREDICTOR_LABELS.get(p, p), *(_metric_cell(m, s, p, k) for k in metrics)]
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
    parts.append(h.img(plots.to_png(plots.roc_pr_figure(ev)), "ROC and precision-recall curves"))
    parts.append(h.img(plots.to_png(plots.calibration_figure(ev)), "Calibration by decile"))
    parts.append(h.img(plots.to_png(plots.decision_curve_figure(ev)), "Decision curve"))
    return "".join(parts)


def _subgroups(ev: Evaluation) -> str:
    sub = ev.subgroups
    if sub.empty:
        return h.p("No subgroup could be formed from the evaluated rows.")
    rows = []
    for r in sub.itertuples():
        note = "few events: unreliable" if r.n_events < 10 else ""
        rows.append(
            (
                r.subgroup,
                PREDICTOR_LABELS.get(r.predictor, r.predictor),
                f"{r.n_patients:,}",
                f"{r.n_rows:,}",
                f"{r.n_events:,}",
                h.num(r.auroc),
                h.num(r.brier),
                h.num(r.observed_rate),
                h.num(r.mean_predicted),
                note,
            )
        )
    return h.p(
        "Subgroups of the model card: CAR target, costimulatory domain, disease, age < 12 "
        "(CAPD) vs >= 12 (ICE), CNS involvement. AUROC is blank where a subgroup has no event."
    ) + h.table(
        [
            "subgroup",
            "predictor",
            "patients",
            "rows",
            "events",
            "AUROC",
            "Brier",
            "observed rate",
            "mean predicted",
            "note",
        ],
        rows,
        "subgroups",
    )


def _learning_curve(curve: pd.DataFrame | None, ev: Evaluation) -> str:
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
    fig = plots.learning_curve_figure(curve, ev.value(TRUE_RISK, "auroc"))
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


def _shap_section(s: ShapSummary, check: pd.DataFrame, no_signal_features: list[str]) -> str:
    figs = _shap_figures(s)
    parts = [
        '<p class="warning"><strong>'
        + h.e(NOT_EVIDENCE)
        + "</strong> The generator put every effect into the data; the model found them "
        "again. SHAP values explain the model, not the patient's biology, and are not "
        "causal.</p>",
        h.p(
            f"Exact contributions on {len(s.x):,} landmark rows: TreeSHAP of the trees "
            "(xgboost's implementation of the shap.TreeExplainer algorithm) plus the additive "
            "part's coefficient on the row's landmark day times the standardised value (centred on "
            "the training rows), the same code as the service's explanations; in "
            "calibrated log-odds, so they add up to the served log-odds (base log-odds "
            f"{s.base_log_odds:.3f})."
        ),
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
        for r in check.itertuples()
    ]
    mean_abs = np.mean(np.abs(s.contributions), axis=0)
    no_signal = [
        f"{display.label(f)}: mean |SHAP| {mean_abs[s.feature_names.index(f)]:.3f}"
        for f in no_signal_features
    ]
    n_agree = int((check["verdict"] == "agrees").sum()) if not check.empty else 0
    parts += [
        f"<h3>{h.e(DIRECTION_TABLE)}</h3>",
        h.p(
            "For each predictor with a direction built into the generator: the sign of the "
            "Spearman correlation between the predictor's value and its SHAP value, against "
            f"that direction. {n_agree} of {len(check)} agree. Where the model carries a "
            "monotone constraint, agreement is enforced by construction, so the row is a "
            "check of the pipeline rather than a finding."
        ),
        h.table(
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
        ),
    ]
    if no_signal:
        parts.append(
            h.p(
                "Predictors the generator gives no effect at all (whatever the model "
                "attributes to them is fitted noise): " + "; ".join(no_signal) + "."
            )
        )
    return "".join(parts)


# (item, section, topic, where this report answers it / why it does not apply, status)
TRIPOD_AI: tuple[tuple[str, str, str, str, str], ...] = (
    ("1", "Title and abstract", "Title", "Report title: model, outcome, population.", "answered"),
    (
        "2",
        "Title and abstract",
        "Abstract",
        "No abstract: this is a model report, not a manuscript; the header banner and the "
        "model card's quantitative analyses summarise it.",
        "partly",
    ),
    (
        "3",
        "Introduction",
        "Background (context, target population, health inequalities)",
        "Model card: intended use and factors; existing scores (m-EASIX) are a baseline. "
        "Known inequalities cannot be studied on synthetic data.",
        "partly",
    ),
    (
        "4",
        "Introduction",
        "Objectives (development and/or evaluation)",
        "Model card: model details and training and evaluation data (development with "
        "internal held-out evaluation; optionally another synthetic cohort).",
        "answered",
    ),
    (
        "5",
        "Methods",
        "Data sources (and dates)",
        "Data card summary: a synthetic generator; no collection dates apply.",
        "answered",
    ),
    (
        "6",
        "Methods",
        "Participants (setting, eligibility, treatments)",
        "Data card summary (case mix, products, lymphodepletion, dexamethasone) and the data "
        "card in the repository.",
        "answered",
    ),
    (
        "7",
        "Methods",
        "Data preparation",
        "Model card: model details (feature pipeline from raw observations, future values "
        "masked); the repository documents the validators.",
        "partly",
    ),
    (
        "8",
        "Methods",
        "Outcome (definition, horizon, blinding)",
        "Model card: intended use (grade 3-4 or steroid-refractory ICANS after the landmark, "
        "through day 28); grades are derived by the ASTCT rules, so no assessor is involved.",
        "answered",
    ),
    (
        "9",
        "Methods",
        "Predictors",
        "Global explanations: every predictor with its label; their definitions are in "
        "features/transformers.py.",
        "answered",
    ),
    (
        "10",
        "Methods",
        "Sample size",
        "Data card summary (cohort size) and Learning curve (performance by training size).",
        "answered",
    ),
    (
        "11",
        "Methods",
        "Missing data",
        "Data card summary: labs and CAR-T samples missing completely at random; xgboost "
        "routes missing values natively, the logistic baseline imputes medians.",
        "answered",
    ),
    (
        "12",
        "Methods",
        "Analytical methods (splitting, model, tuning, internal validation, metrics)",
        "Model card: model details and metrics; Performance by landmark day.",
        "answered",
    ),
    (
        "13",
        "Methods",
        "Class imbalance",
        "No resampling or re-weighting was used (it would distort calibration); the event "
        "rate per landmark is in the performance tables.",
        "answered",
    ),
    (
        "14",
        "Methods",
        "Fairness",
        "Subgroups section (product, disease, age, CNS); sex, ethnicity and socio-economic "
        "factors do not exist in the synthetic data.",
        "partly",
    ),
    (
        "15",
        "Methods",
        "Model output",
        "Model card: a probability with per-predictor explanations; no classification "
        "threshold is set (decision curve over 5-40%).",
        "answered",
    ),
    (
        "16",
        "Methods",
        "Training versus evaluation (differences in setting, outcome, predictors)",
        "Model card: training and evaluation data (cohort fingerprints and case mixes).",
        "answered",
    ),
    (
        "17",
        "Methods",
        "Ethical approval",
        "Not applicable: synthetic data, no human participants.",
        "not applicable",
    ),
    (
        "18",
        "Open science",
        "Funding, conflicts of interest, protocol, registration, data and code sharing",
        "Code and generator are in the project repository (any cohort regenerates from its "
        "seed); funding, conflicts, protocol and registration are not stated in this report.",
        "partly",
    ),
    (
        "19",
        "Open science",
        "Patient and public involvement",
        "None: a technical demonstration on synthetic data; required before any real study.",
        "not applicable",
    ),
    (
        "20",
        "Results",
        "Participants (flow, characteristics, comparison with development data)",
        "Data card summary (cohort and case mix of the evaluated patients); Performance by "
        "landmark day (rows and events per landmark).",
        "partly",
    ),
    (
        "21",
        "Results",
        "Model development (participants and events per analysis)",
        "Model card: training and evaluation data; Learning curve (training events).",
        "answered",
    ),
    (
        "22",
        "Results",
        "Model specification",
        "Model card: model details (registry URI, run, hyper-parameters); the logged "
        "pipeline is the full model and the service's API exposes it.",
        "answered",
    ),
    (
        "23",
        "Results",
        "Model performance (with CIs, subgroups)",
        "Performance by landmark day (95% CIs) and Subgroups.",
        "answered",
    ),
    (
        "24",
        "Results",
        "Model updating",
        "Model card: model details (logistic recalibration of the log-odds, when needed); no "
        "other updating.",
        "answered",
    ),
    (
        "25",
        "Discussion",
        "Interpretation",
        "Model card: caveats and recommendations; Global explanations (SHAP) with the "
        "generator-direction check.",
        "answered",
    ),
    (
        "26",
        "Discussion",
        "Limitations",
        "Model card: ethical considerations and caveats; the data card's known departures.",
        "answered",
    ),
    (
        "27",
        "Discussion",
        "Usability in current care (input data quality, users, next steps)",
        "Model card: intended and out-of-scope uses; not usable in care without validation "
        "on real patients.",
        "partly",
    ),
)


def _tripod() -> str:
    return h.p(
        "TRIPOD+AI (Collins GS et al., BMJ 2024;385:e078378; doi:10.1136/bmj-2023-078378): "
        "the 27 items, where this report answers each, or why it does not apply."
    ) + h.table(["item", "section", "topic", "where answered / why not", "status"], TRIPOD_AI)


def sample_rows(n_rows: int, seed: int, size: int = SAMPLE_ROWS) -> np.ndarray:
    """Sorted indices of at most ``size`` rows drawn without replacement: the SHAP sample."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=min(size, n_rows), replace=False))


def build_model_report(
    model,
    evaluation: Evaluation,
    learning_curve: pd.DataFrame | None,
    model_card: dict,
    cohort: CohortMetadata,
    raw_sample: np.ndarray,
    *,
    evaluation_label: str = "held-out patients",
) -> str:
    """One self-contained HTML document (no JavaScript, no external resources) about a fitted
    :class:`~model.risk_model.RiskModel`, evaluated (``evaluation``) on ``cohort``."""
    raw_sample = np.asarray(raw_sample, dtype=float)[:SAMPLE_ROWS]
    shap_summary = compute_shap(model, raw_sample)
    effects = (cohort.generator or {}).get("effects", [])
    directions, no_signal = expected_directions(shap_summary.feature_names, effects)
    check = direction_check(
        shap_summary.feature_names, shap_summary.x, shap_summary.contributions, directions
    )
    name = model_card.get("model_name", "icans-risk")
    version = model_card.get("model_version")
    title = f"Model report: {name}" + (f" v{version}" if version else "")
    bodies = {
        "Model card": _model_card(
            model_card,
            evaluation,
            cohort,
            evaluation_label,
            len(shap_summary.feature_names),
        ),
        "Data card summary": _data_card(cohort, evaluation),
        "Performance by landmark day": _performance(evaluation),
        "Subgroups": _subgroups(evaluation),
        "Learning curve": _learning_curve(learning_curve, evaluation),
        "Global explanations (SHAP)": _shap_section(shap_summary, check, no_signal),
        "TRIPOD+AI checklist": _tripod(),
    }
    nav = (
        "<nav><ul>"
        + "".join(f'<li><a href="#{h.slug(s)}">{h.e(s)}</a></li>' for s in SECTIONS)
        + "</ul></nav>"
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = "".join(
        f'<section><h2 id="{h.slug(s)}">{h.e(s)}</h2>{bodies[s]}</section>' for s in SECTIONS
    )
    intro = h.p(
        "Risk of severe (ASTCT grade 3-4) or steroid-refractory ICANS after CAR-T therapy, "
        f"from the data observed up to the prediction day. Generated {generated}."
    )
    return h.document(title, intro + nav + sections)
