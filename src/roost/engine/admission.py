"""Admission: a prompt is accepted only once its user message, parts and run are committed.

Invariant: ``admit_prompt`` returns (and the API answers 2xx) only after one transaction has
stored the user message, every part, and, unless ``noReply``, a ``queued`` run. Everything that
can be checked before the turn starts is checked first (session, agent, model, part ids), and a
failed check stores nothing. Re-sending a ``messageID`` that is already stored in the session
changes nothing and admits nothing new: it is the client retrying.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson

from roost.agent import attachments
from roost.agent.catalog import Catalog, ResolvedModel
from roost.errors import InvalidInput, SessionNotFound
from roost.ids import new_message_id, new_part_id, new_run_id
from roost.model import event as ev
from roost.model import message as msg
from roost.store import queries, runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms


@dataclass(frozen=True)
class PromptInput:
    """A validated ``prompt_async`` / ``message`` body (see ``api/wire.py``).

    Attributes:
        parts: Part inputs (``TextPartInput``, ``FilePartInput``, …) as dicts; ``id`` optional.
    """

    parts: list[dict[str, Any]]
    message_id: str | None = None
    agent: str | None = None
    provider_id: str | None = None
    model_id: str | None = None
    variant: str | None = None
    no_reply: bool = False
    system: str | None = None
    tools: dict[str, bool] | None = None
    call: dict[str, Any] | None = None
    """A tool call the user asked for, ``{"tool", "input"}`` (a ``!cmd`` shell command, a
    command's sub-agent task): the run makes it instead of a model turn."""


@dataclass(frozen=True)
class Admitted:
    """The stored prompt.

    Attributes:
        run_id: The run that will answer it; None with ``noReply``.
        created: False when the ``messageID`` was already stored (a retry).
        session: The session's wire JSON as this admission stored it (None for a retry).
        model: The model the prompt runs on.
    """

    message_id: str
    run_id: str | None
    created: bool
    session: dict[str, Any] | None = None
    model: ResolvedModel | None = None


async def _resolve_parts(
    inputs: list[dict[str, Any]], project: Path, accepts: dict[str, bool]
) -> list[dict[str, Any]]:
    """The parts to store: ``file`` parts resolved (``agent/attachments.py``), each followed
    by the synthetic text parts that carry a text file's content to the model."""
    if not any(p.get("type") == "file" for p in inputs):
        return inputs
    out: list[dict[str, Any]] = []
    for p in inputs:
        if p.get("type") != "file":
            out.append(dict(p))
            continue
        stored, texts = await anyio.to_thread.run_sync(attachments.resolve, p, project, accepts)
        out.append(dict(stored))
        out.extend({"type": "text", "text": t, "synthetic": True} for t in texts)
    return out


async def admit_prompt(
    db: Database, catalog: Catalog, session_id: str, prompt: PromptInput, *, directory: str
) -> Admitted:
    """Store a prompt durably (see the module docstring).

    ``directory`` is the project: ``file://`` attachments must lie inside it.

    Raises:
        SessionNotFound: No such session.
        UnknownAgent, UnknownModel: The agent or model cannot run (400).
        InvalidInput: A part id or ``messageID`` is already used elsewhere, or an attachment
            cannot be sent to the model (``agent/attachments.py``).
    """
    agent = catalog.agent(prompt.agent)
    resolved = catalog.resolve_model(prompt.provider_id, prompt.model_id, agent)
    message_id = prompt.message_id or new_message_id()
    created_ms = now_ms()
    info = msg.user_message(
        message_id,
        session_id,
        created_ms=created_ms,
        agent=agent.name,
        provider_id=resolved.provider.id,
        model_id=resolved.model_id,
        system=prompt.system,
        tools=prompt.tools,
        variant=prompt.variant,
    )
    # File parts are resolved (read, checked against the model) before the transaction; a
    # prompt without any keeps its parts list as it came.
    parts = await _resolve_parts(
        prompt.parts,
        Path(directory),
        catalog.model_info(resolved.provider, resolved.model_id)["capabilities"]["input"],
    )
    request = {
        "agent": agent.name,
        "providerID": resolved.provider.id,
        "modelID": resolved.model_id,
        "system": prompt.system,
        "tools": prompt.tools,
    }
    if prompt.call is not None:
        request["call"] = prompt.call
    run_id = None if prompt.no_reply else new_run_id()

    # Only ids a client chose can already be taken: minted ones are new by construction
    # (see ``roost.ids``), so a prompt without ids skips those lookups.
    supplied = [p["id"] for p in prompt.parts if p.get("id")]
    if len(set(supplied)) != len(supplied):
        raise InvalidInput("part ids must be unique", field="parts")

    def admit(tx: Tx) -> Admitted:
        session_json = queries.get_session(tx.conn, session_id)
        if session_json is None:
            raise SessionNotFound(session_id)
        owner = queries.message_session(tx.conn, message_id) if prompt.message_id else None
        if owner is not None:
            if owner != session_id:
                raise InvalidInput(
                    f"messageID {message_id} belongs to another session", field="messageID"
                )
            existing = runs.run_for_message(tx.conn, message_id)
            return Admitted(message_id, existing.id if existing else None, created=False)
        taken = queries.first_taken_part_id(tx.conn, supplied) if supplied else None
        if taken is not None:
            raise InvalidInput(f"part id {taken} is already used", field="parts")
        session = orjson.loads(session_json)
        drop_reverted(tx, session_id, session)
        tx.append(session_id, ev.MESSAGE_UPDATED, {"sessionID": session_id, "info": info})
        # Part ids are minted here, on the writer thread, not on the event loop: a prompt of
        # 100k parts is about half a second of Python (issue #9).
        for p in parts:
            stored = {
                **p,
                "id": p.get("id") or new_part_id(),
                "sessionID": session_id,
                "messageID": message_id,
            }
            tx.append(session_id, ev.PART_UPDATED, {"sessionID": session_id, "part": stored})
        session["time"]["updated"] = created_ms
        tx.append(session_id, ev.SESSION_UPDATED, {"sessionID": session_id, "info": session})
        if run_id is not None:
            runs.insert_run(tx.conn, run_id, session_id, message_id, request)
        return Admitted(message_id, run_id, created=True, session=session, model=resolved)

    # Urgent: the client waits for this commit, so it goes before queued turn writes.
    return await db.write(admit, urgent=True)


def drop_reverted(tx: Tx, session_id: str, info: dict[str, Any]) -> None:
    """Apply a pending revert mark before a new prompt (as OpenCode does).

    Removes the messages (and parts) that ``Session.revert`` hid: everything from
    ``revert.messageID`` on, or with ``revert.partID`` the parts of that message from that
    part on. Pops ``revert`` from ``info`` (the session's wire JSON, as a dict); the caller
    stores ``info`` with its own ``session.updated``. Does nothing without a mark.
    """
    mark = info.pop("revert", None)
    if not mark:
        return
    for row in queries.list_messages(tx.conn, session_id):
        if row.id < mark["messageID"]:
            continue
        for raw in row.parts:
            pid = orjson.loads(raw)["id"]
            if row.id == mark["messageID"] and mark.get("partID") and pid < mark["partID"]:
                continue
            tx.append(
                session_id,
                ev.PART_REMOVED,
                {"sessionID": session_id, "messageID": row.id, "partID": pid},
            )
        if row.id != mark["messageID"] or not mark.get("partID"):
            tx.append(
                session_id, ev.MESSAGE_REMOVED, {"sessionID": session_id, "messageID": row.id}
            )
