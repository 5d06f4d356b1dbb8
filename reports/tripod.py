"""The TRIPOD+AI checklist (Collins GS et al., BMJ 2024;385:e078378) as data, and its section.

Each of the 27 items says where the reviewers' report answers it, or why it does not apply. An
item whose answer depends on where the data come from has a second answer for reports that
involve real patient data (a model trained on them, or a real cohort evaluated).
"""

from __future__ import annotations

from dataclasses import dataclass

from reports import html as h

ANSWERED, PARTLY, NOT_APPLICABLE, NOT_ANSWERED = (
    "answered",
    "partly",
    "not applicable",
    "not answered",
)


@dataclass(frozen=True)
class TripodItem:
    number: int
    section: str  # of the TRIPOD+AI statement
    topic: str
    answer: str  # where this report answers it, or why it does not apply (synthetic data)
    status: str
    real_answer: str | None = None  # the answer when real patient data are involved
    real_status: str | None = None  # its status (None: ``status``)

    def row(self, synthetic: bool) -> tuple[str, str, str, str, str]:
        """The table row: item, section, topic, answer, status."""
        if synthetic or self.real_answer is None:
            answer, status = self.answer, self.status
        else:
            answer, status = self.real_answer, self.real_status or self.status
        return (str(self.number), self.section, self.topic, answer, status)


# How the model and the baselines handle missing values, whatever the data (item 11).
_MISSING_HANDLING = (
    "The model: its additive part imputes the training median of each transformed predictor "
    "and adds a missing-indicator term for every predictor with missing values in training "
    "(model/linear_offset.py); the trees route missing values natively (xgboost's learnt "
    "default branches); training copies of a share of the rows with a whole course series "
    "blanked (CRS grades, ICANS grades, or the CD4+/CD8+ CAR-T counts; model/augment.py; "
    "Model card: training and evaluation data) teach the model what a missing series means, "
    "and never reach an evaluation. The penalised logistic baseline imputes medians with "
    "missing indicators; m-EASIX alone imputes the median."
)

TRIPOD_AI: tuple[TripodItem, ...] = (
    TripodItem(
        1,
        "Title and abstract",
        "Title",
        "Report title (model and version) and its opening sentence (outcome, population, "
        "prediction time).",
        ANSWERED,
    ),
    TripodItem(
        2,
        "Title and abstract",
        "Abstract",
        "No abstract: this is a model report, not a manuscript; the header banner and the "
        "model card's quantitative analyses summarise it.",
        PARTLY,
        "No abstract: this is a model report, not a manuscript; the model card's quantitative "
        "analyses summarise it.",
    ),
    TripodItem(
        3,
        "Introduction",
        "Background (context, target population, health inequalities)",
        "Model card: intended use and factors; existing scores (m-EASIX) are a baseline. "
        "Known inequalities cannot be studied on synthetic data.",
        PARTLY,
        "Model card: intended use and factors; existing scores (m-EASIX) are a baseline. "
        "Inequalities cannot be studied: sex, ethnicity and socio-economic factors are not "
        "fields of the data contract.",
    ),
    TripodItem(
        4,
        "Introduction",
        "Objectives (development and/or evaluation)",
        "Model card: model details and training and evaluation data (development with "
        "internal held-out evaluation; optionally another synthetic cohort).",
        ANSWERED,
        "Model card: model details and training and evaluation data (development with "
        "internal held-out evaluation; optionally another cohort).",
    ),
    TripodItem(
        5,
        "Methods",
        "Data sources (and dates)",
        "Data card summary: a synthetic generator; no collection dates apply.",
        ANSWERED,
        "Data card summary: provenance, fingerprint and tables of the evaluated cohort; "
        "collection dates are not recorded in this report.",
        PARTLY,
    ),
    TripodItem(
        6,
        "Methods",
        "Participants (setting, eligibility, treatments)",
        "Data card summary (case mix of the evaluated patients by product, disease, age and "
        "CNS involvement; the generator's main assumptions, with lymphodepletion and "
        "dexamethasone) and the data card in the repository.",
        ANSWERED,
        "Data card summary (case mix of the evaluated patients by product, disease, age and "
        "CNS involvement); setting, eligibility and treatments are not recorded in this "
        "report.",
        PARTLY,
    ),
    TripodItem(
        7,
        "Methods",
        "Data preparation",
        "Model card: model details (feature pipeline from raw observations, future values "
        "masked); the repository documents the validators.",
        PARTLY,
    ),
    TripodItem(
        8,
        "Methods",
        "Outcome (definition, horizon, blinding)",
        "Model card: intended use (grade 3-4 or steroid-refractory ICANS after the landmark, "
        "through day 28); grades are derived by the ASTCT rules, so no assessor is involved.",
        ANSWERED,
        "Model card: intended use (grade 3-4 or steroid-refractory ICANS after the landmark, "
        "through day 28); grades of real patients are as recorded, and who assessed them, "
        "blinded or not, is not recorded in this report.",
        PARTLY,
    ),
    TripodItem(
        9,
        "Methods",
        "Predictors",
        "Global explanations: every predictor with its label; their definitions are in "
        "features/transformers.py.",
        ANSWERED,
    ),
    TripodItem(
        10,
        "Methods",
        "Sample size",
        "Data card summary (cohort size) and Learning curve (performance by training size).",
        ANSWERED,
    ),
    TripodItem(
        11,
        "Methods",
        "Missing data",
        "Data card summary (main assumptions): labs and single CAR-T samples are missing "
        "completely at random, and every course series is recorded. " + _MISSING_HANDLING,
        ANSWERED,
        "How values went missing in the real cohort is not assessed in this report. "
        + _MISSING_HANDLING,
        PARTLY,
    ),
    TripodItem(
        12,
        "Methods",
        "Analytical methods (splitting, model, tuning, internal validation, metrics)",
        "Model card: model details and metrics; Performance by landmark day.",
        ANSWERED,
    ),
    TripodItem(
        13,
        "Methods",
        "Class imbalance",
        "No resampling or re-weighting for class imbalance (it would distort calibration): "
        "the training copies with a missing course series are drawn whatever the outcome, and "
        "the bootstrap refits for the uncertainty intervals resample patients; the event rate "
        "per landmark is in the performance tables.",
        ANSWERED,
    ),
    TripodItem(
        14,
        "Methods",
        "Fairness",
        "Subgroups section (product, disease, age, CNS); sex, ethnicity and socio-economic "
        "factors do not exist in the synthetic data.",
        PARTLY,
        "Subgroups section (product, disease, age, CNS); sex, ethnicity and socio-economic "
        "factors are not fields of the data contract.",
    ),
    TripodItem(
        15,
        "Methods",
        "Model output",
        "Model card: model details (a probability, with its uncertainty interval when the "
        "model has bootstrap refits, and per-predictor explanations); no classification "
        "threshold is set (decision curve: Performance by landmark day).",
        ANSWERED,
    ),
    TripodItem(
        16,
        "Methods",
        "Training versus evaluation (differences in setting, outcome, predictors)",
        "Model card: training and evaluation data (cohort fingerprints and case mixes).",
        ANSWERED,
    ),
    TripodItem(
        17,
        "Methods",
        "Ethical approval",
        "Not applicable: synthetic data, no human participants.",
        NOT_APPLICABLE,
        "Not recorded in this report: the approval covering the real patient data must come "
        "with them.",
        NOT_ANSWERED,
    ),
    TripodItem(
        18,
        "Open science",
        "Funding, conflicts of interest, protocol, registration, data and code sharing",
        "Code and generator are in the project repository (any cohort regenerates from its "
        "seed); funding, conflicts, protocol and registration are not stated in this report.",
        PARTLY,
        "Code is in the project repository; the real patient data are not shared with it; "
        "funding, conflicts, protocol and registration are not stated in this report.",
    ),
    TripodItem(
        19,
        "Open science",
        "Patient and public involvement",
        "None: a technical demonstration on synthetic data; required before any real study.",
        NOT_APPLICABLE,
        "Not recorded in this report.",
        NOT_ANSWERED,
    ),
    TripodItem(
        20,
        "Results",
        "Participants (flow, characteristics, comparison with development data)",
        "Data card summary (cohort and case mix of the evaluated patients); Performance by "
        "landmark day (rows and events per landmark).",
        PARTLY,
    ),
    TripodItem(
        21,
        "Results",
        "Model development (participants and events per analysis)",
        "Model card: training and evaluation data; Learning curve (training events).",
        ANSWERED,
    ),
    TripodItem(
        22,
        "Results",
        "Model specification",
        "Model card: model details (registry URI, run, hyper-parameters); the logged model is "
        "one scikit-learn estimator from the raw observations to the probability (feature "
        "steps, additive part, trees, recalibration and bootstrap refits), the full model, "
        "and the service answers with it.",
        ANSWERED,
    ),
    TripodItem(
        23,
        "Results",
        "Model performance (with CIs, subgroups)",
        "Performance by landmark day (95% CIs) and Subgroups.",
        ANSWERED,
    ),
    TripodItem(
        24,
        "Results",
        "Model updating",
        "Model card: model details (logistic recalibration of the log-odds, when needed); no "
        "other updating.",
        ANSWERED,
    ),
    TripodItem(
        25,
        "Discussion",
        "Interpretation",
        "Model card: caveats and recommendations; Global explanations (SHAP) with the "
        "generator-direction check.",
        ANSWERED,
        "Model card: caveats and recommendations; Global explanations (SHAP).",
    ),
    TripodItem(
        26,
        "Discussion",
        "Limitations",
        "Model card: ethical considerations and caveats; the data card's known departures.",
        ANSWERED,
        "Model card: ethical considerations and caveats.",
    ),
    TripodItem(
        27,
        "Discussion",
        "Usability in current care (input data quality, users, next steps)",
        "Model card: intended and out-of-scope uses; not usable in care without validation "
        "on real patients.",
        PARTLY,
        "Model card: intended and out-of-scope uses; not usable in care without external and "
        "prospective validation.",
    ),
)


def tripod_section(synthetic: bool = True) -> str:
    """The checklist table; ``synthetic``: every cohort involved (training and evaluated) is
    synthetic, otherwise the answers for real patient data are shown where they differ."""
    return h.p(
        "TRIPOD+AI (Collins GS et al., BMJ 2024;385:e078378; doi:10.1136/bmj-2023-078378): "
        "the 27 items, where this report answers each, or why it does not apply."
    ) + h.table(
        ["item", "section", "topic", "where answered / why not", "status"],
        [item.row(synthetic) for item in TRIPOD_AI],
    )
