"""Training on a Dask cluster (:mod:`training.cluster`, :mod:`model.tasks`): a real local
cluster of worker processes, started by the test on 127.0.0.1, runs the risk model's search
folds and uncertainty refits; the run's numbers are those of the same run on this machine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from support import SMALL

from cohort.reader import read_cohort
from features.landmarks import build_landmark_dataset
from icans.config import load_settings
from icans.errors import InvalidInputError
from training.cluster import on_cluster
from training.fit import fit_and_evaluate
from training.train import train

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


def test_a_run_on_the_cluster_gives_the_numbers_of_a_run_here(small_cohort, cluster):
    config = SMALL.model_copy(update={"uncertainty_refits": 4, "n_threads": 1})
    ds = build_landmark_dataset(read_cohort(small_cohort).tables, config.landmarks)
    here = fit_and_evaluate(ds, config)
    with on_cluster(cluster.scheduler_address) as workers:
        assert workers == 2
        before = cluster.scheduler.transition_counter
        there = fit_and_evaluate(ds, config.model_copy(update={"n_tasks": -1}))
        assert cluster.scheduler.transition_counter > before  # the tasks went to the cluster
    # the same fits: tasks are seeded by their position, not by where they ran. Not bit for
    # bit: the workers' BLAS (one thread each, Dask's default) sums the additive part's Newton
    # systems in another order than this process's
    pd.testing.assert_frame_equal(
        here.evaluation.metrics, there.evaluation.metrics, check_exact=False, rtol=1e-6
    )
    rows = ds.raw[:200]
    np.testing.assert_allclose(
        here.model.probability_interval(rows), there.model.probability_interval(rows), rtol=1e-6
    )
    assert there.model.hyperparameters_ == here.model.hyperparameters_


def test_a_scheduler_that_does_not_answer_is_refused_naming_the_setting(small_cohort, tmp_path):
    settings = load_settings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", cluster="tcp://127.0.0.1:9"
    )
    with pytest.raises(InvalidInputError) as caught:
        train(small_cohort, SMALL, settings)
    assert caught.value.field == "cluster"
    assert "tcp://127.0.0.1:9" in str(caught.value)
    assert not (tmp_path / "mlflow.db").exists()  # refused before anything was recorded
