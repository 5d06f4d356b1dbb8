"""The model card (Mitchell et al., FAT* 2019): the headline facts about a registered model.

:func:`model_card` is written by the training run next to the model (``model_card.json``): the
service answers ``/v1/model`` from it, and the reports render it.
"""

from __future__ import annotations

from cohort.reader import CohortMetadata
from evaluation.evaluate import MODEL, TRUE_RISK, Evaluation
from icans.config import INTENDED_USE


def model_card(model, ev: Evaluation, gate, cohort: CohortMetadata) -> dict:
    """Headline facts about a fitted :class:`~model.risk_model.RiskModel` and its held-out
    evaluation ``ev`` on training cohort ``cohort``; ``gate`` is the quality-gate result."""
    generator = cohort.generator or {}
    return {
        "intended_use": INTENDED_USE,
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
        "gate": {"passed": gate.passed, "reasons": list(gate.reasons), "checks": gate.checks},
        "hyperparameters": model.hyperparameters_,
        "calibration": model.recalibration_,
        "augmentation": model.augmentation_,
        "uncertainty_refits": len(model.refits_),
        "feature_names": list(model.feature_names_),
    }
