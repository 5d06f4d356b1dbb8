"""What every backend of the CDS Hooks service's state provides: the replay store of the CDS
clients' ``jti`` values and the explanation records behind card links.

Two backends of each (chosen in one place, :func:`serving.cds.state.open_state`): on one host,
a SQLite file and a directory every worker of the replica shares
(:class:`serving.cds.client_auth.SqliteReplayCache`, :class:`serving.cds.hooks.ExplanationStore`);
behind a load balancer, a PostgreSQL database every replica shares
(:mod:`serving.cds.postgres_stores`). A backend that cannot be reached while the service runs
raises :class:`StateUnavailable`, which the service answers with 503 naming the reason: a
request is then refused whole (no card without its explanation record, no token accepted
whose ``jti`` was not recorded).
"""

from __future__ import annotations

from typing import Protocol

from icans.errors import IcansError


class StateUnavailable(IcansError):
    """The replay store or the explanation records cannot be read or written now (database
    down, disk full); the message says which and why. Answered with 503."""


class ReplayStore(Protocol):
    """The ``jti`` values seen, each kept until its token can no longer be accepted."""

    def first_use(self, key: str, expires: float, now: float) -> bool:
        """True the first time ``key`` is presented (recording it until ``expires``, epoch
        seconds), False on a replay; ``now``: the caller's clock, by which records older than
        their expiry are forgotten."""
        ...


class ExplanationRecords(Protocol):
    """What a card's explanation page is rendered from, behind an unguessable id, for the
    store's time to live."""

    def put(self, record: dict) -> str:
        """Store ``record`` (JSON-ready); its id (32 hexadecimal digits)."""
        ...

    def get(self, key: str) -> dict | None:
        """The record of ``key``; None if it never existed, expired or ``key`` is malformed."""
        ...

    def discard(self, key: str) -> None:
        """Remove the record of a link that was never sent (its card could not be audited);
        best effort: a record left behind expires with its time to live."""
        ...
