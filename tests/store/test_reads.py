"""Reads: reader threads with their own connections, consistent snapshots, errors, close."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Connection, text

from roost.errors import StoreClosed
from roost.store import queries
from roost.store.database import Database
from roost.store.event_log import Tx
from tests.store.builders import session_info, user_info

pytestmark = pytest.mark.anyio


def _append(tx: Tx) -> None:
    tx.append("ses_a", "session.status", {"sessionID": "ses_a", "status": {"type": "busy"}})


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM event")).scalar_one())


async def test_a_read_sees_every_write_committed_before_it(db: Database) -> None:
    for expected in range(1, 6):
        await db.write(_append)
        assert await db.read(_count) == expected


async def test_one_read_is_one_snapshot_even_while_the_writer_commits(db: Database) -> None:
    started, resume = threading.Event(), threading.Event()

    def twice(conn: Connection) -> tuple[int, int]:
        first = _count(conn)
        started.set()
        resume.wait(5)
        return first, _count(conn)

    reading = asyncio.ensure_future(db.read(twice))
    await asyncio.to_thread(started.wait, 5)
    await db.write(_append)  # commits between the read's two statements
    resume.set()
    first, second = await reading
    assert first == second == 0
    assert await db.read(_count) == 1


async def test_more_concurrent_reads_than_readers_all_complete(db: Database) -> None:
    await db.write(_append)
    counts = await asyncio.wait_for(asyncio.gather(*(db.read(_count) for _ in range(50))), 10)
    assert counts == [1] * 50


async def test_a_failing_read_raises_its_error_and_the_reader_goes_on(db: Database) -> None:
    def broken(conn: Connection) -> None:
        conn.execute(text("SELECT * FROM no_such_table"))

    for _ in range(6):  # more failures than reader threads
        with pytest.raises(Exception, match="no_such_table"):
            await db.read(broken)
    assert await db.read(_count) == 0


async def test_reads_after_close_raise_store_closed(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "closed.db")
    await db.close()
    with pytest.raises(StoreClosed):
        await db.read(_count)


async def test_messages_containing_a_needle_match_it_literally_newest_first(db: Database) -> None:
    """``%``, ``_`` and ``\\`` in the needle are literal characters, not ``LIKE`` patterns;
    other roles and sessions are left out. A match older than 200 others is found too (the
    messages are looked at a page at a time)."""
    fillers = {f"msg_0{n:03}": "filler" for n in range(1, 201)}
    texts = {
        "msg_0000": "on sale: off",
        **fillers,
        "msg_1": "50% off",
        "msg_2": "50x off",
        "msg_3": "a_b",
        "msg_4": "axb",
        "msg_5": "c\\d",
    }

    def write(tx: Tx) -> None:
        for sid in ("ses_a", "ses_b"):
            tx.append(sid, "session.created", {"sessionID": sid, "info": session_info(sid)})
        for mid, note in texts.items():
            info = {**user_info(mid, "ses_a"), "note": note}
            tx.append("ses_a", "message.updated", {"sessionID": "ses_a", "info": info})
        other = {**user_info("msg_6", "ses_b"), "note": "50% off"}
        tx.append("ses_b", "message.updated", {"sessionID": "ses_b", "info": other})

    await db.write(write)

    async def run(needle: str, role: str = "user") -> list[str]:
        def read(conn: Connection) -> list[str]:
            found = queries.message_infos_containing(conn, "ses_a", role=role, needle=needle)
            return [orjson.loads(raw)["id"] for raw in found]

        return await db.read(read)

    assert await run("0% off") == ["msg_1"]
    assert await run("a_b") == ["msg_3"]
    assert await run("c\\\\d") == ["msg_5"]
    assert await run("off") == ["msg_2", "msg_1", "msg_0000"]
    assert await run("off", role="assistant") == []
