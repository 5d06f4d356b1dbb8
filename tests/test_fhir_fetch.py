"""Reads from a CDS client's FHIR server (``serving.fhir.fetch``) against real HTTP servers on
127.0.0.1 that fail on purpose: transient failures are retried with backoff a bounded number of
times, others are not, a stalled server or an oversized body ends in a ``FhirFetchError``
within a bounded time. Backoff and timeouts are set small through the constructor so that the
tests wait milliseconds, not seconds.
"""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from serving.fhir import fetch as fhir_fetch
from serving.fhir.fetch import ATTEMPTS, FhirFetchError, FhirServer

PATIENT = {"resourceType": "Patient", "id": "p1"}
FAST: dict[str, Any] = {"backoff_s": 0.001, "connect_timeout_s": 1.0, "read_timeout_s": 1.0}


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the client hung up: expected
            super().handle_error(request, client_address)


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 whose answer to the n-th request (0-based) is
    ``script(n, handler)``: a status and a JSON body (sent with Content-Length), or None when
    the script wrote the answer itself. Records each request's path and client port."""

    def __init__(self, script: Callable[[int, http.server.BaseHTTPRequestHandler], tuple | None]):
        self.requests: list[tuple[str, int]] = []
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the client's connection pool is visible

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                n = len(server.requests)
                server.requests.append((self.path, self.client_address[1]))
                answer = script(n, self)
                if answer is None:
                    return
                status, body, *headers = answer
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers[0] if headers else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def fetch(server: ScriptedServer, relative: str = "Patient/p1", **limits) -> dict:
    with FhirServer(server.base, "token", **(FAST | limits)) as fhir:
        return fhir.get(relative)


def test_two_503_then_an_answer_is_a_success_after_three_requests(serve):
    server = serve(lambda n, _: (503, {}) if n < 2 else (200, PATIENT))
    assert fetch(server) == PATIENT
    assert len(server.requests) == 3


def test_a_server_always_answering_503_gets_the_bounded_number_of_attempts(serve):
    server = serve(lambda n, _: (503, {}))
    with pytest.raises(FhirFetchError) as caught:
        fetch(server)
    assert len(server.requests) == ATTEMPTS == 3
    message = str(caught.value)
    assert f"GET {server.base}/Patient/p1" in message
    assert "answered 503" in message and "gave up after 3 attempts" in message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_an_answer_that_would_not_change_is_not_retried(serve, status):
    server = serve(lambda n, _: (status, {"resourceType": "OperationOutcome"}))
    with pytest.raises(FhirFetchError, match=f"answered {status}$"):
        fetch(server)
    assert len(server.requests) == 1


def test_a_redirect_is_not_followed(serve):
    server = serve(lambda n, _: (302, {}, {"Location": "http://elsewhere.example/fhir"}))
    with pytest.raises(FhirFetchError, match=r"redirect to http://elsewhere\.example/fhir"):
        fetch(server)
    assert len(server.requests) == 1


def test_retry_after_is_honoured(serve):
    server = serve(lambda n, _: (429, {}, {"Retry-After": "1"}) if n == 0 else (200, PATIENT))
    started = time.monotonic()
    assert fetch(server) == PATIENT
    assert time.monotonic() - started >= 0.95  # the backoff alone would be milliseconds
    assert len(server.requests) == 2


def test_a_stalled_server_is_an_error_within_a_bounded_time(serve):
    def stall(n, handler):
        server.stop.wait(10)  # answers nothing until the test ends
        return None

    server = serve(stall)
    started = time.monotonic()
    with pytest.raises(FhirFetchError) as caught:
        fetch(server, read_timeout_s=0.2)
    elapsed = time.monotonic() - started
    assert "did not answer within 0.2 s" in str(caught.value)
    assert "gave up after 3 attempts" in str(caught.value)
    assert len(server.requests) == 3
    assert elapsed < 2  # 3 x 0.2 s and milliseconds of backoff


def test_the_deadline_bounds_every_read_of_a_call(serve):
    def stall(n, handler):
        server.stop.wait(10)
        return None

    server = serve(stall)
    started = time.monotonic()
    with pytest.raises(FhirFetchError, match="gave up after"):
        fetch(server, read_timeout_s=0.2, attempts=50, deadline_s=0.5)
    assert time.monotonic() - started < 1.5
    assert len(server.requests) <= 3  # the deadline, not the 50 attempts, ended it


def test_a_server_that_cannot_be_reached_is_retried_then_named(serve):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nobody = f"http://127.0.0.1:{port}/fhir"
    with FhirServer(nobody, "token", **FAST) as fhir, pytest.raises(FhirFetchError) as caught:
        fhir.get("Patient/p1")
    message = str(caught.value)
    assert f"GET http://127.0.0.1:{port}/fhir/Patient/p1" in message
    assert "cannot be reached" in message and "gave up after 3 attempts" in message


def test_a_body_declared_too_large_is_refused_unread(serve, monkeypatch):
    monkeypatch.setattr(fhir_fetch, "MAX_RESPONSE_BYTES", 1000)
    server = serve(lambda n, _: (200, PATIENT | {"text": "x" * 2000}))
    with pytest.raises(FhirFetchError, match=r"response larger than 1000 bytes$"):
        fetch(server)
    assert len(server.requests) == 1


def test_an_endless_body_is_cut_at_the_cap_while_it_streams(serve, monkeypatch):
    monkeypatch.setattr(fhir_fetch, "MAX_RESPONSE_BYTES", 100_000)
    sent = []

    def endless(n, handler):  # no Content-Length: the body ends when the server closes
        handler.send_response(200)
        handler.send_header("Content-Type", "application/fhir+json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            while not server.stop.is_set():
                handler.wfile.write(b" " * 16384)
                sent.append(16384)
        except OSError:  # the client hung up
            pass
        return None

    server = serve(endless)
    started = time.monotonic()
    with pytest.raises(FhirFetchError, match="response larger than 100000 bytes"):
        fetch(server)
    assert time.monotonic() - started < 2
    assert len(server.requests) == 1


def test_pages_are_followed_on_one_pooled_connection(serve):
    def paged(n, handler):
        nxt = [{"relation": "next", "url": f"{server.base}/Observation?page={n + 1}"}]
        return (
            200,
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": {"resourceType": "Observation", "id": str(n)}}],
                "link": nxt if n < 2 else [],
            },
        )

    server = serve(paged)
    bundle = fetch(server, "Observation?patient=p1")
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["0", "1", "2"]
    assert [path for path, _ in server.requests] == [
        "/fhir/Observation?patient=p1",
        "/fhir/Observation?page=1",
        "/fhir/Observation?page=2",
    ]
    assert len({port for _, port in server.requests}) == 1  # one connection, reused


def test_a_next_page_on_another_server_is_refused(serve):
    server = serve(
        lambda n, _: (
            200,
            {
                "resourceType": "Bundle",
                "link": [{"relation": "next", "url": "http://elsewhere.example/fhir/x?p=2"}],
            },
        )
    )
    with pytest.raises(FhirFetchError, match="is on another server"):
        fetch(server, "Observation?patient=p1")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("body", "reason"), [(b"not json", "is not JSON"), (b"[1, 2]", "not a FHIR resource")]
)
def test_an_answer_that_is_not_a_json_object_is_refused(serve, body, reason):
    def answer(n, handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return None

    server = serve(answer)
    with pytest.raises(FhirFetchError, match=reason):
        fetch(server)
    assert len(server.requests) == 1


def test_the_client_is_closed_with_the_server_object(serve):
    server = serve(lambda n, _: (200, PATIENT))
    with FhirServer(server.base, "token", **FAST) as fhir:
        fhir.get("Patient/p1")
    assert fhir._client.is_closed
