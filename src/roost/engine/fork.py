"""Forking a session: copies of its messages, with nothing copied as still running.

OpenCode 1.18.34's ``POST /session/{id}/fork`` makes a new session holding the messages before
``messageID`` (all of them without it). Copies get new ids. An assistant message that had not
completed is copied as completed with ``error``, and an open tool call as ``error``
(``model.part.close_open_tool``), both saying ``note``: a fork never looks busy.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from roost.ids import new_message_id, new_part_id
from roost.model import event as ev
from roost.model import message as msg
from roost.model.part import close_open_tool
from roost.store.event_log import Tx, now_ms
from roost.store.queries import MessageRow


def copy_messages(
    rows: list[MessageRow], *, into: str, before: str | None, note: str
) -> Callable[[Tx], None]:
    """A write command appending copies of ``rows`` (oldest first) to session ``into``,
    stopping at the message ``before`` (None: copy all)."""

    def write(tx: Tx) -> None:
        for row in rows:
            if before is not None and row.id >= before:
                break
            info = orjson.loads(row.info)
            mid = new_message_id()
            info.update(id=mid, sessionID=into)
            if info["role"] == "assistant" and "completed" not in info["time"]:
                info["time"]["completed"] = now_ms()
                info.setdefault("error", msg.unknown_error(note))
            tx.append(into, ev.MESSAGE_UPDATED, {"sessionID": into, "info": info})
            for raw in row.parts:
                part = orjson.loads(raw)
                part.update(id=new_part_id(), sessionID=into, messageID=mid)
                part = close_open_tool(part, note, now_ms()) or part
                tx.append(into, ev.PART_UPDATED, {"sessionID": into, "part": part})

    return write
