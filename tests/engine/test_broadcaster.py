"""The broadcaster: each subscriber gets every committed event in order, or is cut off."""

from __future__ import annotations

import pytest

from roost.engine.broadcaster import BATCH_EVENTS, Broadcaster, Subscription
from roost.model.event import StoredEvent

pytestmark = pytest.mark.anyio


def _events(first: int, last: int, size: int = 8) -> list[StoredEvent]:
    """Events ``first..last`` whose ``data`` is ``size`` bytes."""
    return [
        StoredEvent(i, "ses_b", i, "session.status", None, b"%0*d" % (size, i), 0)
        for i in range(first, last + 1)
    ]


async def _drain(sub: Subscription) -> list[int]:
    """Ids of everything queued, until nothing more arrives within 50 ms."""
    got: list[int] = []
    while batches := await sub.take(timeout_s=0.05):
        got += [e.id for b in batches for e in b.events]
    return got


async def test_every_subscriber_gets_each_commit_in_order() -> None:
    hub = Broadcaster(max_pending=100)
    first, second = hub.subscribe(), hub.subscribe()
    hub.publish(_events(1, 30))
    hub.publish(_events(31, 40))
    assert await _drain(first) == list(range(1, 41))
    assert await _drain(second) == list(range(1, 41))
    assert not first.overflowed and not second.overflowed


async def test_commits_before_a_flush_are_one_batch_encoded_once_for_all() -> None:
    hub = Broadcaster(flush_delay_s=0.01)
    subs = [hub.subscribe() for _ in range(3)]
    hub.publish(_events(1, 2))
    hub.publish(_events(3, 5))
    calls: list[list[int]] = []

    def encoder(events: list[StoredEvent]) -> bytes:
        calls.append([e.id for e in events])
        return b",".join(e.data for e in events)

    encoded = []
    for sub in subs:
        batches = await sub.take(timeout_s=5)
        assert [[e.id for e in b.events] for b in batches] == [[1, 2, 3, 4, 5]]
        encoded.append(batches[0].encoded(encoder))
    assert calls == [[1, 2, 3, 4, 5]]
    assert encoded == [b"00000001,00000002,00000003,00000004,00000005"] * 3


async def test_a_subscriber_gets_nothing_published_before_it_subscribed() -> None:
    hub = Broadcaster(flush_delay_s=0.01)
    early = hub.subscribe()
    hub.publish(_events(1, 3))  # not flushed yet when ``late`` subscribes
    late = hub.subscribe()
    hub.publish(_events(4, 5))
    assert await _drain(early) == [1, 2, 3, 4, 5]
    assert await _drain(late) == [4, 5]


async def test_a_commit_past_max_pending_cuts_off_only_the_subscriber_behind() -> None:
    hub = Broadcaster(max_pending=50)
    behind = hub.subscribe()
    hub.publish(_events(1, 10))
    caught_up = hub.subscribe()
    hub.publish(_events(11, 55))  # ``behind`` holds 10 + 45 > 50: cut off after 50
    assert await _drain(caught_up) == list(range(11, 56))  # ``behind`` has taken nothing
    assert not caught_up.overflowed and not caught_up.closed
    assert await _drain(behind) == list(range(1, 51))
    assert behind.overflowed and behind.closed


async def test_a_subscriber_behind_by_more_than_max_pending_bytes_is_cut_off() -> None:
    hub = Broadcaster(max_pending_bytes=1000)
    behind = hub.subscribe()
    hub.publish(_events(1, 6, size=100))
    caught_up = hub.subscribe()
    hub.publish(_events(7, 12, size=100))  # ``behind`` holds 600 + 600 > 1000 bytes
    assert await _drain(caught_up) == list(range(7, 13))
    assert not caught_up.overflowed
    assert await _drain(behind) == list(range(1, 11))
    assert behind.overflowed


async def test_an_event_larger_than_max_pending_bytes_reaches_a_subscriber_with_none_queued() -> (
    None
):
    hub = Broadcaster(max_pending_bytes=1000)
    sub = hub.subscribe()
    hub.publish(_events(1, 1, size=5000))
    assert await _drain(sub) == [1]
    assert not sub.overflowed
    hub.publish(_events(2, 2, size=5000))
    hub.publish(_events(3, 3, size=10))
    assert await _drain(sub) == [2, 3]


async def test_close_all_ends_each_subscription_after_what_was_published() -> None:
    hub = Broadcaster(flush_delay_s=10)  # nothing would be flushed by the timer in time
    sub = hub.subscribe()
    hub.publish(_events(1, 3))
    hub.close_all()
    assert [e.id for b in await sub.take() for e in b.events] == [1, 2, 3]
    assert await sub.take() == []
    assert sub.closed and not sub.overflowed
    assert hub.subscribe().closed


async def test_a_commit_larger_than_max_pending_cuts_off_everyone_after_what_fits() -> None:
    hub = Broadcaster(max_pending=2500)
    subs = [hub.subscribe() for _ in range(2)]
    hub.publish(_events(1, 3000))
    for sub in subs:
        batches = await sub.take(timeout_s=5)
        # Handed out in batches of at most BATCH_EVENTS, each freed on its own.
        assert [len(b.events) for b in batches] == [BATCH_EVENTS, BATCH_EVENTS, 500]
        assert [e.id for b in batches for e in b.events] == list(range(1, 2501))
        assert sub.overflowed and await sub.take() == []
    assert not hub.subscribe().closed  # the next subscriber starts afresh
