"""The CDS Hooks service's state in PostgreSQL (``cds.state_uri``), shared by every replica
behind a load balancer: the CDS clients' used ``jti`` values and the explanation records behind
card links.

Each worker process holds one connection (:class:`Database`), shared by both stores under a
lock, in autocommit mode: every statement is one transaction and one round trip, so nothing is
ever half-written. Two tables, created if absent when a worker starts, under a transaction-level
advisory lock (two workers or replicas starting at once would otherwise race on PostgreSQL's
catalogue, where ``CREATE TABLE IF NOT EXISTS`` is not atomic)::

    icans_cds_jti           (key text primary key, expires_at timestamptz, attempt uuid)
    icans_cds_explanations  (id text primary key, record jsonb, expires_at timestamptz)

Expiry times come from the service's clock (the one that checks the tokens' ``exp``), so
replicas need synchronised clocks (NTP), as the JWT checks already do. Expired rows are never
served and are deleted by each process at most once a minute, on a write.

A database that cannot be reached when a worker starts is an :class:`InvalidInputError`
naming ``cds_state_uri`` (the worker does not start). One lost while the service runs makes
the request that needed it fail with :class:`StateUnavailable` (a 503): the statement is tried
once more on a new connection first, and every statement here may safely run twice.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, LiteralString

import psycopg
from psycopg.types.json import Jsonb

from icans.errors import InvalidInputError
from serving.cds.stores import StateUnavailable

SETTING = "cds_state_uri"
CONNECT_TIMEOUT_S = 3  # a worker waits no longer for a database that does not answer
STATEMENT_TIMEOUT_MS = 5000  # nor for one that answers but hangs (locks, overload)
DOWN_PAUSE_S = 1.0  # after a failed connection, calls fail at once for this long (no pile-up)
SWEEP_EVERY_S = 60.0

TABLES = """
CREATE TABLE IF NOT EXISTS icans_cds_jti (
    key text PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    attempt uuid NOT NULL
);
CREATE INDEX IF NOT EXISTS icans_cds_jti_expires_at ON icans_cds_jti (expires_at);
CREATE TABLE IF NOT EXISTS icans_cds_explanations (
    id text PRIMARY KEY,
    record jsonb NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS icans_cds_explanations_expires_at
    ON icans_cds_explanations (expires_at);
"""

# Insert-if-absent in one statement: of two replicas recording the same jti at once, the second
# waits for the first's row and then updates nothing (RETURNING no row): exactly one wins. A row
# whose token has expired is taken over; a row of this very attempt too, so that the statement
# can be sent again after a connection lost before its answer came back.
FIRST_USE = """
INSERT INTO icans_cds_jti AS seen (key, expires_at, attempt)
VALUES (%(key)s, to_timestamp(%(expires)s), %(attempt)s)
ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at, attempt = EXCLUDED.attempt
WHERE seen.expires_at < to_timestamp(%(now)s) OR seen.attempt = EXCLUDED.attempt
RETURNING key
"""


def redacted(uri: str) -> str:
    """``uri`` without its password (for messages and logs)."""
    return re.sub(r"^(\w+://[^:/@]*:)[^@]*@", r"\1***@", uri)


class Database:
    """One worker process's connection to the ``cds.state_uri`` database, with the tables
    made; reopened after a failure."""

    def __init__(self, uri: str):
        self.uri = uri
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._down_until = 0.0
        self._down_reason = ""
        try:
            conn = self._conn = self._connect()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('icans_cds_state'))")
                conn.execute(TABLES)
        except psycopg.Error as exc:
            self.close()
            raise InvalidInputError(
                SETTING,
                redacted(uri),
                f"a PostgreSQL database this service can reach and create its tables in "
                f"({_first_line(exc)})",
            ) from None

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.uri,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )

    def _connection(self, what: str) -> psycopg.Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if time.monotonic() < self._down_until:
            raise StateUnavailable(f"{what}: {self._down_reason}")
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            self._down_until = time.monotonic() + DOWN_PAUSE_S
            self._down_reason = (
                f"the database of {SETTING} ({redacted(self.uri)}) cannot be reached "
                f"({_first_line(exc)})"
            )
            raise StateUnavailable(f"{what}: {self._down_reason}") from None
        return self._conn

    def execute(
        self, what: str, sql: LiteralString, params: Sequence | dict
    ) -> list[tuple[Any, ...]]:
        """Run one statement (its own transaction); the rows it returns. ``what``: the step,
        for the message of :class:`StateUnavailable`, raised when the database cannot be
        reached (after one more try on a new connection) or refuses the statement."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection(what)
                try:
                    cursor = conn.execute(sql, params)
                    return cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError as exc:  # connection lost, server shut down
                    self._drop()
                    if attempt == 2:
                        raise StateUnavailable(
                            f"{what}: the database of {SETTING} failed ({_first_line(exc)})"
                        ) from None
                except psycopg.Error as exc:
                    raise StateUnavailable(
                        f"{what}: the database of {SETTING} refused it ({_first_line(exc)})"
                    ) from None
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()


class PostgresReplayStore:
    """The ``jti`` values seen, in ``icans_cds_jti``: a token replayed to any replica sharing
    the database is refused."""

    def __init__(self, db: Database):
        self.db = db
        self._swept = float("-inf")

    def first_use(self, key: str, expires: float, now: float) -> bool:
        if now - self._swept > SWEEP_EVERY_S:
            self.db.execute(
                "forgetting expired jti values",
                "DELETE FROM icans_cds_jti WHERE expires_at < to_timestamp(%s)",
                [now],
            )
            self._swept = now
        rows = self.db.execute(
            "recording the token's jti",
            FIRST_USE,
            {"key": key, "expires": expires, "now": now, "attempt": uuid.uuid4()},
        )
        return bool(rows)


class PostgresExplanations:
    """The explanation records behind card links, in ``icans_cds_explanations``, each kept
    ``ttl_s`` seconds from when its card was made: a link opens on any replica sharing the
    database, until then."""

    def __init__(self, db: Database, ttl_s: int, clock: Callable[[], float] = time.time):
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self._swept = float("-inf")

    def put(self, record: dict) -> str:
        now = self.clock()
        if now - self._swept > SWEEP_EVERY_S:
            self.db.execute(
                "removing expired explanation records",
                "DELETE FROM icans_cds_explanations WHERE expires_at < to_timestamp(%s)",
                [now],
            )
            self._swept = now
        key = uuid.uuid4().hex
        self.db.execute(  # sent twice after a lost connection: the same row, once
            "storing the card's explanation record",
            "INSERT INTO icans_cds_explanations (id, record, expires_at) "
            "VALUES (%s, %s, to_timestamp(%s)) ON CONFLICT (id) DO NOTHING",
            [key, Jsonb(record), now + self.ttl_s],
        )
        return key

    def get(self, key: str) -> dict | None:
        if not re.fullmatch(r"[0-9a-f]{32}", key):
            return None
        rows = self.db.execute(
            "reading the card's explanation record",
            "SELECT record FROM icans_cds_explanations "
            "WHERE id = %s AND expires_at > to_timestamp(%s)",
            [key, self.clock()],
        )
        return rows[0][0] if rows else None

    def discard(self, key: str) -> None:
        """Remove a record whose link was never sent; with the database gone the request
        already fails (503), and the record expires with its time to live."""
        with contextlib.suppress(StateUnavailable):
            self.db.execute(
                "removing an unsent explanation record",
                "DELETE FROM icans_cds_explanations WHERE id = %s",
                [key],
            )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
