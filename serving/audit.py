"""Audit trail: one JSON line per prediction or card feedback, with no identifier in it.

A prediction line holds the time (UTC), the request id, the model name and version, the SHA-256
of the canonical input, the probability and, for a CDS Hooks card, the card's id. A feedback
line (``"event": "feedback"``) holds the card's id, the outcome (accepted or overridden), the
coded override reason and how many suggestions were accepted: never the clinician's free-text
comment. The canonical input is the validated patient as JSON with
sorted keys and WITHOUT ``patient_id``, so neither the raw identifier nor anything derived
from it is written; a clinical app that keeps its own copy of a request can recompute the hash
to prove which input produced which answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from api.patient import PatientObservation


def canonical_input_sha256(patient: PatientObservation) -> str:
    data = patient.model_dump(mode="json", exclude={"patient_id"})
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class AuditLog:
    """Appends lines with one ``write`` each (O_APPEND): safe across threads and workers."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(
        self,
        request_id: str,
        model_name: str,
        model_version: str,
        patient: PatientObservation,
        probability: float,
        card: str | None = None,
    ) -> None:
        entry = {
            "time": datetime.now(UTC).isoformat(),
            "request_id": request_id,
            "model_name": model_name,
            "model_version": model_version,
            "input_sha256": canonical_input_sha256(patient),
            "probability": probability,
        }
        self._write(entry | ({"card": card} if card else {}))

    def feedback(
        self, card: str, outcome: str, override_reason: str | None, accepted_suggestions: int
    ) -> None:
        """A clinician's response to a CDS card (accepted or overridden)."""
        self._write(
            {
                "time": datetime.now(UTC).isoformat(),
                "event": "feedback",
                "card": card,
                "outcome": outcome,
                "override_reason": override_reason,
                "accepted_suggestions": accepted_suggestions,
            }
        )

    def _write(self, entry: dict) -> None:
        line = json.dumps(entry) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
