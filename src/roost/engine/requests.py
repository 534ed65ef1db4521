"""Durable waits: permission and question requests that a tool call blocks on.

A request is an event in the log (``permission.asked`` / ``question.asked``), projected into
the ``request`` table, so ``GET /permission`` and ``GET /question`` list exactly the pending
ones, across restarts. The waiting tool holds an in-memory future keyed by the request id; a
reply writes ``permission.replied`` / ``question.replied`` / ``question.rejected`` and resolves
it. A request is never left dangling: when its turn ends for any reason (reply, abort, message or
session deletion, deadline), the request is closed in the log and leaves the lists, and a late
reply is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from roost.engine import chaos
from roost.errors import NotFound
from roost.ids import new_id
from roost.model import event as ev
from roost.model.event import StoredEvent
from roost.store import queries
from roost.store.database import Database
from roost.store.event_log import Tx

Kind = Literal["permission", "question"]
_REPLY_TYPES = frozenset({ev.PERMISSION_REPLIED, ev.QUESTION_REPLIED, ev.QUESTION_REJECTED})


class RequestNotFound(NotFound):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"Request not found or no longer pending: {request_id}")
        self.request_id = request_id


class RequestClosed(Exception):
    """The request ended without a reply (abort, deletion, deadline)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    """What the user answered: ``once``/``always``/``reject`` or the answers list."""

    value: Any


def _close_event(kind: str, session_id: str, request_id: str) -> tuple[str, dict[str, Any]]:
    if kind == "permission":
        return ev.PERMISSION_REPLIED, {
            "sessionID": session_id,
            "requestID": request_id,
            "reply": "reject",
        }
    return ev.QUESTION_REJECTED, {"sessionID": session_id, "requestID": request_id}


class RequestBroker:
    """Creates, lists, answers and cancels requests (see module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiters: dict[str, asyncio.Future[Reply]] = {}

    async def ask(
        self,
        kind: Kind,
        payload: dict[str, Any],
        *,
        deadline_s: float | None = None,
        default: Any = None,
        fence: Callable[[Tx], None] | None = None,
    ) -> Reply:
        """Store a request and wait for its reply.

        Args:
            payload: The wire request without ``id`` (``PermissionRequest`` or
                ``QuestionRequest`` fields: ``sessionID``, ``tool``, …).
            deadline_s: Give up after this long: close the request and return ``default``
                (or raise ``RequestClosed`` when ``default`` is None).
            fence: Runs first in the transaction that stores the request; raising stores
                nothing (a run passes its lease check, so a run that lost its lease cannot
                leave a request behind).

        Raises:
            RequestClosed: The request was cancelled or timed out without a default.
            Exception: Whatever ``fence`` raised (e.g. ``LeaseLost``).
        """
        request_id = new_id("per" if kind == "permission" else "que")
        body = {"id": request_id, **payload}
        session_id = payload["sessionID"]
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = fut
        try:

            def store(tx: Tx) -> None:
                if fence is not None:
                    fence(tx)
                tx.append(
                    session_id,
                    ev.PERMISSION_ASKED if kind == "permission" else ev.QUESTION_ASKED,
                    body,
                )

            await self._db.write(store)
            if kind == "question":
                chaos.cut("question-wait")
            if deadline_s is None:
                return await fut
            try:
                async with asyncio.timeout(deadline_s):
                    return await asyncio.shield(fut)
            except TimeoutError:
                if default is None:
                    raise RequestClosed(f"no reply within {deadline_s:g} s") from None
                return Reply(default)
        finally:
            self._waiters.pop(request_id, None)
            if not fut.done() or fut.cancelled():
                fut.cancel()
            # Whatever ended the wait (cancellation, deadline), the request leaves the list.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._close_if_pending(kind, session_id, request_id))

    async def reply(self, request_id: str, kind: Kind, value: Any) -> None:
        """Answer a pending request.

        Raises:
            RequestNotFound: No such pending request of that kind.
        """

        def write(tx: Tx) -> str:
            row = queries.get_request(tx.conn, request_id)
            if row is None or row.kind != kind or row.status != "pending":
                raise RequestNotFound(request_id)
            if kind == "permission":
                tx.append(
                    row.session_id,
                    ev.PERMISSION_REPLIED,
                    {"sessionID": row.session_id, "requestID": request_id, "reply": value},
                )
            elif value is None:
                tx.append(
                    row.session_id,
                    ev.QUESTION_REJECTED,
                    {"sessionID": row.session_id, "requestID": request_id},
                )
            else:
                tx.append(
                    row.session_id,
                    ev.QUESTION_REPLIED,
                    {"sessionID": row.session_id, "requestID": request_id, "answers": value},
                )
            return row.session_id

        await self._db.write(write)
        fut = self._waiters.get(request_id)
        if fut is not None and not fut.done():
            fut.set_result(Reply(value))

    def observe(self, events: list[StoredEvent]) -> None:
        """Committed replies, whichever process stored them: a request this process waits
        on is answered from the stored event (a reply sent to another replica reaches the
        turn here). Replies this process stored itself have already resolved their wait."""
        for e in events:
            if e.type not in _REPLY_TYPES:
                continue
            props = e.properties
            fut = self._waiters.get(props.get("requestID", ""))
            if fut is None or fut.done():
                continue
            if e.type == ev.PERMISSION_REPLIED:
                fut.set_result(Reply(props.get("reply")))
            elif e.type == ev.QUESTION_REPLIED:
                fut.set_result(Reply(props.get("answers")))
            else:
                fut.set_result(Reply(None))

    async def pending(self, kind: Kind) -> list[str]:
        """Pending requests of a kind, as wire JSON, oldest first."""
        rows = await self._db.read(lambda c: queries.pending_requests(c, kind))
        return [r.data for r in rows]

    async def cancel(self, session_id: str, *, message_id: str | None = None) -> int:
        """Close every pending request of a session (or of one message); returns how many."""

        def write(tx: Tx) -> list[str]:
            closed = []
            for row in queries.pending_requests(tx.conn, session_id=session_id):
                if message_id is not None and row.message_id != message_id:
                    continue
                type_, props = _close_event(row.kind, session_id, row.id)
                tx.append(session_id, type_, props)
                closed.append(row.id)
            return closed

        closed = await self._db.write(write)
        for request_id in closed:
            fut = self._waiters.get(request_id)
            if fut is not None and not fut.done():
                fut.set_exception(RequestClosed("cancelled"))
        return len(closed)

    async def _close_if_pending(self, kind: Kind, session_id: str, request_id: str) -> None:
        def write(tx: Tx) -> None:
            row = queries.get_request(tx.conn, request_id)
            if row is not None and row.status == "pending":
                type_, props = _close_event(kind, session_id, request_id)
                tx.append(session_id, type_, props)

        await self._db.write(write)


def decode(data: str) -> dict[str, Any]:
    """Parse a stored request."""
    result: dict[str, Any] = orjson.loads(data)
    return result
