"""Set-up shared by the benchmarks that need a served or reported champion."""

from __future__ import annotations


def ensure_champion(result, client, settings, purpose: str) -> None:
    """Point ``settings.model_alias`` at the version ``result`` registered.

    The benchmarks train with loose gates in a temporary store: they need a champion to
    ``purpose`` (serve, report on), not a good model. If the gates still refused it, the alias
    is moved by hand in that store, and the output says so.
    """
    if result.model_version is None:
        raise SystemExit(f"the training run registered no model: nothing to {purpose}")
    if not result.promoted:
        client.set_registered_model_alias(
            settings.model_name, settings.model_alias, result.model_version
        )
        print(
            f"  NOTE: not promoted by the gates; '{settings.model_alias}' moved to version "
            f"{result.model_version} by hand in the temporary store, for this benchmark only",
            flush=True,
        )
