"""What every ``icans`` command that can fail or write is wrapped in: one-line errors, and
SIGTERM turned into a clean exit. Its own module so that each sub-command module
(:mod:`cli.main`, :mod:`cli.tracking`, :mod:`cli.monitor`) can use it."""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from typing import Any

import typer

from icans.errors import IcansError


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a project error as one line (no traceback) and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IcansError as exc:
            # Plain text, never wrapped: one line per error in terminals, pipes and CI logs.
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


def sigterm_unwinds(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For a command that writes: SIGTERM (a scheduler or ``kill`` stopping it) raises
    ``SystemExit(143)`` in the command, so its clean-ups run as on Ctrl-C (a cohort's temporary
    directory removed, the MLflow run ended as failed, a half-registered version deleted)
    instead of the process vanishing. SIGKILL cannot be caught: what it leaves is closed by the
    next run (:mod:`cohort.store`, :mod:`training.stale_runs`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def stop(signum, frame):
            raise SystemExit(128 + signum)

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper
