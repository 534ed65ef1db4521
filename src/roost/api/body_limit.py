"""The request body size limit: a 413 before a byte too many is buffered.

A body may be at most ``max_body_bytes`` long (``roost serve --max-body-mb``, default
``DEFAULT_MAX_BODY_BYTES``). A ``Content-Length`` over the limit is answered before routing, so no
handler runs; any other body (chunked) is counted while a route reads it, and the read that
crosses the limit raises ``BodyTooLarge``, which ``api/errors.py`` renders as a 413.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roost.api import errors
from roost.errors import BodyTooLarge

DEFAULT_MAX_BODY_BYTES = 32 * 2**20
"""32 MiB; OpenCode sets no limit, but a prompt that size is already far past any context."""


class BodyLimit:
    """Pure ASGI middleware refusing bodies longer than ``max_body_bytes`` with a 413.

    A ``Content-Length`` over the limit is answered before routing, so no handler runs. Any other
    body is counted as the route reads it; the read that crosses the limit raises
    ``BodyTooLarge``, which the app's exception handler renders. FastAPI's own ``max_body_size``
    is not used: its 413 is plain text, and it replaces whatever response a request with too
    long a ``Content-Length`` gets, OpenCode-shaped errors included.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 at once, or pass the request on with a counting ``receive``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await errors.response_for(BodyTooLarge(limit))(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
