"""The per-patient explanation report: one self-contained HTML page for one patient on one day.

``icans explain --patient patient.json`` and ``POST /v1/report`` both call
:func:`build_patient_report` on the same :class:`runtime.assessor.Assessment` that ``/v1/risk``
returns as JSON, so the page, the JSON and the audit log always agree.

What the page shows, and why:

* the probability with its 95% uncertainty interval (patient-bootstrap refits of the model) and
  the landmark day: what the estimate is, for which day, and how firmly the data pin it down;
* the risk per horizon the model estimates (the next 72 hours, the next 7 days, by day 28): a
  small chart of the three with their intervals and a table (:mod:`reports.horizon_chart`),
  saying that they are nested; the rest of the page explains the day-28 risk;
* the plain-language top drivers, then a waterfall of every predictor's exact TreeSHAP
  contribution in clinical units ("CRS grade today 3: +0.80 log-odds"), from the model's base
  log-odds to the patient's log-odds, with the table that adds up to the stated probability;
* the warnings (inputs outside the training range, unseen categories or ones with few
  training outcomes, missing inputs);
* the inputs as received, so a reader can check what the estimate was made from;
* the caveats: contributions explain the model, not the patient's biology (they are not causal;
  Lundberg & Lee, NeurIPS 2017), and what the model learnt from: the assumptions of a synthetic
  cohort, or real patients (the ``provenance`` of the model's identity; synthetic when absent).

Like the reviewers' report it has no JavaScript and no external resources. Figures are drawn with
matplotlib's object API (no pyplot state), so concurrent requests in one worker are safe.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.special import expit, logit

from api.patient import parse_patient
from icans.config import Settings, intended_use
from icans.contract import BASELINE, COURSE, PREDICTION_DAY
from icans.errors import InvalidInputError
from model.explain import describe
from registry.store import load_registered
from reports import html as h
from reports.horizon_chart import horizons_section
from reports.provenance import identity_is_synthetic
from runtime.assessor import Assessment, Assessor

SECTIONS = (
    "Risk estimate",
    "Top drivers",
    "Contributions (waterfall)",
    "Warnings",
    "Inputs used",
    "How to read this report",
)
WATERFALL_TOP = 12  # predictors drawn one by one; the rest share one bar
OUTCOME = (
    "severe (ASTCT grade 3-4) or steroid-refractory ICANS after this day, through day 28 after "
    "infusion"
)
NOT_CAUSAL = (
    "Contributions explain the model, not the patient's biology. They say how this model's "
    "estimate moves with each input, measured against the average training patient; they are "
    "not causal effects, and changing an input in reality need not change the risk as shown."
)
REASSESS = (
    "The estimate uses only what was observed up to and including the landmark day. Reassess "
    "as the course evolves: CRS, CAR-T expansion and neurological findings change daily."
)
UNCERTAINTY = (
    "The uncertainty interval covers only estimation uncertainty: how much the estimate moves "
    "when the model is refitted on resampled training patients. It does not cover errors in "
    "the inputs, events after this day that change the picture, or the difference between "
)
CAVEATS = (  # a model trained on synthetic data
    NOT_CAUSAL,
    "The model was trained on a SYNTHETIC cohort. Its explanations reproduce the assumptions "
    "built into the generator (documented in the data card), not evidence from real patients.",
    UNCERTAINTY + "synthetic and real patients.",
    REASSESS,
    intended_use(True),
)
REAL_DATA_CAVEATS = (  # a model trained on real patient data
    NOT_CAUSAL,
    "The model was trained on real patients. Its explanations reproduce the associations in "
    "its training cohort, which need not hold for patients of other centres or populations.",
    UNCERTAINTY + "the training patients and this one.",
    REASSESS,
    intended_use(False),
)


def _percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def waterfall_png(
    contributions: Sequence[dict], base: float, total: float, *, synthetic: bool = True
) -> bytes:
    """Horizontal waterfall: base log-odds, the largest contributions, the rest, the result.

    The top axis shows the probability that corresponds to each log-odds value; the caption
    says whether the training data were ``synthetic``.
    """
    shown = list(contributions[:WATERFALL_TOP])
    rest = list(contributions[WATERFALL_TOP:])
    per_input = bool(shown) and "input" in shown[0]
    labels = [f"{c['label']} ({c['value_text']})" if per_input else describe(c) for c in shown]
    values = [c["shap_log_odds"] for c in shown]
    if rest:
        labels.append(f"{len(rest)} other {'inputs' if per_input else 'predictors'}")
        values.append(float(sum(c["shap_log_odds"] for c in rest)))
    n = len(values)
    fig = Figure(figsize=(8.5, 1.3 + 0.36 * (n + 2)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(n + 2)[::-1]  # top row: base; bottom row: the patient's log-odds
    ax.barh(y[0], base, color="#bbbbbb", height=0.6)
    start = base
    for k, v in enumerate(values):
        ax.barh(y[k + 1], v, left=start, color="#d62728" if v > 0 else "#1f77b4", height=0.6)
        ax.text(
            start + v,
            y[k + 1],
            f" {v:+.2f} ",
            va="center",
            ha="left" if v >= 0 else "right",
            fontsize=8,
        )
        if k + 1 < n:
            ax.plot([start + v] * 2, [y[k + 1] - 0.3, y[k + 2] + 0.3], color="grey", lw=0.6)
        start += v
    ax.barh(y[-1], total, color="#444444", height=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(y, ["base (average training patient)", *labels, "this patient"], fontsize=8)
    ax.set_xlabel("log-odds of the event (red raises the risk, blue lowers it)", fontsize=9)
    low, high = ax.get_xlim()
    pad = 0.12 * (high - min(low, -0.5)) + 0.2  # room for the value labels beside the bars
    low, high = min(low, -0.5) - pad, high + pad
    ax.set_xlim(low, high)
    top = ax.secondary_xaxis("top", functions=(expit, lambda q: logit(np.clip(q, 1e-9, 1 - 1e-9))))
    grid = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)
    ticks = [q for q in grid if low <= logit(q) <= high]
    top.set_xticks(ticks, [_percent(q).replace(".0%", "%") for q in ticks], fontsize=7)
    top.set_xlabel("probability", fontsize=8)
    data = "synthetic" if synthetic else "real"
    fig.suptitle(
        f"Contributions to this estimate (model explanation; {data} training data)", fontsize=9
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _risk_section(a: Assessment, model: dict, request_id: str | None) -> str:
    interval = (
        f" (95% uncertainty interval {_percent(a.interval[0])} to {_percent(a.interval[1])})"
        if a.interval is not None
        else " (no uncertainty interval: this model version was trained without refits)"
    )
    headline = (
        f'<p class="headline" id="risk" data-probability="{a.probability!r}" '
        f'data-log-odds="{a.log_odds!r}" data-base-log-odds="{a.base_log_odds!r}">'
        f"Estimated risk of {h.e(OUTCOME)}: <strong>{h.e(_percent(a.probability))}</strong>"
        f"{h.e(interval)}.</p>"
    )
    rows = [
        ("landmark day", f"day {a.landmark_day} after CAR-T infusion"),
        ("data used", f"observed up to and including day {a.landmark_day}"),
        ("model", f"{model.get('name', '?')} version {model.get('version', '?')}"),
        ("model registered", model.get("trained_at", "-")),
        ("training run", model.get("run_id", "-")),
        (
            "training cohort",
            f"{model.get('provenance', 'synthetic')}, fingerprint "
            f"{model.get('cohort_fingerprint', '-')}",
        ),
    ]
    if request_id:
        rows.append(("request id", request_id))
    rows.append(("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")))
    return headline + horizons_section(a.horizons, a.landmark_day) + h.table([], rows, cls="facts")


def _waterfall_section(a: Assessment, synthetic: bool) -> str:
    """The waterfall by input entered (the per-input view), then both tables: by input and
    by predictor (the detail); each adds up to the log-odds."""
    png = waterfall_png(a.input_contributions, a.base_log_odds, a.log_odds, synthetic=synthetic)
    by_input = _running_table(
        "inputs",
        "input",
        [(c["label"], c["value_text"], c["shap_log_odds"]) for c in a.input_contributions],
        a.base_log_odds,
    )
    by_predictor = _running_table(
        "contributions",
        "predictor",
        [(c["label"], c["value_text"], c["shap_log_odds"]) for c in a.contributions],
        a.base_log_odds,
    )
    return (
        h.p(
            "Each bar is one input you entered: the exact TreeSHAP contributions of the "
            "predictors computed from it, summed (a category's indicators together; a "
            "predictor computed from several inputs, such as m-EASIX, shared equally among "
            "them). They start from the model's average over the training data (base); base "
            f"plus all contributions gives the log-odds {a.log_odds:+.3f}; the probability is "
            f"1 / (1 + exp(-log-odds)) = {_percent(a.probability)}."
        )
        + h.img(png, "Waterfall of the contributions to this patient's log-odds")
        + by_input
        + h.p("The same, per predictor the model computed from the inputs:")
        + by_predictor
    )


def _running_table(cls: str, what: str, rows: list[tuple], base: float) -> str:
    out = [
        f'<tr class="base"><td>base log-odds (average training patient)</td><td></td>'
        f'<td class="num">{base:+.3f}</td><td class="num">{base:+.3f}</td></tr>'
    ]
    running = base
    for label, text, shap in rows:
        running += shap
        out.append(
            f'<tr data-shap="{shap!r}"><td>{h.e(label)}</td><td>{h.e(text)}</td>'
            f'<td class="num">{shap:+.3f}</td><td class="num">{running:+.3f}</td></tr>'
        )
    return (
        f'<table class="{cls}"><thead><tr><th>{what}</th><th>value</th>'
        "<th>contribution (log-odds)</th><th>running total</th></tr></thead>"
        f"<tbody>{''.join(out)}</tbody></table>"
    )


def _inputs_section(patient) -> str:
    """The inputs as received, each with its label and unit from the contract."""
    data = patient.model_dump()
    rows = []
    if data.get("patient_id"):
        rows.append(("patient id", data["patient_id"]))
    rows.append((PREDICTION_DAY.label, data[PREDICTION_DAY.name]))
    for spec in BASELINE:
        label = f"{spec.label} ({spec.note.split(';')[0]})" if spec.note else spec.label
        rows.append((label, spec.text(data.get(spec.name))))
    for spec in COURSE:
        entries = sorted(data.get(spec.name) or [], key=lambda o: o["day"])
        text = ", ".join(f"d{o['day']}: {o[spec.value_key]:g}" for o in entries)
        rows.append(
            (
                f"{spec.label} by day" + (f" ({spec.unit})" if spec.unit else ""),
                text or "none given",
            )
        )
    return h.table(["input", "as received"], rows, cls="inputs")


def build_patient_report(
    patient,
    assessment: Assessment,
    model: dict,
    request_id: str | None = None,
) -> str:
    """One self-contained HTML page explaining ``assessment`` (the result for ``patient``).

    ``model`` identifies the model that answered: name, version, trained_at, run_id and
    cohort_fingerprint (see :meth:`registry.store.RegisteredModel.identity`).
    """
    a = assessment
    synthetic = identity_is_synthetic(model)
    warnings = [*a.warnings] or ["none"]
    bodies = {
        "Risk estimate": _risk_section(a, model, request_id),
        "Top drivers": (h.ul(a.drivers) if a.drivers else h.p("No predictor moves the risk."))
        + h.p("Largest contributions first; log-odds, > 0 raises the risk."),
        "Contributions (waterfall)": _waterfall_section(a, synthetic),
        "Warnings": h.ul(warnings)
        + (
            h.p("Inputs not given (treated as missing, never as 0): " + ", ".join(a.missing_inputs))
            if a.missing_inputs
            else ""
        ),
        "Inputs used": _inputs_section(patient),
        "How to read this report": h.ul(CAVEATS if synthetic else REAL_DATA_CAVEATS),
    }
    return h.document(
        f"ICANS risk explanation: day {a.landmark_day} after infusion",
        h.headed(SECTIONS, bodies),
        synthetic=synthetic,
    )


def read_patient_file(path: Path):
    """One patient from a JSON file (the body of ``POST /v1/risk``), validated; every problem
    is reported at once, naming the field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError("patient", str(path), "an existing JSON file") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError("patient", str(path), f"a JSON object ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidInputError("patient", type(data).__name__, "a JSON object (one patient)")
    return parse_patient(data)


def explain_patient_file(
    patient_file: Path, out: Path, model_uri: str, settings: Settings
) -> tuple[Path, Assessment]:
    """``icans explain``: validate the patient, load the model, write the page atomically."""
    patient = read_patient_file(patient_file)  # before loading the model: fail fast
    registered = load_registered(model_uri, settings)
    assessment = Assessor(registered.model).assess([patient])[0]
    page = build_patient_report(patient, assessment, registered.identity())
    return h.write_atomically(page, out), assessment
