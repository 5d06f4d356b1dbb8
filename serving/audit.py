"""Audit trail: one JSON line per prediction or card feedback, with no identifier in it.

A prediction line holds the time (UTC), the request id, the model name and version, the SHA-256
of the canonical input, the probability (day 28, the target), the probability of each horizon
the model estimates (``"horizons": {"72h": p, "7d": p, "day28": p}``, :mod:`icans.horizons`;
every one, whichever the response showed) and, for a CDS Hooks card, the card's id. A feedback
line (``"event": "feedback"``) holds the card's id, the outcome (accepted or overridden), the
coded override reason and how many suggestions were accepted: never the clinician's free-text
comment. The canonical input is the validated patient as JSON with
sorted keys and WITHOUT ``patient_id``, so neither the raw identifier nor anything derived
from it is written; a clinical app that keeps its own copy of a request can recompute the hash
to prove which input produced which answer.

Every prediction has its line, or is not answered: the lines of one response (one, or a
batch's) are written together, all or none, and when they cannot be written (a full disk, a
location that is not writable) :class:`AuditUnavailable` is raised, which the routes answer
with a 503 naming the reason, before anything else about the prediction is written
(:meth:`serving.worker.Worker.record`). All or none holds for a write the disk cuts short too:
writers take an exclusive lock on the file (``flock``, across threads and workers), and a
write that did not complete is cut back off (``ftruncate`` to the length before it), so no
half line is left for the next line to be glued to.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

from api.patient import PatientObservation

log = logging.getLogger("icans.serving")


def canonical_input_sha256(patient: PatientObservation) -> str:
    data = patient.model_dump(mode="json", exclude={"patient_id"})
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class AuditUnavailable(Exception):
    """The audit lines could not be written; nothing of them was. The message is the reason,
    for the client (no path: the client need not know the server's layout)."""


class AuditLog:
    """Appends lines, the lines of one call in one ``write`` (O_APPEND) under an exclusive
    ``flock``: safe across threads and workers, and all or none (module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @staticmethod
    def prediction(
        request_id: str,
        model_name: str,
        model_version: str,
        patient: PatientObservation,
        probability: float,
        card: str | None = None,
        horizons: dict[str, float] | None = None,
    ) -> dict:
        """One prediction's line (a dict), for :meth:`write`; ``horizons``: each horizon's
        probability by name (shortest first), beside the day-28 ``probability``."""
        entry = {
            "time": datetime.now(UTC).isoformat(),
            "request_id": request_id,
            "model_name": model_name,
            "model_version": model_version,
            "input_sha256": canonical_input_sha256(patient),
            "probability": probability,
        }
        if horizons is not None:
            entry["horizons"] = dict(horizons)
        return entry | ({"card": card} if card else {})

    @staticmethod
    def feedback(
        card: str, outcome: str, override_reason: str | None, accepted_suggestions: int
    ) -> dict:
        """A clinician's response to a CDS card (accepted or overridden), for :meth:`write`."""
        return {
            "time": datetime.now(UTC).isoformat(),
            "event": "feedback",
            "card": card,
            "outcome": outcome,
            "override_reason": override_reason,
            "accepted_suggestions": accepted_suggestions,
        }

    def write(self, entries: list[dict]) -> None:
        """Append ``entries``, all or none; :class:`AuditUnavailable` when they could not be."""
        data = "".join(json.dumps(e) + "\n" for e in entries).encode()
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError as exc:
                raise self._unavailable(exc) from exc
            try:
                rest = memoryview(data)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # released by the close
                    while rest:  # a write cut short is continued: the next says why it stops
                        written = os.write(fd, rest)
                        if written == 0:
                            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                        rest = rest[written:]
                except OSError as exc:
                    self._cut_back(fd, len(data) - len(rest))
                    raise self._unavailable(exc) from exc
            finally:
                os.close(fd)

    def _cut_back(self, fd: int, written: int) -> None:
        """Remove the ``written`` bytes a failed write left at the end of the file (the lock
        is held: nobody appended since); a device such as /dev/full holds nothing to remove."""
        try:
            status = os.fstat(fd)
            if written and stat.S_ISREG(status.st_mode):
                os.ftruncate(fd, status.st_size - written)
        except OSError as exc:  # reported, but the write's own error is the answer's reason
            log.error("audit log %s: a failed write could not be cut back: %s", self.path, exc)

    def _unavailable(self, exc: OSError) -> AuditUnavailable:
        code = errno.errorcode.get(exc.errno or 0, "")
        reason = f"{exc.strerror or exc}" + (f" ({code})" if code else "")
        log.error("audit log %s cannot be written: %s", self.path, reason)
        return AuditUnavailable(
            f"the audit log cannot be written: {reason}; no prediction is answered without its "
            "audit line"
        )
