"""One writer process for ``tests/store/test_many_writers.py``: opens the store, writes a
fixed plan of events and lease acquisitions concurrently with its siblings, and reports.

    python -m tests.support.store_writer TARGET NAME ROUNDS WRITERS OUT.json

Per round it appends a message and a part with text deltas to each shared session (in one
transaction, with the round's commands in flight at once so group commit folds them), and
tries to take the shared lease session's run lease, releasing it when it got it. It then
waits until all WRITERS have written and its event feed has published the whole log, and
writes JSON: the ids its feed
published (in order), the generations it acquired, and how many acquisitions were refused.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from roost.model import event as ev
from roost.model.event import StoredEvent
from roost.store import leases
from roost.store.database import Database
from roost.store.event_log import Tx
from tests.store.builders import session_info, text, user_info

SESSIONS = ("ses_shared_a", "ses_shared_b")
LEASED = "ses_leased"


EVENTS_PER_TURN = 6
"""Events ``turn`` appends to one session."""


def _count_and_newest(conn: Connection) -> tuple[int, int]:
    row = conn.exec_driver_sql("SELECT count(*), coalesce(max(id), 0) FROM event").one()
    return int(row[0]), int(row[1])


async def main(target: str, name: str, rounds: int, writers: int, out: Path) -> None:
    db = await Database.open(target)
    published: list[int] = []

    def on_commit(events: list[StoredEvent]) -> None:
        published.extend(e.id for e in events)

    db.on_commit = on_commit
    generations: list[int] = []
    refused = 0
    try:

        def turn(sid: str, n: int) -> Any:
            def write(tx: Tx) -> None:
                mid, pid = f"msg_{name}_{n}_{sid}", f"prt_{name}_{n}_{sid}"
                tx.append(sid, ev.SESSION_UPDATED, {"sessionID": sid, "info": session_info(sid)})
                tx.append(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": user_info(mid, sid)})
                tx.append(sid, ev.PART_UPDATED, {"sessionID": sid, "part": text(pid, sid, mid)})
                for d in range(3):
                    tx.append(
                        sid,
                        ev.PART_DELTA,
                        {
                            "sessionID": sid,
                            "messageID": mid,
                            "partID": pid,
                            "field": "text",
                            "delta": f"{name}{d}",
                        },
                    )

            return write

        def take(n: int) -> Any:
            def write(tx: Tx) -> int:
                lease = leases.acquire(tx.conn, LEASED, f"run_{name}_{n}", name, 60_000)
                leases.release(tx.conn, LEASED, lease.generation)
                return lease.generation

            return write

        for n in range(rounds):
            results = await asyncio.gather(
                *(db.write(turn(sid, n)) for sid in SESSIONS),
                db.write(take(n)),
                return_exceptions=True,
            )
            for r in results:
                if isinstance(r, leases.LeaseHeld):
                    refused += 1
                elif isinstance(r, BaseException):
                    raise r
                elif isinstance(r, int):
                    generations.append(r)
        # Wait (bounded) until every writer has written, and the feed has published it all.
        total = writers * rounds * EVENTS_PER_TURN * len(SESSIONS)
        for _ in range(1200):
            count, newest = await db.read(_count_and_newest)
            if count >= total and published and published[-1] >= newest:
                break
            await asyncio.sleep(0.05)
        report = {"published": published, "generations": generations, "refused": refused}
    finally:
        await db.close()
    out.write_bytes(json.dumps(report).encode())  # noqa: ASYNC240 (the process ends here)


if __name__ == "__main__":
    target, name, rounds, writers, out = sys.argv[1:6]
    asyncio.run(main(target, name, int(rounds), int(writers), Path(out)))
