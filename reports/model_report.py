"""A reviewer-facing model report: one self-contained HTML file (``icans report``).

Sections: a model card (Mitchell et al., FAT* 2019; :mod:`reports.model_card`), a summary of the
data card (:mod:`reports.data_card`), performance by landmark day against the true risk and the
baselines, performance on each horizon the model estimates and the lead time of alerts on a
threshold (:mod:`reports.horizon_sections`), what each input set reaches (the model refitted on
less than every input), subgroups, the learning curve (:mod:`reports.performance`), global SHAP
explanations checked against the directions the cohort's generator declares
(:mod:`reports.explanations`), and the TRIPOD+AI checklist (Collins et al., BMJ
2024;385:e078378; :mod:`reports.tripod`) with where the report answers each item. This module
only assembles them.

The document has no JavaScript and no external resources: CSS is inline and every figure is an
embedded base64 PNG, so it can be attached to a review or archived as it is. Every text value is
HTML-escaped.

A model trained on SYNTHETIC data is reported as such in the banner and in every section that
could be mistaken for clinical evidence; what the report says about the data follows the model
card (training data) and the cohort's metadata (evaluated data).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from cohort.reader import CohortMetadata
from evaluation.held_out import Evaluation
from reports import html as h
from reports import plots
from reports.data_card import data_card_section
from reports.explanations import compute_shap, direction_check, expected_directions, shap_section
from reports.horizon_review import event_days, review_horizons
from reports.horizon_sections import horizons_section, lead_time_section
from reports.model_card import model_card_section
from reports.performance import (
    input_sets_section,
    learning_curve_section,
    performance_section,
    subgroups_section,
)
from reports.provenance import trained_on_synthetic
from reports.tripod import tripod_section

SECTIONS = (
    "Model card",
    "Data card summary",
    "Performance by landmark day",
    "Performance by horizon",
    "Lead time of alerts",
    "What each input set reaches",
    "Subgroups",
    "Learning curve",
    "Global explanations (SHAP)",
    "TRIPOD+AI checklist",
)
SAMPLE_ROWS = 2000


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
    input_sets: pd.DataFrame | None = None,
    horizons: Mapping[str, Evaluation] | None = None,
    lead_horizon: str | None = None,
    threshold: float | None = None,
    events: pd.Series | None = None,
) -> str:
    """One self-contained HTML document (no JavaScript, no external resources) about a fitted
    :class:`~model.risk_model.RiskModel` described by ``model_card``, evaluated
    (``evaluation``) on ``cohort``; the SHAP section explains ``raw_sample`` (raw rows);
    ``input_sets``: the training run's input-set table (:mod:`training.input_sets`), if any;
    ``horizons``: the shorter horizons' evaluations of the same rows (``FitResult.horizons``),
    if any; the lead time is of ``threshold`` on ``lead_horizon`` (defaults:
    :mod:`reports.horizon_review`), with the event days ``events``
    (:func:`reports.horizon_review.events_of`; None: read from the cohort's outcome table).
    A bad horizon or threshold is refused before anything is computed."""
    missing = ""
    if events is None:
        events, missing = event_days(cohort)
    review = review_horizons(
        model,
        evaluation,
        horizons,
        events,
        horizon_name=lead_horizon,
        threshold=threshold,
        missing_events=missing,
    )
    raw_sample = np.asarray(raw_sample, dtype=float)[:SAMPLE_ROWS]
    shap_summary = compute_shap(model, raw_sample)
    effects = (cohort.generator or {}).get("effects", [])
    directions, no_signal = expected_directions(shap_summary.feature_names, effects)
    check = direction_check(
        shap_summary.feature_names, shap_summary.x, shap_summary.contributions, directions
    )
    synthetic = trained_on_synthetic(model_card)
    note = plots.data_note(cohort.synthetic)
    name = model_card.get("model_name", "icans-risk")
    version = model_card.get("model_version")
    title = f"Model report: {name}" + (f" v{version}" if version else "")
    bodies = {
        "Model card": model_card_section(
            model_card, evaluation, cohort, evaluation_label, len(shap_summary.feature_names)
        ),
        "Data card summary": data_card_section(cohort, evaluation),
        "Performance by landmark day": performance_section(evaluation, note),
        "Performance by horizon": horizons_section(review, note),
        "Lead time of alerts": lead_time_section(review, cohort.synthetic, note),
        "What each input set reaches": input_sets_section(input_sets, cohort.synthetic),
        "Subgroups": subgroups_section(evaluation),
        "Learning curve": learning_curve_section(learning_curve, evaluation, note),
        "Global explanations (SHAP)": shap_section(
            shap_summary,
            check,
            no_signal,
            trained_on_synthetic=synthetic,
            has_generator=bool(effects),
            note=note,
        ),
        "TRIPOD+AI checklist": tripod_section(synthetic and cohort.synthetic),
    }
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    intro = h.p(
        "Risk of severe (ASTCT grade 3-4) or steroid-refractory ICANS after CAR-T therapy, "
        f"from the data observed up to the prediction day. Generated {generated}."
    )
    return h.document(
        title, intro + h.nav(SECTIONS) + h.headed(SECTIONS, bodies), synthetic=synthetic
    )
