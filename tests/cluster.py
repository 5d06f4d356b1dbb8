"""Replicas of the service behind a real load balancer, all on 127.0.0.1, and a load to send.

* :class:`Replica`: one ``bentoml serve`` of the service (the command ``icans serve`` runs),
  in its own process group, with its own settings;
* :class:`Nginx`: Debian's nginx (``make nginx`` installs it) in front of them. The
  configuration is the README's scale-out layout: round robin over the replicas, keep-alive
  connections to them, a request passed to the next replica when connecting to one fails, and
  a prediction (``/v1/``, a POST) also when a replica dies before answering it (never after a
  replica has answered). Everything nginx writes stays in one directory;
* :class:`Load`: threads posting patients to ``/v1/risk`` until stopped, keeping every answer;
  :func:`roll_out_under_load` moves the alias while it runs, and :class:`RollOut` checks and
  sums up the answers;
* what a roll-out needs: requests (:func:`landmark_requests`), a second version whose numbers
  differ (:func:`recalibrated_version`), and each version's own answers computed in process
  (:func:`probabilities`).

Used by ``tests/test_scale_out.py`` (on SQLite) and ``benchmarks/bench_rollout.py`` (the whole
layout on the PostgreSQL tracking server).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.patient import parse_patient
from cohort.reader import read_cohort
from features.landmarks import SPARSE_LANDMARKS, build_landmark_dataset, patient_record
from serving.launch import server_command, server_environment
from serving.model_version import ModelRuntime

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def landmark_requests(cohort, n: int = 24) -> list[dict]:
    """Landmark rows of the cohort (patients still at risk on their day), as requests."""
    tables = read_cohort(cohort).tables
    ds = build_landmark_dataset(tables, SPARSE_LANDMARKS)
    rows = range(0, len(ds.patient_id), len(ds.patient_id) // n)
    return [patient_record(tables, ds.patient_id[i], int(ds.landmark_day[i])) for i in rows][:n]


def probabilities(settings, version: str, patients: list[dict]) -> list[float]:
    """What the version gives each patient, computed in this process."""
    uri = f"models:/{settings.model_name}/{version}"
    runtime = ModelRuntime.load(uri, settings.model_copy(update={"model_uri": uri}))
    return [a.probability for a in runtime.assess([parse_patient(p) for p in patients])]


def recalibrated_version(settings, old: str, directory: Path) -> str:
    """A second version whose numbers differ from ``old``'s: ``old`` recalibrated (intercept
    and slope) on a myeloid-centre cohort generated in ``directory``, registered under the
    alias ``candidate`` (not promoted). Returns its version."""
    from support import SMALL

    from data.synthetic.cohort import CohortSpec, generate_cohort
    from training.train import Update, train

    generate_cohort(directory, CohortSpec(n_patients=600, seed=21, case_mix="myeloid-centre"))
    result = train(
        directory,
        SMALL,  # open gates: what is rolled out is a second version, not a better one
        settings.model_copy(update={"model_alias": "candidate"}),
        update=Update(f"models:/{settings.model_name}/{old}", "intercept_and_slope"),
    )
    return result.model_version


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> dict:
    """Wait until the service at ``url`` (started as ``proc``, writing ``log``) answers
    ``/readyz`` with 200; its body. RuntimeError with the log's tail if the process exits or
    the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            response = httpx.get(url + "/readyz", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class Replica:
    """One replica of the service on its own port, started now; :meth:`ready` waits for it."""

    def __init__(self, settings, port: int, log: Path, env: dict[str, str] | None = None):
        self.port, self.log = port, log
        self.url = f"http://127.0.0.1:{port}"
        serve = settings.serve.model_copy(update={"port": port, "public_url": self.url})
        settings = settings.model_copy(update={"serve": serve})
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                server_command("127.0.0.1", port),
                env=server_environment(settings) | (env or {}),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self, timeout: float = 180) -> dict:
        """Wait for ``/readyz``; its body (the version answering)."""
        return wait_ready(self.url, self.proc, self.log, timeout)

    def stop(self) -> None:
        stop_group(self.proc)


@dataclass
class Answer:
    """One call of the load: which patient, when, and what came back."""

    patient: int
    sent: float  # monotonic seconds
    status: int  # 0: no HTTP answer at all
    body: dict | None
    error: str = ""


class Load:
    """``threads`` clients posting the patients in turn to ``url + /v1/risk`` until
    :meth:`stop`; every answer is kept in :attr:`answers`."""

    def __init__(self, url: str, patients: list[dict], threads: int = 4):
        self.url, self.patients = url, patients
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = itertools.count()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                i = next(self._next) % len(self.patients)
                sent = time.monotonic()
                try:
                    r = client.post(self.url + "/v1/risk", json=self.patients[i])
                    body = r.json() if r.status_code == 200 else None
                    answer = Answer(i, sent, r.status_code, body, "" if body else r.text[:300])
                except httpx.HTTPError as exc:
                    answer = Answer(i, sent, 0, None, f"{type(exc).__name__}: {exc}")
                with self._lock:
                    self.answers.append(answer)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        return self.answers


CONF = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream icans {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_connect_timeout 2s;
        location / {{
            proxy_pass http://icans;
            proxy_next_upstream error timeout;
        }}
        location /v1/ {{
            proxy_pass http://icans;
            proxy_next_upstream error timeout non_idempotent;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground of its own process group, stopped by :meth:`stop`."""

    def __init__(self, directory: Path, port: int, upstreams: list[int]):
        if not Path(NGINX).exists():
            raise RuntimeError(f"nginx is not installed ({NGINX}): 'make nginx' installs it")
        self.directory, self.port = directory, port
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "nginx.conf"
        conf.write_text(
            CONF.format(
                user="user root;\n" if os.geteuid() == 0 else "",
                dir=directory,
                port=port,
                servers="\n".join(f"        server 127.0.0.1:{p};" for p in upstreams),
            )
        )
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log()}")
            try:
                httpx.get(self.url + "/livez", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"nginx did not answer: {self.log()}")

    def log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def stop(self) -> None:
        stop_group(self.proc, timeout=15)  # TERM: nginx's fast shutdown


@dataclass
class RollOut:
    """What a promotion under load gave: every answer, and when the alias moved."""

    answers: list[Answer]
    promoted_at: float  # monotonic seconds
    old: str
    new: str

    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def inconsistent(self, expected: dict[str, list[float]]) -> list[Answer]:
        """Answers naming a version other than the two, or whose probability is not exactly
        what the version they name gives their patient (exact, though the replicas are other
        processes: same machine, and the served path adds up each row on its own in a fixed
        order, no BLAS, so a row alone gives what it gives in this process's batch)."""
        return [
            a
            for a in self.answers
            if a.body is not None
            and (
                a.body["model_version"] not in expected
                or a.body["probability"] != expected[a.body["model_version"]][a.patient]
            )
        ]

    def summary(self) -> dict:
        versions = [a.body["model_version"] for a in self.answers if a.body]
        old_times = [
            a.sent - self.promoted_at
            for a in self.answers
            if a.body and a.body["model_version"] == self.old
        ]
        span = max(a.sent for a in self.answers) - min(a.sent for a in self.answers)
        return {
            "requests": len(self.answers),
            "failed": len(self.failed()),
            "requests_per_s": round(len(self.answers) / span, 1) if span else None,
            "by_version": {v: versions.count(v) for v in (self.old, self.new)},
            "last_old_answer_s_after_promotion": round(max(old_times), 2) if old_times else None,
        }


def roll_out_under_load(
    url: str,
    patients: list[dict],
    promote,
    old: str,
    new: str,
    threads: int = 4,
    before_s: float = 3.0,
    timeout_s: float = 90.0,
) -> RollOut:
    """Post ``patients`` to ``url`` from ``threads`` clients; after ``before_s`` call
    ``promote()`` (move the alias to ``new``); keep the load on until the last 40 answers all
    name ``new`` (every worker has swapped) and 2 s more, or ``timeout_s``."""
    load = Load(url, patients, threads)
    time.sleep(before_s)
    promoted_at = time.monotonic()
    promote()
    deadline = promoted_at + timeout_s
    while time.monotonic() < deadline:
        time.sleep(1)
        recent = [a.body["model_version"] for a in load.answers[-40:] if a.body]
        if len(recent) == 40 and set(recent) == {new}:
            break
    time.sleep(2)
    return RollOut(load.stop(), promoted_at, old, new)
