"""Event → SSE frame, heartbeats, and replay-then-follow for ``GET /event``.

Frames are OpenCode's v1 ``data: {"type", "properties"}`` (``Event`` schema). Unlike OpenCode,
each logged event also carries ``id:`` (its global log position), and a client reconnecting with
``Last-Event-ID`` first receives every logged event after that id, in order, then live ones
(HTML Living Standard, "Server-sent events", §9.2). ``server.connected`` and
``server.heartbeat`` are not logged and carry no id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
from sse_starlette import ServerSentEvent

from roost.engine.sessions import SessionService
from roost.model import event as ev
from roost.model.event import StoredEvent

HEARTBEAT_S = 10.0
_REPLAY_PAGE = 1000

Wrap = Callable[[str], str]
"""Turns an ``Event`` JSON text into the frame's data (``/global/event`` wraps it)."""


def event_json(event: StoredEvent) -> str:
    """``{"type": …, "properties": …}`` for a logged event."""
    return '{"type":"' + event.type + '","properties":' + event.data.decode() + "}"


def _frame(*, data: str, id: str | None = None) -> ServerSentEvent:
    # LF line endings, as OpenCode sends them: the official JS SDK's parser splits frames on
    # "\n\n" and never sees a frame terminated by CRLF (sse-starlette's default).
    return ServerSentEvent(data=data, id=id, sep="\n")


def _plain(data: str) -> str:
    return data


_MAX_CURSOR = 2**63 - 1
"""Event ids are SQLite integers; a larger ``Last-Event-ID`` names no event."""


def parse_cursor(value: str | None) -> int | None:
    """The ``Last-Event-ID`` cursor, or None when absent or not an integer in 0..2^63-1.

    A cursor that is None is ignored, as the SSE standard lets a server ignore an id it does not
    know: the stream starts with live events. Only ASCII digits count (``str.isdigit`` also
    accepts ``²``, which ``int`` refuses).
    """
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    cursor = int(text)
    return cursor if cursor <= _MAX_CURSOR else None


async def stream_events(
    service: SessionService,
    cursor: int | None,
    wrap: Wrap = _plain,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[ServerSentEvent]:
    """Yield SSE frames: connected, replay after ``cursor`` (if given), then live events, with a
    ``server.heartbeat`` whenever ``heartbeat_s`` passes without one."""
    sub = service.subscribe()
    try:
        yield _frame(
            data=wrap(orjson.dumps({"type": ev.SERVER_CONNECTED, "properties": {}}).decode())
        )
        if cursor is not None:
            while True:
                page = await service.events_after(cursor, limit=_REPLAY_PAGE)
                for event in page:
                    cursor = event.id
                    yield _frame(data=wrap(event_json(event)), id=str(event.id))
                if len(page) < _REPLAY_PAGE:
                    break
        heartbeat = wrap(orjson.dumps({"type": ev.SERVER_HEARTBEAT, "properties": {}}).decode())
        while True:
            next_event = await sub.get(timeout_s=heartbeat_s)
            if next_event is None:
                if sub.closed:
                    return
                yield _frame(data=heartbeat)
                continue
            if cursor is not None and next_event.id <= cursor:
                continue  # already sent during replay
            yield _frame(data=wrap(event_json(next_event)), id=str(next_event.id))
    finally:
        sub.close()
