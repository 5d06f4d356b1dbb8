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

Figures: p50 and p99 in ms, and the ratio. Targets of issue 15: one patient with interval and
contributions p50 under 1 ms; 256 under 25 ms (both readings are checked and printed).
"""

from __future__ import annotations

import argparse
import os
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmp-dir", default=None)
    parser.add_argument(
        "--no-freeze", action="store_true", help="time without settling the heap first"
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
    patients = []
    for pid in tables["patients"]["patient_id"]:
        try:
            patients.append(parse_patient(patient_record(tables, pid, 3)))
        except ValueError:
            continue
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
        f"{model.hyperparameters_['max_depth']} per fit"
    )
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
    print("  the numbers (Assessor.assess_rows: features, probability, interval, contributions)")
    print(_line("  1 patient", core_one))
    print(_line("  256 patients", core_batch))
    print("  the assessment as served (Assessor.assess: + labels, value texts, per-input view,")
    print("  drivers, warnings)")
    print(_line("  1 patient", one))
    print(_line("  256 patients", batch))
    print(f"  load average {os.getloadavg()[0]:.2f}")
    print(
        targets_line(
            {
                "1 patient p50 < 1 ms (the numbers)": float(np.median(core_one)) < 1.0,
                "256 patients < 25 ms (the numbers)": float(np.median(core_batch)) < 25.0,
                "1 patient p50 < 1 ms (as served)": float(np.median(one)) < 1.0,
                "256 patients < 25 ms (as served)": float(np.median(batch)) < 25.0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
