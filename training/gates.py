"""Quality gates: the ``champion`` alias moves to a model only if every gate passes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.config import GateConfig
from training.evaluate import MODEL, TRUE_RISK, Evaluation


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...]  # one sentence per failed gate
    checks: dict[str, bool]

    def summary(self) -> str:
        return "passed every quality gate" if self.passed else "; ".join(self.reasons)


def check_gates(ev: Evaluation, gates: GateConfig, baselines: tuple[str, ...]) -> GateResult:
    """Judge the model on held-out patients (overall rows) against the configured gates."""
    checks: dict[str, bool] = {}
    reasons: list[str] = []

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
    auroc = ev.value(MODEL, "auroc")
    truth = ev.value(TRUE_RISK, "auroc")
    if np.isfinite(truth):
        gate(
            "auroc_near_true_risk",
            auroc >= truth - gates.max_auroc_gap_to_true_risk,
            f"AUROC {auroc:.3f} is {truth - auroc:.3f} below the true risk's {truth:.3f} "
            f"(allowed {gates.max_auroc_gap_to_true_risk})",
        )
    if gates.must_beat_baselines:
        for name in baselines:
            other = ev.value(name, "auroc")
            gate(
                f"beats_{name}",
                auroc > other,
                f"AUROC {auroc:.3f} does not beat the {name} baseline ({other:.3f})",
            )
    return GateResult(not reasons, tuple(reasons), checks)
