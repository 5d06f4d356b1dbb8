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
    """Print a project error as one line (no traceback) and exit with code 2. Also when the
    project error was followed by another in a clean-up (the MLflow run ended as failed on a
    tracking server that is down): the project error's line, then the other's type."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IcansError as exc:
            # Plain text, never wrapped: one line per error in terminals, pipes and CI logs.
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        except Exception as exc:
            first = _project_error_before(exc)
            if first is None:
                raise
            typer.echo(f"error: {first} (then {type(exc).__name__} in a clean-up)", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


def _project_error_before(exc: BaseException) -> IcansError | None:
    """The project error that ``exc`` was raised while handling, if any (a few levels up)."""
    seen = exc.__context__
    for _ in range(5):
        if seen is None or isinstance(seen, IcansError):
            return seen
        seen = seen.__context__
    return None


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
