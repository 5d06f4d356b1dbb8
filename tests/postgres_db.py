"""A real PostgreSQL on 127.0.0.1 for tests of what the service keeps in a database: the
tracking server's own cluster (:class:`ops.postgres_cluster.Cluster`: initdb, pg_ctl, every
loopback connection trusted) in a temporary directory on a free port, and fresh databases in it.

The directory is made under the system's temporary directory (not pytest's, which only root may
enter): as root, PostgreSQL runs as the ``postgres`` user. Without fsync: a test's data need not
survive a power cut, and its shutdown then takes seconds instead of tens of seconds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from cluster import free_port

from ops.postgres_cluster import HOST, SUPERUSER, Cluster


@contextmanager
def running_postgres() -> Iterator[Cluster]:
    """A cluster started now, stopped and removed afterwards whatever happened."""
    base = Path(tempfile.mkdtemp(prefix="icans-pg-"))
    base.chmod(0o755)
    cluster = Cluster(base / "pgdata", base / "run", base / "pg.log", free_port())
    try:
        cluster.start()
        with admin(cluster) as conn:
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("SELECT pg_reload_conf()")
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def admin(cluster: Cluster) -> psycopg.Connection:
    """A superuser's connection to the maintenance database (autocommit)."""
    return psycopg.connect(
        host=HOST, port=cluster.port, user=SUPERUSER, dbname="postgres", autocommit=True
    )


def new_database(cluster: Cluster, name: str) -> str:
    """An empty database ``name`` (an identifier) owned by a role ``icans`` with a password;
    its ``postgresql://`` URI, password included (loopback is trusted: it is not checked)."""
    with admin(cluster) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'icans'").fetchone():
            conn.execute("CREATE ROLE icans LOGIN PASSWORD 'not-a-real-secret'")
        conn.execute(f"CREATE DATABASE {name} OWNER icans")
    return f"postgresql://icans:not-a-real-secret@{HOST}:{cluster.port}/{name}"


def close_database(cluster: Cluster, name: str, closed: bool = True) -> None:
    """Make the database ``name`` refuse new connections and end the open ones (as a server
    going down does, for this database only), or (``closed`` False) accept them again."""
    with admin(cluster) as conn:
        conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'false' if closed else 'true'}")
        if closed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
