"""The thresholds ``icans monitor`` judges a model version's window by, and the verdicts.

The limits come from the settings (``monitor.*`` in :class:`icans.config.Settings`: TOML
``[settings]``, ``ICANS_MONITOR_*`` environment variables, or the command's options). Each
check says what was measured, the limit, and whether it was crossed; a check that cannot be
judged (too few predictions in the window, too few joined outcomes, no outcomes file) says why
and is never counted as crossed. ``icans monitor`` exits with code 1 when any check is crossed.

========================  =====================================================  =========
check                     what                                                   crossed if
========================  =====================================================  =========
``drifted_share``         share of the monitored inputs that drifted             above
``risk_psi``              PSI of the predicted risks against the reference       above
``estimated_auroc``       AUROC estimated from the risks alone (no outcomes)     below
``auroc``                 realised AUROC of the joined outcomes                  below
``calibration_error``     realised ICI of the joined outcomes                    above
========================  =====================================================  =========

The first three need ``monitor.min_predictions`` predictions of the version in the window; the
last two need ``monitor.min_events`` joined outcomes of each kind (events and non-events).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from icans.config import Settings


@dataclass(frozen=True)
class Thresholds:
    max_drifted_share: float
    max_risk_psi: float
    min_estimated_auroc: float
    min_auroc: float
    max_calibration_error: float
    min_predictions: int
    min_events: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(**{name: getattr(settings.monitor, name) for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    value: float | None
    limit: float
    upper: bool  # True: crossed above the limit; False: crossed below it
    judged: bool
    reason: str = ""  # why it was not judged

    @property
    def crossed(self) -> bool:
        if not self.judged or self.value is None or not math.isfinite(self.value):
            return False
        return self.value > self.limit if self.upper else self.value < self.limit

    @property
    def rule(self) -> str:
        return f"{'at most' if self.upper else 'at least'} {self.limit:g}"

    def describe(self) -> str:
        if not self.judged:
            return f"{self.what}: not judged ({self.reason})"
        value = "-" if self.value is None else f"{self.value:.3f}"
        verdict = "CROSSED" if self.crossed else "ok"
        return f"{self.what} {value} ({self.rule}): {verdict}"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "what": self.what,
            "value": self.value,
            "limit": self.limit,
            "rule": self.rule,
            "judged": self.judged,
            "crossed": self.crossed,
            "reason": "" if self.judged else self.reason,
        }


def judge(
    t: Thresholds,
    n_predictions: int,
    drifted_share: float,
    risk_psi: float,
    estimated_auroc: float,
    realised=None,  # monitoring.realised.Realised of the joined outcomes, or None
    outcomes_given: bool = False,
) -> list[Check]:
    """The checks of one model version's window."""
    few = n_predictions < t.min_predictions
    reason = f"{n_predictions} predictions, fewer than {t.min_predictions}" if few else ""
    checks = [
        Check(
            "drifted_share",
            "share of inputs drifted",
            drifted_share,
            t.max_drifted_share,
            True,
            not few and math.isfinite(drifted_share),
            reason or "no input could be tested",
        ),
        Check("risk_psi", "PSI of predicted risk", risk_psi, t.max_risk_psi, True, not few, reason),
        Check(
            "estimated_auroc",
            "estimated AUROC (no outcomes)",
            estimated_auroc,
            t.min_estimated_auroc,
            False,
            not few and math.isfinite(estimated_auroc),
            reason or "no estimate",
        ),
    ]
    if realised is None:
        why = "no outcomes file" if not outcomes_given else "no outcome joined"
        enough = False
    else:
        events, non_events = realised.events, realised.n - realised.events
        enough = min(events, non_events) >= t.min_events
        why = (
            f"{events} events and {non_events} non-events joined, fewer than {t.min_events} of each"
        )
    checks += [
        Check(
            "auroc",
            "realised AUROC",
            None if realised is None else realised.auroc,
            t.min_auroc,
            False,
            enough,
            "" if enough else why,
        ),
        Check(
            "calibration_error",
            "realised calibration error (ICI)",
            None if realised is None else realised.ici,
            t.max_calibration_error,
            True,
            enough,
            "" if enough else why,
        ),
    ]
    return checks
