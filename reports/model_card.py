"""The model card (Mitchell et al., FAT* 2019): the headline facts about a registered model, and
their section in the reviewers' report.

:func:`model_card` is written by the training run next to the model (``model_card.json``): the
service answers ``/v1/model`` from it, and the reports render it (:func:`model_card_section`).
What the card says about the training data follows the data
(:func:`reports.provenance.trained_on_synthetic`).
"""

from __future__ import annotations

import numpy as np

from cohort.reader import CohortMetadata
from evaluation.held_out import MODEL, TRUE_RISK, Evaluation
from icans.config import intended_use
from reports import html as h
from reports.performance import indexed_metrics, metric_cell, predictors
from reports.provenance import trained_on_synthetic

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


def model_card(model, ev: Evaluation, gate, cohort: CohortMetadata) -> dict:
    """Headline facts about a fitted :class:`~model.risk_model.RiskModel` and its held-out
    evaluation ``ev`` on training cohort ``cohort``; ``gate`` is the quality-gate result."""
    generator = cohort.generator or {}
    return {
        "intended_use": intended_use(cohort.synthetic),
        "synthetic_data": cohort.synthetic,
        "training_data": {
            "provenance": cohort.provenance,
            "fingerprint": cohort.fingerprint,
            "patients": cohort.n_patients,
            "generator": {
                k: v for k, v in generator.items() if k not in ("effects", "assumptions")
            },
        },
        "cohort_fingerprint": cohort.fingerprint,
        "cohort_case_mix": generator.get("case_mix"),
        "cohort_patients": cohort.n_patients,
        "test_patients": ev.meta["n_patients"],
        "test_rows": ev.meta["n_rows"],
        "headline_metrics": {
            "auroc": ev.value(MODEL, "auroc"),
            "true_risk_auroc": ev.value(TRUE_RISK, "auroc"),
            "auroc_gap_to_true_risk": ev.value(MODEL, "auroc_gap_to_true_risk"),
            "auprc": ev.value(MODEL, "auprc"),
            "brier": ev.value(MODEL, "brier"),
            "calibration_slope": ev.value(MODEL, "calibration_slope"),
            "calibration_intercept": ev.value(MODEL, "calibration_intercept"),
            "logistic_auroc": ev.value("logistic", "auroc"),
            "m_easix_auroc": ev.value("m_easix", "auroc"),
        },
        "gate": gate.record() | {"checks": gate.checks},
        "champion_comparison": {
            "champion_version": ev.meta.get("champion_version"),
            "auroc_difference": ev.value(MODEL, "auroc_gap_to_champion"),
        },
        "hyperparameters": model.hyperparameters_,
        "calibration": model.recalibration_,
        "augmentation": model.augmentation_,
        "uncertainty_refits": len(model.refits_),
        "feature_names": list(model.feature_names_),
    }


# --------------------------------------------------------------------------------------------
# The card's section of the reviewers' report: one function per subsection.


def _details(card: dict, n_features: int) -> list[str]:
    calib = card.get("calibration", {})
    params = card.get("hyperparameters", {})
    version = card.get("model_version")
    additive = bool(params.get("linear_offset"))
    day_terms = (
        f"; its coefficients vary smoothly with the landmark day, a polynomial of degree "
        f"{params['day_degree']}"
        if int(params.get("day_degree") or 0)
        else ""
    )
    details = [
        f"Name: {card.get('model_name', 'icans-risk')}"
        + (f", version {version}" if version else ""),
        "Type: gradient-boosted trees (xgboost) with monotone constraints where the clinical "
        "direction is published"
        + (
            ", boosted from a sign-constrained penalised logistic regression on the same "
            f"predictors (the additive part{day_terms}; the trees add interactions and "
            "thresholds)"
            if additive
            else ""
        )
        + "; logistic recalibration of the log-odds when needed "
        f"(recalibrated: {calib.get('recalibrated', 'unknown')}, intercept "
        f"{h.num(calib.get('intercept'))}, slope {h.num(calib.get('slope'))}).",
        "Input: the raw observations up to the prediction day (baseline fields, labs, daily "
        f"CRS and ICANS findings, CAR-T samples); {n_features} derived predictors.",
        "Output: probability of severe (ASTCT grade 3-4) or steroid-refractory ICANS after the "
        "prediction day, through day 28, with exact "
        + (
            "per-predictor contributions (TreeSHAP of the trees plus the additive part's terms)."
            if additive
            else "TreeSHAP contributions."
        ),
        "Hyper-parameters: "
        + (", ".join(f"{k}={v}" for k, v in params.items()) if params else "not recorded"),
    ]
    if card.get("uncertainty_refits"):
        details.append(
            f"Uncertainty: each probability comes with a 95% interval from "
            f"{card['uncertainty_refits']} refits on patient-level bootstrap resamples of the "
            "training data (estimation uncertainty only)."
        )
    lineage, local = card.get("lineage"), calib.get("local_update")
    if lineage and local:
        details.append(
            f"Lineage: version {lineage['parent_version']} recalibrated on the training cohort "
            f"below ({local['method'].replace('_', ' ')}: intercept {h.num(local['intercept'])}, "
            f"slope {h.num(local['slope'])}, from {local['rows']:,} rows with "
            f"{local['events']:,} events); its predictors and trees are the parent's."
        )
    if card.get("run_id"):
        details.append(f"MLflow run: {card['run_id']}")
    if card.get("artefact_sha256"):
        details.append(
            f"Artefact digest: SHA-256 {card['artefact_sha256']} of the model's files, recorded "
            "with the registered version and checked before every load (registry.digest)."
        )
    if card.get("model_uri"):
        details.append(f"Registry URI: {card['model_uri']}")
    details.append("Licence: proprietary (project licence).")
    return details


def _intended_use(card: dict, synthetic: bool) -> str:
    statement = card.get("intended_use", intended_use(True)) if synthetic else intended_use(False)
    setting = (
        "Intended setting: research and demonstration of the pipeline; any clinical use "
        "would first need development and validation on real patient data."
        if synthetic
        else "Intended setting: research; any clinical use would first need external and "
        "prospective validation."
    )
    return h.p(statement) + h.p(
        "Intended users: data scientists and clinical reviewers assessing the method. " + setting
    )


OUT_OF_SCOPE = (
    "Any decision about a real patient: treatment, monitoring intensity, prophylaxis or discharge.",
    "Patients whose target event (grade >= 3 or steroid-refractory ICANS) has already happened.",
    "Predicting CRS, grade 1-2 ICANS or events after day 28.",
    "Prediction days outside the trained landmarks, products or CAR targets not seen in "
    "training (they are encoded as none of the seen categories).",
    "Causal conclusions from SHAP values (they explain the model, not biology).",
)


def _factors(synthetic: bool) -> str:
    absent = "are not in the synthetic data" if synthetic else "are not fields of the data contract"
    return (
        "Performance is reported per landmark day and for the subgroups of the 'Subgroups' "
        "section: CAR target, costimulatory domain, disease, age < 12 vs >= 12 years (CAPD "
        f"vs ICE grading) and CNS involvement. Sex, ethnicity and socio-economic factors "
        f"{absent}, so fairness across them cannot be assessed."
    )


def _metrics(ev: Evaluation) -> str:
    with_truth = TRUE_RISK in predictors(ev)
    return (
        "AUROC, AUPRC, Brier score, calibration intercept and slope, ICI, and net benefit "
        "over thresholds of 5-40%. 95% confidence intervals from a patient-level bootstrap "
        f"({ev.meta.get('n_boot', '?')} replicates)"
        + (
            "; the model-minus-true-risk gap is paired. The generator's exact true risk is the "
            "ceiling; the penalised logistic regression and m-EASIX alone are the baselines."
            if with_truth
            else ". The penalised logistic regression and m-EASIX alone are the baselines; "
            "the cohort has no true risk to compare with."
        )
    )


def _augmentation(aug: dict | None) -> str:
    if not aug or not aug.get("copies"):
        return "Training rows: as observed (no copies with missing course series)."
    return (
        f"Training rows: {aug['observed_rows']:,} as observed plus {aug['copies']:,} copies "
        f"({aug['fraction']:.0%} of rows per group: {', '.join(aug['groups'])}) with that course "
        "series blanked, so the model has learnt what to do when a request lacks it. Evaluation "
        "uses observed rows only."
    )


def _data(
    card: dict, ev: Evaluation, cohort: CohortMetadata, evaluation_label: str, synthetic: bool
) -> list[str]:
    mix = card.get("cohort_case_mix")
    held_out = card.get("test_patients")
    return [
        f"Training cohort: {'SYNTHETIC' if synthetic else 'real patient data'}, "
        f"{h.num(card.get('cohort_patients'), '{:,.0f}')} patients, "
        + (f"case mix {mix if mix is not None else '?'}, " if synthetic or mix else "")
        + f"fingerprint {card.get('cohort_fingerprint', '?')}; "
        + (
            f"{h.num(held_out, '{:,.0f}')} of its patients held out"
            if held_out is not None
            else "a share of its patients held out"
        )
        + " (patients, never rows, are split).",
        _augmentation(card.get("augmentation")),
        f"Evaluation in this report: {evaluation_label}; "
        f"{h.num(ev.meta.get('n_patients'), '{:,.0f}')} patients, "
        f"{h.num(ev.meta.get('n_rows'), '{:,.0f}')} landmark rows, "
        f"{h.num(ev.meta.get('n_events'), '{:,.0f}')} events (cohort {cohort.describe()}).",
    ]


def _quantitative(card: dict, m) -> list[str]:
    hm = card.get("headline_metrics", {})
    gate = card.get("gate", {})
    if not gate:
        gates = "not recorded"
    elif gate.get("passed"):
        gates = "passed"
    else:
        gates = "not passed: " + "; ".join(gate.get("reasons", []))
    if gate.get("not_applied"):
        gates += " (not applied: " + "; ".join(gate["not_applied"].values()) + ")"
    champion = card.get("champion_comparison", {})
    versus = (
        f"Against the champion it would replace (version {champion['champion_version']}), on "
        f"the same held-out patients: AUROC difference "
        f"{metric_cell(m, 'overall', MODEL, 'auroc_gap_to_champion')}."
        if champion.get("champion_version")
        else "No champion to compare with at training."
    )
    return [
        f"AUROC, all landmarks: model {metric_cell(m, 'overall', MODEL, 'auroc')}; "
        f"true risk {metric_cell(m, 'overall', TRUE_RISK, 'auroc')}; gap "
        f"{metric_cell(m, 'overall', MODEL, 'auroc_gap_to_true_risk')}.",
        f"Calibration slope {metric_cell(m, 'overall', MODEL, 'calibration_slope')}, intercept "
        f"{metric_cell(m, 'overall', MODEL, 'calibration_intercept')}; Brier "
        f"{metric_cell(m, 'overall', MODEL, 'brier')}.",
        "Baselines (AUROC): penalised logistic "
        f"{metric_cell(m, 'overall', 'logistic', 'auroc')}; m-EASIX alone "
        f"{metric_cell(m, 'overall', 'm_easix', 'auroc')}.",
        "At training (held-out patients of the training cohort): AUROC "
        f"{h.num(hm.get('auroc'))} vs true risk {h.num(hm.get('true_risk_auroc'))}.",
        f"Quality gates at training: {gates}.",
        versus,
        "Per landmark, subgroup and training size: see the sections below.",
    ]


def _ethics(synthetic: bool, all_synthetic: bool) -> list[str]:
    return [
        "No real patient data were used: there is no privacy risk, and no evidence about real "
        "patients either."
        if all_synthetic
        else "Real patient data were used (to train the model or in the evaluated cohort): "
        "their use is governed by the approvals and data-protection terms of their source, "
        "which this report does not record.",
        "Every association the model learned was put into the synthetic data by its generator "
        "from published summary numbers or stated assumptions."
        if synthetic
        else "The associations the model learned are those of its training patients; they "
        "need not hold in other centres or populations.",
        "A risk score can invite automation bias; the explanations are associations in the "
        "model and must not be read as causes.",
        "Fairness across sex, ethnicity or socio-economic groups cannot be assessed here "
        "(those fields do not exist).",
    ]


def _baseline_comparison(card: dict, ev: Evaluation, m) -> str:
    """The logistic baseline against the model, with what the numbers on these rows say."""
    if "logistic" not in predictors(ev):
        return "No penalised logistic baseline was scored on these rows."
    text = (
        "The penalised logistic baseline reaches AUROC "
        f"{metric_cell(m, 'overall', 'logistic', 'auroc')} against the model's "
        f"{metric_cell(m, 'overall', MODEL, 'auroc')} on these rows."
    )
    if (card.get("hyperparameters") or {}).get("linear_offset"):
        text += (
            " The model's additive part is itself a sign-constrained penalised logistic "
            "regression on the same predictors; the trees add only what it leaves."
        )
    gap = ev.value(MODEL, "auroc") - ev.value("logistic", "auroc")
    if not np.isfinite(gap):
        return text
    if gap > 0:
        return text + (
            f" The model is ahead by {gap:.3f}; where the two intervals overlap, these rows "
            "cannot tell them apart, and the simpler model is the easier to explain and check."
        )
    return text + (
        f" The model is not ahead ({gap:+.3f}): prefer the simpler model unless other data "
        "show otherwise."
    )


def _caveats(card: dict, ev: Evaluation, m, synthetic: bool) -> list[str]:
    caveats = [
        _baseline_comparison(card, ev, m),
        "Before any clinical use: develop and validate externally on real, representative "
        "patients, with prospective evaluation and recalibration per centre."
        if synthetic
        else "Before any clinical use: validate externally on representative patients of the "
        "intended centres, with prospective evaluation and recalibration per centre.",
        "The source case series (13 patients) was selected on the outcome; a model cannot be "
        "developed from it (see the learning curve).",
    ]
    if synthetic:
        caveats.append(
            "Known departures of the generator from the literature are listed in the data card."
        )
    return caveats


def model_card_section(
    card: dict, ev: Evaluation, cohort: CohortMetadata, evaluation_label: str, n_features: int
) -> str:
    """The model card of ``card`` (:func:`model_card` plus name, version, run, URI) with the
    evaluation ``ev`` on ``cohort`` that this report shows; ``n_features`` predictors."""
    synthetic = trained_on_synthetic(card)
    m = indexed_metrics(ev)
    if synthetic:
        warning = h.warning(
            h.SYNTHETIC_WARNING,
            "This card describes decision support trained on SYNTHETIC data; it has not been "
            "validated on real patients and is not a medical device.",
        )
    else:
        warning = h.warning(
            "Decision support only. Not a medical device.",
            "This card describes decision support trained on real patient data; its evidence "
            "is the evaluation in this report, not a clinical validation.",
        )
    sections = {
        "Model details": h.ul(_details(card, n_features)),
        "Intended use": _intended_use(card, synthetic),
        "Out-of-scope uses": h.ul(OUT_OF_SCOPE),
        "Factors": h.p(_factors(synthetic)),
        "Metrics": h.p(_metrics(ev)),
        "Training and evaluation data": h.ul(_data(card, ev, cohort, evaluation_label, synthetic)),
        "Quantitative analyses": h.ul(_quantitative(card, m)),
        "Ethical considerations": h.ul(_ethics(synthetic, synthetic and cohort.synthetic)),
        "Caveats and recommendations": h.ul(_caveats(card, ev, m, synthetic)),
    }
    return warning + h.headed(
        MODEL_CARD_SECTIONS, sections, level=3, id_prefix="mc-", section=False
    )
