"""Which horizon colours a CDS Hooks card, and its thresholds: the rules of the settings
``cds.indicator_horizon`` and ``cds.thresholds`` (:class:`icans.config.CdsSettings`).

A card's indicator (info, warning, critical) compares one horizon's risk with that horizon's
two thresholds. Day 28's are ``cds.warning_at`` and ``cds.critical_at`` (the settings cards had
before horizons); a shorter horizon's are a pair in ``cds.thresholds``, horizon ->
``[warning_at, critical_at]``, without a default (a threshold on a 72-hour risk is a local
decision, made from the centre's own lead-time analysis). Refused, each naming the rule: an
unknown horizon, a pair not ``0 < warning_at < critical_at < 1``, a ``day28`` pair (one place
for each value), an indicator horizon without thresholds, and, once the model is known, an
indicator horizon the served model does not estimate (:func:`check_model_horizons`).
The validators raise ``ValueError`` (pydantic turns it into the setting's error,
:func:`icans.config.load_settings`); :func:`check_model_horizons` raises
:class:`~icans.errors.InvalidInputError` naming ``cds_indicator_horizon``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from icans.errors import InvalidInputError
from icans.horizons import HORIZON_NAMES, HORIZONS, TARGET_HORIZON

SHORTER = tuple(h.name for h in HORIZONS if h is not TARGET_HORIZON)


def read_thresholds(value: Any) -> Any:
    """``cds.thresholds`` as given: a JSON object from the environment (and the workers'
    environment, :func:`serving.launch.server_environment`), else as it is; each value a pair."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"a JSON object of horizon -> [warning_at, critical_at] ({exc})"
            ) from None
    if isinstance(value, Mapping):
        for name, pair in value.items():
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f"horizon {name}: a pair [warning_at, critical_at], not {pair!r}")
    return value


def check_thresholds(value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Each key a horizon shorter than day 28, each pair ``0 < warning_at < critical_at < 1``."""
    for name, (warning_at, critical_at) in value.items():
        if name not in SHORTER:
            raise ValueError(
                f"horizon {name!r}: one of {', '.join(SHORTER)} (day 28's thresholds are "
                "cds_warning_at and cds_critical_at)"
            )
        if not 0 < warning_at < critical_at < 1:
            raise ValueError(
                f"horizon {name}: [warning_at, critical_at] with 0 < warning_at < "
                f"critical_at < 1, not [{warning_at}, {critical_at}]"
            )
    return value


def check_indicator_horizon(name: str, thresholds: Mapping | None) -> str:
    """A known horizon, with thresholds (``thresholds`` None: they were refused already)."""
    if name not in HORIZON_NAMES:
        raise ValueError(f"one of {', '.join(HORIZON_NAMES)}")
    if name != TARGET_HORIZON.name and thresholds is not None and name not in thresholds:
        raise ValueError(
            f"a horizon with thresholds: cds_thresholds has none for {name} "
            f'(e.g. {{"{name}": [0.05, 0.15]}})'
        )
    return name


def check_model_horizons(indicator_horizon: str, horizons: tuple[str, ...], model: str) -> None:
    """``indicator_horizon`` is one of ``horizons``, those the served model (``model``, for the
    message) estimates. Checked before a service starts (:mod:`serving.preflight`) and whenever
    a worker loads a version (:mod:`serving.model_version`): a card needs the risk it is
    coloured by."""
    if indicator_horizon not in horizons:
        raise InvalidInputError(
            "cds_indicator_horizon",
            indicator_horizon,
            f"a horizon the served model estimates ({model} estimates {', '.join(horizons)}): "
            "set cds_indicator_horizon to one of them, or serve a model fitted for it",
        )
