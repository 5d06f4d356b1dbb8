"""The monitoring report (``monitor.html``): one self-contained page, the reports' style.

Like the reviewers' report (:mod:`reports.html`): inline CSS, no JavaScript, no external
resource, every text escaped; it opens offline and can be archived. It states the model's
intended use (and the synthetic-data banner for a model trained on synthetic data), the
window, the verdict of every threshold, then per model version: which inputs drifted, the
predicted risk, the label-free estimate with its assumption, the outcomes, and each horizon
(72 hours, 7 days, day 28: drift of its risk, its estimate and realised performance on the
outcomes whose window has passed). Evidently's own
drift report (interactive, its scripts inline) is a separate self-contained file beside it,
linked from the version's section: this page stays free of JavaScript.
"""

from __future__ import annotations

import re

from monitoring.drift import ALPHA, MIN_DISTANCE, ColumnDrift
from monitoring.estimate import LabelFreeEstimate
from reports import html as h

ASSUMPTION = (
    "The label-free estimate assumes the model is calibrated on this traffic: a prediction of "
    "risk p is followed by the event with probability p. Each prediction then counts as an "
    "event with weight p and a non-event with weight 1 - p, which gives the AUROC and the "
    "event rate to expect before any outcome is known. It shows how well the model can "
    "separate this case mix if its risks are right; it cannot show risks that have become "
    "wrong (a new product, changed practice): only joined outcomes can."
)


def monitor_report(result) -> str:
    """The page of a :class:`monitoring.monitor.MonitorResult`."""
    synthetic = any(v.synthetic for v in result.versions)
    titles = ["Verdict"] + [_title(v) for v in result.versions] + ["Method"]
    bodies = {"Verdict": _verdict(result), "Method": _method(result)}
    bodies |= {_title(v): _version(v) for v in result.versions}
    uses = dict.fromkeys(v.intended_use for v in result.versions)
    intro = "".join(h.p(u) for u in uses) + h.table(
        [],
        [
            ("window (UTC days)", f"{result.window} ({result.window.days} days)"),
            ("prediction log", result.log_dir),
            ("outcomes file", result.outcomes_file or "none"),
            ("model version", result.model_version or "every version in the window"),
            ("generated", result.generated_at),
        ],
    )
    title = f"Monitoring: predictions of {result.window}"
    return h.document(title, intro + h.nav(titles) + h.headed(titles, bodies), synthetic=synthetic)


def with_banner(page: str, version, window) -> str:
    """Evidently's report with a first line saying what it compares, and the intended use."""
    note = (
        f'<div style="font-family:sans-serif;background:#fff3cd;border:1px solid #e0c060;'
        f'padding:.6em;margin:.6em">Input drift of {h.e(version.name)} version '
        f"{h.e(version.version)}: predictions of {h.e(window)} (current) against the held-out "
        f"rows of its training run {h.e(version.run_id)} (reference). Drift is judged in "
        f"monitor.html (a test and a distance per input). {h.e(version.intended_use)}</div>"
    )
    return re.sub(r"<body([^>]*)>", lambda m: m.group(0) + note, page, count=1)


def _title(v) -> str:
    return f"{v.name} version {v.version}"


def _verdict(result) -> str:
    crossed = result.crossed
    head = (
        h.warning(
            f"{len(crossed)} threshold(s) crossed (exit code 1): ",
            "; ".join(f"v{v.version}: {c.describe()}" for v, c in crossed),
        )
        if crossed
        else h.p("No threshold crossed (exit code 0).")
    )
    rows = [
        (f"v{v.version}", c.what, _value(c.value), c.rule, _verdict_text(c))
        for v in result.versions
        for c in v.checks
    ]
    return head + h.table(["version", "check", "value", "threshold", "verdict"], rows)


def _verdict_text(check) -> str:
    if not check.judged:
        return f"not judged: {check.reason}"
    return "CROSSED" if check.crossed else "ok"


def _version(v) -> str:
    parts = [
        h.p(
            f"{v.predictions:,} predictions (channels: "
            + ", ".join(f"{k} {n:,}" for k, n in v.channels.items())
            + "; by landmark day: "
            + ", ".join(f"day {d}: {n:,}" for d, n in v.landmark_days.items())
            + f"), against {v.reference_rows:,} held-out rows of its training run {v.run_id}."
        ),
        h.p(v.intended_use),
        "<h3>Case mix: inputs</h3>",
        _drift(v),
        "<h3>Predicted risk</h3>",
        _risk(v),
        "<h3>Performance estimated without outcomes</h3>",
        _estimate(v),
        "<h3>Outcomes</h3>",
        _outcomes(v),
        "<h3>Horizons</h3>",
        _horizons(v),
    ]
    return "".join(parts)


def _horizons(v) -> str:
    """One row per horizon the version answered: its risk's drift, estimate and outcomes."""
    rows = []
    for r in v.horizons:
        ref, done = r.reference_realised, r.realised
        outcomes = (
            "no outcomes file"
            if r.known is None
            else f"{r.known:,} known, {r.awaiting:,} awaiting"
            + ("" if done is None else f"; {done.events:,} events")
        )
        rows.append(
            (
                r.label,
                f"{r.predictions:,}",
                f"{_pct(r.risk.mean_reference)} / {_pct(r.risk.mean_current)}",
                h.num(r.risk.psi),
                h.num(r.estimate.expected_auroc),
                "-" if ref is None else h.num(ref.auroc),
                outcomes,
                "-" if done is None else h.num(done.auroc),
                "-" if done is None else h.num(done.observed_expected, "{:.2f}"),
                "-" if done is None else h.num(done.ici),
            )
        )
    header = ["horizon", "predictions", "mean risk (reference / window)", "PSI",
              "estimated AUROC", "reference AUROC", "outcomes", "realised AUROC",
              "observed / expected", "ICI"]  # fmt: skip
    note = h.p(
        "Each horizon's risk against its own outcomes: an outcome is known once the horizon's "
        "window has passed by the outcome's date (72 hours: 3 days after the prediction day; "
        "day 28: at day 28), so the shorter horizons' realised figures arrive first. Only day "
        "28 is judged by the thresholds; the others are reported. A reference logged before "
        "horizons holds day 28 alone (no PSI for the others)."
    )
    return note + h.table(header, rows)


def _drift(v) -> str:
    d = v.drift
    names = ", ".join(f"{c.label} ({c.column})" for c in d.drifted) or "none"
    text = (
        f"{len(d.drifted)} of {len(d.tested)} inputs tested drifted "
        f"(share {h.num(d.drifted_share, '{:.2f}')}): {names}."
    )
    link = (
        f'<p>Evidently\'s report of these tests: <a href="{h.e(v.drift_file)}">'
        f"{h.e(v.drift_file)}</a> (a self-contained file beside this one; it needs "
        "JavaScript).</p>"
        if v.drift_file
        else ""
    )
    header = [
        "input",
        "kind",
        "drifted",
        "test: p-value",
        "distance",
        "reference",
        "window",
        "values tested (ref / window)",
        "missing (ref / window)",
    ]
    ordered = sorted(d.columns, key=lambda c: (not c.drifted, c.kind != "input"))
    return (
        (h.warning(text) if d.drifted else h.p(text))
        + link
        + h.table(header, [_drift_row(c) for c in ordered])
    )


def _drift_row(c: ColumnDrift) -> tuple:
    if c.drifted is None:
        verdict, test, distance = c.note, "-", "-"
    else:
        verdict = "DRIFTED" if c.drifted else "no"
        test = f"{c.test}: {_p(c.p_value)} (drift below {c.alpha:.2g})"
        distance = f"{c.distance_method}: {c.distance:.3f}"
    missing = f"{c.missing_reference:.0%} / {c.missing_current:.0%}"
    return (
        f"{c.label} ({c.column})",
        c.kind,
        verdict,
        test,
        distance,
        c.reference_summary,
        c.current_summary,
        f"{c.n_reference:,} / {c.n_current:,}",
        missing,
    )


def _risk(v) -> str:
    r = v.risk
    facts = h.table(
        [],
        [
            ("mean predicted risk (reference / window)", f"{_pct(r.mean_reference)} / "
             f"{_pct(r.mean_current)}"),
            ("population stability index (PSI)", h.num(r.psi)),
            ("Kolmogorov-Smirnov statistic, p-value", f"{h.num(r.ks_statistic)}, "
             f"{_p(r.ks_p_value)}"),
        ],
    )  # fmt: skip
    bins = h.table(
        ["predicted risk", "reference share", "window share"],
        [
            (f"{_pct(b['low'])}-{_pct(b['high'])}", _pct(b["reference"]), _pct(b["current"]))
            for b in r.bins
        ],
    )
    note = h.p(
        "PSI over the reference's deciles of predicted risk: below 0.1 little change, "
        "0.1-0.25 moderate, above 0.25 a major shift. The KS test is shown, not judged: with "
        "many predictions it finds differences too small to matter."
    )
    return facts + note + bins


def _estimate(v) -> str:
    rows = [
        _estimate_row("window", v.estimate),
        _estimate_row("reference (held-out rows)", v.reference_estimate),
    ]
    ref = v.reference_realised
    text = (
        f"On its reference the model's realised AUROC was {h.num(ref.auroc)} (event rate "
        f"{_pct(ref.prevalence)}), against {h.num(v.reference_estimate.expected_auroc)} "
        "estimated from its risks alone: the difference is the estimate's bias for this model "
        "(a model whose risks are too cautious is underestimated)."
    )
    header = ["rows", "predictions", "estimated AUROC (95% range if calibrated)",
              "expected event rate (95% range)"]  # fmt: skip
    return h.p(ASSUMPTION) + h.table(header, rows) + h.p(text)


def _estimate_row(name: str, e: LabelFreeEstimate) -> tuple:
    return (
        name,
        f"{e.n:,}",
        f"{h.num(e.expected_auroc)} ({h.num(e.auroc_interval[0])}-{h.num(e.auroc_interval[1])})",
        f"{_pct(e.expected_prevalence)} ({_pct(e.prevalence_interval[0])}-"
        f"{_pct(e.prevalence_interval[1])})",
    )


def _outcomes(v) -> str:
    if v.join is None:
        return h.p(
            "No outcomes file given: realised performance needs the outcomes (day 28's known "
            "about 28 days after each prediction, 72 hours' after 3 days), joined by request "
            "id (--outcomes)."
        )
    j = v.join
    counts = h.p(
        f"{j.joined:,} predictions joined to their outcome, {j.awaiting:,} still awaiting one"
        + (
            f", {j.ambiguous:,} not joined because several predictions share their request id"
            if j.ambiguous
            else ""
        )
        + (
            f"; median {j.median_days_to_outcome:.1f} days from prediction to outcome"
            if j.median_days_to_outcome is not None
            else ""
        )
        + "."
    )
    r = v.realised
    if r is None:
        return counts
    facts = h.table(
        ["measure", "window (joined)", "reference"],
        [
            ("predictions, events", f"{r.n:,}, {r.events:,}",
             f"{v.reference_realised.n:,}, {v.reference_realised.events:,}"),
            ("AUROC (95% CI)", f"{h.num(r.auroc)} ({h.num(r.auroc_ci[0])}-"
             f"{h.num(r.auroc_ci[1])})", h.num(v.reference_realised.auroc)),
            ("AUROC estimated from the same rows' risks", h.num(r.expected_auroc),
             h.num(v.reference_realised.expected_auroc)),
            ("observed / expected events", h.num(r.observed_expected, "{:.2f}"),
             h.num(v.reference_realised.observed_expected, "{:.2f}")),
            ("calibration intercept", h.num(r.calibration_intercept, "{:+.2f}"),
             h.num(v.reference_realised.calibration_intercept, "{:+.2f}")),
            ("calibration slope", h.num(r.calibration_slope, "{:.2f}"),
             h.num(v.reference_realised.calibration_slope, "{:.2f}")),
            ("calibration error (ICI)", h.num(r.ici), h.num(v.reference_realised.ici)),
            ("Brier score", h.num(r.brier), h.num(v.reference_realised.brier)),
        ],
    )  # fmt: skip
    reliability = h.table(
        ["group", "predictions", "mean predicted risk", "observed event rate"],
        [
            (k + 1, b["n"], _pct(b["mean_predicted"]), _pct(b["observed"]))
            for k, b in enumerate(r.reliability)
        ],
    )
    return counts + facts + "<h4>Reliability (groups of predicted risk)</h4>" + reliability


def _method(result) -> str:
    t = result.thresholds
    return h.ul(
        [
            "Reference: a seeded sample (at most 10,000) of the held-out landmark rows of the "
            "version's training run, logged with the model (monitoring/reference.parquet), "
            "with the model's risk and the outcome.",
            "Each model version in the window is compared with its own reference and judged "
            "on its own.",
            "Inputs: the clinician's fields (categories re-assembled from the model's "
            "indicators) and the predictors derived from them. An input has drifted when "
            f"Evidently's test finds it different beyond chance (p below {ALPHA} divided by "
            "the number of inputs tested: KS for a number, chi-square or Z for a category) and "
            "by a material amount (normed Wasserstein or Jensen-Shannon distance at least "
            f"{MIN_DISTANCE}). An input known before infusion is tested once per patient "
            "(rows with the same baseline values are one patient: the log has no identifier), "
            "the others once per prediction.",
            ASSUMPTION,
            "Realised performance: the training metrics on the predictions joined to their "
            "outcome; the AUROC's interval resamples predictions (the log holds no patient "
            "identifier), so it is somewhat narrow when patients are predicted on several "
            "days.",
            f"Thresholds: drifted share at most {t.max_drifted_share:g}, PSI at most "
            f"{t.max_risk_psi:g}, estimated AUROC at least {t.min_estimated_auroc:g} (judged "
            f"from {t.min_predictions} predictions), realised AUROC at least {t.min_auroc:g} "
            f"and ICI at most {t.max_calibration_error:g} (judged from {t.min_events} events "
            "and non-events joined).",
        ]
    )


def _value(x) -> str:
    return "-" if x is None else h.num(x)


def _pct(x) -> str:
    return h.num(x, "{:.1%}")


def _p(x) -> str:
    return "-" if x is None else (f"{x:.2g}" if x >= 1e-4 else "<0.0001")
