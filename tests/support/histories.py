"""A long session written straight to a store, as finished turns leave it (for benchmarks and
tests that need thousands of messages without running thousands of turns)."""

from __future__ import annotations

import time
from pathlib import Path

from roost.ids import new_message_id, new_part_id, new_session_id
from roost.model import event as ev
from roost.model import message as msg
from roost.model.session import new_session
from roost.store.database import Database
from roost.store.event_log import Tx
from tests.support.scripted_llm import MODEL_ID
from tests.support.server import PROVIDER_ID

TEXT_CHARS = 2000
"""Characters of each prompt's and each reply's text."""
_TURNS_PER_TX = 200


def _turn(tx: Tx, sid: str, n: int, at: int, directory: str) -> None:
    """Append one user message and its completed reply, as a finished turn leaves them."""
    uid, aid = new_message_id(), new_message_id()
    user = msg.user_message(
        uid, sid, created_ms=at, agent="build", provider_id=PROVIDER_ID, model_id=MODEL_ID
    )
    tx.append(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": user})
    text = f"question {n} " + "q" * TEXT_CHARS
    part = msg.text_part(new_part_id(), sid, uid, text)
    tx.append(sid, ev.PART_UPDATED, {"sessionID": sid, "part": part})
    reply = msg.assistant_message(
        aid,
        sid,
        parent_id=uid,
        created_ms=at + 1,
        agent="build",
        provider_id=PROVIDER_ID,
        model_id=MODEL_ID,
        directory=directory,
    )
    tx.append(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": reply})
    for stored in (
        msg.step_start_part(new_part_id(), sid, aid),
        msg.text_part(new_part_id(), sid, aid, f"answer {n} " + "a" * TEXT_CHARS),
        msg.step_finish_part(new_part_id(), sid, aid, reason="stop", tokens=msg.tokens(1000, 500)),
    ):
        tx.append(sid, ev.PART_UPDATED, {"sessionID": sid, "part": stored})
    done = {**reply, "time": {"created": at + 1, "completed": at + 2}, "finish": "stop"}
    tx.append(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": done})


async def fill_long_session(target: Path | str, turns: int, directory: str) -> str:
    """Write one session of ``turns`` finished turns (a user message with one text part of
    ``TEXT_CHARS`` and a completed reply with step-start, text and step-finish parts) through
    the store's own write path, to the store at ``target`` (a SQLite path or a PostgreSQL
    URL), 200 turns per transaction; returns the session id."""
    db = await Database.open(target)
    sid = new_session_id()
    try:
        at = int(time.time() * 1000) - 3 * turns
        info = new_session(sid, directory=directory, project_id="global", created_ms=at)
        await db.write(
            lambda tx: tx.append(sid, ev.SESSION_CREATED, {"sessionID": sid, "info": info})
        )
        for start in range(0, turns, _TURNS_PER_TX):

            def write(tx: Tx, start: int = start) -> None:
                for n in range(start, min(turns, start + _TURNS_PER_TX)):
                    _turn(tx, sid, n, at + 3 * n, directory)

            await db.write(write)
    finally:
        await db.close()
    return sid
