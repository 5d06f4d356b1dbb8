"""The CDS Hooks service's state (``serving.cds.state``): the replay store of the clients'
``jti`` values and the explanation records behind card links, in both backends, the one-host
SQLite file and directory and a real PostgreSQL on 127.0.0.1 (``cds.state_uri``).

Two store objects on one storage stand for two workers or two replicas (each PostgreSQL store
holds a connection of its own). Checked: a replay is refused by the other, and of many racing
on the same ``jti`` exactly one wins; expired entries are forgotten and expired records never
served, then removed; the tables are made once when many start at once; a database that
cannot be reached at start is an error naming the setting, one lost later a
``StateUnavailable`` that leaves nothing written, and a dropped connection is reopened.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from cluster import free_port
from postgres_db import admin, close_database, new_database, running_postgres

from icans.config import load_settings
from icans.errors import InvalidInputError
from serving.cds.client_auth import SqliteReplayCache
from serving.cds.hooks import ExplanationStore
from serving.cds.postgres_stores import (
    DOWN_PAUSE_S,
    Database,
    PostgresExplanations,
    PostgresReplayStore,
)
from serving.cds.state import check_state, open_state
from serving.cds.stores import StateUnavailable

ON_POSTGRES = [pytest.mark.postgres, pytest.mark.server]


@pytest.fixture(scope="module")
def postgres():
    with running_postgres() as cluster:
        yield cluster


@pytest.fixture
def database(postgres, request):
    """A fresh database of its own for the test: its name and URI."""
    name = "t_" + request.node.name.lower().translate(str.maketrans("[]-", "___"))[:50]
    return name, new_database(postgres, name)


def rows(uri: str, table: str) -> int:
    with psycopg.connect(uri) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=ON_POSTGRES)])
def replay_stores(request, tmp_path):
    """``make()``: another replay store on the same storage (another worker or replica)."""
    if request.param == "sqlite":
        return lambda: SqliteReplayCache(tmp_path / "jti.sqlite")
    _, uri = request.getfixturevalue("database")
    return lambda: PostgresReplayStore(Database(uri))


def test_a_replay_is_refused_by_another_store_and_an_expired_jti_forgotten(replay_stores):
    a, b = replay_stores(), replay_stores()
    now = time.time()
    assert a.first_use("iss|1", now + 60, now)
    assert not b.first_use("iss|1", now + 60, now + 1)
    assert not a.first_use("iss|1", now + 60, now + 59)
    assert b.first_use("iss|2", now + 60, now)
    # 2 minutes later the first token has expired: its jti may be seen again (a new token)
    assert b.first_use("iss|1", now + 200, now + 120)
    assert not a.first_use("iss|1", now + 200, now + 121)


def test_of_replicas_racing_on_one_jti_exactly_one_wins(replay_stores):
    """Eight stores (connections) present each of 20 jti values at the same moment."""
    stores = [replay_stores() for _ in range(8)]
    now = time.time()
    for k in range(20):
        barrier = threading.Barrier(len(stores))

        def present(store, key=f"iss|race-{k}", barrier=barrier):
            barrier.wait()
            return store.first_use(key, now + 60, now)

        with ThreadPoolExecutor(len(stores)) as pool:
            won = list(pool.map(present, stores))
        assert won.count(True) == 1, (k, won)


@pytest.mark.postgres
@pytest.mark.server
def test_explanation_records_open_on_another_replica_until_they_expire(database):
    _, uri = database
    clock = [time.time()]
    a = PostgresExplanations(Database(uri), ttl_s=60, clock=lambda: clock[0])
    b = PostgresExplanations(Database(uri), ttl_s=60, clock=lambda: clock[0])
    record = {"patient": {"age_years": 60}, "warnings": ["w"], "model_version": "3"}
    key = a.put(record)
    assert len(key) == 32
    assert b.get(key) == record
    for bad in ("0" * 32, "../etc", "", key.upper()):
        assert b.get(bad) is None
    clock[0] += 59
    assert b.get(key) == record
    clock[0] += 2  # 61 s after it was made: never served again
    assert b.get(key) is None and a.get(key) is None
    assert rows(uri, "icans_cds_explanations") == 1  # not yet removed...
    fresh = b.put(record)  # ...until a write by a store that has not swept for a minute
    assert rows(uri, "icans_cds_explanations") == 1
    assert a.get(fresh) == record
    b.discard(fresh)  # a card that could not be audited: its link is never sent
    assert a.get(fresh) is None and rows(uri, "icans_cds_explanations") == 0


def test_explanation_files_are_refused_whole_when_they_cannot_be_written(tmp_path):
    """The one-host backend: a directory that cannot be written is a StateUnavailable, and no
    record (nor temporary file) is left."""
    store = ExplanationStore(tmp_path / "records", ttl_s=60)
    (tmp_path / "records").rmdir()
    (tmp_path / "records").write_text("a file where the directory was")
    with pytest.raises(StateUnavailable, match="storing the card's explanation record"):
        store.put({"patient": {}})


@pytest.mark.postgres
@pytest.mark.server
def test_expired_jti_values_are_deleted(database):
    _, uri = database
    store = PostgresReplayStore(Database(uri))
    now = time.time()
    for i in range(5):
        assert store.first_use(f"iss|{i}", now + 10, now)
    assert rows(uri, "icans_cds_jti") == 5
    assert store.first_use("iss|late", now + 300, now + 100)  # a minute on: expired swept
    assert rows(uri, "icans_cds_jti") == 1


@pytest.mark.postgres
@pytest.mark.server
def test_the_tables_are_made_once_when_many_workers_start_at_once(database):
    _, uri = database
    check_state(load_settings(cds_state_uri=uri))  # as icans serve does first
    barrier = threading.Barrier(8)

    def start(_):
        barrier.wait()
        return Database(uri)

    with ThreadPoolExecutor(8) as pool:
        databases = list(pool.map(start, range(8)))
    with psycopg.connect(uri) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'icans_cds_%' ORDER BY 1"
        ).fetchall()
    assert tables == [("icans_cds_explanations",), ("icans_cds_jti",)]
    now = time.time()
    assert [PostgresReplayStore(d).first_use("iss|x", now + 9, now) for d in databases].count(
        True
    ) == 1


def test_an_unreachable_database_at_start_names_the_setting_without_the_password(tmp_path):
    uri = f"postgresql://icans:not-a-real-secret@127.0.0.1:{free_port()}/icans"
    settings = load_settings(artifacts_dir=tmp_path, cds_state_uri=uri)
    with pytest.raises(InvalidInputError) as err:
        open_state(settings)
    assert err.value.field == "cds_state_uri"
    message = str(err.value)
    assert "icans:***@127.0.0.1" in message and "not-a-real-secret" not in message
    assert "reach" in message
    with pytest.raises(InvalidInputError) as err:
        check_state(settings)  # the same check, before any worker starts
    assert err.value.field == "cds_state_uri"
    with pytest.raises(InvalidInputError, match=r"cds_state_uri.*postgresql://"):
        load_settings(cds_state_uri="sqlite:///state.db")


def test_without_the_setting_the_state_stays_on_this_host(tmp_path):
    state = open_state(load_settings(artifacts_dir=tmp_path))
    assert isinstance(state.replays, SqliteReplayCache)
    assert state.replays.path == tmp_path / "cds-jti.sqlite"
    key = state.explanations.put({"a": 1})
    assert (tmp_path / "cds-explanations" / f"{key}.json").is_file()


@pytest.mark.postgres
@pytest.mark.server
def test_a_database_lost_while_serving_fails_the_call_and_keeps_nothing(postgres, database):
    name, uri = database
    state = open_state(load_settings(cds_state_uri=uri, cds_page_ttl_s=60))
    now = time.time()
    assert state.replays.first_use("iss|before", now + 60, now)
    kept = state.explanations.put({"n": 1})

    close_database(postgres, name)  # the database goes away under the open connection
    try:
        with pytest.raises(StateUnavailable, match="cds_state_uri") as err:
            state.replays.first_use("iss|during", now + 60, now)
        assert "not-a-real-secret" not in str(err.value)
        with pytest.raises(StateUnavailable, match="explanation record"):
            state.explanations.put({"n": 2})
        with pytest.raises(StateUnavailable):
            state.explanations.get(kept)
    finally:
        close_database(postgres, name, closed=False)

    # back: after the pause, the next call connects again; the refused jti was not recorded
    deadline = time.monotonic() + DOWN_PAUSE_S + 5
    while True:
        try:
            assert state.replays.first_use("iss|during", now + 60, now)
            break
        except StateUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert not state.replays.first_use("iss|before", now + 60, now)
    assert state.explanations.get(kept) == {"n": 1}
    assert rows(uri, "icans_cds_explanations") == 1  # the refused record is nowhere


@pytest.mark.postgres
@pytest.mark.server
def test_a_dropped_connection_is_reopened_without_failing_the_call(postgres, database):
    name, uri = database
    store = PostgresReplayStore(Database(uri))
    now = time.time()
    assert store.first_use("iss|1", now + 60, now)
    with admin(postgres) as conn:  # a database restart, as this connection sees it
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
    assert store.first_use("iss|2", now + 60, now)
    assert not store.first_use("iss|1", now + 60, now)
