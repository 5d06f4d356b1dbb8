"""Open a page in Debian's headless Chromium and report what a reader would see.

A helper for tests, not a test module. ``open_page`` starts ``/usr/bin/chromium`` (Debian's
package, installed by ``make test``; Playwright drives it and never downloads a browser) with a
fresh temporary profile, loads a file or an http(s) URL with JavaScript disabled (the reports
must be readable without it), and yields a ``Page``: console messages with their level, page
errors, failed requests, every ``<img>`` (loaded or not, natural size), the ``<h2>``/``<h3>``
headings as rendered, the body's rendered text, and ``evaluate`` for reading the DOM (Playwright
evaluates in the page even when the page's own scripts are disabled). Every step is bounded by
a timeout, and the browser is closed (its processes ended) when the block exits.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Request, Response, sync_playwright
from playwright.sync_api import Page as PlaywrightPage

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "run `make test`, which installs Debian's chromium"

# Without the background-networking flags Chromium tries to reach Google's services, which the
# closed network refuses. Playwright adds its own defaults (--disable-extensions,
# --disable-dev-shm-usage, ...) and its --remote-debugging-pipe; the profile is --user-data-dir.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_IMAGES_JS = """() => [...document.images].map((img) => ({
    src: (img.currentSrc || img.getAttribute("src") || "").slice(0, 80),
    alt: img.alt,
    complete: img.complete,
    natural_width: img.naturalWidth,
    natural_height: img.naturalHeight,
    width: img.getBoundingClientRect().width,
    height: img.getBoundingClientRect().height,
}))"""

_HEADINGS_JS = """() => [...document.querySelectorAll("h2, h3")].map((h) => ({
    level: h.tagName.toLowerCase(),
    text: h.innerText.trim(),
    visible: h.getClientRects().length > 0,
}))"""


class ChromiumMissingError(RuntimeError):
    """Debian's chromium is not installed: :func:`open_page` fails, it never skips. (Tests
    marked ``browser`` are skipped before they start when chromium is missing, except in CI:
    tests/conftest.py.)"""


@dataclass(frozen=True)
class Console:
    level: str  # Playwright's ConsoleMessage.type: "error", "warning", "log", "info", ...
    text: str
    location: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.text} ({self.location})"


@dataclass(frozen=True)
class Image:
    src: str  # the first 80 characters (data: URLs are long)
    alt: str
    complete: bool
    natural_width: int
    natural_height: int
    width: float  # as laid out, CSS pixels
    height: float

    @property
    def loaded(self) -> bool:
        return self.complete and self.natural_width > 0


@dataclass(frozen=True)
class Heading:
    level: str  # "h2" or "h3"
    text: str  # innerText: as rendered
    visible: bool


@dataclass
class Page:
    """What one page load produced; ``evaluate`` and ``screenshot`` work inside the block."""

    url: str
    status: int | None  # HTTP status of the main document (None for file: URLs)
    title: str = ""
    body_text: str = ""
    scripts: int = 0  # <script> elements in the DOM
    images: list[Image] = field(default_factory=list)
    headings: list[Heading] = field(default_factory=list)
    console: list[Console] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)  # network failures and HTTP >= 400
    _page: PlaywrightPage | None = field(default=None, repr=False)

    def h2(self) -> list[str]:
        return [h.text for h in self.headings if h.level == "h2"]

    def h3(self) -> list[str]:
        return [h.text for h in self.headings if h.level == "h3"]

    @property
    def console_errors(self) -> list[Console]:
        return [m for m in self.console if m.level == "error"]

    @property
    def broken_images(self) -> list[Image]:
        return [i for i in self.images if not i.loaded]

    def problems(self) -> list[str]:
        """Everything that went wrong, one line each (empty for a clean page)."""
        return (
            [f"console {m}" for m in self.console_errors]
            + [f"page error: {e}" for e in self.page_errors]
            + [f"failed request: {r}" for r in self.failed_requests]
            + [f"image not loaded: {i.src!r} (alt {i.alt!r})" for i in self.broken_images]
        )

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Evaluate a JS expression (or function, called with ``arg``) in the page."""
        return self._live().evaluate(expression, arg)

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the viewport) as a PNG."""
        self._live().screenshot(path=str(path), full_page=True)
        return Path(path)

    def _live(self) -> PlaywrightPage:
        if self._page is None or self._page.is_closed():
            raise RuntimeError("the browser is closed: use the page inside `with open_page(...)`")
        return self._page


def require_chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        raise ChromiumMissingError(f"{CHROMIUM} is missing: {INSTALL_HINT} (apt, as root)")
    return CHROMIUM


def _url(target: Path | str) -> str:
    if isinstance(target, str) and target.split(":", 1)[0] in ("http", "https", "file"):
        return target
    path = Path(target).resolve()
    if not path.is_file():
        raise FileNotFoundError(path)
    return path.as_uri()


@contextmanager
def open_page(
    target: Path | str,
    *,
    javascript: bool = False,
    timeout_s: float = 30.0,
    viewport: tuple[int, int] = (1280, 900),
    screenshot: Path | None = None,
) -> Iterator[Page]:
    """Load ``target`` (a file path, or an http(s)/file URL) in headless Chromium.

    The page's own JavaScript is disabled unless ``javascript=True``. Waits for the ``load``
    event (images included), then collects the DOM facts; ``screenshot`` saves the full page.
    """
    executable = require_chromium()
    url = _url(target)
    timeout_ms = timeout_s * 1000
    with (
        tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as tmp,
        sync_playwright() as pw,
    ):
        # Chromium's crash-report database lives under $XDG_CONFIG_HOME, not in the profile.
        env = {**os.environ, "XDG_CONFIG_HOME": f"{tmp}/config", "XDG_CACHE_HOME": f"{tmp}/cache"}
        try:
            context = pw.chromium.launch_persistent_context(
                f"{tmp}/profile",
                executable_path=executable,
                headless=True,
                args=list(CHROMIUM_ARGS),
                env=env,
                timeout=timeout_ms,
                java_script_enabled=javascript,
                viewport={"width": viewport[0], "height": viewport[1]},
                accept_downloads=False,
                service_workers="block",
            )
        except Exception as err:
            raise RuntimeError(f"could not start {executable}: {err}") from err
        try:
            context.set_default_timeout(timeout_ms)
            context.set_default_navigation_timeout(timeout_ms)
            page = context.pages[0] if context.pages else context.new_page()
            result = Page(url=url, status=None, _page=page)

            def on_console(m: ConsoleMessage) -> None:
                loc = m.location
                where = f"{loc.get('url', '')}:{loc.get('lineNumber', 0)}" if loc else ""
                result.console.append(Console(m.type, m.text, where))

            def on_request_failed(r: Request) -> None:
                result.failed_requests.append(f"{r.method} {r.url[:200]}: {r.failure}")

            def on_response(r: Response) -> None:
                if r.status >= 400:
                    result.failed_requests.append(
                        f"{r.request.method} {r.url[:200]}: HTTP {r.status} {r.status_text}"
                    )

            page.on("console", on_console)
            page.on("pageerror", lambda err: result.page_errors.append(str(err)))
            page.on("requestfailed", on_request_failed)
            page.on("response", on_response)

            response = page.goto(url, wait_until="load")
            if response is not None and url.startswith("http"):
                result.status = response.status
            result.title = page.title()
            result.body_text = page.evaluate("() => document.body ? document.body.innerText : ''")
            result.scripts = page.evaluate("() => document.scripts.length")
            result.images = [Image(**i) for i in page.evaluate(_IMAGES_JS)]
            result.headings = [Heading(**h) for h in page.evaluate(_HEADINGS_JS)]
            if screenshot is not None:
                result.screenshot(screenshot)
            yield result
        finally:
            context.close()  # ends Chromium; leaving sync_playwright ends the driver
