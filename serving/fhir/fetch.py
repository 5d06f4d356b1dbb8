"""Read what a CDS Hooks call did not prefetch from the client's FHIR server (``fhirServer``).

FHIR REST reads and searches over HTTP(S) with the ``fhirAuthorization`` bearer token, JSON
(``application/fhir+json``). A search follows the server's ``next`` links (paging) while they
stay on the same server, up to :data:`MAX_PAGES`; the entries of all pages form one Bundle.
Only FHIR servers allow-listed for the calling client are contacted (the client file's
``fhir_servers``): a call cannot make the service fetch from anywhere else, so redirects are
not followed either (a 3xx is an error naming where it pointed).

One :class:`FhirServer` serves one CDS call, over one ``httpx.Client`` (its connections are
reused across the pages and the prefetch keys); close it (``with FhirServer(...) as s``).
A CDS client waits for the card, so every read is bounded in time: connect and read timeouts
(:data:`CONNECT_TIMEOUT_S`, :data:`READ_TIMEOUT_S`), and all the reads of one ``FhirServer``,
pages and retries included, end within about :data:`DEADLINE_S` of its creation (a body still
arriving may take one read timeout more). A GET is idempotent, so what is safe and likely to
pass on another attempt is retried, with exponential backoff and jitter (tenacity), at most
:data:`ATTEMPTS` attempts in all: connection errors, timeouts, and HTTP 429, 502, 503 and 504
(waiting what ``Retry-After`` says, in seconds, up to :data:`RETRY_AFTER_MAX_S`). Nothing else
is retried: a 401, 403 or 404 would answer the same again. A body larger than
:data:`MAX_RESPONSE_BYTES` is refused while it streams, not read whole first. Every failure is
a :class:`FhirFetchError` naming the URL and why; after retries, how many attempts were made.
"""

from __future__ import annotations

import json
import logging
import time
from types import TracebackType
from typing import NoReturn

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from icans.errors import IcansError

# A patient's record is a few pages; more means a search the service did not mean (or a server
# paging without end), and every page costs time within DEADLINE_S.
MAX_PAGES = 20
# One answer's body, decoded: a patient's resources over the prefetch window are well under a
# megabyte; the cap keeps a wrong search or a hostile server from filling the worker's memory.
MAX_RESPONSE_BYTES = 20 * 1024 * 1024
# A FHIR server on the hospital network accepts a connection within milliseconds; 3 s still
# covers one lost SYN (retransmitted after 1 s) without letting a dead address hold the call.
CONNECT_TIMEOUT_S = 3.0
# The longest silence while waiting for (a part of) an answer: a one-patient search answers
# within a second or two; a server silent for 5 s is stuck, and another attempt may reach a
# healthy node behind the same address.
READ_TIMEOUT_S = 5.0
# Attempts per GET, the first included: two retries ride out a restart or a brief overload,
# more would add load to a struggling server and not fit in DEADLINE_S.
ATTEMPTS = 3
# First wait before a retry, doubled at each retry up to BACKOFF_MAX_S, plus a random jitter of
# up to BACKOFF_S so that workers failing together do not retry in step.
BACKOFF_S = 0.25
BACKOFF_MAX_S = 2.0
# A Retry-After (in seconds) is honoured up to this: a server asking for longer will not answer
# within a CDS call anyway (DEADLINE_S stops the retries when the wait would pass it).
RETRY_AFTER_MAX_S = 3.0
# Every read of one FhirServer (one CDS call: all prefetch keys, pages and retries): BentoML
# cuts a request at 30 s (traffic timeout of serving.service) and the estimate and the card
# need time after the reads; CDS clients expect an answer within seconds.
DEADLINE_S = 15.0
# Statuses that say "try again later": rate limited, or a gateway or server momentarily unable
# to answer. Any other status (500 included) is not known to be transient and is not retried.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

# httpx logs each request's URL at INFO (httpcore its steps at DEBUG), and a URL here carries a
# patient's id: the service's logs never hold one, whatever level the server logs at.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class FhirFetchError(IcansError):
    """The FHIR server could not give what the service needs; the message says what and why."""


class _Transient(FhirFetchError):
    """A failure another attempt may not meet; ``retry_after``: what the server asked (s)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class FhirServer:
    """A FHIR server at ``base`` read with a bearer ``token``, for one CDS call.

    The limits default to the module's constants; tests pass small ones (milliseconds of
    backoff, a short read timeout)."""

    def __init__(
        self,
        base: str,
        token: str,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        attempts: int = ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        deadline_s: float = DEADLINE_S,
    ):
        self.base = base.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.attempts = attempts
        self.deadline_s = deadline_s
        self._deadline = time.monotonic() + deadline_s
        self._client = httpx.Client(
            headers={"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"},
            follow_redirects=False,
        )
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_s, max=BACKOFF_MAX_S, jitter=backoff_s
        )
        self._retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=self._stop,
            wait=self._wait,
            retry_error_callback=_give_up,
        )

    def __enter__(self) -> FhirServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def get(self, relative: str) -> dict:
        """A resource (``Patient/123``) or a search (``Observation?patient=123``) as one
        Bundle with every page's entries."""
        url = f"{self.base}/{relative.lstrip('/')}"
        first = self._get_json(url)
        if first.get("resourceType") != "Bundle":
            return first
        entries = list(first.get("entry", []))
        page, pages = first, 1
        while (nxt := _next_link(page)) is not None:
            if not nxt.startswith(self.base + "/") and not nxt.startswith(self.base + "?"):
                raise FhirFetchError(f"the next page of {relative} is on another server: {nxt}")
            if pages >= MAX_PAGES:
                raise FhirFetchError(f"{relative}: more than {MAX_PAGES} pages of results")
            page = self._get_json(nxt)
            entries += page.get("entry", [])
            pages += 1
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}

    def _get_json(self, url: str) -> dict:
        """GET ``url`` as a JSON object, retrying what is transient."""
        return self._retrying(self._get_once, url)

    def _get_once(self, url: str) -> dict:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise FhirFetchError(
                f"GET {url}: not sent, the reads of this call took {self.deadline_s:g} s already"
            )
        connect_s = min(self.connect_timeout_s, left)
        read_s = min(self.read_timeout_s, left)
        timeout = httpx.Timeout(connect=connect_s, read=read_s, write=read_s, pool=connect_s)
        try:
            with self._client.stream("GET", url, timeout=timeout) as response:
                body = self._read_body(url, response)
        except httpx.ConnectTimeout:
            raise _Transient(
                f"GET {url}: the FHIR server cannot be reached (no connection within "
                f"{connect_s:.3g} s)"
            ) from None
        except httpx.TimeoutException:
            raise _Transient(
                f"GET {url}: the FHIR server did not answer within {read_s:.3g} s"
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Transient(f"GET {url}: the FHIR server cannot be reached ({exc})") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FhirFetchError(f"GET {url}: the FHIR server cannot be reached ({exc})") from None
        try:
            data = json.loads(body)
        except ValueError:
            raise FhirFetchError(f"GET {url}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise FhirFetchError(f"GET {url}: the answer is not a FHIR resource")
        return data

    def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """The body of a 2xx answer, read while it stays under the size cap and the deadline."""
        status = response.status_code
        if status in RETRY_STATUSES:
            raise _Transient(
                f"GET {url}: the FHIR server answered {status}", _retry_after(response)
            )
        if response.is_redirect:
            where = response.headers.get("Location", "?")
            raise FhirFetchError(
                f"GET {url}: the FHIR server answered {status} (a redirect to {where}, not "
                "followed: fhirServer should be the server's base URL)"
            )
        if not response.is_success:
            raise FhirFetchError(f"GET {url}: the FHIR server answered {status}")
        too_large = f"GET {url}: response larger than {MAX_RESPONSE_BYTES} bytes"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise FhirFetchError(too_large)
        body = bytearray()
        for chunk in response.iter_bytes():  # decoded (gzip): the cap bounds what is held
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise FhirFetchError(too_large)
            if time.monotonic() > self._deadline:
                raise _Transient(
                    f"GET {url}: the answer did not arrive within the {self.deadline_s:g} s "
                    "of this call"
                )
        return bytes(body)

    def _wait(self, state: RetryCallState) -> float:
        """What the server asked for (capped), else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, RETRY_AFTER_MAX_S)
        return self._backoff(state)

    def _stop(self, state: RetryCallState) -> bool:
        """After the last attempt, or when the next would start past the deadline (tenacity
        computes the wait before asking whether to stop)."""
        return (
            state.attempt_number >= self.attempts
            or time.monotonic() + state.upcoming_sleep >= self._deadline
        )


def _give_up(state: RetryCallState) -> NoReturn:
    """The retries are over: the last failure, with how many attempts were made."""
    exc = state.outcome.exception() if state.outcome else None
    n = state.attempt_number
    raise FhirFetchError(f"{exc}; gave up after {n} attempt{'s' if n > 1 else ''}") from None


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds; None when absent or an HTTP date (backoff applies)."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _next_link(bundle: dict) -> str | None:
    for link in bundle.get("link", []) or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None
