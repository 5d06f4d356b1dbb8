"""Benchmark the BentoML service against ``mlflow models serve`` on the same registered model.

Run from the repository root::

    uv run python benchmarks/bench_serving.py
    uv run python benchmarks/bench_serving.py --patients 3000 --requests 2000 --concurrency 1 16

Setup (not timed): a 3,000-patient synthetic cohort is generated into a temporary directory and
trained with a fast :class:`training.config.TrainConfig` (2-fold CV, 20 bootstrap samples, one
learning-curve size; gates loosened: AUROC gap 0.06, 10 test events, non-inferiority margin
0.05) into a temporary sqlite MLflow store, so ``icans-risk`` has a version with the
``champion`` alias (if the gates still reject it, the alias is moved to it by hand in that
temporary store, and the output says so). Everything is deleted afterwards.

Two servers then run side by side, on 127.0.0.1 only, on free ports:

* ours: exactly what ``icans serve`` runs (``serving.launch.server_command`` with
  ``serving.launch.server_environment`` of the temporary store's settings): ``bentoml serve
  serving.service:IcansRisk`` with the workers configured on the service; the audit log goes
  into the temporary directory;
* mlflow: ``mlflow models serve -m models:/icans-risk/<version> --env-manager local`` with its
  default number of uvicorn workers (``MLFLOW_MODELS_WORKERS`` is removed from its environment).
  The registered model is a pickled :class:`model.risk_model.RiskModel`, so mlflow's scoring
  server must import this project's modules: it is started from the repository root (its
  uvicorn puts its working directory first on ``sys.path``) with the root on ``PYTHONPATH``.

Each is ready when ``GET /readyz`` (ours) or ``GET /ping`` (mlflow) answers 200, within 120 s.

Load: for each concurrency (1 and 16), each server gets 50 warm-up requests (not counted) and
then 2,000 requests from a closed-loop asyncio + httpx client (``concurrency`` requests in
flight, keep-alive connections, bodies serialised beforehand), cycling through ~200 different
(patient, landmark day) pairs of the cohort:

* ours: ``POST /v1/risk`` with the patient's JSON (``features.landmarks.patient_record``) and the
  answer includes the exact TreeSHAP explanation, the warnings and an audit-log line;
* mlflow: ``POST /invocations`` with the same patient's raw-layout row
  (``build_landmark_dataset``) as ``dataframe_split`` (NaN -> null), answered with the model's
  ``predict_proba`` (probability only; mlflow cannot explain).

Every response must be 200, and for a handful of patients both servers must return the same
probability (to 1e-6); otherwise a warning is printed (for a failed request: its status and
message, and the last line of the stack trace mlflow sends with its errors). Latency is per
request (client side); requests/s is counted requests over the wall time of the counted part.

Targets (issue 15): our throughput at concurrency 16 >= 10x mlflow's; our p99 at concurrency 1
<= 10 ms.

The client runs on the same machine as both servers and competes with them for the CPUs (the
CPU count and load average are printed); numbers are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from bench_support import (
    Spread,
    generate_timed,
    line_count,
    loose_gates,
    quiet_mlflow,
    scratch_dir,
    spread,
    store_uri,
    targets_line,
    tracking_store,
    train_champion,
    usable_cpus,
    verdict,
)

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
TARGET_THROUGHPUT_RATIO = 10.0  # issue 15 (issue 12: 5x)
TARGET_P99_MS = 10.0  # issue 15 (issue 12: 25 ms)
PROBABILITY_TOLERANCE = 1e-6
JSON_HEADERS = {"content-type": "application/json"}


# --------------------------------------------------------------------------- setup (not timed)


def _setup_model(root: Path, n_patients: int, seed: int, workers: int):
    """Cohort + fast training into a temporary store; returns (settings, version, cohort)."""
    from icans.config import Settings
    from icans.horizons import HORIZON_NAMES
    from training.config import TrainConfig

    cohort = root / "cohort"
    _, seconds = generate_timed(cohort, n_patients, seed, workers)
    print(f"  generated {n_patients:,} patients in {seconds:.1f} s", flush=True)

    settings = Settings(tracking_uri=store_uri(root), artifacts_dir=root / "artifacts")
    config = TrainConfig(
        seed=seed,
        cv_folds=2,
        bootstrap_samples=20,
        learning_curve_sizes=(13,),
        gates=loose_gates(),
        input_sets=(),
        horizons=HORIZON_NAMES,  # every horizon, as the shipped configuration
    )
    client = tracking_store(root, settings, [config.experiment])
    result = train_champion(cohort, config, settings, client, "serve")
    return settings, str(result.model_version), cohort


@dataclass
class Payloads:
    ours: list[bytes]
    mlflow: list[bytes]
    labels: list[str]
    raw_mismatches: int = 0


def _payloads(cohort: Path, n_distinct: int, seed: int) -> Payloads:
    """The same (patient, landmark) pairs as endpoint JSON and as raw-layout rows."""
    from api.patient import PatientObservation
    from cohort.reader import read_cohort
    from features.landmarks import build_landmark_dataset, patient_record
    from features.layout import RAW_COLUMNS
    from features.packing import to_raw

    tables = read_cohort(cohort, with_true_risk=False).tables
    ds = build_landmark_dataset(tables)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(ds), size=min(n_distinct, len(ds)), replace=False))
    columns = list(RAW_COLUMNS)
    out = Payloads([], [], [])
    for i in rows:
        pid, day = str(ds.patient_id[i]), int(ds.landmark_day[i])
        record = patient_record(tables, pid, day)
        raw = ds.raw[i]
        # The service builds its row from the JSON; it should be the dataset's row exactly.
        mine = to_raw(PatientObservation.model_validate(record))[0]
        if not np.array_equal(mine, raw, equal_nan=True):
            out.raw_mismatches += 1
        data = [None if math.isnan(v) else float(v) for v in raw]
        out.ours.append(json.dumps(record).encode())
        out.mlflow.append(
            json.dumps({"dataframe_split": {"columns": columns, "data": [data]}}).encode()
        )
        out.labels.append(f"{pid}@day{day}")
    return out


# --------------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    log_path: Path
    workers: str
    cwd: Path | None = None  # None: this process's working directory
    proc: subprocess.Popen | None = None
    ready_s: float = float("nan")
    started: float = float("nan")
    log_file: object = field(default=None, repr=False)
    known: set[tuple[int, str]] = field(default_factory=set)
    leftover: int = 0

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self.log_file = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own group, signalled as a whole in stop()
        )

    def poll_ready(self, client) -> bool:
        """One readiness probe; raises if the process has exited."""
        import httpx

        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with code {self.proc.returncode} before it was "
                f"ready:\n{self.log_tail()}"
            )
        try:
            ok = client.get(self.base + self.ready_path).status_code == 200
        except httpx.HTTPError:
            return False
        if ok:
            self.ready_s = time.perf_counter() - self.started  # since start()
        return ok

    def descendants(self) -> set[tuple[int, str]]:
        """(pid, start time) of every process below the one we started (Linux /proc).

        BentoML's supervisor (circus) starts each worker with ``setsid``, so the workers are
        not in our process group; they are tracked here so that stop() can end them by id.
        """
        if self.proc is None or not Path("/proc").is_dir():
            return set()
        children: dict[int, list[tuple[int, str]]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            pid = int(stat.parent.name)  # fields[1] is the parent pid, fields[19] the start time
            children.setdefault(int(fields[1]), []).append((pid, fields[19]))
        out, todo = set(), [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in out:
                    out.add(child)
                    todo.append(child[0])
        self.known |= out
        return out

    @staticmethod
    def _alive(pid: int, started: str) -> bool:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        return fields[19] == started and fields[0] != "Z"

    def stop(self) -> None:
        if self.proc is None:
            return
        self.descendants()  # remember the workers before the supervisor goes
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Workers still running after the supervisor exited: a moment to finish, then killed.
        deadline = time.monotonic() + 10
        left = [p for p in self.known if self._alive(*p)]
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = [p for p in left if self._alive(*p)]
        for pid, started in left:
            if self._alive(pid, started):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.leftover = len(left)
        if self.log_file is not None:
            self.log_file.close()

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in lines[-n:])

    def suspicious_log_lines(self, n: int = 8) -> tuple[int, list[str]]:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return 0, []
        pattern = re.compile(r"error|exception|traceback|warning", re.IGNORECASE)
        hits = [line for line in lines if pattern.search(line)]
        return len(hits), hits[:n]


def _wait_ready(servers: list[Server], timeout: float) -> None:
    """Probe all servers until each answers 200, each within ``timeout`` of its start."""
    import httpx

    waiting = list(servers)
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while waiting:
            waiting = [s for s in waiting if not s.poll_ready(client)]
            for s in waiting:
                if time.perf_counter() - s.started > timeout:
                    raise RuntimeError(
                        f"{s.name} not ready ({s.ready_path} != 200) within {timeout:.0f} s:\n"
                        f"{s.log_tail()}"
                    )
            if waiting:
                time.sleep(0.25)


def _mlflow_default_workers() -> str:
    """The default the installed CLI documents for ``mlflow models serve --workers``."""
    from mlflow.models.cli import serve

    option = next(p for p in serve.params if p.name == "workers")
    if option.default is not None:
        return str(option.default)
    m = re.search(r"default:\s*(\d+)", option.help or "")
    return m.group(1) if m else "unknown"


def _servers(root: Path, settings, version: str) -> tuple[Server, Server]:
    from serving.launch import PROJECT_ROOT, server_command, server_environment
    from serving.service import IcansRisk

    port = _free_port()
    env = server_environment(settings)
    ours = Server(
        "ours (bentoml)",
        server_command(HOST, port),
        env,
        port,
        "/readyz",
        root / "ours.log",
        str(IcansRisk.config.get("workers", "bentoml default")),
    )

    mlflow_port = _free_port()
    while mlflow_port == port:
        mlflow_port = _free_port()
    bin_dir = Path(sys.executable).parent
    mlflow_exe = bin_dir / "mlflow"
    mlflow_cmd = [str(mlflow_exe)] if mlflow_exe.exists() else [shutil.which("mlflow") or "mlflow"]
    mlflow_env = dict(os.environ)
    mlflow_env["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    mlflow_env.pop("MLFLOW_MODELS_WORKERS", None)  # its default, not whatever the shell says
    mlflow_env["PATH"] = f"{bin_dir}{os.pathsep}{mlflow_env.get('PATH', '')}"  # its uvicorn
    # The logged model is a pickled model.risk_model.RiskModel: the scoring server must import
    # this project's modules. Its uvicorn puts its working directory first on sys.path, so it
    # runs from the project root (not from wherever this script was started, which may hold
    # other 'model' or 'features' packages), with the root on PYTHONPATH too.
    mlflow_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), mlflow_env.get("PYTHONPATH", "")) if p
    )
    mlflow = Server(
        "mlflow models serve",
        [
            *mlflow_cmd,
            "models",
            "serve",
            "-m",
            f"models:/{settings.model_name}/{version}",
            "--env-manager",
            "local",
            "--host",
            HOST,
            "--port",
            str(mlflow_port),
        ],
        mlflow_env,
        mlflow_port,
        "/ping",
        root / "mlflow.log",
        _mlflow_default_workers(),
        cwd=PROJECT_ROOT,
    )
    return ours, mlflow


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    server: str
    concurrency: int
    requests: int
    latencies_ms: np.ndarray
    wall_s: float
    statuses: dict[int, int]
    errors: dict[str, int]

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def latency(self) -> Spread:
        return spread(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else math.nan


def _check_local(url: str) -> None:
    from urllib.parse import urlsplit

    if urlsplit(url).hostname != HOST:
        raise ValueError(f"refusing to send load to {url}: only {HOST} is allowed")


async def _drive(client, url: str, bodies: list[bytes], n: int, concurrency: int, headers):
    """``n`` POSTs with ``concurrency`` in flight; per-request latency, statuses, errors."""
    import httpx

    latencies = np.full(n, np.nan)
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            body = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            try:
                r = await client.post(url, content=body, headers=headers)
                await r.aread()
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies[i] = (time.perf_counter() - t0) * 1000.0
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies[~np.isnan(latencies)], time.perf_counter() - start, statuses, errors


async def _load(
    name: str, url: str, bodies, n: int, concurrency: int, warmup: int, headers
) -> LoadResult:
    import httpx

    _check_local(url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60.0, trust_env=False) as client:
        if warmup:
            await _drive(client, url, bodies, warmup, concurrency, headers)
        lat, wall, statuses, errors = await _drive(client, url, bodies, n, concurrency, headers)
    return LoadResult(name, concurrency, n, lat, wall, statuses, errors)


def _failure(response) -> str:
    """What a non-200 answer says: its status and message; for mlflow's JSON errors also the
    last line of the stack trace it sends (the exception raised while predicting)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"{response.status_code} {response.text[:200]}"
    message = str(body.get("message", body))[:200]
    trace = str(body.get("stack_trace") or "").strip().splitlines()
    return f"{response.status_code} {message}" + (f" [{trace[-1][:200]}]" if trace else "")


def _compare_probabilities(ours: Server, mlflow: Server, payloads: Payloads, k: int, headers):
    """Probability of ours vs mlflow for the first ``k`` patients; (count, worst diff, details)."""
    import httpx

    worst, bad = 0.0, []
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        for i in range(min(k, len(payloads.ours))):
            a = client.post(ours.base + "/v1/risk", content=payloads.ours[i], headers=headers)
            b = client.post(
                mlflow.base + "/invocations", content=payloads.mlflow[i], headers=JSON_HEADERS
            )
            if a.status_code != 200 or b.status_code != 200:
                bad.append(f"{payloads.labels[i]}: ours {_failure(a)} | mlflow {_failure(b)}")
                continue
            p_ours = float(a.json()["probability"])
            pred = b.json()["predictions"][0]
            p_mlflow = float(pred[1] if isinstance(pred, list) else pred)
            diff = abs(p_ours - p_mlflow)
            worst = max(worst, diff)
            if not diff <= PROBABILITY_TOLERANCE:
                bad.append(f"{payloads.labels[i]}: ours {p_ours:.8f} vs mlflow {p_mlflow:.8f}")
    return min(k, len(payloads.ours)), worst, bad


# --------------------------------------------------------------------------- report


def _report(results: list[LoadResult], ours: Server, mlflow: Server) -> dict[str, bool]:
    print()
    header = (
        f"{'server':<22} {'concurrency':>11} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'requests/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.server:<22} {r.concurrency:>11} {r.requests:>8} {r.latency.median:>8.2f} "
            f"{r.latency.p99:>8.2f} {r.rps:>10.1f}"
        )
    problems = [r for r in results if r.ok != r.requests or r.errors]
    for r in problems:
        print(
            f"WARNING: {r.server} at concurrency {r.concurrency}: {r.ok}/{r.requests} answered "
            f"200; statuses {r.statuses}, client errors {r.errors}"
        )
    if not problems:
        print("all counted responses: 200")

    def get(server: Server, c: int) -> LoadResult | None:
        return next((r for r in results if r.server == server.name and r.concurrency == c), None)

    verdicts: dict[str, bool] = {}
    concurrencies = sorted({r.concurrency for r in results})
    high, low = max(concurrencies), min(concurrencies)
    o_hi, m_hi, o_lo, m_lo = get(ours, high), get(mlflow, high), get(ours, low), get(mlflow, low)
    print()
    if o_hi and m_hi:
        ratio = o_hi.rps / m_hi.rps
        print(
            f"throughput at concurrency {high}: ours/mlflow = {ratio:.2f}x "
            f"({o_hi.rps:.1f} vs {m_hi.rps:.1f} requests/s)"
        )
        ok = ratio >= TARGET_THROUGHPUT_RATIO
        verdicts[f"throughput at concurrency {high} >= {TARGET_THROUGHPUT_RATIO:g}x mlflow's"] = ok
    if o_lo and m_lo:
        print(
            f"p99 at concurrency {low}: ours/mlflow = {o_lo.latency.p99 / m_lo.latency.p99:.2f}x "
            f"({o_lo.latency.p99:.2f} vs {m_lo.latency.p99:.2f} ms)"
        )
        verdicts[f"our p99 at concurrency {low} <= {TARGET_P99_MS:g} ms"] = (
            o_lo.latency.p99 <= TARGET_P99_MS
        )
    for name, ok in verdicts.items():
        print(f"target {name}: {verdict(ok)}")
    return verdicts


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=3_000, help="cohort size (3000)")
    parser.add_argument("--requests", type=int, default=2_000, help="counted requests (2000)")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted warm-up requests (50)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16], help="in-flight requests (1 16)"
    )
    parser.add_argument("--distinct", type=int, default=200, help="(patient, day) pairs (200)")
    parser.add_argument("--compare", type=int, default=10, help="patients compared (10)")
    parser.add_argument("--seed", type=int, default=7, help="cohort, training, sampling seed")
    parser.add_argument("--workers", type=int, default=2, help="generator workers (2)")
    parser.add_argument("--tmp-dir", default=None, help="where the cohort and store go")
    args = parser.parse_args(argv)
    if (
        args.patients < 100
        or args.requests < 1
        or args.warmup < 0
        or args.distinct < 1
        or min(args.concurrency) < 1
    ):
        parser.error(
            "--patients >= 100, --requests >= 1, --warmup >= 0, --distinct >= 1, --concurrency >= 1"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_mlflow()
    affinity = usable_cpus()
    print(
        f"bench_serving: Python {platform.python_version()}, {platform.machine()}, "
        f"{sys.platform}; CPU count {os.cpu_count()} (usable by this process: {affinity}); "
        f"load average (1 min) {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    headers = dict(JSON_HEADERS)
    if os.environ.get("ICANS_API_TOKEN"):  # the service would require it
        headers["authorization"] = f"Bearer {os.environ['ICANS_API_TOKEN']}"

    with scratch_dir("serving", args.tmp_dir) as root:
        print("setup (not timed) ...", flush=True)
        settings, version, cohort = _setup_model(root, args.patients, args.seed, args.workers)
        payloads = _payloads(cohort, args.distinct, args.seed)
        print(
            f"  {len(payloads.ours)} distinct (patient, landmark day) payloads; mean body "
            f"{np.mean([len(b) for b in payloads.ours]):.0f} B (ours), "
            f"{np.mean([len(b) for b in payloads.mlflow]):.0f} B (mlflow)",
            flush=True,
        )
        if payloads.raw_mismatches:
            print(
                f"WARNING: for {payloads.raw_mismatches} payload(s) the row the service builds "
                "from the JSON (to_raw) differs from the landmark dataset's row"
            )

        ours, mlflow = _servers(root, settings, version)
        results: list[LoadResult] = []
        try:
            for server in (ours, mlflow):
                server.start()
            _wait_ready([ours, mlflow], READY_TIMEOUT_S)
            for server in (ours, mlflow):
                print(
                    f"  {server.name}: ready in {server.ready_s:.1f} s on {server.base} "
                    f"(workers: {server.workers}; {len(server.descendants())} processes below it)"
                )
                where = f" (from {server.cwd})" if server.cwd else ""
                print(f"    command: {' '.join(server.command)}{where}")
            print(
                f"    ours: ICANS_MODEL_URI={ours.env['ICANS_MODEL_URI']}, audit log "
                f"{ours.env['ICANS_AUDIT_LOG']}"
            )

            import httpx

            with httpx.Client(timeout=10.0, trust_env=False) as client:
                info = client.get(ours.base + "/v1/model", headers=headers)
            served = info.json().get("version") if info.status_code == 200 else None
            print(f"  ours answers with version {served} (registered: {version})")
            if served != version:
                print(f"WARNING: ours serves version {served}, expected {version}: {info.text}")

            n, worst, bad = _compare_probabilities(ours, mlflow, payloads, args.compare, headers)
            print(f"  probabilities of {n} patients: largest |ours - mlflow| = {worst:.2e}")
            for line in bad:
                print(f"WARNING: probability mismatch or failure: {line}")

            print(f"  load average (1 min) before the load: {os.getloadavg()[0]:.2f}")
            for c in sorted(args.concurrency):
                for server, path, bodies in (
                    (ours, "/v1/risk", payloads.ours),
                    (mlflow, "/invocations", payloads.mlflow),
                ):
                    print(f"  load: {server.name}, concurrency {c} ...", flush=True)
                    r = asyncio.run(
                        _load(
                            server.name,
                            server.base + path,
                            bodies,
                            args.requests,
                            c,
                            args.warmup,
                            headers if server is ours else JSON_HEADERS,
                        )
                    )
                    results.append(r)
            print(f"  load average (1 min) after: {os.getloadavg()[0]:.2f}")
            for server in (ours, mlflow):
                count, lines = server.suspicious_log_lines()
                if count:
                    print(f"  {server.name} log: {count} line(s) with error/warning, first:")
                    for line in lines:
                        print(f"    {line[:300]}")
        finally:
            for server in (ours, mlflow):
                try:
                    server.stop()
                except Exception as exc:  # still stop the other one
                    print(f"WARNING: stopping {server.name} failed: {exc!r}")
                if server.leftover:
                    print(f"WARNING: {server.name}: {server.leftover} worker(s) outlived it")
        with contextlib.suppress(OSError):
            lines = line_count(Path(ours.env["ICANS_AUDIT_LOG"]))
            print(f"  audit log lines written by ours: {lines}")

    verdicts = _report(results, ours, mlflow)
    print(f"CPU count: {os.cpu_count()} (usable: {affinity})")
    print(targets_line(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
