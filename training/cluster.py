"""Training on a Dask cluster: the run's independent fits as tasks on its workers.

When a cluster is named (``icans train --cluster tcp://host:port``, or ``cluster`` in the
settings, ``ICANS_CLUSTER``), :func:`on_cluster` connects a ``distributed.Client`` to its
scheduler and makes it joblib's backend for the run: the run's independent fits (the tasks of
:mod:`model.tasks`) then run on the cluster's workers, each with the xgboost threads of the
configuration. Dask places the tasks; the project has no scheduler of its
own. The workers need this project's environment (``uv sync``); the README says how to start
them. Without a cluster name nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import joblib

from icans.errors import InvalidInputError

CONNECT_TIMEOUT_S = 10.0


@contextmanager
def on_cluster(address: str) -> Iterator[int]:
    """Within the block, joblib's tasks go to the Dask scheduler at ``address``; yields the
    number of its workers (0, and nothing changes, when ``address`` is empty). An address that
    does not answer within :data:`CONNECT_TIMEOUT_S` is refused, naming the setting."""
    if not address:
        yield 0
        return
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidInputError(
            "cluster",
            address,
            "the address of a running Dask scheduler (tcp://host:port) that answers within "
            f"{CONNECT_TIMEOUT_S:.0f} s",
        ) from exc
    with client, joblib.parallel_config(backend="dask"):
        yield len(client.scheduler_info()["workers"])
