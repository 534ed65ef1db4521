"""The event feed: every committed event, whichever process committed it, published once and in
commit order.

Several processes may write one store (replicas on one PostgreSQL database or one SQLite
file). Each publishes its own commits at once, and reads the others' back from the log: the
database is the only truth, and the poll is the wake-up. Because every write transaction holds
the store's write lock until it commits (``database.py``), event ids are handed out in commit
order, so one cursor, the highest id published here, is enough:

- A commit of this process whose first id follows the cursor is published at once (one process
  alone never waits).
- A commit that leaves a gap (another process committed in between) waits, and the feed reads
  the log after the cursor: what it finds is published in id order, this process's own events
  included (its objects, not the copies read back). An id below the newest one visible that
  is not in the log never will be (a rolled-back transaction's id on PostgreSQL, an event of a
  deleted session): the cursor moves past it.
- Every ``poll_s`` the feed reads the log after the cursor, so events of other processes reach
  this process's subscribers even when it commits nothing itself.

Subscribers therefore see each session's events in ``seq`` order and the global ids ascending,
as ``Last-Event-ID`` resume needs, on every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from roost.model.event import StoredEvent
from roost.store.event_log import read_events_after
from roost.store.schema import event

log = logging.getLogger(__name__)

_BATCH = 1000
"""Events read per query when catching up."""

Read = Callable[[Callable[[Connection], Any]], Awaitable[Any]]


def _newest_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(event.c.id), 0))).scalar_one())


def _read_after(conn: Connection, after: int) -> tuple[list[StoredEvent], int]:
    """Events after ``after`` (at most ``_BATCH``) and the newest id in the same snapshot."""
    return read_events_after(conn, after, limit=_BATCH), _newest_id(conn)


class EventFeed:
    """Orders committed events into ``publish`` (see the module docstring); runs on the loop.

    Args:
        read: The store's ``Database.read``.
        publish: Called with each batch of events, in id order, on the loop.
        poll_s: Interval between reads of the log for other processes' events, seconds.
    """

    def __init__(
        self, read: Read, publish: Callable[[list[StoredEvent]], None], poll_s: float
    ) -> None:
        self._read = read
        self._publish = publish
        self._poll_s = poll_s
        self._cursor = 0
        """The highest event id published (or known never to come)."""
        self._held: dict[int, StoredEvent] = {}
        """This process's committed events waiting behind a gap, by id."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start after the events already in the log, and begin polling."""
        self._cursor = await self._read(_newest_id)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="roost-event-feed")

    def wake(self) -> None:
        """Read the log now (another process committed events); call on the loop."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop polling (events committed afterwards by this process are still published)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def local(self, events: list[StoredEvent]) -> None:
        """This process committed ``events`` (ascending ids): publish them now, or once the
        gap before them is read."""
        if not events:
            return
        if not self._held and events[0].id == self._cursor + 1:
            self._cursor = events[-1].id
            self._publish(events)
            return
        if events[-1].id <= self._cursor:  # already published from the log
            return
        for e in events:
            if e.id > self._cursor:
                self._held[e.id] = e
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is unreachable: try again at the next tick
                log.warning("could not read the event log: %s", exc)

    async def _catch_up(self) -> None:
        while True:
            found, newest = await self._read(partial(_read_after, after=self._cursor))
            fresh = [self._held.pop(e.id, e) for e in found if e.id > self._cursor]
            if fresh:
                self._cursor = fresh[-1].id
                self._publish(fresh)
            if len(found) < _BATCH:
                # Everything up to ``newest`` was in that snapshot: a missing id never comes.
                self._cursor = max(self._cursor, newest)
                stale = [i for i in self._held if i <= self._cursor]
                for i in stale:  # published from the log meanwhile, or deleted
                    del self._held[i]
                if self._held and min(self._held) == self._cursor + 1:
                    continue  # our own commit landed after that snapshot: read again
                return
