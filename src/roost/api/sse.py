"""Event → SSE frame, heartbeats, and replay-then-follow for ``GET /event``.

Frames are OpenCode's v1 ``data: {"type", "properties"}`` (``Event`` schema). Unlike OpenCode,
each logged event also carries ``id:`` (its global log position), and a client reconnecting with
``Last-Event-ID`` first receives every logged event after that id, in order, then live ones
(HTML Living Standard, "Server-sent events", §9.2). ``server.connected`` and
``server.heartbeat`` are not logged and carry no id.

Frames are built as bytes around the event's stored JSON, as sse-starlette would encode them
(``id:`` line, one ``data:`` line, LF endings): the JSON has no raw line breaks (it escapes them),
so it needs no splitting, and a 30 MiB event is copied once rather than decoded, split and
encoded again on the event loop (issue #9). Live events are framed once per batch for all
subscribers, not once per subscriber (issue #13).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import orjson

from roost.engine.broadcaster import Batch
from roost.engine.sessions import SessionService
from roost.model import event as ev
from roost.model.event import StoredEvent

HEARTBEAT_S = 10.0
_REPLAY_PAGE = 1000

_SEND_BYTES = 256 * 2**10
"""Largest piece of a stream handed to the server in one send. Frames are encoded once per
batch and shared by every subscriber (``Batch.encoded``); each stream sends them in pieces of
at most this size, so a slow client holds at most one piece (plus the socket buffers) of a
large batch, and a stream lets other tasks run between pieces (issue #9)."""


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


@dataclass(frozen=True)
class FrameEncoder:
    """Logged events → their SSE frames, joined, with ``prefix`` and ``suffix`` around each
    ``Event`` JSON text (``/global/event`` wraps it in its envelope; ``/event`` adds nothing).

    Equal encoders are interchangeable: a batch encoded by one is reused for the other.
    """

    prefix: bytes = b""
    suffix: bytes = b""

    def __call__(self, events: list[StoredEvent]) -> bytes:
        """``frame([prefix, *event_json(e), suffix], e.id)`` for each event, concatenated."""
        prefix, suffix = self.prefix, self.suffix
        pieces: list[bytes] = []
        for e in events:
            pieces += (
                b"id: %d\ndata: " % e.id,
                prefix,
                b'{"type":"',
                e.type.encode(),
                b'","properties":',
                e.data,
                b"}",
                suffix,
                b"\n\n",
            )
        return b"".join(pieces)

    def unlogged(self, type: str) -> bytes:
        """The frame of an event that is not logged (no ``id``, empty ``properties``)."""
        return frame([self.prefix, orjson.dumps({"type": type, "properties": {}}), self.suffix])


PLAIN = FrameEncoder()
"""``/event``'s frames."""


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


def _pieces(blobs: Iterable[bytes]) -> Iterator[bytes]:
    """``blobs`` concatenated and cut into pieces of at most ``_SEND_BYTES`` (none empty)."""
    run: list[bytes] = []
    size = 0
    for blob in blobs:
        if size + len(blob) > _SEND_BYTES and run:
            yield b"".join(run)
            run, size = [], 0
        if len(blob) > _SEND_BYTES:
            for at in range(0, len(blob), _SEND_BYTES):
                yield blob[at : at + _SEND_BYTES]
        elif blob:
            run.append(blob)
            size += len(blob)
    if run:
        yield b"".join(run)


def _unsent(batch: Batch, encoder: FrameEncoder, cursor: int | None) -> bytes:
    """The frames of ``batch``'s events after ``cursor`` (all of them: the shared encoding)."""
    if cursor is None or batch.events[0].id > cursor:
        return batch.encoded(encoder)
    return encoder([e for e in batch.events if e.id > cursor])


async def stream_events(
    service: SessionService,
    cursor: int | None,
    encoder: FrameEncoder = PLAIN,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[bytes]:
    """Yield SSE bytes: connected, replay after ``cursor`` (if given), then live events, with a
    ``server.heartbeat`` whenever ``heartbeat_s`` passes without one.

    Each wake-up sends everything queued in as few pieces as ``_SEND_BYTES`` allows. The
    stream ends when the subscription closes: at shutdown, or when this subscriber fell too far
    behind (``Subscription.overflowed``), after what was queued for it; its client then
    reconnects with ``Last-Event-ID`` and replays the rest from the log.
    """
    sub = service.subscribe()
    try:
        yield encoder.unlogged(ev.SERVER_CONNECTED)
        if cursor is not None:
            while True:
                page = await service.events_after(cursor, limit=_REPLAY_PAGE)
                if page:
                    cursor = page[-1].id
                    async for piece in _send([encoder(page)]):
                        yield piece
                if len(page) < _REPLAY_PAGE:
                    break
        heartbeat = encoder.unlogged(ev.SERVER_HEARTBEAT)
        while True:
            batches = await sub.take(timeout_s=heartbeat_s)
            if not batches:
                if sub.closed:
                    return
                yield heartbeat
                continue
            async for piece in _send(_frames(batches, encoder, cursor)):
                yield piece
    finally:
        sub.close()


def _frames(batches: list[Batch], encoder: FrameEncoder, cursor: int | None) -> Iterator[bytes]:
    """The frames of each batch not yet sent, dropping each batch from ``batches`` as it is
    encoded, so that one whose last holder this stream is is freed on its own (issue #9)."""
    batches.reverse()
    while batches:
        yield _unsent(batches.pop(), encoder, cursor)


async def _send(blobs: Iterable[bytes]) -> AsyncIterator[bytes]:
    """The pieces of ``blobs``, letting other tasks run between pieces."""
    first = True
    for piece in _pieces(blobs):
        if not first:
            await asyncio.sleep(0)
        first = False
        yield piece
