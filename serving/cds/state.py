"""Where the CDS Hooks service keeps its state, chosen from the settings in this one place.

* ``cds.state_uri`` unset (the default, one host): the replay store is a SQLite file
  (``<artifacts_dir>/cds-jti.sqlite``) and the explanation records a directory
  (``<artifacts_dir>/cds-explanations``), shared by the workers of the replica (and by replicas
  only if they share that directory; SQLite on a network file system is not safe).
* ``cds.state_uri`` a ``postgresql://`` URI: both in that database
  (:mod:`serving.cds.postgres_stores`), shared by every replica behind a load balancer; a
  database that cannot be reached at start stops the worker with an error naming the setting.

Both backends provide the protocols of :mod:`serving.cds.stores`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from icans.config import Settings
from serving.cds.client_auth import SqliteReplayCache
from serving.cds.hooks import ExplanationStore
from serving.cds.stores import ExplanationRecords, ReplayStore

log = logging.getLogger("icans.serving.cds")


@dataclass(frozen=True)
class CdsState:
    """A worker's replay store and explanation records, and where they are (for the log)."""

    replays: ReplayStore
    explanations: ExplanationRecords
    where: str


def open_state(settings: Settings) -> CdsState:
    """The stores ``settings`` name, opened (tables and directories made); an unreachable
    database is an :class:`~icans.errors.InvalidInputError` naming ``cds_state_uri``."""
    uri = settings.cds.state_uri
    if uri is None:
        state = CdsState(
            SqliteReplayCache(settings.artifacts_dir / "cds-jti.sqlite"),
            ExplanationStore(settings.cds_explanations_dir, settings.cds.page_ttl_s),
            f"this host only ({settings.artifacts_dir})",
        )
    else:
        from serving.cds import postgres_stores  # psycopg only where a database is configured

        db = postgres_stores.Database(uri.get_secret_value())
        state = CdsState(
            postgres_stores.PostgresReplayStore(db),
            postgres_stores.PostgresExplanations(db, settings.cds.page_ttl_s),
            f"PostgreSQL, shared ({postgres_stores.redacted(uri.get_secret_value())})",
        )
    log.info("CDS Hooks replay store and explanation records: %s", state.where)
    return state


def check_state(settings: Settings) -> None:
    """For the checks run before any worker starts: the database of ``cds.state_uri``
    answers and holds its tables (made if missing); an
    :class:`~icans.errors.InvalidInputError` naming ``cds_state_uri`` otherwise. Nothing to
    check without it (the directories are made by the workers)."""
    uri = settings.cds.state_uri
    if uri is not None:
        from serving.cds import postgres_stores

        postgres_stores.Database(uri.get_secret_value()).close()
