"""Independent fits run as tasks: one after another here, or side by side on worker processes
or a Dask cluster, through joblib.

A training run holds fits that do not depend on each other: the risk model's search folds (each
fits its own additive part and every tree candidate) and uncertainty refits, the logistic
baseline's penalty-by-fold fits, the learning curve's points and the input-set models.
:func:`run_tasks` runs such pieces with joblib, scikit-learn's own way of doing this
(``n_jobs`` and ``joblib.parallel_config``): ``tasks=1`` runs them in this process in order (the
default, exactly the loop it replaces); more runs them at once on joblib's backend in effect,
worker processes on this machine by default, or the workers of a Dask cluster when the caller
has chosen joblib's Dask backend (``training.cluster.on_cluster``, ``icans train --cluster``).
No scheduler of our own: joblib sends the tasks, Dask places them.

Each task is seeded by its own position (not by the order in which tasks finish), so a fit's
numbers do not depend on where or in which order its tasks ran, up to the floating-point order
of xgboost's and BLAS's threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from joblib import Parallel, delayed


def run_tasks(function: Callable[..., Any], arguments: Sequence[tuple], tasks: int) -> list:
    """``[function(*a) for a in arguments]``, with up to ``tasks`` running at once (-1: as many
    as the backend has workers); in order and in this process when ``tasks`` is 1."""
    if tasks == 1 or len(arguments) < 2:
        return [function(*a) for a in arguments]
    return list(Parallel(n_jobs=tasks)(delayed(function)(*a) for a in arguments))
