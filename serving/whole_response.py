"""Responses handed to the connection whole: a response's status line, headers and body
written to the socket in one call, outside every other middleware.

Why: behind a load balancer, a replica killed (SIGKILL, the kernel's OOM killer) after it
wrote a response's headers but before its body leaves a response no load balancer can pass on
to another replica. nginx passes a request on (``proxy_next_upstream error timeout
non_idempotent``, docs/guides/scale-out.md) only while nothing of the response has reached
it: once it holds the headers it has begun the client's response, and a body that never comes
is the client's error. The HTTP server (uvicorn) writes the headers when the application sends
``http.response.start`` and the body when it sends ``http.response.body``: two writes to the
socket. The first wakes nginx, and on a busy machine the scheduler often runs nginx at once and
the worker only milliseconds later, so the gap between the two writes is not the microseconds
of code between them but a time slice. Measured (``strace`` of a replica under the chaos test's
load): the headers went out alone and the replica was killed before its body, once in every
four to six kills, whether or not BentoML's middlewares (traffic metrics, tracing, the access
log, which work between the two messages) were moved outside.

So :class:`WholeResponses`, around the whole application (outside BentoML's middlewares,
:mod:`serving.service`), holds ``http.response.start`` until the body, and has the server
write both into one buffer that goes to the socket in one ``write``: the kernel then holds the
whole response, which it delivers even if the process dies the next instant. It reaches the
connection through uvicorn's per-request ``send`` (a bound method of the request's cycle, whose
``transport`` attribute is the connection); with another server, or a streamed response (more
than one body message), the messages pass as they come, headers and body in two writes.
``WholeResponses.whole`` counts the responses written in one call: the tests check that the
installed uvicorn is still one it works with.
"""

from __future__ import annotations

from typing import Any


class _Gather:
    """Stands in for a connection's transport while one response passes through the server:
    what the server writes is kept, to be written in one call, and a close waits for it."""

    def __init__(self, transport: Any):
        self._transport = transport
        self.parts: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    def close(self) -> None:
        self.closing = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class WholeResponses:
    """ASGI middleware: a response's start held until its body, both written in one call."""

    def __init__(self, app: Any):
        self.app = app
        self.whole = 0  # responses written to their connection in one call

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[dict] = []

        async def send_whole(message: dict) -> None:
            if message["type"] == "http.response.start":
                held.append(message)
                return
            if not held:
                await send(message)  # a streamed response's later parts
                return
            start = held.pop()
            cycle: Any = getattr(send, "__self__", None)  # uvicorn's request-response cycle
            transport: Any = getattr(cycle, "transport", None)
            if message.get("more_body", False) or not hasattr(transport, "write"):
                await send(start)
                await send(message)
                return
            gather = _Gather(transport)
            cycle.transport = gather
            try:
                await send(start)
                await send(message)
            finally:
                cycle.transport = transport
            if gather.parts:
                transport.write(b"".join(gather.parts))
                self.whole += 1
            if gather.closing:
                transport.close()

        await self.app(scope, receive, send_whole)
