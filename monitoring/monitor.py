"""``icans monitor``: a window of the prediction log against each model version's training
reference, with outcomes when they are known, judged by the thresholds.

1. read the window (:mod:`monitoring.window`), and join the outcomes file if given
   (:mod:`monitoring.outcomes`);
2. for **each model version that answered in the window**, its rows against **its own**
   reference (:mod:`registry.reference`: a promotion mid-window gives two sections, each
   judged on its own; ``--model-version`` keeps one): per-input drift (:mod:`monitoring.drift`),
   drift of the predicted risk (:mod:`monitoring.risk`), the label-free performance estimate
   (:mod:`monitoring.estimate`), realised performance of the joined outcomes
   (:mod:`monitoring.realised`), the same per horizon (:mod:`monitoring.by_horizon`: the next
   72 hours, 7 days, day 28, each horizon's outcomes known once its window has passed), and
   the checks (:mod:`monitoring.thresholds`, on day 28);
3. write, into the output directory, Evidently's drift report of each version
   (``drift-<model>-v<version>.html``), the HTML report (``monitor.html``) and the JSON summary
   (``monitor.json``). Each file is written to a temporary sibling and renamed into place, so
   no file is ever partial; ``monitor.json`` comes last and names the files of its run.

Errors the user can fix (no predictions in the window, a bad outcomes file, a version without
a reference) are :class:`icans.errors.IcansError` naming the field, value and rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import SupportsInt, cast

import pandas as pd

from icans.config import Settings, intended_use
from monitoring.by_horizon import HorizonResult, horizon_results
from monitoring.drift import InputDrift, input_drift
from monitoring.estimate import LabelFreeEstimate, estimate
from monitoring.outcomes import JOINED, JoinSummary, join_outcomes, join_summary, read_outcomes
from monitoring.realised import Realised, realised
from monitoring.risk import RiskDrift, risk_drift
from monitoring.thresholds import Check, Thresholds, judge
from monitoring.window import Window, read_window
from registry.reference import Reference, load_reference
from reports.html import slug, write_atomically
from reports.provenance import trained_on_synthetic

REPORT, SUMMARY = "monitor.html", "monitor.json"


@dataclass
class VersionResult:
    """One model version's window against its reference."""

    name: str
    version: str
    run_id: str
    synthetic: bool  # trained on synthetic data
    predictions: int
    channels: dict[str, int]
    landmark_days: dict[int, int]
    drift: InputDrift
    risk: RiskDrift
    estimate: LabelFreeEstimate
    reference_rows: int
    reference_estimate: LabelFreeEstimate  # the estimate on the reference's own risks
    reference_realised: Realised  # ... and what its outcomes gave
    join: JoinSummary | None
    realised: Realised | None
    checks: list[Check]
    drift_file: str = ""  # Evidently's report, beside monitor.html
    horizons: list[HorizonResult] = field(default_factory=list)  # shortest first, day 28 last

    @property
    def intended_use(self) -> str:
        return intended_use(self.synthetic)

    @property
    def crossed(self) -> list[Check]:
        return [c for c in self.checks if c.crossed]


@dataclass
class MonitorResult:
    window: Window
    log_dir: Path
    out_dir: Path
    generated_at: str
    thresholds: Thresholds
    outcomes_file: Path | None
    model_version: str | None
    versions: list[VersionResult]
    outside_window: int = 0  # outcomes whose request id is not in the window
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def crossed(self) -> list[tuple[VersionResult, Check]]:
        return [(v, c) for v in self.versions for c in v.crossed]

    @property
    def exit_code(self) -> int:
        """0: no threshold crossed; 1: at least one (bad input never gets this far: 2)."""
        return 1 if self.crossed else 0


def run_monitor(
    log_dir: Path,
    window: Window,
    out_dir: Path,
    settings: Settings,
    thresholds: Thresholds | None = None,
    model_version: str | None = None,
    outcomes: Path | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> MonitorResult:
    """Monitor the window and write the reports; see the module docstring."""
    thresholds = thresholds or Thresholds.from_settings(settings)
    step("reading the prediction log")
    rows = read_window(log_dir, window, model_version)
    outside = 0
    if outcomes is not None:
        step("joining outcomes")
        rows, outside = join_outcomes(rows, read_outcomes(outcomes))
    result = MonitorResult(
        window=window,
        log_dir=Path(log_dir),
        out_dir=Path(out_dir),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        thresholds=thresholds,
        outcomes_file=None if outcomes is None else Path(outcomes),
        model_version=model_version,
        versions=[],
        outside_window=outside,
    )
    groups = rows.groupby(["model_name", "model_version"], sort=False)
    keys = sorted(  # the groups' keys: (model_name, model_version), both text
        cast("dict[tuple[str, str], pd.Index]", groups.groups),
        key=lambda k: (k[0], _version_order(k[1])),
    )
    references = {}
    for name, version in keys:  # every reference first: a missing one fails before any work
        step(f"reading the reference of {name} v{version}")
        references[(name, version)] = load_reference(name, version, settings)
    for key in keys:
        step(f"comparing {key[0]} v{key[1]} with its reference")
        result.versions.append(
            _version(
                references[key],
                cast(pd.DataFrame, groups.get_group(key)),
                thresholds,
                outcomes is not None,
            )
        )
    step("writing the reports")
    write_outputs(result)
    return result


def _version(
    ref: Reference, rows: pd.DataFrame, thresholds: Thresholds, with_outcomes: bool
) -> VersionResult:
    p = rows["probability"].to_numpy(float)
    drift = input_drift(ref.rows, rows, ref.predictors)
    risk = risk_drift(ref.rows["probability"].to_numpy(float), p)
    est = estimate(p)
    join = done = None
    if with_outcomes:
        join = join_summary(rows, 0)
        known = (rows["outcome_status"] == JOINED) & rows["outcome"].notna()
        joined = cast(pd.DataFrame, rows[known])  # day 28's outcome known
        if len(joined):
            done = realised(joined["outcome"].to_numpy(float), joined["probability"])
    share, psi = drift.drifted_share, risk.psi
    checks = judge(thresholds, len(rows), share, psi, est.expected_auroc, done, with_outcomes)
    return VersionResult(
        name=ref.name,
        version=ref.version,
        run_id=ref.run_id,
        synthetic=trained_on_synthetic(ref.card),
        predictions=len(rows),
        channels={str(k): int(v) for k, v in rows["channel"].value_counts().items()},
        landmark_days={
            int(cast(SupportsInt, k)): int(v)
            for k, v in rows["landmark_day"].value_counts().sort_index().items()
        },
        drift=drift,
        risk=risk,
        estimate=est,
        reference_rows=len(ref.rows),
        reference_estimate=estimate(ref.rows["probability"].to_numpy(float)),
        reference_realised=realised(ref.rows["outcome"], ref.rows["probability"], bootstrap=0),
        join=join,
        realised=done,
        checks=checks,
        horizons=horizon_results(ref.rows, rows, with_outcomes),
    )


def write_outputs(result: MonitorResult) -> None:
    """Evidently's drift report of each version, then monitor.html, then monitor.json."""
    from monitoring.report import monitor_report, with_banner
    from monitoring.summary import summary_json

    out = result.out_dir
    for v in result.versions:
        if v.drift.html:
            v.drift_file = f"drift-{slug(v.name)}-v{slug(v.version)}.html"
            page = with_banner(v.drift.html, v, result.window)
            result.files[v.drift_file] = write_atomically(page, out / v.drift_file)
    result.files[REPORT] = out / REPORT  # named in the report and the summary before written
    result.files[SUMMARY] = out / SUMMARY
    write_atomically(monitor_report(result), out / REPORT)
    write_atomically(summary_json(result), out / SUMMARY)


def _version_order(version: str):
    return (0, int(version), "") if version.isdigit() else (1, 0, version)
