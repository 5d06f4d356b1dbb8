"""In-process latency of one assessment: the pipeline's path against the compiled model.

Run from the repository root::

    uv run python benchmarks/bench_assess.py
    uv run python benchmarks/bench_assess.py --patients 3000 --repeats 300

Setup (not timed): a 3,000-patient synthetic cohort trained with the fast configuration of
``bench_serving.py`` into a temporary store (20 refits, as the shipped configuration), and the
patients' requests on day 3 parsed once. Then the heap is settled as a service worker settles
it once started (:func:`serving.rollout.settle_heap`: collected once, then frozen), so full
garbage collections of the start-up objects do not land in the timings, as they do not in
the service (``--no-freeze`` times without it).

Side by side in one run, alternating so both see the same machine noise:

* **pipeline**: what the Assessor did before the compiled model: ``RiskModel.log_odds`` (xgboost
  ``inplace_predict`` on the main fit), ``RiskModel.interval`` (one xgboost call and one additive
  part per refit), and ``RiskExplainer`` (xgboost ``pred_contribs``);
* **compiled**: ``CompiledModel.assess`` (one vectorised pass).

Both on the same predictor rows (the feature steps are timed apart), for one row and for a
batch of 256 rows. Then, for one patient at a time (each call a different one of the 256) and
for the 256 at once:

* the numbers: ``Assessor.assess_rows`` (raw rows -> feature steps -> probability, 95%
  interval, exact contributions per predictor);
* the assessment as served: ``Assessor.assess`` (the same, plus the labels and value texts of
  every predictor, the per-input view, the drivers and the warnings, as the endpoint returns
  them).

The model is fitted for every horizon (``icans.horizons``: 72 hours, 7 days, day 28), so an
assessment answers three predictor rows per patient, as the service does.

Figures: p50 and p99 of single calls in ms, and the ratio; for the stages of one patient also
the least mean time per call over 40 batches of 50 calls ("min of batches"), the reading least
moved by other processes on a shared machine. Targets: issue 15, one patient with interval and
contributions p50 under 1 ms (the numbers) and 256 under 25 ms; issues 28 and 30, one patient
with every horizon, as served, p50 under 1.5 ms (each reading is checked and printed).

``--before DIR`` also times the stages of one patient with the code of another checkout of the
project (``DIR``, e.g. a worktree at the commit before a change), side by side: the model and
the patients pickled once, then each checkout's stages timed in a process of its own (this
interpreter, the checkout first on ``sys.path``), the two alternated round after round, and the
least batch time of all rounds reported per stage and checkout::

    git worktree add /tmp/before <commit>
    uv run python benchmarks/bench_assess.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_serving import _setup_model  # noqa: E402
from bench_support import machine, quiet_mlflow, scratch_dir, targets_line  # noqa: E402


def _timed(f, repeats: int) -> np.ndarray:
    f()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        out.append((time.perf_counter() - t0) * 1000)
    return np.asarray(out)


class _Cycle:
    """Positions 0..n-1 in turn, so repeated calls do not meet the same patient's cached
    texts."""

    def __init__(self, n: int):
        self.n, self.i = n, -1

    def next(self) -> int:
        self.i = (self.i + 1) % self.n
        return self.i

    def next_slice(self) -> slice:
        i = self.next()
        return slice(i, i + 1)


def _line(name: str, ms: np.ndarray) -> str:
    return f"  {name:44s} p50 {np.median(ms):8.3f}  p99 {np.percentile(ms, 99):8.3f} ms"


def min_of_batches(f, n: int, batches: int = 40, calls: int = 50) -> float:
    """The least mean time per call (ms) over ``batches`` batches of ``calls`` calls, call
    ``k`` given position ``k % n`` (a different patient each call)."""
    best, k = float("inf"), 0
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            f(k % n)
            k += 1
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1000


# The stages of one patient, timed in a process of one checkout's code (``--before``): the
# same script for both checkouts, the model and the patients from one pickle.
STAGE_WORKER = """
import json, pickle, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, ".")
model, records, batches = pickle.load(open(sys.argv[1], "rb"))
from api.patient import PatientObservation
from features.packing import to_raw
from runtime.assessor import Assessor
from serving.rollout import settle_heap
assessor = Assessor(model)
patients = [PatientObservation.model_validate(r) for r in records]
raws = [to_raw(p) for p in patients]
xs = [model.horizon_rows(r) for r in raws]
n = len(patients)
stages = {
    "validation (PatientObservation)": lambda k: PatientObservation.model_validate(records[k]),
    "raw row (to_raw)": lambda k: to_raw(patients[k]),
    "feature steps + horizon rows": lambda k: model.horizon_rows(raws[k]),
    "compiled model (every horizon)": lambda k: assessor.compiled.assess(xs[k]),
    "the numbers (assess_rows)": lambda k: assessor.assess_rows(raws[k]),
    "as served (assess)": lambda k: assessor.assess([patients[k]]),
}
for f in stages.values():  # warm: compiled code, caches
    for k in range(n):
        f(k)
settle_heap()
print(json.dumps({name: min_of_batches(f, n, batches) for name, f in stages.items()}))
"""


def side_by_side(before: Path, model, records: list, scratch: Path, rounds: int = 4) -> None:
    """Per stage, the least batch time of ``before``'s code and of this checkout's, their
    processes alternated ``rounds`` times (40 batches of 50 calls per checkout in all)."""
    data = scratch / "stages.pkl"
    with data.open("wb") as f:
        pickle.dump((model, records, 40 // rounds), f)
    worker = inspect.getsource(min_of_batches) + STAGE_WORKER  # nothing imported from here
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    for r in range(rounds):
        order = (("before", before), ("after", ROOT))
        for label, tree in order if r % 2 == 0 else order[::-1]:
            out = subprocess.run(
                [sys.executable, "-c", worker, str(data)],
                cwd=tree,
                env=dict(os.environ, PYTHONPATH=str(tree)),
                capture_output=True,
                text=True,
                check=True,
            )
            for name, ms in json.loads(out.stdout.strip().splitlines()[-1]).items():
                best[label][name] = min(best[label].get(name, float("inf")), ms)
    print(f"  one patient, min of 40 batches of 50 calls, side by side with {before}:")
    print(f"  {'stage':44s} {'before':>8s} {'after':>8s} ms")
    for name, ms in best["after"].items():
        print(f"  {name:44s} {best['before'][name]:8.3f} {ms:8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmp-dir", default=None)
    parser.add_argument(
        "--no-freeze", action="store_true", help="time without settling the heap first"
    )
    parser.add_argument(
        "--before", type=Path, default=None, help="another checkout, timed side by side"
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    quiet_mlflow()

    from api.patient import parse_patient
    from cohort.reader import read_cohort
    from features.landmarks import patient_record
    from features.packing import to_raw
    from model.explain import RiskExplainer
    from registry.store import load_registered
    from runtime.assessor import Assessor

    print(machine(), flush=True)
    with scratch_dir("assess", args.tmp_dir) as root:
        settings, version, cohort = _setup_model(root, args.patients, args.seed, 2)
        model = load_registered(settings.model_uri, settings).model
        tables = read_cohort(cohort).tables
    patients, records = [], []
    for pid in tables["patients"]["patient_id"]:
        try:
            record = patient_record(tables, pid, 3)
            patients.append(parse_patient(record))
        except ValueError:
            continue
        records.append(record)
        if len(patients) == 256:
            break
    assessor = Assessor(model)  # one thread for xgboost, the compiled model built
    compiled, explainer = assessor.compiled, RiskExplainer(model, nthread=1)
    raw = np.vstack([to_raw(p) for p in patients])
    x = model.transform(raw)

    def pipeline(rows):
        return model.log_odds(rows), model.interval(rows), explainer.explain_features(rows)

    print(
        f"model version {version}: {len(model.refits_)} refits, "
        f"{model.hyperparameters_['n_estimators']} trees of depth "
        f"{model.hyperparameters_['max_depth']} per fit; horizons {', '.join(model.horizons_)}"
    )
    if args.before is not None:
        with scratch_dir("assess-stages", args.tmp_dir) as scratch:
            side_by_side(args.before.resolve(), model, records, scratch)
    if not args.no_freeze:
        from serving.rollout import settle_heap

        settle_heap()  # as a service worker does once started
    print(f"heap: {'not frozen' if args.no_freeze else 'collected once, then frozen (gc.freeze)'}")
    results = {}
    for label, rows in (("1 row", x[:1]), ("256 rows", x[:256])):
        n = args.repeats if len(rows) == 1 else max(20, args.repeats // 10)
        a = b = np.empty(0)
        for _ in range(2):  # alternate, twice
            a = np.concatenate([a, _timed(lambda r=rows: pipeline(r), n // 2)])
            b = np.concatenate([b, _timed(lambda r=rows: compiled.assess(r), n // 2)])
        results[label] = (a, b)
        print(_line(f"model, {label}: pipeline (xgboost calls)", a))
        print(_line(f"model, {label}: compiled", b))
        print(f"  {'':44s} ratio {np.median(a) / np.median(b):.1f}x")
    cycle = _Cycle(len(patients))  # one call, one patient: each call a different one
    feats = _timed(lambda: model.transform(raw[cycle.next_slice()]), args.repeats)
    print(_line("feature steps, 1 row", feats))
    core_one = _timed(lambda: assessor.assess_rows(raw[cycle.next_slice()]), args.repeats)
    core_batch = _timed(lambda: assessor.assess_rows(raw), max(20, args.repeats // 10))
    one = _timed(lambda: assessor.assess([patients[cycle.next()]]), args.repeats)
    batch = _timed(lambda: assessor.assess(patients), max(20, args.repeats // 10))
    n = len(patients)
    core_min = min_of_batches(lambda k: assessor.assess_rows(raw[k : k + 1]), n)
    one_min = min_of_batches(lambda k: assessor.assess([patients[k]]), n)
    print("  the numbers (Assessor.assess_rows: features, probability, interval, contributions)")
    print(_line("  1 patient", core_one) + f"  (min of batches {core_min:.3f})")
    print(_line("  256 patients", core_batch))
    print("  the assessment as served (Assessor.assess: + labels, value texts, per-input view,")
    print("  drivers, warnings)")
    print(_line("  1 patient", one) + f"  (min of batches {one_min:.3f})")
    print(_line("  256 patients", batch))
    print(f"  load average {os.getloadavg()[0]:.2f}")
    print(
        targets_line(
            {
                "1 patient p50 < 1 ms (the numbers)": float(np.median(core_one)) < 1.0,
                "256 patients < 25 ms (the numbers)": float(np.median(core_batch)) < 25.0,
                "1 patient p50 < 1.5 ms (as served, every horizon)": float(np.median(one)) < 1.5,
                "256 patients < 25 ms (as served)": float(np.median(batch)) < 25.0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
