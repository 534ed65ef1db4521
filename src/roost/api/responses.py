"""JSON responses: stored wire JSON is served as it is, other values through orjson."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.responses import Response


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


def raw_json_array(items: Iterable[str]) -> JSONBytes:
    """A JSON array of already-encoded JSON items."""
    return JSONBytes(("[" + ",".join(items) + "]").encode())


def message_json(info: str, parts: list[str]) -> str:
    """``{"info": …, "parts": […]}`` from stored JSON."""
    return '{"info":' + info + ',"parts":[' + ",".join(parts) + "]}"
