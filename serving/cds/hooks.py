"""The CDS Hooks 2.0 ``patient-view`` service: discovery, prefetch, cards and feedback.

An EHR opening the chart of a patient treated with CAR-T cells calls the service; it answers
with one card: the risk of severe or steroid-refractory ICANS on today's day since infusion,
for every horizon the served model estimates (within the next 72 hours, within the next 7
days, by day 28: :mod:`icans.horizons`), from the resources the mapping needs
(:mod:`serving.fhir.mapping`). Those come from the ``prefetch`` templates below; any the
client did not prefetch are read from its ``fhirServer`` with ``fhirAuthorization``
(:mod:`serving.fhir.fetch`), and when that is not possible the call is answered 412 naming
what is missing. A patient outside the service (no CAR-T infusion, past day 27) gets no card,
as the specification asks of a service with nothing to say; a patient whose record does not
allow an estimate gets an info card saying what to record.

Cards: ``summary`` (under 140 characters, the specification's limit: the 72-hour and day-28
risks with their intervals, and the day; :func:`summary`), ``indicator`` from the risk of one
horizon against its thresholds (``cds.indicator_horizon``, default day 28 with
``cds.warning_at`` and ``cds.critical_at``; a shorter horizon's in ``cds.thresholds``),
``source`` (the model, with a link to its model card), ``detail`` (markdown: every horizon's
risk and window, the indicator horizon's drivers, missing inputs, warnings, the intended use)
and a link to the patient's explanation page (rendered when opened, from the stored patient,
by the same model version: every horizon is recomputed there, nothing more is stored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from icans.config import CdsSettings
from icans.horizons import TARGET_HORIZON
from runtime.assessor import Assessment, HorizonRisk
from serving.cds.stores import StateUnavailable
from serving.fhir import codes
from serving.fhir.reading import Located, MappedPatient, bundle_resources

SERVICE_ID = "icans-risk"
HOOK = "patient-view"
SUMMARY_MAX = 140


def _codes_param(codings) -> str:
    """FHIR token search values: ``system|code``, or ``system|`` for every code of one of the
    product's own code systems."""
    tokens = []
    for system, code in codings:
        token = f"{system}|" if system.startswith("urn:icans-risk:") else f"{system}|{code}"
        if token not in tokens:
            tokens.append(token)
    return ",".join(tokens)


_OBSERVATION_CODES = [c for q in codes.QUANTITIES for c in q.codes] + [v.code for v in codes.VALUES]
_CONDITION_CODES = list(codes.DISEASE_CODES) + list(codes.CONDITION_FLAGS)
_MEDICATION_CODES = [
    (codes.CAR_T_PRODUCT, ""),
    (codes.CAR_TARGET, ""),
    *codes.STEROIDS,
    codes.TOCILIZUMAB,
    codes.ANAKINRA,
    *codes.INTRATHECAL_DRUGS,  # intrathecal therapy is told by its route, not searchable
]

# What the mapping reads, as FHIR searches relative to the client's FHIR server.
PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&code=" + _codes_param(_CONDITION_CODES),
    "observations": "Observation?patient={{context.patientId}}&code="
    + _codes_param(_OBSERVATION_CODES),
    "medications": "MedicationAdministration?patient={{context.patientId}}&code="
    + _codes_param(_MEDICATION_CODES),
    "procedures": f"Procedure?patient={{{{context.patientId}}}}&code={codes.LYMPHODEPLETION}|",
}


def discovery() -> dict:
    """The discovery document (``GET /cds-services``)."""
    return {
        "services": [
            {
                "hook": HOOK,
                "id": SERVICE_ID,
                "title": "ICANS risk after CAR-T therapy",
                "description": "Risk of severe (ASTCT grade 3-4) or steroid-refractory ICANS "
                "after a CAR-T infusion, on today's day since infusion: within the next 72 "
                "hours, the next 7 days and by day 28 (as the served model estimates them), "
                "with its drivers. Decision support only.",
                "prefetch": PREFETCH,
                "usageRequirements": "Prefetch or fhirServer access to the patient's "
                "Patient, Conditions, Observations, MedicationAdministrations and "
                "Procedures; codes in docs/fhir-mapping.md.",
            }
        ]
    }


class Context(BaseModel):
    model_config = ConfigDict(extra="allow")
    userId: str = Field(max_length=256)
    patientId: str = Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int
    scope: str
    subject: str


class CdsRequest(BaseModel):
    """A CDS Hooks 2.0 call (only the fields the service reads are checked)."""

    model_config = ConfigDict(extra="allow")
    hook: str
    hookInstance: str = Field(min_length=1, max_length=128)
    context: Context
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    prefetch: dict[str, Any] | None = None


class FeedbackOverride(BaseModel):
    model_config = ConfigDict(extra="allow")
    reason: dict | None = None  # a Coding
    userComment: str | None = None


class FeedbackEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    card: str = Field(pattern=r"^[0-9a-fA-F-]{36}$")
    outcome: str = Field(pattern=r"^(accepted|overridden)$")
    acceptedSuggestions: list[dict] = Field(default_factory=list)
    overrideReason: FeedbackOverride | None = None
    outcomeTimestamp: str


class Feedback(BaseModel):
    feedback: list[FeedbackEntry] = Field(min_length=1, max_length=100)


class PrefetchUnavailable(Exception):
    """Data the service needs was neither prefetched nor fetchable: answered 412."""


def template(url: str, context: Context) -> str:
    """A prefetch template with the context's tokens filled in."""
    return re.sub(r"\{\{context\.(\w+)\}\}", lambda m: str(getattr(context, m.group(1), "")), url)


def gather(request: CdsRequest, fetch) -> list[Located]:
    """The resources of every prefetch key: prefetched (read first, so malformed data is
    reported before anything is fetched), else fetched with ``fetch(relative url)``; ``fetch``
    None (the service may not fetch for this call): :class:`PrefetchUnavailable`."""
    prefetched = request.prefetch or {}
    out: list[Located] = []
    for key in PREFETCH:
        if prefetched.get(key) is not None:
            out += bundle_resources(prefetched[key], path=f"prefetch.{key}")
    missing = [k for k in PREFETCH if prefetched.get(k) is None]
    if missing and fetch is None:
        raise PrefetchUnavailable(
            f"not prefetched: {', '.join(missing)}; and no fhirServer with fhirAuthorization "
            "this service may read from"
        )
    for key in missing:
        value = fetch(template(PREFETCH[key], request.context))
        out += bundle_resources(value, path=f"fhirServer:{key}")
    return out


def indicator(probability: float, warning_at: float, critical_at: float) -> str:
    if probability >= critical_at:
        return "critical"
    return "warning" if probability >= warning_at else "info"


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%" if p >= 0.01 else "<1%"


# How the summary names a horizon (the cards' 140 characters; Horizon.label in the detail)
SHORT_LABELS = {"72h": "within 72 h", "7d": "within 7 days", "day28": "by day 28"}
SUMMARY_HORIZONS = ("72h", TARGET_HORIZON.name)  # and the indicator horizon, when another


def _interval(risk: HorizonRisk) -> str:
    return f" (95% CI {_pct(risk.interval[0])}-{_pct(risk.interval[1])})" if risk.interval else ""


def _days(first: int, last: int) -> str:
    return f"day {first}" if first == last else f"days {first}-{last}"


def summary(a: Assessment, indicator_horizon: str) -> str:
    """The card's summary, under :data:`SUMMARY_MAX` characters: the risk within 72 hours (when
    the model estimates it), the indicator horizon's and by day 28, each with its interval
    while they fit, and the prediction day. A day-28-only model's summary is the one cards
    had before horizons. Shorter forms are tried in turn (without the outcome's words, then
    without the intervals); the shortest fits any probabilities, day and horizons
    (tests/test_fhir_cds_api.py checks the worst case)."""
    shown = [
        r for r in a.horizons if r.horizon in SUMMARY_HORIZONS or r.horizon == indicator_horizon
    ]
    day = a.landmark_day
    if len(shown) == 1:  # day 28 alone: no 72-hour risk, the indicator on day 28
        (risk,) = shown
        forms = [
            f"ICANS risk {_pct(risk.probability)}{_interval(risk)} on day {day} after CAR-T: "
            "severe or steroid-refractory by day 28",
            f"ICANS risk {_pct(risk.probability)}{_interval(risk)}, day {day} after CAR-T",
        ]
    else:

        def risks(interval: bool) -> str:
            return "; ".join(
                f"{_pct(r.probability)}{_interval(r) if interval else ''} {SHORT_LABELS[r.horizon]}"
                for r in shown
            )

        forms = [
            f"Severe or steroid-refractory ICANS risk on day {day} after CAR-T: {risks(True)}",
            f"ICANS risk on day {day} after CAR-T: {risks(True)}",
            f"ICANS risk on day {day} after CAR-T: {risks(False)}",
        ]
    return next((f for f in forms if len(f) < SUMMARY_MAX), forms[-1][: SUMMARY_MAX - 1])


def risk_card(
    mapped: MappedPatient,
    a: Assessment,
    identity: dict,
    intended_use: str,
    cds: CdsSettings,
    links: dict[str, str],
    synthetic: bool,
) -> dict:
    """The card for one estimate; ``cds``: the indicator horizon and its thresholds
    (:class:`icans.config.CdsSettings`, the served model estimates that horizon:
    :meth:`~icans.config.CdsSettings.check_model_horizons`); ``links``: ``model_card`` and
    ``explanation`` URLs."""
    flagged = a.risk(cds.indicator_horizon)
    warning_at, critical_at = cds.indicator_thresholds()
    if len(a.horizons) == 1:
        lines = [
            f"**Risk of severe (grade 3-4) or steroid-refractory ICANS by day 28:** "
            f"{_pct(a.probability)}{_interval(flagged)}, estimated on day {a.landmark_day}."
        ]
    else:
        lines = [
            "**Risk of severe (grade 3-4) or steroid-refractory ICANS**, estimated on day "
            f"{a.landmark_day} after the infusion:",
            "",
            *[
                f"- {r.label} ({_days(a.landmark_day + 1, r.end_day)}): "
                f"{_pct(r.probability)}{_interval(r)}"
                for r in a.horizons
            ],
            "",
            f"The indicator follows the risk {flagged.label} (warning from "
            f"{100 * warning_at:.3g}%, critical from {100 * critical_at:.3g}%).",
        ]
    if flagged.drivers:
        heading = (
            "**Top drivers**" if len(a.horizons) == 1 else f"**Top drivers** ({flagged.label})"
        )
        lines += ["", heading, *[f"- {d}" for d in flagged.drivers]]
    if a.missing_inputs:
        lines += ["", "**Not recorded (treated as missing):** " + ", ".join(a.missing_inputs)]
    shown = mapped.warnings + a.warnings
    if shown:
        lines += ["", "**Warnings**", *[f"- {w}" for w in shown[:10]]]
        if len(shown) > 10:
            lines.append(f"- ... and {len(shown) - 10} more (see the explanation page)")
    lines += ["", f"*{intended_use}*"]
    if synthetic:
        lines.append("*This model was trained on synthetic data.*")
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary(a, cds.indicator_horizon),
        "indicator": indicator(flagged.probability, warning_at, critical_at),
        "detail": "\n".join(lines),
        "source": {
            "label": f"ICANS risk model {identity['name']} v{identity['version']}",
            "url": links["model_card"],
        },
        "links": [
            {
                "label": "Explanation of this estimate",
                "url": links["explanation"],
                "type": "absolute",
            },
            {"label": "Model card", "url": links["model_card"], "type": "absolute"},
        ],
    }


def info_card(summary: str, detail: str, identity: dict, model_card_url: str) -> dict:
    """A card that gives no estimate and says why (e.g. what to record)."""
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary[: SUMMARY_MAX - 1],
        "indicator": "info",
        "detail": detail,
        "source": {
            "label": f"ICANS risk model {identity['name']} v{identity['version']}",
            "url": model_card_url,
        },
    }


class ExplanationStore:
    """What a card's explanation page is rendered from (the patient without identifier, the
    mapping's warnings, the model version), behind an unguessable link (a 128-bit random id),
    kept ``ttl_s`` seconds in a directory every worker of the host reads; expired records are
    removed on writes (at most once a minute). The page itself is rendered when the link is
    opened, so a card costs no rendering (the waterfall figure takes most of a page's time).
    The one-host backend of :class:`serving.cds.stores.ExplanationRecords` (replicas share
    theirs in PostgreSQL: :mod:`serving.cds.postgres_stores`)."""

    def __init__(self, directory: Path, ttl_s: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self._swept = 0.0

    def put(self, record: dict) -> str:
        key = uuid.uuid4().hex
        tmp = self.dir / f".{key}.tmp"
        try:
            if time.time() - self._swept > 60:
                self._sweep()
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.dir / f"{key}.json")  # atomic: never half a record
        except OSError as exc:  # disk full, directory gone or read-only
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise StateUnavailable(f"storing the card's explanation record: {exc}") from None
        return key

    def discard(self, key: str) -> None:
        """Remove a record whose link was never sent (its card could not be audited); a
        record that cannot be removed expires with its time to live."""
        with contextlib.suppress(OSError):
            (self.dir / f"{key}.json").unlink(missing_ok=True)

    def get(self, key: str) -> dict | None:
        if not re.fullmatch(r"[0-9a-f]{32}", key):
            return None
        path = self.dir / f"{key}.json"
        try:
            if time.time() - path.stat().st_mtime > self.ttl_s:
                return None
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        except OSError as exc:  # unreadable: not the same as expired
            raise StateUnavailable(f"reading the card's explanation record: {exc}") from None

    def _sweep(self) -> None:
        now = self._swept = time.time()
        for path in self.dir.glob("*.json"):
            try:
                if now - path.stat().st_mtime > self.ttl_s:
                    path.unlink()
            except FileNotFoundError:
                pass
