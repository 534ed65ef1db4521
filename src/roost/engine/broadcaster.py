"""Fans committed events out to live subscribers (the SSE streams).

The cost of a commit must not grow with subscribers times events (issue #13): the events
committed since the last flush become one ``Batch``, shared by every subscriber, and each
subscriber gets that batch with one append to its queue and at most one wake-up. Whatever a
subscriber makes of a batch (the SSE frames) is computed once per batch and kept on it
(``Batch.encoded``), so 200 subscribers cost one encoding, not 200.

Commits are flushed together: the first event published after a flush starts a timer of
``flush_delay_s`` per subscriber (capped by ``max_flush_delay_s``), and everything published
until it fires goes out as one batch. Handing a batch to a stream costs a send (a system call
to its socket) whatever the batch holds, so 200 subscribers flushed at every commit would take
the event loop from everything else; with the delay growing with the subscribers, fan-out takes
a bounded share of the loop (about one send's cost per ``flush_delay_s``) and a lone TUI still
gets each event at once.

The store is the truth: a subscriber that falls more than ``max_pending`` events or
``max_pending_bytes`` bytes of event data behind is cut off (``Subscription.overflowed``)
rather than letting memory grow; it keeps what fitted, ends, and its client reconnects with the
last event id it read and replays the gap from the log. Events arrive here in commit order, on
the event loop.

Memory is freed in small pieces (issue #9): a flush keeps at most ``max_pending`` events (no
subscriber could take more; the store frees the rest of a 100k-part commit off the loop) and
hands them out in batches of at most ``BATCH_EVENTS``, each freed on its own once every stream
has sent it, rather than a cascade of 10,000 deallocations in one step of the loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable

from roost.model.event import StoredEvent

_MAX_PENDING = 10_000
_MAX_PENDING_BYTES = 64 * 2**20
FLUSH_DELAY_S = 0.000_25
"""Per subscriber: 50 ms with 200 subscribers, 0.25 ms with one."""
MAX_FLUSH_DELAY_S = 0.100
"""Reached at 400 subscribers; past that, fan-out's share of the loop grows again."""
BATCH_EVENTS = 1000
"""Most events in one batch: freeing one costs the loop about a millisecond."""

Encoder = Callable[[list[StoredEvent]], bytes]
"""What a subscriber makes of a batch's events (e.g. its SSE frames); must be hashable and
always give the same bytes for the same events, since the result is shared."""


class Batch:
    """Events committed together, in commit order, shared by every subscriber.

    Attributes:
        events: Non-empty, ascending ``id``.
        data_bytes: Sum of the events' ``data`` lengths, for the pending-bytes cap.
    """

    __slots__ = ("_encoded", "data_bytes", "events")

    def __init__(self, events: list[StoredEvent]) -> None:
        self.events = events
        self.data_bytes = sum(len(e.data) for e in events)
        self._encoded: dict[Hashable, bytes] = {}

    def encoded(self, encoder: Encoder) -> bytes:
        """``encoder(events)``, computed at most once per encoder."""
        found = self._encoded.get(encoder)
        if found is None:
            found = self._encoded[encoder] = encoder(self.events)
        return found


class Subscription:
    """One subscriber's queue of committed batches.

    Attributes:
        overflowed: The subscriber fell too far behind and was cut off; its queue ends after
            what fitted.
        closed: No batch is added any more; ``take`` returns what is left, then nothing.
    """

    def __init__(self, broadcaster: Broadcaster, max_pending: int, max_pending_bytes: int) -> None:
        self._broadcaster = broadcaster
        self._batches: deque[Batch] = deque()
        self._events = 0
        self._bytes = 0
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.closed = False

    def _offer(self, batch: Batch) -> None:
        """Queue ``batch``, or the part of it that fits before the subscriber is cut off."""
        if self.closed:
            return
        room_events = self._max_pending - self._events
        room_bytes = self._max_pending_bytes - self._bytes
        # An event larger than the byte cap still goes to a subscriber that has nothing queued.
        if len(batch.events) <= room_events and (
            batch.data_bytes <= room_bytes or not self._events
        ):
            self._batches.append(batch)
            self._events += len(batch.events)
            self._bytes += batch.data_bytes
            self._wake()
            return
        fit = size = 0
        for event in batch.events[:room_events]:
            if size + len(event.data) > room_bytes and (fit or self._events):
                break
            fit += 1
            size += len(event.data)
        if fit:
            self._batches.append(Batch(batch.events[:fit]))
        self._cut_off()

    def _cut_off(self) -> None:
        if not self.closed:
            self.overflowed = True
            self.close()

    async def take(self, timeout_s: float | None = None) -> list[Batch]:
        """Every queued batch, oldest first, waiting for one if none is queued.

        Returns an empty list when closed with nothing left, or when ``timeout_s`` passes
        first (check ``closed`` to tell them apart).
        """
        if not self._batches and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                if timeout_s is None:
                    await self._waiter
                else:
                    async with asyncio.timeout(timeout_s):
                        await self._waiter
            except TimeoutError:
                return []
            finally:
                self._waiter = None
        taken = list(self._batches)
        self._batches.clear()
        self._events = self._bytes = 0
        return taken

    def close(self) -> None:
        """Stop receiving; a pending ``take`` returns what is queued (maybe nothing)."""
        if not self.closed:
            self.closed = True
            self._broadcaster._remove(self)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Broadcaster:
    """Delivers committed events to every subscriber, in commit order (module docstring)."""

    def __init__(
        self,
        max_pending: int = _MAX_PENDING,
        max_pending_bytes: int = _MAX_PENDING_BYTES,
        *,
        flush_delay_s: float = FLUSH_DELAY_S,
        max_flush_delay_s: float = MAX_FLUSH_DELAY_S,
    ) -> None:
        self._subs: set[Subscription] = set()
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._flush_delay_s = flush_delay_s
        self._max_flush_delay_s = max_flush_delay_s
        self._pending: list[StoredEvent] = []
        self._truncated = False
        """``_pending`` holds ``max_pending`` events and more were published: everyone is
        cut off at the next flush."""
        self._flush_handle: asyncio.TimerHandle | None = None
        self._closed = False

    def subscribe(self) -> Subscription:
        """A new subscription that receives every event published from now on (after
        ``close_all``, one that is already closed)."""
        self._flush()  # what was published before belongs to the earlier subscribers only
        sub = Subscription(self, self._max_pending, self._max_pending_bytes)
        self._subs.add(sub)
        if self._closed:
            sub.close()
        return sub

    def publish(self, events: list[StoredEvent]) -> None:
        """Hand committed events to everyone; called by the store after each commit, on the
        event loop. They are delivered after the flush delay, with any published meanwhile."""
        if not events or not self._subs:
            return
        room = self._max_pending - len(self._pending)
        if len(events) > room:
            self._truncated = True
            events = events[:room]
        self._pending.extend(events)
        if self._flush_handle is None:
            delay_s = min(self._max_flush_delay_s, self._flush_delay_s * len(self._subs))
            self._flush_handle = asyncio.get_running_loop().call_later(delay_s, self._flush)

    def close_all(self) -> None:
        """End every subscription once it has received what was published before (server
        shutdown); later subscriptions end at once."""
        self._flush()
        self._closed = True
        for sub in list(self._subs):
            sub.close()

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, truncated = self._pending, self._truncated
        self._pending, self._truncated = [], False
        subs = list(self._subs)
        for at in range(0, len(pending), BATCH_EVENTS):
            batch = Batch(pending[at : at + BATCH_EVENTS])
            for sub in subs:
                sub._offer(batch)
        if truncated:
            for sub in subs:
                sub._cut_off()

    def _remove(self, sub: Subscription) -> None:
        self._subs.discard(sub)
