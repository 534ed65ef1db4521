"""Projections: folding the log live equals rebuilding it from scratch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from roost.model import event as ev
from roost.store.database import Database
from roost.store.event_log import Tx
from roost.store.projector import rebuild_projections
from tests.store.builders import session_info, user_info
from tests.store.builders import text as text_part

pytestmark = pytest.mark.anyio

SESSIONS = ["ses_1", "ses_2"]
MESSAGES = ["msg_1", "msg_2", "msg_3"]
PARTS = ["prt_1", "prt_2", "prt_3", "prt_4"]

Op = tuple[str, str, str, str, str]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "session",
                "session_update",
                "session_delete",
                "message",
                "message_remove",
                "part",
                "delta",
                "part_remove",
            ]
        ),
        st.sampled_from(SESSIONS),
        st.sampled_from(MESSAGES),
        st.sampled_from(PARTS),
        st.text(alphabet="abc xyz", max_size=6),
    ),
    max_size=60,
)


def _events(op: Op) -> list[tuple[str, str, dict[str, Any]]]:
    kind, sid, mid, pid, body = op
    # Ids are made unique per session so rows of different sessions never collide.
    mid, pid = f"{mid}_{sid}", f"{pid}_{sid}_{mid}"
    if kind == "session":
        return [(sid, ev.SESSION_CREATED, {"sessionID": sid, "info": session_info(sid)})]
    if kind == "session_update":
        info = session_info(sid)
        info["title"] = body
        return [(sid, ev.SESSION_UPDATED, {"sessionID": sid, "info": info})]
    if kind == "session_delete":
        return [(sid, ev.SESSION_DELETED, {"sessionID": sid, "info": session_info(sid)})]
    if kind == "message":
        return [(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": user_info(mid, sid)})]
    if kind == "message_remove":
        return [(sid, ev.MESSAGE_REMOVED, {"sessionID": sid, "messageID": mid})]
    if kind == "part":
        return [(sid, ev.PART_UPDATED, {"sessionID": sid, "part": text_part(pid, sid, mid, body)})]
    if kind == "delta":
        return [
            (
                sid,
                ev.PART_DELTA,
                {"sessionID": sid, "messageID": mid, "partID": pid, "field": "text", "delta": body},
            )
        ]
    return [(sid, ev.PART_REMOVED, {"sessionID": sid, "messageID": mid, "partID": pid})]


def _snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
        for table in ("session", "message", "part")
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=ops)
async def test_rebuilding_projections_from_the_log_equals_the_live_projections(
    tmp_path: Path, plan: list[Op]
) -> None:
    db = await Database.open(tmp_path / f"proj-{time.monotonic_ns()}.db")
    try:
        for op in plan:

            def apply(tx: Tx, op: Op = op) -> None:
                for sid, type_, props in _events(op):
                    tx.append(sid, type_, props)

            await db.write(apply)
        live = await db.read(_snapshot)

        def rebuild(tx: Tx) -> dict[str, list[tuple[Any, ...]]]:
            rebuild_projections(tx.conn)
            return _snapshot(tx.conn)

        assert await db.write(rebuild) == live
    finally:
        await db.close()
