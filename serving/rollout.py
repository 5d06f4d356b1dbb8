"""Promotions reach a running worker without a restart: the live model follows its alias.

Each worker of each replica holds one :class:`LiveModel`. Every ``serve.model_poll_seconds``
a daemon thread asks the registry which version the alias (``models:/icans-risk@champion``)
names: one small registry call, no download. When it names another version, the thread loads that
version, checks it and warms it up (:class:`serving.model_version.ModelRuntime` does both: the
compiled model and a first assessment), and only then swaps it in with one assignment.

Why this is atomic between requests: a handler reads ``live.runtime`` once and uses that
object for everything it answers (the estimate, the explanation, the version it names, the
audit and prediction logs). A request that started before the swap finishes on the old
version; the next one gets the new version whole. Nothing is ever half-swapped, and no request
waits for a load.

When the new version cannot be loaded (its artifacts unreadable, its check failing), the
worker keeps answering with the version it has, logs the error once per version, and shows
it in ``GET /readyz`` and ``GET /v1/model`` (:meth:`LiveModel.status`). It tries that version
again after ``RETRY_FAILED_S``, or at once if the alias moves on. A registry that cannot be
reached is reported the same way; the worker keeps serving. A URI naming a fixed version
(``models:/icans-risk/3``) is never followed.

During a roll-out, replicas and the workers within one replica swap at their own moment
(within one poll interval of each other), so for a few seconds two versions answer side by
side; each response names its own.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from icans.config import Settings
from icans.errors import ModelNotFoundError
from registry.store import alias_version
from serving.metrics import metrics
from serving.model_version import ModelRuntime

log = logging.getLogger("icans.serving.rollout")
RETRY_FAILED_S = 300.0  # a version that failed to load is tried again after five minutes


def settle_heap() -> None:
    """Collect once, then freeze what is left (``gc.freeze``): a worker's start-up leaves about
    half a million long-lived objects (MLflow, pandas, scikit-learn, the model), and every full
    collection the interpreter triggers later would walk them all, a pause of 100-500 ms in
    the middle of some request (the tail of the latency). Frozen, they are never walked again;
    objects made by requests are collected as before. Called once a worker has started and
    after each swap (unfrozen first, so that the replaced version can be freed)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Failure:
    """Why the worker is not answering with the version the alias names."""

    version: str | None  # None: the registry itself could not be asked
    error: str
    at: str


class LiveModel:
    """The runtime a worker answers with, swapped whole when its alias moves."""

    def __init__(
        self,
        runtime: ModelRuntime,
        settings: Settings,
        load: Callable[[str, Settings], ModelRuntime] = ModelRuntime.load,
    ):
        self.runtime = runtime  # read once per request; replaced by one assignment
        self.settings = settings
        self.interval = settings.serve.model_poll_seconds
        self._load = load
        self._failure: Failure | None = None
        self._failed_at = 0.0  # monotonic time of the last failed load
        self._checked_at: str | None = None
        self._swaps = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def follows(self) -> str | None:
        """The alias followed, or None when the URI names a fixed version."""
        return self.runtime.ref.alias

    def check(self) -> bool:
        """One poll: swap to the alias's version if it moved and loads. True if swapped."""
        name, alias = self.runtime.ref.name, self.follows
        if alias is None:
            return False
        try:
            wanted = alias_version(name, alias, self.settings)
        except ModelNotFoundError as exc:
            self._fail(None, f"the registry could not be asked which version @{alias} is: {exc}")
            return False
        self._checked_at = _now()
        current = self.runtime.ref.version
        if wanted == current:
            self._failure = None  # the alias came back (or the registry recovered)
            return False
        failure = self._failure
        if (
            failure is not None
            and failure.version == wanted
            and time.monotonic() - self._failed_at < RETRY_FAILED_S
        ):
            return False
        log.info("@%s moved from version %s to %s: loading it", alias, current, wanted)
        try:
            candidate = self._load(self.settings.model_uri, self.settings)
        except Exception as exc:  # any failure to load keeps the old version serving
            self._fail(wanted, f"{type(exc).__name__}: {exc}")
            return False
        if candidate.ref.version == current:  # the alias moved back meanwhile
            return False
        self.runtime = candidate  # the swap: one reference assignment
        self._failure = None
        self._swaps += 1
        metrics()["rollouts"].labels("swapped").inc()
        log.info(
            "now answering with %s version %s (was %s)",
            candidate.ref.name,
            candidate.ref.version,
            current,
        )
        settle_heap()  # once per promotion: frees the old version, freezes the new one
        return True

    def _fail(self, version: str | None, error: str) -> None:
        repeated = self._failure is not None and self._failure.version == version
        self._failure = Failure(version, error, _now())
        self._failed_at = time.monotonic()
        if version is not None:
            metrics()["rollouts"].labels("failed").inc()
        if not repeated:
            log.error(
                "still answering with version %s: %s%s",
                self.runtime.ref.version,
                f"version {version} failed to load: " if version else "",
                error,
            )

    def status(self) -> dict:
        """What this worker answers with and whether it follows its alias: for ``/readyz``
        and ``/v1/model``."""
        return {
            "model_name": self.runtime.ref.name,
            "model_version": self.runtime.ref.version,
            "follows_alias": self.follows,
            "poll_seconds": self.interval if self.follows and self.interval > 0 else None,
            "last_checked": self._checked_at,
            "swaps": self._swaps,
            "failed_rollout": None if self._failure is None else asdict(self._failure),
        }

    def start(self) -> None:
        """Poll in a daemon thread (not when polling is off or the version is fixed)."""
        if self.interval <= 0 or self.follows is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="icans-rollout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the poller must outlive anything; the worker keeps serving
                log.exception("model roll-out check failed")


class ReadinessDetail:
    """Pure ASGI middleware around the whole service: a ``GET /readyz`` that BentoML answers
    200 gets this worker's :meth:`LiveModel.status` as its JSON body (BentoML's own body is
    empty). The status code stays BentoML's: a worker still answering with its old version
    after a failed roll-out is ready, and says why it is not on the alias's version.
    ``live`` is called per request: the worker's LiveModel once the service has started."""

    def __init__(self, inner, live: Callable[[], LiveModel | None]):
        self.inner = inner
        self.live = live

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/readyz":  # every other request
            return await self.inner(scope, receive, send)
        live = self.live()
        if live is None:  # not started yet: BentoML's own answer
            return await self.inner(scope, receive, send)
        start: dict = {}

        async def hold_start(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif start.get("status") != 200:  # not ready: BentoML's answer as it is
                if start:
                    await send(dict(start))
                    start.clear()
                await send(message)

        await self.inner(scope, receive, hold_start)
        if start.get("status") == 200:
            body = json.dumps({"status": "ready", **live.status()}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
