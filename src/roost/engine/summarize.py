"""``POST /session/{id}/summarize``: a compaction request admitted as a run, and its outcome.

Invariant: the request (a user message with a ``compaction`` part, ``CompactionPart``) and a
queued run for it (``request.compaction``) are committed in one transaction before the run can
start, like a prompt (``engine/admission.py``). Single flight: while the session has a
compaction run open (queued or running), a new request joins that run and stores nothing.
The run itself is executed like any other (``engine/compaction.py``, ``engine/runs.py``).
"""

from __future__ import annotations

import orjson
from sqlalchemy import Connection

from roost.agent.catalog import Catalog
from roost.agent.compaction import is_completed_summary
from roost.engine.admission import drop_reverted
from roost.engine.compaction import is_compaction_run
from roost.errors import CompactionFailed, SessionNotFound
from roost.ids import new_message_id, new_part_id, new_run_id
from roost.model import event as ev
from roost.model import message as msg
from roost.store import queries, runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms


async def admit_compaction(
    db: Database,
    catalog: Catalog,
    session_id: str,
    *,
    provider_id: str,
    model_id: str,
    auto: bool,
) -> str:
    """Store a compaction request and its queued run, or join the one already open.

    The request is a user message with a ``compaction`` part, with the agent of the session's
    last prompt and the given model; a pending revert is applied first, as for a prompt.

    Returns:
        The id of the run that compacts the session.

    Raises:
        SessionNotFound: No such session.
        UnknownModel: The model cannot run (400).
    """
    resolved = catalog.resolve_model(provider_id, model_id, catalog.agent(None))

    def admit(tx: Tx) -> str:
        session_json = queries.get_session(tx.conn, session_id)
        if session_json is None:
            raise SessionNotFound(session_id)
        open_run = next(
            (r for r in runs.open_runs(tx.conn, session_id) if is_compaction_run(r)), None
        )
        if open_run is not None:
            return open_run.id
        last_user = queries.recent_message_infos(tx.conn, session_id, role="user", limit=1)
        agent = orjson.loads(last_user[0]).get("agent") if last_user else None
        agent = agent or catalog.default_agent
        created_ms = now_ms()
        info = msg.user_message(
            new_message_id(),
            session_id,
            created_ms=created_ms,
            agent=agent,
            provider_id=resolved.provider.id,
            model_id=resolved.model_id,
        )
        part = msg.compaction_part(new_part_id(), session_id, info["id"], auto=auto)
        session = orjson.loads(session_json)
        drop_reverted(tx, session_id, session)
        tx.append(session_id, ev.MESSAGE_UPDATED, {"sessionID": session_id, "info": info})
        tx.append(session_id, ev.PART_UPDATED, {"sessionID": session_id, "part": part})
        session["time"]["updated"] = created_ms
        tx.append(session_id, ev.SESSION_UPDATED, {"sessionID": session_id, "info": session})
        run_id = new_run_id()
        request = {
            "agent": agent,
            "providerID": resolved.provider.id,
            "modelID": resolved.model_id,
            "compaction": {"auto": auto},
        }
        runs.insert_run(tx.conn, run_id, session_id, info["id"], request)
        return run_id

    return await db.write(admit)


def compaction_outcome(conn: Connection, session_id: str, run_id: str) -> None:
    """Check that a compaction run stored its summary.

    Raises:
        CompactionFailed: The run ended without one (its summary message's error says why),
            or has not ended (the server is stopping).
    """
    run = runs.get_run(conn, run_id)
    if run is None:
        raise CompactionFailed(session_id, "the session was deleted")
    summary_id = run.assistant_message_id
    found = queries.get_message(conn, session_id, summary_id) if summary_id else None
    info = orjson.loads(found.info) if found is not None else {}
    if is_completed_summary(info):
        return
    error = info.get("error")
    if error is not None:
        raise CompactionFailed(session_id, error["data"]["message"], reason=error["name"])
    raise CompactionFailed(session_id, f"the compaction did not finish (run {run.status})")
