"""JSON responses: stored wire JSON is served as it is, other values through orjson.

A big array (a session's 10,000 messages are 26 MiB) is built and sent a slice at a time
(``json_array``): joining and encoding it in one go held the event loop for about 100 ms, so
every other request waited that long (``bench/long_history.py --get-all``).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse


class JSONBytes(Response):
    """``application/json`` from any orjson-serializable value."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialize with orjson (bytes pass through untouched)."""
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def raw_json(body: str | bytes, status_code: int = 200) -> JSONBytes:
    """A response whose body is already JSON text."""
    return JSONBytes(body.encode() if isinstance(body, str) else body, status_code=status_code)


SLICE_CHARS = 256 * 1024
"""Characters of array items joined and encoded per step of the event loop (about 0.2 ms)."""


async def json_array(items: Iterable[str], *, slice_chars: int = SLICE_CHARS) -> Response:
    """A JSON array of already-encoded JSON items (``items`` is consumed on the loop, a slice
    of about ``slice_chars`` characters per step, so each item's own work, like
    ``message_json``, is spread out too).

    An array that fits in one slice is one ``application/json`` body. A longer one is sent
    as its slices, with its ``Content-Length``, letting the loop run between two slices; the
    bytes are the same either way.
    """
    slices: collections.deque[bytes] = collections.deque()
    batch: list[str] = []
    chars = 0
    for item in items:
        batch.append(item)
        chars += len(item)
        if chars >= slice_chars:
            slices.append(("," if slices else "[").encode() + ",".join(batch).encode())
            batch, chars = [], 0
            await asyncio.sleep(0)
    if not slices:
        return JSONBytes(("[" + ",".join(batch) + "]").encode())
    slices.append(("," + ",".join(batch) if batch else "").encode() + b"]")
    length = sum(len(s) for s in slices)

    async def send() -> AsyncIterator[bytes]:
        while slices:
            yield slices.popleft()  # a slice sent is let go at once
            await asyncio.sleep(0)

    return StreamingResponse(
        send(), media_type="application/json", headers={"content-length": str(length)}
    )


def message_json(info: str, parts: list[str]) -> str:
    """``{"info": …, "parts": […]}`` from stored JSON."""
    return '{"info":' + info + ',"parts":[' + ",".join(parts) + "]}"
