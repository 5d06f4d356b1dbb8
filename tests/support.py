"""Shared test settings: fast and tiny training configurations and the in-process service app."""

from __future__ import annotations

from features.landmarks import SPARSE_LANDMARKS
from training.config import GateConfig, SearchSpace, TrainConfig

# Small and fast: one hyper-parameter candidate (and one baseline penalty), few bootstrap
# samples and refits. The gates are the
# defaults except the AUROC-gap and event-count gates, loosened for 2,500 patients.
FAST = TrainConfig(
    cv_folds=2,
    search=SearchSpace(max_depth=(3,), learning_rate=(0.1,)),
    bootstrap_samples=30,
    uncertainty_refits=8,
    learning_curve_sizes=(13, 100),
    learning_curve_repeats=2,
    logistic_c_grid=(0.1,),  # the logistic baseline with one penalty (no inner search)
    # A 2,500-patient test cohort holds 625 held-out patients and ~100 events a landmark: its
    # AUROC, calibration slope and calibration intercept carry intervals of about +/-0.05,
    # +/-0.2 and +/-0.2, so the gates are widened by as much. (The seed-3 cohort's held-out
    # patients have fewer events than predicted by chance: the exact true risk itself has a
    # calibration intercept of -0.23 there, the model -0.32 without recalibration.)
    gates=GateConfig(
        max_auroc_gap_to_true_risk=0.06,
        min_test_events=10,
        calibration_slope_min=0.7,
        calibration_slope_max=1.3,
        calibration_intercept_max_abs=0.4,
    ),
    # Two folds train on half the patients each: their out-of-fold slope understates the
    # full-data model's (seed 3: 0.74 out of fold, ~1.0 held out), so a recalibration fitted on
    # it over-shrinks (held-out slope 1.33). Recalibrate only when far off.
    recalibrate_if_slope_outside=(0.7, 1.3),
    # no input-set models (three more tuned fits); tests/test_input_set_comparison.py fits two
    input_sets=(),
    # the target alone: the champion's quality tests are the day-28 model's, and each horizon
    # more fits each landmark row again (tests/test_horizon_model.py trains every horizon)
    horizons=("day28",),
    # the sparse landmarks, every row of them: a third of the daily rows (the tests of the
    # daily landmarks and the stride build their own rows)
    landmarks=SPARSE_LANDMARKS,
    training_day_stride=1,
)

# FAST for the tests that check what a training run does (registers, gates, records, fails
# cleanly, repeats itself), not how good the model is: two uncertainty refits (intervals still
# exist) and one learning-curve point, the rest as FAST.
FAST_RUN = FAST.model_copy(
    update={"uncertainty_refits": 2, "learning_curve_sizes": (13,), "learning_curve_repeats": 1}
)


# Tiny, for conftest.small_champion: a model that a test needs registered and answering, not
# good. One tree depth and learning rate (trees always: the tests explain trees), at most 40
# trees, two uncertainty refits (intervals exist), no bootstrap, one learning-curve point. The
# gates are open: a 400-patient cohort holds about 100 held-out patients, too few to judge a
# model, and what these tests check does not depend on its quality.
SMALL = TrainConfig(
    cv_folds=2,
    search=SearchSpace(
        max_depth=(2,),
        learning_rate=(0.3,),
        max_trees=40,
        early_stopping_rounds=10,
        additive_alone=False,
    ),
    bootstrap_samples=0,
    uncertainty_refits=2,
    learning_curve_sizes=(13,),
    learning_curve_repeats=1,
    logistic_c_grid=(0.1,),
    n_threads=1,
    gates=GateConfig(
        calibration_slope_min=0.0,
        calibration_slope_max=100.0,
        max_auroc_gap_to_true_risk=1.0,
        must_beat=(),
        non_inferior_to=(),
        min_test_events=1,
        calibration_intercept_max_abs=100.0,
    ),
    input_sets=(),
    horizons=("day28",),  # as FAST
    landmarks=SPARSE_LANDMARKS,  # as FAST
    training_day_stride=1,
)


def shared_asgi_app():
    """BentoML's ASGI app for the service, built once per process.

    Building it registers BentoML's Prometheus metrics in the process-wide registry, so a second
    ``IcansRisk.to_asgi()`` in the same process fails (DuplicateTimeseries). Every test module
    that serves in process uses this one app and starts its own lifespan (a new ``IcansRisk``
    instance, reading the environment of that moment) on it.
    """
    import serving.service as service

    if not hasattr(service, "_TESTS_ASGI_APP"):
        service._TESTS_ASGI_APP = service.IcansRisk.to_asgi()
    return service._TESTS_ASGI_APP


def small_train_toml(first: str = "", last: str = "") -> str:
    """:data:`SMALL` as a file for ``icans train --config`` (20 bootstrap samples, open gates),
    for tests that train in a process of their own; ``first`` and ``last``: lines added at the
    start of ``[train]`` and at the end of ``[train.gates]``."""
    return f"""
[train]
{first}cv_folds = 2
bootstrap_samples = 20
uncertainty_refits = 2
learning_curve_sizes = [13]
learning_curve_repeats = 1
input_sets = []
horizons = ["day28"]
logistic_c_grid = [0.1]
n_threads = 1
[train.search]
max_depth = [2]
learning_rate = [0.3]
max_trees = 40
early_stopping_rounds = 10
additive_alone = false
[train.gates]
max_auroc_gap_to_true_risk = 1.0
min_test_events = 1
calibration_slope_min = 0.0
calibration_slope_max = 100.0
must_beat = []
non_inferior_to = []
calibration_intercept_max_abs = 100.0
{last}"""
