"""Quality gates: the ``champion`` alias moves to a model only if every gate that applies passes.

Default gates: enough held-out events to judge; calibration slope 0.8-1.2 and intercept within
+/-0.2; AUROC above the published pre-infusion score (m-EASIX); AUROC not more than 0.01 below
the penalised logistic baseline (non-inferiority); on a generated cohort, AUROC at most 0.03
below the generator's true risk; when the registry has a champion, not worse than it on the
same held-out patients (champion-challenger: the lower end of the paired-bootstrap 95% CI of
the AUROC difference above ``-champion_margin``). The baseline gate is non-inferiority rather
than superiority because the synthetic cohort's risk is close to additive on the log-odds
scale, where a logistic model is nearly well specified: the model leads the logistic baseline
by only ~0.002-0.003 AUROC (README, ``benchmarks/bench_train.py``), so at small sizes a
superiority gate would refuse good models for noise. The comparison is reported, not hidden.

Every shorter horizon the model is fitted for (72 hours, 7 days: :mod:`icans.horizons`) is
gated on its own events and true risk (``FitResult.horizons``): enough events, calibration
slope, gap to the true risk, each with day 28's threshold unless ``gates.horizons`` sets its own
(:class:`training.config.HorizonGate`), and the calibration intercept and an AUROC floor only
when set (``training.config.OPT_IN`` says why; recorded as not applied otherwise). Their
checks are named ``<horizon>.<gate>`` (``72h.calibration_slope``); the record says which
horizons passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from evaluation.held_out import MODEL, TRUE_RISK, Evaluation
from icans.horizons import HORIZON_NAMES, TARGET_HORIZON
from training.config import GateConfig, HorizonGate


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...]  # one sentence per failed gate
    checks: dict[str, bool]  # every gate that applied: passed or not
    not_applied: dict[str, str] = field(default_factory=dict)  # gate -> why it did not apply
    horizons: dict[str, bool] = field(default_factory=dict)  # horizon -> its gates all passed

    def summary(self) -> str:
        verdict = "passed every quality gate" if self.passed else "; ".join(self.reasons)
        if self.not_applied:
            verdict += " (not applied: " + "; ".join(self.not_applied.values()) + ")"
        return verdict

    def record(self) -> dict:
        """The gate record for the run and the model card: each gate applied or not, and why."""
        return {
            "passed": self.passed,
            "applied": self.checks,
            "not_applied": self.not_applied,
            "reasons": list(self.reasons),
            "horizons": {
                name: "passed" if ok else "rejected" for name, ok in self.horizons.items()
            },
        }


def check_gates(
    ev: Evaluation,
    gates: GateConfig,
    has_true_risk: bool = True,
    no_champion: str = "the registry has no champion yet",
    horizons: dict[str, Evaluation] | None = None,
) -> GateResult:
    """Judge the model on held-out patients (overall rows) against the configured gates:
    ``ev`` for day 28, ``horizons`` (name -> evaluation on that horizon's events) for the
    shorter ones.

    Which gates apply depends on what the data can show: the gap to the true risk only for a
    cohort that has one (a generated cohort), the comparison with the champion only when the
    registry has one. A gate that does not apply is recorded with the reason, never skipped
    silently; a gate that applies but cannot be computed fails."""
    checks: dict[str, bool] = {}
    reasons: list[str] = []
    not_applied: dict[str, str] = {}

    def gate(name: str, ok: bool, why: str) -> None:
        checks[name] = bool(ok)
        if not ok:
            reasons.append(why)

    events = ev.meta.get("n_events", 0)
    gate(
        "enough_test_events",
        events >= gates.min_test_events,
        f"only {events} held-out events (< {gates.min_test_events}): too few to judge",
    )
    slope = ev.value(MODEL, "calibration_slope")
    gate(
        "calibration_slope",
        gates.calibration_slope_min <= slope <= gates.calibration_slope_max,
        f"calibration slope {slope:.2f} outside {gates.calibration_slope_min}-"
        f"{gates.calibration_slope_max}",
    )
    intercept = ev.value(MODEL, "calibration_intercept")
    gate(
        "calibration_intercept",
        abs(intercept) <= gates.calibration_intercept_max_abs,
        f"calibration intercept {intercept:+.2f} beyond +/-{gates.calibration_intercept_max_abs}",
    )
    auroc = ev.value(MODEL, "auroc")
    truth = ev.value(TRUE_RISK, "auroc")
    if not has_true_risk:
        not_applied["auroc_near_true_risk"] = (
            "gap to the true risk: the cohort has no true risk (only a generated cohort has one)"
        )
    elif np.isfinite(truth):
        gate(
            "auroc_near_true_risk",
            auroc >= truth - gates.max_auroc_gap_to_true_risk,
            f"AUROC {auroc:.3f} is {truth - auroc:.3f} below the true risk's {truth:.3f} "
            f"(allowed {gates.max_auroc_gap_to_true_risk})",
        )
    else:  # cannot be checked: never promote on an unchecked gate
        missing = ev.meta.get("rows_without_true_risk", "all")
        gate(
            "auroc_near_true_risk",
            False,
            f"the true risk is missing for {missing} held-out rows, so the gap to it cannot be "
            "checked (is this a generated cohort with its true_risk table intact?)",
        )
    for name in gates.must_beat:
        other = ev.value(name, "auroc")
        gate(
            f"beats_{name}",
            auroc > other,
            f"AUROC {auroc:.3f} does not beat the {name} baseline ({other:.3f})",
        )
    for name in gates.non_inferior_to:
        other = ev.value(name, "auroc")
        gate(
            f"non_inferior_to_{name}",
            auroc >= other - gates.non_inferiority_margin,
            f"AUROC {auroc:.3f} trails the {name} baseline ({other:.3f}) by more than "
            f"{gates.non_inferiority_margin}",
        )
    gap = ev.metrics.query(
        "subset == 'overall' and predictor == @MODEL and metric == 'auroc_gap_to_champion'"
    )
    if len(gap):
        row = gap.iloc[0]
        gate(
            "not_worse_than_champion",
            row["ci_low"] >= -gates.champion_margin,
            f"AUROC {row['estimate']:+.3f} against the champion on the same held-out patients "
            f"(95% CI {row['ci_low']:+.3f} to {row['ci_high']:+.3f}): not shown to be within "
            f"{gates.champion_margin} of it",
        )
    else:
        not_applied["not_worse_than_champion"] = f"comparison with the champion: {no_champion}"
    day28 = not reasons
    results = {TARGET_HORIZON.name: day28}
    for name, horizon_ev in (horizons or {}).items():
        before = len(reasons)
        _horizon_gates(name, horizon_ev, gates.for_horizon(name), has_true_risk, gate, not_applied)
        results[name] = len(reasons) == before
    order = [h for h in HORIZON_NAMES if h in results]  # shortest first
    return GateResult(
        not reasons, tuple(reasons), checks, not_applied, {h: results[h] for h in order}
    )


def _horizon_gates(
    name: str,
    ev: Evaluation,
    gates: HorizonGate,
    has_true_risk: bool,
    gate: Callable[[str, bool, str], None],
    not_applied: dict[str, str],
) -> None:
    """The gates of one shorter horizon on its evaluation, as ``<name>.<gate>`` checks."""
    events = ev.meta.get("n_events", 0)
    assert gates.min_test_events is not None  # for_horizon fills every threshold but the floor
    gate(
        f"{name}.enough_test_events",
        events >= gates.min_test_events,
        f"{name}: only {events} held-out events (< {gates.min_test_events}): too few to judge",
    )
    slope = ev.value(MODEL, "calibration_slope")
    low, high = gates.calibration_slope_min, gates.calibration_slope_max
    gate(
        f"{name}.calibration_slope",
        low is not None and high is not None and low <= slope <= high,
        f"{name}: calibration slope {slope:.2f} outside {low}-{high}",
    )
    intercept = ev.value(MODEL, "calibration_intercept")
    limit = gates.calibration_intercept_max_abs
    if limit is None:  # opt-in for a shorter horizon (training.config.OPT_IN says why)
        not_applied[f"{name}.calibration_intercept"] = (
            f"{name}: calibration intercept {intercept:+.2f}: no bound set "
            f"(gates.horizons.{name}.calibration_intercept_max_abs)"
        )
    else:
        gate(
            f"{name}.calibration_intercept",
            abs(intercept) <= limit,
            f"{name}: calibration intercept {intercept:+.2f} beyond +/-{limit}",
        )
    auroc = ev.value(MODEL, "auroc")
    if gates.min_auroc is not None:
        gate(
            f"{name}.min_auroc",
            auroc >= gates.min_auroc,
            f"{name}: AUROC {auroc:.3f} below {gates.min_auroc}",
        )
    truth = ev.value(TRUE_RISK, "auroc")
    allowed = gates.max_auroc_gap_to_true_risk
    if not has_true_risk:
        not_applied[f"{name}.auroc_near_true_risk"] = (
            f"{name}: gap to the true risk: the cohort has no true risk"
        )
    elif np.isfinite(truth) and allowed is not None:
        gate(
            f"{name}.auroc_near_true_risk",
            auroc >= truth - allowed,
            f"{name}: AUROC {auroc:.3f} is {truth - auroc:.3f} below the true risk's "
            f"{truth:.3f} (allowed {allowed})",
        )
    else:
        gate(
            f"{name}.auroc_near_true_risk",
            False,
            f"{name}: the true risk of this horizon is missing for "
            f"{ev.meta.get('rows_without_true_risk', 'all')} held-out rows, so the gap to it "
            "cannot be checked",
        )
