"""The broadcaster: each subscriber gets every committed event in order, or is cut off."""

from __future__ import annotations

import pytest

from roost.engine.broadcaster import Broadcaster, Subscription
from roost.model.event import StoredEvent

pytestmark = pytest.mark.anyio


def _events(n: int) -> list[StoredEvent]:
    return [
        StoredEvent(i, "ses_b", i, "session.status", {"n": i}, b'{"n":%d}' % i, 0)
        for i in range(1, n + 1)
    ]


async def _drain(sub: Subscription) -> list[int]:
    got: list[int] = []
    while (event := await sub.get(timeout_s=0.01)) is not None:
        got.append(event.id)
    return got


async def test_every_subscriber_gets_each_batch_in_commit_order() -> None:
    hub = Broadcaster(max_pending=100)
    first, second = hub.subscribe(), hub.subscribe()
    hub.publish(_events(30))
    hub.publish(_events(40)[30:])
    assert await _drain(first) == list(range(1, 41))
    assert await _drain(second) == list(range(1, 41))
    assert not first.overflowed and not second.overflowed


async def test_a_batch_past_max_pending_cuts_off_only_the_subscriber_behind() -> None:
    hub = Broadcaster(max_pending=50)
    behind = hub.subscribe()
    hub.publish(_events(10))
    caught_up = hub.subscribe()
    hub.publish(_events(55)[10:])  # ``behind`` holds 10 + 45 > 50: cut off after 50
    assert await _drain(behind) == list(range(1, 51))
    assert behind.overflowed and behind.closed
    assert await _drain(caught_up) == list(range(11, 56))
    assert not caught_up.overflowed
