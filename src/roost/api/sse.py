"""Event → SSE frame, heartbeats, and replay-then-follow for ``GET /event``.

Frames are OpenCode's v1 ``data: {"type", "properties"}`` (``Event`` schema). Unlike OpenCode,
each logged event also carries ``id:`` (its global log position), and a client reconnecting with
``Last-Event-ID`` first receives every logged event after that id, in order, then live ones
(HTML Living Standard, "Server-sent events", §9.2). ``server.connected`` and
``server.heartbeat`` are not logged and carry no id.

Frames are built as bytes around the event's stored JSON, as sse-starlette would encode them
(``id:`` line, one ``data:`` line, LF endings): the JSON has no raw line breaks (it escapes them),
so it needs no splitting, and a 30 MiB event is copied once rather than decoded, split and
encoded again on the event loop (issue #9).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson

from roost.engine.sessions import SessionService
from roost.model import event as ev
from roost.model.event import StoredEvent

HEARTBEAT_S = 10.0
_REPLAY_PAGE = 1000

_FRAMES_PER_STEP = 100
"""Frames a stream sends before it lets other tasks run. Taking a queued event and sending a
frame both return without suspending while there is more to send, so a subscriber 10,000
events behind (a 100k-part prompt) would otherwise send them all in one step of the event
loop: 300-500 ms with nothing else served (issue #9)."""

Wrap = Callable[[list[bytes]], list[bytes]]
"""Turns the pieces of an ``Event`` JSON text into those of the frame's data (``/global/event``
adds its envelope around them)."""


def event_json(event: StoredEvent) -> list[bytes]:
    """``{"type": …, "properties": …}`` for a logged event, in pieces (joined once, in
    ``frame``)."""
    return [b'{"type":"', event.type.encode(), b'","properties":', event.data, b"}"]


def frame(data: list[bytes], id: int | None = None) -> bytes:
    """One SSE frame whose ``data`` (JSON, without line breaks) is the pieces joined.

    LF line endings, as OpenCode sends them: the official JS SDK's parser splits frames on
    "\n\n" and never sees a frame terminated by CRLF (sse-starlette's default).
    """
    head = [b"data: "] if id is None else [b"id: %d\ndata: " % id]
    return b"".join([*head, *data, b"\n\n"])


def _plain(data: list[bytes]) -> list[bytes]:
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
) -> AsyncIterator[bytes]:
    """Yield SSE frames: connected, replay after ``cursor`` (if given), then live events, with a
    ``server.heartbeat`` whenever ``heartbeat_s`` passes without one."""
    sub = service.subscribe()
    sent = 0
    try:
        yield frame(wrap([orjson.dumps({"type": ev.SERVER_CONNECTED, "properties": {}})]))
        if cursor is not None:
            while True:
                page = await service.events_after(cursor, limit=_REPLAY_PAGE)
                for event in page:
                    cursor = event.id
                    yield frame(wrap(event_json(event)), event.id)
                    sent += 1
                    if sent % _FRAMES_PER_STEP == 0:
                        await asyncio.sleep(0)
                if len(page) < _REPLAY_PAGE:
                    break
        heartbeat = frame(wrap([orjson.dumps({"type": ev.SERVER_HEARTBEAT, "properties": {}})]))
        while True:
            next_event = await sub.get(timeout_s=heartbeat_s)
            if next_event is None:
                if sub.closed:
                    return
                yield heartbeat
                continue
            if cursor is not None and next_event.id <= cursor:
                continue  # already sent during replay
            yield frame(wrap(event_json(next_event)), next_event.id)
            sent += 1
            if sent % _FRAMES_PER_STEP == 0:
                await asyncio.sleep(0)
    finally:
        sub.close()
