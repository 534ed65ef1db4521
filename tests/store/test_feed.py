"""The event feed across two stores opened on one database (two processes' view of it):
each publishes the other's commits, in id order, woken by PostgreSQL's notifications."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from roost.model import event as ev
from roost.model.event import StoredEvent
from roost.store.database import Database
from roost.store.event_log import Tx
from tests.store.builders import session_info

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def _created(sid: str) -> Callable[[Tx], None]:
    def write(tx: Tx) -> None:
        tx.append(sid, ev.SESSION_CREATED, {"sessionID": sid, "info": session_info(sid)})

    return write


class _Seen:
    """An ``on_commit`` that records what it is given and lets a test wait for a count."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, events: list[StoredEvent]) -> None:
        self.events.extend(events)
        self._changed.set()

    async def until(self, count: int, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_a_notification_wakes_the_other_process_feed_long_before_its_poll(
    postgres_url: str,
) -> None:
    # A 60 s poll: only the LISTEN/NOTIFY wake-up can deliver within the test's 5 s.
    a = await Database.open(postgres_url, poll_s=60)
    b = await Database.open(postgres_url, poll_s=60)
    seen_a, seen_b = _Seen(), _Seen()
    a.on_commit, b.on_commit = seen_a, seen_b
    try:
        # A listener that connects after a commit wakes its feed once connected, so no wait.
        await a.write(_created("ses_1"))
        await seen_b.until(1, 5)
        await b.write(_created("ses_2"))
        await a.write(_created("ses_3"))
        await seen_a.until(3, 5)
        await seen_b.until(3, 5)
        assert [e.id for e in seen_a.events] == [e.id for e in seen_b.events]
        assert [e.session_id for e in seen_b.events] == ["ses_1", "ses_2", "ses_3"]
    finally:
        await a.close()
        await b.close()
