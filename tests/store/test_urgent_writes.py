"""Urgent writes (admissions) go before queued ordinary writes, without starving them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from roost.store import database
from roost.store.database import Database
from roost.store.event_log import Tx

pytestmark = pytest.mark.anyio

_BOUND_S = 10.0
"""Upper bound of every wait here: a hang fails the test instead of stalling the suite."""


def _recording(
    order: list[str], name: str, gate: threading.Event | None = None
) -> Callable[[Tx], None]:
    """A command that notes its name (on the writer thread), then waits for ``gate``."""

    def fn(tx: Tx) -> None:
        tx.append("ses_a", "session.status", {"sessionID": "ses_a", "status": {"type": "busy"}})
        if name not in order:  # a retried group runs its commands again
            order.append(name)
        if gate is not None:
            assert gate.wait(_BOUND_S), f"{name} was never released"

    return fn


async def _until(check: Callable[[], bool]) -> None:
    """Poll ``check`` (a list filled by the writer thread: no loop event to wait on)."""
    for _ in range(int(_BOUND_S / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("timed out")


async def test_an_urgent_write_commits_before_ordinary_writes_queued_ahead_of_it(
    db: Database,
) -> None:
    order: list[str] = []
    hold = threading.Event()
    first = asyncio.create_task(db.write(_recording(order, "held", hold)))
    await _until(lambda: order == ["held"])  # the writer is inside "held"'s transaction
    ordinary = [asyncio.create_task(db.write(_recording(order, f"o{n}"))) for n in range(5)]
    await asyncio.sleep(0.05)  # all five are queued before the urgent one
    urgent = asyncio.create_task(db.write(_recording(order, "urgent"), urgent=True))
    await asyncio.sleep(0.05)
    hold.set()
    async with asyncio.timeout(_BOUND_S):
        await asyncio.gather(first, urgent, *ordinary)
    assert order == ["held", "urgent", "o0", "o1", "o2", "o3", "o4"]
    rows = await db.read(
        lambda c: c.exec_driver_sql("SELECT id FROM event ORDER BY id").scalars().all()
    )
    ids = dict(zip(order, rows, strict=True))
    assert ids["urgent"] < min(ids[f"o{n}"] for n in range(5))


async def test_ordinary_writes_taken_with_an_urgent_group_go_before_the_next_urgent_one(
    db: Database,
) -> None:
    """Each lane waits for at most one group of the other: a steady stream of admissions
    cannot hold a turn's writes (or the lease heartbeat's) back for good."""
    order: list[str] = []
    hold, hold_urgent = threading.Event(), threading.Event()
    first = asyncio.create_task(db.write(_recording(order, "held", hold)))
    await _until(lambda: order == ["held"])
    ordinary = asyncio.create_task(db.write(_recording(order, "ordinary")))
    await asyncio.sleep(0.05)
    one = asyncio.create_task(db.write(_recording(order, "urgent-1", hold_urgent), urgent=True))
    await asyncio.sleep(0.05)
    hold.set()
    await _until(lambda: order[-1] == "urgent-1")  # the urgent group is in progress
    two = asyncio.create_task(db.write(_recording(order, "urgent-2"), urgent=True))
    await asyncio.sleep(0.05)
    hold_urgent.set()
    async with asyncio.timeout(_BOUND_S):
        await asyncio.gather(first, ordinary, one, two)
    assert order == ["held", "urgent-1", "ordinary", "urgent-2"]


async def test_loop_work_yields_to_an_admission_in_flight_for_a_bounded_time(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.wait_for(db.yield_to_urgent(), _BOUND_S)  # nothing in flight: no wait
    order: list[str] = []
    hold = threading.Event()
    monkeypatch.setattr(database, "_YIELD_S", 3600.0)
    urgent = asyncio.create_task(db.write(_recording(order, "urgent", hold), urgent=True))
    await _until(lambda: order == ["urgent"])
    waiting = asyncio.create_task(db.yield_to_urgent())
    later = asyncio.create_task(db.write(_recording(order, "ordinary")))
    await asyncio.sleep(0.2)
    assert not waiting.done() and not later.done()
    hold.set()
    async with asyncio.timeout(_BOUND_S):
        await asyncio.gather(urgent, waiting, later)
    assert order == ["urgent", "ordinary"]

    # The wait is bounded: with the admission stuck in the writer, loop work goes on.
    monkeypatch.setattr(database, "_YIELD_S", 0.05)
    stuck = threading.Event()
    blocked = asyncio.create_task(db.write(_recording(order, "stuck", stuck), urgent=True))
    await _until(lambda: order[-1] == "stuck")
    await asyncio.wait_for(db.yield_to_urgent(), _BOUND_S)
    assert not blocked.done()
    stuck.set()
    await asyncio.wait_for(blocked, _BOUND_S)


async def test_a_yield_waits_for_the_admissions_in_flight_when_it_began_not_later_ones(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A steady stream of admissions must not hold loop work for the whole bound each time."""
    order: list[str] = []
    first_gate, second_gate = threading.Event(), threading.Event()
    monkeypatch.setattr(database, "_YIELD_S", 3600.0)
    first = asyncio.create_task(db.write(_recording(order, "first", first_gate), urgent=True))
    await _until(lambda: order == ["first"])
    waiting = asyncio.create_task(db.yield_to_urgent())
    second = asyncio.create_task(db.write(_recording(order, "second", second_gate), urgent=True))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    first_gate.set()
    await _until(lambda: order == ["first", "second"])  # the second is in the writer now
    await asyncio.wait_for(waiting, _BOUND_S)
    assert not second.done()
    second_gate.set()
    async with asyncio.timeout(_BOUND_S):
        await asyncio.gather(first, second)
