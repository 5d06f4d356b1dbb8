"""The one place Evidently is imported: telemetry off, and one name pandas 3 removed put back.

Evidently 0.7.23 fails to import under pandas 3 for a single reason:
``evidently/legacy/tests/data_integrity_tests.py`` does
``from pandas.core.dtypes.common import infer_dtype_from_object``, a private helper pandas 3
removed. It is used only by Evidently's legacy column-type test (``TestColumnsType``), which
this project never runs. :func:`evidently` defines that name, only when it is missing, as a
function that raises (it is never called), then imports Evidently. With a pandas that still
has the name, nothing is changed (``tests/test_monitor_drift.py`` checks both: that the
shim is needed under the pinned pandas, and that it leaves an existing name alone).

Telemetry: Evidently's usage reporting (``iterative-telemetry``, used by its UI service and
collector, not by reports) is off when ``DO_NOT_TRACK`` is set; iterative-telemetry's own switch
is ``ITERATIVE_DO_NOT_TRACK``. Both are set here before the import (the machine has no network
and nothing may be sent or downloaded at run time).

Importing Evidently takes about 7 s: only :mod:`monitoring.drift` calls :func:`evidently`,
inside its functions, so nothing the service or the other commands import pays for it.
"""

from __future__ import annotations

import os
import warnings
from types import SimpleNamespace

_REMOVED_IN_PANDAS_3 = "infer_dtype_from_object"
TELEMETRY_SWITCHES = ("DO_NOT_TRACK", "ITERATIVE_DO_NOT_TRACK")


def _never_called(dtype):  # pragma: no cover - only Evidently's legacy TestColumnsType calls it
    raise NotImplementedError(
        "pandas.core.dtypes.common.infer_dtype_from_object was removed in pandas 3; this "
        "project defines it only so that Evidently imports (monitoring.evidently_compat) and "
        "never runs Evidently's legacy column-type test that uses it"
    )


def patch_pandas() -> bool:
    """Define the removed pandas name if it is missing; True when it was added."""
    import pandas.core.dtypes.common as common

    if hasattr(common, _REMOVED_IN_PANDAS_3):
        return False
    setattr(common, _REMOVED_IN_PANDAS_3, _never_called)
    return True


def evidently() -> SimpleNamespace:
    """Evidently's report API (``Report``, ``Dataset``, ``DataDefinition``, ``ValueDrift``),
    imported with telemetry off and pandas patched."""
    for name in TELEMETRY_SWITCHES:
        os.environ.setdefault(name, "1")
    patch_pandas()
    with warnings.catch_warnings():  # its web UI's dependencies' deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift

    return SimpleNamespace(
        Report=Report, Dataset=Dataset, DataDefinition=DataDefinition, ValueDrift=ValueDrift
    )
