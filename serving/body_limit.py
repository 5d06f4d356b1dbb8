"""Request bodies bounded in size, for the ASGI guards of the JSON API and the CDS Hooks app.

A declared ``Content-Length`` over the limit is answered at once; otherwise the body is counted
as it arrives, so a missing or false ``Content-Length`` cannot get round the limit (the app's
``HTTPException`` handler answers 413 when the count goes over).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response


async def bounded(inner, scope, receive, send, limit: int, too_large: Callable[[str], Response]):
    """Call ``inner`` with a body of at most ``limit`` bytes; ``too_large(message)`` answers a
    declared body over it."""
    declared = Request(scope).headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        response = too_large(f"request body of {declared} bytes exceeds {limit} bytes")
        return await response(scope, receive, send)
    seen = 0

    async def counted_receive():
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise HTTPException(413, f"request body exceeds {limit} bytes")
        return message

    return await inner(scope, counted_receive, send)
