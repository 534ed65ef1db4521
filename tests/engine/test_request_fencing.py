"""A run that lost its lease cannot leave a permission or question request behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.engine.requests import RequestBroker
from roost.store import leases, queries
from roost.store.database import Database
from roost.store.event_log import Tx

pytestmark = pytest.mark.anyio

SID = "ses_fenced"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "store.db")
    try:
        yield database
    finally:
        await database.close()


def _question() -> dict[str, object]:
    return {
        "sessionID": SID,
        "questions": [{"question": "go on?", "header": "go", "options": []}],
        "tool": {"messageID": "msg_a", "callID": "call_a"},
    }


async def test_a_stale_generation_stores_no_request(db: Database) -> None:
    first = await db.write(lambda tx: leases.acquire(tx.conn, SID, "run_old", "me", 15_000))
    await db.write(
        lambda tx: leases.acquire(tx.conn, SID, "run_new", "them", 15_000, takeover=True)
    )

    def fence(tx: Tx) -> None:
        leases.check(tx.conn, SID, first.generation)

    broker = RequestBroker(db)
    with pytest.raises(leases.LeaseLost):
        await broker.ask("question", _question(), deadline_s=5, fence=fence)
    assert await db.read(lambda c: queries.pending_requests(c, session_id=SID)) == []
    asked = await db.read(
        lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM event WHERE type = 'question.asked'"
        ).scalar()
    )
    assert asked == 0


async def test_the_live_generation_stores_the_request(db: Database) -> None:
    lease = await db.write(lambda tx: leases.acquire(tx.conn, SID, "run_a", "me", 15_000))

    def fence(tx: Tx) -> None:
        leases.check(tx.conn, SID, lease.generation)

    broker = RequestBroker(db)
    reply = await broker.ask(
        "question", _question(), deadline_s=0.3, default=[["yes"]], fence=fence
    )
    assert reply.value == [["yes"]]  # nobody answered: the default, after the request existed
    asked = await db.read(
        lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM event WHERE type = 'question.asked'"
        ).scalar()
    )
    assert asked == 1
