"""Responses handed to the HTTP server whole: the status line and headers held until the
body is ready, then both written one right after the other, outside every other middleware.

Why: behind a load balancer, a replica killed (SIGKILL, the kernel's OOM killer, a lost
machine) after it wrote a response's headers but before its body leaves a response that no
load balancer can pass on to another replica. nginx passes a request on
(``proxy_next_upstream error timeout non_idempotent``, docs/guides/scale-out.md) only while
nothing of the response has reached it: once it holds the headers, it has begun the client's
response, and a body that never comes is the client's error. BentoML's middlewares (traffic
metrics, OpenTelemetry, the access log) do their bookkeeping when a response's last body
message passes them, after the headers went out and before the body does: every request had
such a window, a fraction of a millisecond in which a kill cut the response (the chaos test
``test_a_replica_killed_under_load_...`` saw one such cut response in 630 requests in two
runs out of three). Wrapped around the whole application, this middleware passes the headers
on only with the body, so the server writes the two back to back, with no middleware and no
event-loop turn in between. (The server still writes them in two calls, microseconds apart;
a response cut in that window is audited once and answered by no one, and may be sent again:
every prediction is a pure function of its request.)

Streaming responses (more than one body message) pass as they are once the first body
message comes; nothing of this service streams.
"""

from __future__ import annotations

from typing import Any


class WholeResponses:
    """ASGI middleware: ``http.response.start`` held until the first ``http.response.body``."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[dict] = []

        async def send_whole(message: dict) -> None:
            if message["type"] == "http.response.start":
                held.append(message)
                return
            if held:
                await send(held.pop())
            await send(message)

        await self.app(scope, receive, send_whole)
