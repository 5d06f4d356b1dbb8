"""Shared fixtures: synthetic cohorts generated once per test session, in memory, and trained
models registered in temporary MLflow stores.

Test tiers
----------
Markers say what a test starts or needs (registered in ``pyproject.toml``, ``--strict-markers``):

* ``champion``: needs the session champion (a 2,500-patient cohort generated and a model trained,
  registered and promoted: :func:`champion`) or trains a model with ``training.train`` itself.
  Applied here, by fixture name, to every test that uses ``champion`` directly or through
  another fixture (:func:`pytest_collection_modifyitems`), so a new test cannot forget it; by
  hand (``pytestmark``) to tests that train on their own.
* ``server``: starts a real server process (``bentoml serve``, ``mlflow server``, PostgreSQL)
  and talks to it over HTTP. By hand.
* ``cluster``: starts a local Dask cluster of worker processes (training on a cluster). By
  hand.
* ``postgres``, ``nginx``, ``browser``: need PostgreSQL's server programs, nginx, Debian's
  chromium (``make postgres``, ``make nginx``, ``make browser``; ``make test`` runs all three).
  By hand. Without the program a test is SKIPPED with the command that installs it, except in
  CI (``CI=true``), where it runs and fails: CI must never pass by skipping.
* ``slow``: integration-sized: a 20,000-patient session cohort (:func:`real_world`,
  :func:`myeloid_centre`; applied here by fixture name), a large cohort of its own, or minutes
  of work. By hand otherwise.

Tests with none of these are the fast tier: in-process, on small inputs, with
:func:`small_champion` (a tiny model fitted in seconds on a few hundred synthetic patients,
registered in a temporary sqlite store) wherever a registered model is needed but not the
champion's quality.

Commands::

    make test        # everything, what CI runs (.ci/run): installs chromium, postgresql, nginx
    make test-fast   # the fast tier, under 2 minutes on 2 cores, nothing installed with apt:
                     # uv run pytest -n 2 -m "not champion and not server and not cluster
                     #           and not postgres and not nginx and not browser and not slow"
    uv run pytest -n 2 -m champion     # one tier on its own, or any marker expression
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from data.synthetic.chunk import Block, generate_block
from data.synthetic.cohort import CohortSpec, generate_cohort
from data.synthetic.parameters import CASE_MIXES, GeneratorParameters
from data.synthetic.tables import block_tables


@dataclass
class CohortFrames:
    blocks: list[Block]
    tables: dict[str, pd.DataFrame]

    @property
    def patients_outcomes(self) -> pd.DataFrame:
        from data.synthetic.summary import routine_summaries

        df = self.tables["patients"].merge(self.tables["outcomes"], on="patient_id")
        return df.merge(routine_summaries(self.tables["daily"]), on="patient_id", how="left")


def make_cohort(case_mix: str, n_blocks: int, seed: int = 11) -> CohortFrames:
    params = GeneratorParameters()
    blocks = [
        generate_block(seed, k, 10_000, CASE_MIXES[case_mix], params) for k in range(n_blocks)
    ]
    per_block = [block_tables(b) for b in blocks]
    tables = {
        name: pd.concat([t[name] for t in per_block], ignore_index=True) for name in per_block[0]
    }
    return CohortFrames(blocks, tables)


@pytest.fixture(scope="session")
def block_of():
    """``block_of(n, seed)``: the tables of one generated block of ``n`` real-world patients
    (in memory, no files), made once per test process and handed out as copies, so a test may
    corrupt its tables without touching another's."""
    made: dict[tuple[int, int], dict[str, pd.DataFrame]] = {}

    def tables(n: int, seed: int) -> dict[str, pd.DataFrame]:
        if (n, seed) not in made:
            block = generate_block(seed, 0, n, CASE_MIXES["real-world"], GeneratorParameters())
            made[(n, seed)] = block_tables(block)
        return {name: frame.copy() for name, frame in made[(n, seed)].items()}

    return tables


@pytest.fixture(scope="session")
def real_world() -> CohortFrames:
    """20,000 patients of the real-world case mix (the default preset)."""
    return make_cohort("real-world", 2)


@pytest.fixture(scope="session")
def myeloid_centre() -> CohortFrames:
    """20,000 patients of the myeloid-heavy centre (many CLL1/CD123/CD7 products)."""
    return make_cohort("myeloid-centre", 2, seed=12)


@dataclass
class Champion:
    """A small cohort and a model trained on it, registered and promoted in a temporary store."""

    cohort: object
    store: object
    settings: object
    result: object
    trained_by: int = 0  # the process that trained it (one xdist worker builds it for all)


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory):
    """400 generated patients, for the tests of what a run does (records, fails cleanly,
    repeats itself, answers on the command line, runs on a cluster) rather than how good its
    model is: trained with :data:`support.SMALL` in seconds."""
    from data.synthetic.cohort import CohortSpec, generate_cohort

    directory = tmp_path_factory.mktemp("small-cohort") / "cohort"
    generate_cohort(directory, CohortSpec(n_patients=400, seed=8))
    return directory


@pytest.fixture(scope="session")
def champion(tmp_path_factory) -> Champion:
    """A 2,500-patient cohort and a model trained on it with :data:`support.FAST`, registered
    and promoted, shared by every file that needs a registered champion of some quality:
    training end to end, the reports, monitoring, the real server.

    Trained once per run (:func:`_built_once`), and each xdist worker works on its own copy of
    the registry database: tests register more versions into it and count them, so two
    workers must not share one. The artefacts stay where training wrote them and are only
    read, and a run logged into the copy writes under its own run id.
    """
    built = _built_once(tmp_path_factory, "champion", _train_champion)
    store = tmp_path_factory.mktemp("champion-store")
    shutil.copy(built.store / "mlflow.db", store / "mlflow.db")
    settings = built.settings.model_copy(update={"tracking_uri": f"sqlite:///{store}/mlflow.db"})
    return Champion(built.cohort, store, settings, built.result, built.trained_by)


@pytest.fixture(scope="session")
def small_champion(tmp_path_factory) -> Champion:
    """A tiny model registered and promoted (``@champion``) in a temporary sqlite store, built
    in seconds: 400 patients generated, trained with :data:`support.SMALL` (one tree depth, at
    most 40 trees, two uncertainty refits, open gates), as ``icans train`` runs. For the
    tests that need a registered model answering (the service's JSON contract, error bodies,
    schema fuzzing, FHIR and CDS Hooks in process, the patient page, batch scoring, roll-outs)
    but not the champion's quality.

    Built once per run (:func:`_built_once`); tests only read its store (a test that changes a
    registry works on a copy). A test module uses this, the session champion or
    :func:`horizon_champion`, never two (:func:`pytest_collection_modifyitems` refuses a mix): a
    service started in process on one store polls it, pointing MLflow's tracking URI there, and
    another model trained meanwhile would record into the wrong store.
    """
    return _built_once(tmp_path_factory, "small-champion", _train_small)


@pytest.fixture(scope="session")
def horizon_model(small_cohort):
    """A small risk model fitted for every horizon (72 hours, 7 days, day 28) on
    :func:`small_cohort`'s landmark rows, not registered: for the tests of what the service
    answers for a model of several horizons (the FHIR predictions, the CDS card), where the
    registered models of the fast tier estimate day 28 alone (:data:`support.SMALL`). Fixed
    trees (no search), two folds, two uncertainty refits (intervals exist) and no additive
    part (its fits take ~95% of the time here; the trees alone are monotone in the window
    too): the fit took 4 s on two cores shared with ten other busy processes (86 s with the
    additive part), the cohort's generation aside."""
    import numpy as np

    from cohort.reader import read_cohort
    from features.landmarks import build_landmark_dataset
    from icans.horizons import HORIZON_NAMES
    from model.risk_model import RiskModel

    ds = build_landmark_dataset(read_cohort(small_cohort).tables)
    labels = np.column_stack([ds.horizon_labels[h] for h in HORIZON_NAMES])
    trees = {"max_depth": 2, "learning_rate": 0.3, "min_child_weight": 2, "n_estimators": 20}
    model = RiskModel(
        hyperparameters=trees, uncertainty_refits=2, cv_folds=2, n_jobs=1, linear_offset=False
    )
    return model.fit(ds.raw, labels, ds.patient_id)


@pytest.fixture(scope="session")
def horizon_champion(small_cohort, tmp_path_factory) -> Champion:
    """A tiny model fitted for every horizon (next 72 hours, next 7 days, by day 28), registered
    and promoted in a temporary sqlite store of its own, as ``icans train`` runs: the
    :data:`support.SMALL` configuration with ``horizons`` all three and no additive part (its
    fits took 57 of a 91 s run on a loaded machine; without it the fit takes 3 s and the run
    32 s, most of it the report and MLflow), on :func:`small_cohort`'s 400 patients. For the
    tests of what the service answers per horizon (JSON, the patient page, the audit line); the
    other in-process service tests use :func:`small_champion` (day 28 alone). Built once per
    run, like it; a module uses one trained model fixture."""
    from support import SMALL

    from icans.horizons import HORIZON_NAMES

    def build(root: Path) -> Champion:
        return _train(
            root,
            None,
            SMALL.model_copy(update={"horizons": HORIZON_NAMES, "linear_offset": False}),
            small_cohort,
        )

    return _built_once(tmp_path_factory, "horizon-champion", build)


def _built_once(tmp_path_factory, name: str, build: Callable[[Path], Champion]) -> Champion:
    """``build(root)``, once per run: the first xdist worker to need it builds it under a file
    lock in the run's shared temporary directory, and the other reads it from there."""
    import fcntl
    import pickle

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's directory, shared by its workers
    root = base / name
    root.mkdir(exist_ok=True)
    built = root / "champion.pickle"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if built.exists():
            return pickle.loads(built.read_bytes())
        champion = build(root)
        (root / "champion.tmp").write_bytes(pickle.dumps(champion))
        (root / "champion.tmp").rename(built)
        return champion


def _train_champion(root: Path) -> Champion:
    from support import FAST

    return _train(root, CohortSpec(n_patients=2500, seed=3), FAST)


def _train_small(root: Path) -> Champion:
    from support import SMALL

    return _train(root, CohortSpec(n_patients=400, seed=5), SMALL)


def _train(root: Path, spec: CohortSpec | None, config, cohort: Path | None = None) -> Champion:
    """Generate a cohort of ``spec`` (or use ``cohort``), train on it, register and promote."""
    from icans.config import load_settings
    from training.train import train

    store = root / "store"
    if cohort is None:
        assert spec is not None
        cohort = root / "cohort"
        generate_cohort(cohort, spec)
    store.mkdir()
    settings = load_settings(
        tracking_uri=f"sqlite:///{store}/mlflow.db", artifacts_dir=store / "artifacts"
    )
    result = train(cohort, config, settings)
    assert result.promoted, result.gate.summary()
    return Champion(cohort, store, settings, result, os.getpid())


# --------------------------------------------------------------------------------------------
# Tiers: markers applied by fixture name, and skips for programs that are not installed
# --------------------------------------------------------------------------------------------

# The trained models: a module uses one (small_champion says why).
TRAINED = {"champion", "small_champion", "horizon_champion"}

# A test using one of these fixtures (directly or through another fixture) gets the marker.
MARKED_BY_FIXTURE = {
    "champion": "champion",
    "real_world": "slow",
    "myeloid_centre": "slow",
}


def _postgres_installed() -> bool:
    from ops.postgres_cluster import bin_dir
    from ops.tracking_server import TrackingServerError

    try:
        bin_dir()
    except TrackingServerError:
        return False
    return True


def _executable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


# marker -> (is the program there, what it is, the make target that installs it); the same
# places tests/browser.py, ops/postgres_cluster.py and tests/cluster.py look in.
PROGRAMS = {
    "browser": (lambda: _executable("/usr/bin/chromium"), "Debian's chromium", "make browser"),
    "postgres": (_postgres_installed, "PostgreSQL's server programs", "make postgres"),
    "nginx": (
        lambda: _executable(shutil.which("nginx") or "/usr/sbin/nginx"),
        "nginx",
        "make nginx",
    ),
}


# A module with any of these runs for minutes: started first, while the other worker takes the
# short ones, it does not end the run alone (xdist's worksteal then balances the rest).
LONG = ("postgres", "nginx", "server", "slow")


def _long_modules_first(items) -> None:
    """Reorder in place: the modules holding a long test first, each module's tests kept
    together and in order (a module's fixtures are set up once), the same order in every
    worker (a stable sort of the collection)."""

    def module(item) -> str:
        return getattr(item, "nodeid", "").split("::")[0]

    long = {module(i) for i in items if any(i.get_closest_marker(m) for m in LONG)}
    items.sort(key=lambda item: module(item) not in long)


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    models: dict[str, set[str]] = {}  # module -> the trained models its tests use
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in used:
                item.add_marker(marker)
        module = getattr(item, "nodeid", "").split("::")[0]
        models.setdefault(module, set()).update(used & TRAINED)
    mixed = sorted(m for m, used in models.items() if len(used) >= 2)
    if mixed:
        raise pytest.UsageError(
            f"{', '.join(mixed)}: a test module uses one of the champion, the small champion "
            "and the horizon champion (tests/conftest.py, small_champion)"
        )
    _long_modules_first(items)
    if in_ci():
        return  # CI installs every program (make test): a missing one fails, never skips
    missing = {}
    for item in items:
        for marker, (installed, what, target) in PROGRAMS.items():
            if item.get_closest_marker(marker) is None:
                continue
            if marker not in missing:
                missing[marker] = not installed()
            if missing[marker]:
                reason = f"{what} not installed: `{target}` installs it (`make test` does)"
                item.add_marker(pytest.mark.skip(reason=reason))
