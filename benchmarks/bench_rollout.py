"""Promote under load on the whole scale-out layout, from a fresh clone, then stop everything.

    uv run python benchmarks/bench_rollout.py [--patients 2500] [--threads 4] [--keep]

Starts, all on 127.0.0.1 and under one scratch directory (``artifacts/bench-rollout``):
PostgreSQL and the MLflow tracking server on it (``icans tracking start``'s library,
:mod:`ops.tracking_server`); trains a champion through the server (``icans train``'s
library); starts two replicas of the service (two workers each, following ``@champion`` every
second) and Debian's nginx in front of them (``make nginx``); registers a second version (the
champion recalibrated on a myeloid-centre cohort, so its numbers differ); sends load through
nginx, moves ``@champion`` to the new version, and keeps the load on until every worker has
swapped. Then it stops nginx, the replicas and the tracking server, and checks that no process
of any is left.

Prints: requests, failed requests (target 0), requests/s, answers per version, answers whose
probability is not exactly what the version they name gives (target 0), seconds from the
promotion to the last answer of the old version, and each replica's ``/readyz`` afterwards.
The replicas, nginx and the load client share this machine's cores: requests/s here is not a
throughput figure (``bench_serving.py`` is).
The load and the cluster helpers are the scale-out test's (``tests/cluster.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench_support import machine, quiet_mlflow, targets_line, train_champion  # noqa: E402
from cluster import (  # noqa: E402
    Nginx,
    Replica,
    free_port,
    landmark_requests,
    probabilities,
    recalibrated_version,
    roll_out_under_load,
)
from support import FAST  # noqa: E402  (the tests' fast configuration)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    from mlflow import MlflowClient

    from data.synthetic.cohort import CohortSpec, generate_cohort
    from icans.config import load_settings
    from ops import tracking_server

    quiet_mlflow()
    print(machine(), f"load {os.getloadavg()[0]:.2f}", flush=True)
    scratch = ROOT / "artifacts" / "bench-rollout"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    base = load_settings(
        artifacts_dir=scratch,
        tracking_server_port=free_port(),
        tracking_db_port=free_port(),
    )
    replicas: list[Replica] = []
    lb = None
    t0 = time.monotonic()
    try:
        started = tracking_server.start(base)
        uri = started.status.tracking_uri
        print(f"tracking server: {uri} on PostgreSQL ({time.monotonic() - t0:.1f} s)", flush=True)
        serve = base.serve.model_copy(update={"model_poll_seconds": 1.0})
        settings = base.model_copy(update={"tracking_uri": uri, "serve": serve})
        client = MlflowClient(uri, uri)

        cohort = scratch / "cohort"
        generate_cohort(cohort, CohortSpec(n_patients=args.patients, seed=3))
        old = train_champion(cohort, FAST, settings, client, "serve").model_version

        ports = [free_port(), free_port()]
        replicas = [Replica(settings, p, scratch / f"replica-{p}.log") for p in ports]
        new = recalibrated_version(settings, old, scratch / "myeloid")
        patients = landmark_requests(cohort)
        expected = {v: probabilities(settings, v, patients) for v in (old, new)}
        print(f"registered version {new} (recalibrated on a myeloid-centre cohort)", flush=True)
        for r in replicas:
            print(f"replica :{r.port} ready, answering with version {r.ready()['model_version']}")
        lb = Nginx(scratch / "nginx", free_port(), ports)
        print(f"nginx on {lb.url} in front of both", flush=True)

        roll_out = roll_out_under_load(
            lb.url,
            patients,
            lambda: client.set_registered_model_alias(settings.model_name, "champion", new),
            old,
            new,
            threads=args.threads,
        )
        summary = roll_out.summary()
        inconsistent = roll_out.inconsistent(expected)
        print(f"promoted version {new} under load: " + json.dumps(summary))
        print(f"answers whose probability is not their version's: {len(inconsistent)}")
        ready = [httpx.get(r.url + "/readyz", timeout=5).json() for r in replicas]
        for r, body in zip(replicas, ready, strict=True):
            print(f"replica :{r.port} /readyz: " + json.dumps(body))
    finally:
        if lb is not None:
            lb.stop()
        for r in replicas:
            r.stop()
        stopped = tracking_server.stop(base)
        print(f"stopped: nginx, {len(replicas)} replicas, {', '.join(stopped) or 'nothing'}")
    left = [  # PostgreSQL and mlflow name the scratch directory; replicas and nginx are ours
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if str(scratch) in " ".join(p.info["cmdline"] or [])
    ] + [x.proc.pid for x in [*replicas, *([lb] if lb else [])] if x.proc.poll() is None]
    print(f"processes left: {len(left)}; total {time.monotonic() - t0:.0f} s")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    ok = {
        "0 failed requests": summary["failed"] == 0,
        "every answer its version's": not inconsistent,
        "every replica on the new version": all(b["model_version"] == new for b in ready),
        "nothing left running": not left,
    }
    print(targets_line(ok))
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
