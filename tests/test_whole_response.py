"""Responses handed to the connection whole (:mod:`serving.whole_response`).

The kill it guards against is tested on real processes in ``tests/test_chaos.py``; here, what
the server receives and when (the headers never before the body, a failure before the body
leaving nothing sent, so the server answers 500 itself), what reaches a client of a real
uvicorn server (nothing until the body is ready, then the whole response, written in one call
by the installed uvicorn), and the served application wrapped outside BentoML's middlewares.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import uvicorn
from cluster import free_port

from serving.whole_response import WholeResponses


def _serve(app, server: list | None = None) -> list[tuple[str, str]]:
    """Run ``app`` once; what reached the server's ``send`` (appended to ``server``), in
    order, each with what the application was doing just before (the last step it logged)."""
    server = [] if server is None else server
    steps = ["start"]

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        server.append((message["type"], steps[-1]))

    async def run() -> None:
        await WholeResponses(app(steps))({"type": "http"}, receive, send)

    asyncio.run(run())
    return server


def _app_with_bookkeeping(steps: list[str]):
    """An app whose response passes a middleware that works between headers and body, as
    BentoML's metrics, tracing and access log do."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        steps.append("bookkeeping between headers and body")
        await asyncio.sleep(0)  # an event-loop turn too
        steps.append("body ready")
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    return app


def test_the_headers_reach_the_server_only_with_the_body():
    server = _serve(_app_with_bookkeeping)
    assert server == [
        ("http.response.start", "body ready"),
        ("http.response.body", "body ready"),
    ]


def test_a_failure_before_the_body_sends_nothing():
    def app(steps):
        async def failing(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise RuntimeError("the body could not be made")

        return failing

    server: list = []
    with pytest.raises(RuntimeError):
        _serve(app, server)
    assert server == []  # no headers out: the server answers 500 itself, whole


def test_a_streamed_body_passes_on_as_it_comes():
    def app(steps):
        async def streaming(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for part in ("first", "second"):
                steps.append(part)
                more = part == "first"
                await send({"type": "http.response.body", "body": b"x", "more_body": more})

        return streaming

    assert [m for m, _ in _serve(app)] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]


def test_the_served_application_is_wrapped_outside_bentomls_middlewares():
    from serving.service import IcansRisk

    app = IcansRisk.to_asgi(is_main=True)
    assert isinstance(app, WholeResponses)
    # inside it, BentoML's own stack (traffic metrics, tracing, access log ...): the wrapper
    # is the server's application itself, nothing of BentoML's around it
    assert type(app.app).__module__.startswith("starlette")


def test_a_real_server_sends_nothing_until_the_body_then_the_whole_response_in_one_write():
    release = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return
        await receive()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while not release.is_set():  # between the headers and the body, as long as it takes
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b'{"ok":true}', "more_body": False})

    whole = WholeResponses(app)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(whole, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            client.settimeout(0.5)
            with pytest.raises(TimeoutError):  # the headers are held while the body is not ready
                client.recv(1024)
            release.set()
            client.settimeout(10)
            received = b""
            while chunk := client.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert received.endswith(b'\r\n\r\n{"ok":true}')
        # the installed uvicorn let the response be written in one call (not the fallback)
        assert whole.whole == 1
    finally:
        release.set()
        server.should_exit = True
        thread.join(timeout=20)
