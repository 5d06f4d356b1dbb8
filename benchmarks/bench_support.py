"""Helpers shared by the benchmark scripts in this folder (they import it; it imports none of them).

Measuring: peak memory (:func:`peak_rss_mib`), a function run in a fresh process
(:func:`run_in_child`), timing statistics (:func:`spread`), lines of a log (:func:`line_count`).
Set-up, not timed: a scratch directory (:func:`scratch_dir`), a synthetic cohort
(:func:`generate_timed`, :func:`row_counts`), a quiet MLflow (:func:`quiet_mlflow`), a temporary
store (:func:`store_uri`, :func:`tracking_store`) and a champion trained into it
(:func:`loose_gates`, :func:`train_champion`, :func:`ensure_champion`). Printing: the machine
(:func:`machine`, :func:`usable_cpus`) and the verdicts (:func:`verdict`, :func:`targets_line`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- printing


def verdict(ok: bool) -> str:
    """How every benchmark reports on a target: MET or NOT MET."""
    return "MET" if ok else "NOT MET"


def targets_line(verdicts: dict[str, bool]) -> str:
    """The closing line of a run: ``targets: <target>: MET; <target>: NOT MET; ...``."""
    return "targets: " + "; ".join(f"{k}: {verdict(v)}" for k, v in verdicts.items())


def machine() -> str:
    """Python version, architecture, CPU count and platform, for the first line of a run."""
    return (
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPU(s), {sys.platform}"
    )


def usable_cpus() -> int | None:
    """The CPUs this process may run on (its affinity where the OS has one, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


# --------------------------------------------------------------------------- measuring


def peak_rss_mib(children: bool = False) -> float:
    """Peak RSS in MiB of this process, or with ``children`` of its largest waited-for child.

    ``ru_maxrss`` is in KiB on Linux and in bytes on macOS; for ``RUSAGE_CHILDREN`` it is the
    maximum over the descendants waited for, not their sum.
    """
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    value = resource.getrusage(who).ru_maxrss
    return value / (1024 * 1024) if sys.platform == "darwin" else value / 1024


def _send_result(fn: Callable[..., Any], args: tuple, conn: Connection) -> None:
    """In the child: send back what ``fn(*args)`` returns, or the exception it raises."""
    try:
        conn.send(fn(*args))
    except BaseException as exc:  # report it, do not leave the parent waiting
        conn.send(exc)
        raise
    finally:
        conn.close()


def run_in_child(fn: Callable[..., Any], *args: Any, what: str) -> Any:
    """``fn(*args)`` in a fresh process (multiprocessing "spawn"); returns what it returned.

    A fresh interpreter starts every run cold and makes the peak RSS read inside ``fn``
    (:func:`peak_rss_mib`) that run's own high-water mark. ``fn`` must be a module-level
    function, its arguments and result picklable. Raises ``RuntimeError`` naming ``what`` if
    the child raised, or died without an answer.
    """
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_send_result, args=(fn, args, send))
    proc.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"{what} died (exit code {proc.exitcode})") from None
    proc.join()
    if isinstance(result, BaseException):
        raise RuntimeError(f"{what} failed") from result
    return result


@dataclass(frozen=True)
class Spread:
    """Median, 95th and 99th percentiles and maximum of some timings, in their unit."""

    median: float
    p95: float
    p99: float
    max: float


def spread(values) -> Spread:
    """The :class:`Spread` of ``values``; all NaN if there are none (every request failed)."""
    a = np.asarray(values, dtype=float)
    if not len(a):
        return Spread(np.nan, np.nan, np.nan, np.nan)
    p95, p99 = np.percentile(a, [95, 99])
    return Spread(float(np.median(a)), float(p95), float(p99), float(a.max()))


# --------------------------------------------------------------------------- set-up (not timed)


@contextmanager
def scratch_dir(name: str, parent: str | None = None) -> Iterator[Path]:
    """A temporary directory ``bench-<name>-...`` (in ``parent`` if given), deleted on exit."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-", dir=parent) as tmp:
        yield Path(tmp)


def line_count(path: Path) -> int:
    """Lines in a text file such as the audit log; 0 if it was never written."""
    if not path.exists():
        return 0
    with path.open() as f:
        return sum(1 for _ in f)


def generate_timed(
    out: Path, n_patients: int, seed: int, workers: int, with_true_risk: bool = True
) -> tuple[dict, float]:
    """``generate_cohort`` (Parquet, real-world case mix) into ``out``: (manifest, seconds).

    Only the call is timed, not the generator's import.
    """
    from data.synthetic.cohort import CohortSpec, generate_cohort

    spec = CohortSpec(n_patients=n_patients, seed=seed, with_true_risk=with_true_risk)
    start = time.perf_counter()
    manifest = generate_cohort(out, spec, workers=workers)
    return manifest, time.perf_counter() - start


def row_counts(manifest: dict, unit: str = "") -> str:
    """``patients 1,000<unit>, daily 28,651<unit>, ...``: the rows of each generated table."""
    return ", ".join(f"{k} {v['rows']:,}{unit}" for k, v in manifest["tables"].items())


def quiet_mlflow() -> None:
    """Import mlflow (it configures its own loggers on import), then silence its per-model
    pickle and pip notices; its registration messages on stderr remain."""
    import logging
    import warnings

    import mlflow  # noqa: F401

    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("mlflow").setLevel(logging.ERROR)


def store_uri(root: Path) -> str:
    """The tracking URI of a sqlite MLflow store in the scratch directory ``root``."""
    return f"sqlite:///{root / 'mlflow.db'}"


def tracking_store(root: Path, settings, experiments: Iterable[str]):
    """The MLflow client for ``settings``, with ``experiments`` created up front.

    Their artefacts go under ``root`` whatever the store: MLflow's own default artefact root
    (``./mlruns``) would write into the working directory.
    """
    from registry.store import use_tracking

    client = use_tracking(settings)
    for name in experiments:
        client.create_experiment(name, artifact_location=(root / "mlartifacts" / name).as_uri())
    return client


def loose_gates():
    """Quality gates for a quick benchmark model (AUROC gap 0.06, 10 test events,
    non-inferiority margin 0.05): a benchmark needs a champion to use, not a good model."""
    from training.config import GateConfig

    return GateConfig(
        max_auroc_gap_to_true_risk=0.06, min_test_events=10, non_inferiority_margin=0.05
    )


def train_champion(
    cohort: Path,
    config,
    settings,
    client,
    purpose: str,
    describe: Callable[[Any], str] | None = None,
):
    """Train on ``cohort``, print how it went, and make the new version the champion.

    ``describe(result)``, if given, adds details of the model to the printed line. Returns
    the training result; ``purpose`` is as in :func:`ensure_champion`.
    """
    from training.train import train

    start = time.perf_counter()
    result = train(cohort, config, settings)
    details = f"{describe(result)}; " if describe else ""
    print(
        f"  trained in {time.perf_counter() - start:.1f} s: {settings.model_name} version "
        f"{result.model_version}, {details}promoted to '{settings.model_alias}': "
        f"{result.promoted} (gates: {result.gate.summary()})",
        flush=True,
    )
    ensure_champion(result, client, settings, purpose)
    return result


def ensure_champion(result, client, settings, purpose: str) -> None:
    """Point ``settings.model_alias`` at the version ``result`` registered.

    The benchmarks train with loose gates in a temporary store: they need a champion to
    ``purpose`` (serve, report on), not a good model. If the gates still refused it, the alias
    is moved by hand in that store, and the output says so.
    """
    if result.model_version is None:
        raise SystemExit(f"the training run registered no model: nothing to {purpose}")
    if not result.promoted:
        client.set_registered_model_alias(
            settings.model_name, settings.model_alias, result.model_version
        )
        print(
            f"  NOTE: not promoted by the gates; '{settings.model_alias}' moved to version "
            f"{result.model_version} by hand in the temporary store, for this benchmark only",
            flush=True,
        )
