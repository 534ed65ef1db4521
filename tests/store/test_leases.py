"""Run leases: one live lease per session, generation fencing, renewal from another thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from roost.engine.heartbeat import Heartbeat
from roost.store import leases
from roost.store.database import Database
from roost.store.event_log import Tx

T = TypeVar("T")

pytestmark = pytest.mark.anyio


async def test_a_live_lease_excludes_other_runs_and_expiry_allows_takeover(db: Database) -> None:
    first = await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_1", "me", 60_000))
    assert first.generation == 1
    with pytest.raises(leases.LeaseHeld):
        await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_2", "you", 60_000))
    short = await db.write(lambda tx: leases.acquire(tx.conn, "ses_b", "run_3", "me", 1))
    await asyncio.sleep(0.01)
    taken = await db.write(lambda tx: leases.acquire(tx.conn, "ses_b", "run_4", "you", 60_000))
    assert taken.generation == short.generation + 1


async def test_a_write_from_an_older_generation_is_refused(db: Database) -> None:
    old = await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_1", "me", 1))
    await asyncio.sleep(0.01)
    await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_2", "you", 60_000))

    def fenced(tx: Tx) -> None:
        leases.check(tx.conn, "ses_a", old.generation)
        tx.append("ses_a", "session.status", {"sessionID": "ses_a", "status": {"type": "busy"}})

    with pytest.raises(leases.LeaseLost):
        await db.write(fenced)
    events = await db.read(lambda c: c.exec_driver_sql("SELECT count(*) FROM event").scalar())
    assert events == 0  # the fenced write left nothing behind


async def test_the_heartbeat_renews_while_the_event_loop_is_blocked(db: Database) -> None:
    ttl_ms = 300
    lease = await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_1", "me", ttl_ms))
    lost: list[tuple[str, int]] = []
    beat = Heartbeat(
        db, "me", ttl_ms, lambda sid, gen: lost.append((sid, gen)), asyncio.get_running_loop()
    )
    beat.hold("ses_a", lease.generation)
    beat.start()
    try:
        time.sleep(1.0)  # noqa: ASYNC251  # blocks the loop for three TTLs on purpose
        current = await db.read(lambda c: leases.get(c, "ses_a"))
        assert current is not None and current.is_live(int(time.time() * 1000))
        assert lost == []
    finally:
        beat.stop()


async def test_renewal_reports_a_lease_taken_over(db: Database) -> None:
    mine = await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_1", "me", 1))
    await asyncio.sleep(0.01)
    await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_2", "you", 60_000))
    lost = await db.write(
        lambda tx: leases.renew(tx.conn, "me", [("ses_a", mine.generation)], 60_000)
    )
    assert lost == [("ses_a", mine.generation)]


async def test_renewal_does_not_report_a_lease_its_own_run_released(db: Database) -> None:
    mine = await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_1", "me", 60_000))
    await db.write(lambda tx: leases.release(tx.conn, "ses_a", mine.generation))
    lost = await db.write(
        lambda tx: leases.renew(tx.conn, "me", [("ses_a", mine.generation)], 60_000)
    )
    assert lost == []


async def test_a_beat_racing_the_next_run_of_the_session_leaves_that_run_alone(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat snapshots (session, generation) pairs, then renews them on the writer
    thread. If the run ends and the session's next run takes the lease in between, the stale
    generation comes back from the renewal: that must neither cancel nor stop renewing the
    new run."""
    first = await db.write(lambda tx: leases.acquire(tx.conn, "ses_a", "run_1", "me", 60_000))
    lost: list[tuple[str, int]] = []
    beat = Heartbeat(
        db, "me", 60_000, lambda sid, gen: lost.append((sid, gen)), asyncio.get_running_loop()
    )
    beat.hold("ses_a", first.generation)
    renew = leases.renew

    def run_ends_and_the_next_begins(conn, owner, held, ttl_ms):  # type: ignore[no-untyped-def]
        leases.release(conn, "ses_a", first.generation)
        beat.drop("ses_a", first.generation)
        second = leases.acquire(conn, "ses_a", "run_2", "me", 60_000)
        beat.hold("ses_a", second.generation)
        return renew(conn, owner, held, ttl_ms)

    monkeypatch.setattr(leases, "renew", run_ends_and_the_next_begins)
    await asyncio.to_thread(beat.beat)
    await asyncio.sleep(0.05)  # on_lost is delivered through the loop
    assert lost == []
    monkeypatch.setattr(leases, "renew", renew)
    before = await db.read(lambda c: leases.get(c, "ses_a"))
    await asyncio.sleep(0.01)
    await asyncio.to_thread(beat.beat)  # the next beat still renews the new run's lease
    after = await db.read(lambda c: leases.get(c, "ses_a"))
    assert before is not None and after is not None
    assert after.generation == first.generation + 1
    assert after.expires_at_ms > before.expires_at_ms


class LeaseModel(RuleBasedStateMachine):
    """Leases against a dict model: at most one live lease per session, generations grow."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        import tempfile
        from pathlib import Path

        self.dir = tempfile.TemporaryDirectory()
        self.db = self.loop.run_until_complete(Database.open(Path(self.dir.name) / "l.db"))
        self.model: dict[str, tuple[str, int]] = {}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.db.close())
        self.loop.close()
        self.dir.cleanup()

    def _write(self, fn: Callable[[Tx], T]) -> T:
        return self.loop.run_until_complete(self.db.write(fn))

    @rule(session=st.sampled_from(["ses_a", "ses_b"]), run=st.sampled_from(["r1", "r2", "r3"]))
    def acquire(self, session: str, run: str) -> None:
        held = self.model.get(session)
        try:
            got = self._write(lambda tx: leases.acquire(tx.conn, session, run, "me", 60_000))
        except leases.LeaseHeld:
            assert held is not None and held[0] != run
            return
        assert held is None or held[0] == run
        assert got.generation == (held[1] if held else self._last(session)) + 1
        self.model[session] = (run, got.generation)
        self.last = getattr(self, "last", {}) | {session: got.generation}

    def _last(self, session: str) -> int:
        last: dict[str, int] = getattr(self, "last", {})
        return last.get(session, 0)

    @rule(session=st.sampled_from(["ses_a", "ses_b"]))
    def release(self, session: str) -> None:
        held = self.model.pop(session, None)
        if held is not None:
            self._write(lambda tx: leases.release(tx.conn, session, held[1]))

    @invariant()
    def one_live_lease_per_session_matching_the_model(self) -> None:
        live = self.loop.run_until_complete(self.db.read(lambda c: leases.live(c)))
        assert {lease.session_id: (lease.run_id, lease.generation) for lease in live} == (
            self.model
        )


TestLeaseModel = LeaseModel.TestCase
TestLeaseModel.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
