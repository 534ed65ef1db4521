"""Fans committed events out to live subscribers (SSE streams, prompt waiters).

The store is the truth: a subscriber that falls more than ``max_pending`` events behind is cut
off (``Subscription.overflowed``) rather than letting memory grow; it reconnects with its last
event id and replays the gap from the log. Events arrive here in commit order, on the event loop.
"""

from __future__ import annotations

import asyncio

from roost.model.event import StoredEvent

_MAX_PENDING = 10_000


class Subscription:
    """One subscriber's queue of committed events.

    Attributes:
        overflowed: The subscriber fell too far behind and was cut off; its queue ends.
    """

    def __init__(self, broadcaster: Broadcaster, max_pending: int) -> None:
        self._broadcaster = broadcaster
        self._queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue()
        self._max_pending = max_pending
        self.overflowed = False
        self.closed = False

    def _offer(self, events: list[StoredEvent]) -> None:
        """Queue ``events``, or as many as fit before the subscriber is cut off."""
        for event in events:
            if self.closed:
                return
            if self._queue.qsize() >= self._max_pending:
                self.overflowed = True
                self.close()
                return
            self._queue.put_nowait(event)

    async def get(self, timeout_s: float | None = None) -> StoredEvent | None:
        """The next event; None when closed (or when ``timeout_s`` passes first)."""
        if timeout_s is None:
            return await self._queue.get()
        try:
            async with asyncio.timeout(timeout_s):
                return await self._queue.get()
        except TimeoutError:
            return None

    def close(self) -> None:
        """Stop receiving; a pending ``get`` returns None."""
        if not self.closed:
            self.closed = True
            self._broadcaster._remove(self)
            self._queue.put_nowait(None)


class Broadcaster:
    """Delivers each committed batch to every subscriber and listener, in commit order."""

    def __init__(self, max_pending: int = _MAX_PENDING) -> None:
        self._subs: set[Subscription] = set()
        self._max_pending = max_pending
        self._closed = False

    def subscribe(self) -> Subscription:
        """A new subscription that receives every event published from now on (after
        ``close_all``, one that is already closed)."""
        sub = Subscription(self, self._max_pending)
        self._subs.add(sub)
        if self._closed:
            sub.close()
        return sub

    def publish(self, events: list[StoredEvent]) -> None:
        """Hand committed events to everyone; called by the store after each commit.

        Each subscriber takes the batch in turn, so a batch of 100k events costs at most
        ``max_pending`` queue operations per subscriber before it is cut off.
        """
        for sub in list(self._subs):
            sub._offer(events)

    def close_all(self) -> None:
        """End every subscription once it has received what was published before (server
        shutdown); later subscriptions end at once."""
        self._closed = True
        for sub in list(self._subs):
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        self._subs.discard(sub)
