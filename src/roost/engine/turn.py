"""Writes one run's turn into the log: the assistant message, its parts, deltas and outcome.

``TurnWriter`` is the engine's ``TurnSink``. Small events are held in ``_pending`` and committed
with the next write, and text deltas are coalesced: a delta event is committed at most every
``coalesce_ms`` per part (or when the part ends), so a long answer is a handful of commits rather
than one per token, and nothing is lost at the end of the turn because ``finish`` flushes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

from roost.agent.providers.base import Usage
from roost.ids import new_part_id
from roost.model import event as ev
from roost.model import message as msg
from roost.model.session import BUSY, IDLE, retry_status
from roost.store import runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms

log = logging.getLogger(__name__)

COALESCE_MS = 50
"""Longest a streamed delta waits before it is committed (ms)."""


def finish_of(provider_reason: str) -> str:
    """OpenCode's ``finish`` for a provider finish reason: ``tool_calls`` → ``tool-calls``."""
    return provider_reason.replace("_", "-")


@dataclass
class _OpenPart:
    part: dict[str, Any]
    field: str
    buffered: str = ""


class TurnWriter:
    """Records one run's assistant message (see module docstring).

    Args:
        db: The store.
        run: The run being answered.
        assistant: The assistant message dict (already committed by ``begin``).
        on_status: Called with the session's live status when it changes (busy / retry).
    """

    def __init__(
        self, db: Database, run: runs.RunRow, assistant: dict[str, Any], on_status: Any
    ) -> None:
        self._db = db
        self._run = run
        self.assistant = assistant
        self._sid = run.session_id
        self._mid = assistant["id"]
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._open: dict[str, _OpenPart] = {}
        self._current_kind: str | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._on_status = on_status
        self._usage = Usage()

    # -- TurnSink --------------------------------------------------------------------

    async def step_started(self) -> None:
        """Queue the step-start part."""
        self._queue_part(msg.step_start_part(new_part_id(), self._sid, self._mid))

    async def text_delta(self, text: str) -> None:
        """Buffer answer text."""
        await self._delta("text", text)

    async def reasoning_delta(self, text: str) -> None:
        """Buffer reasoning text."""
        await self._delta("reasoning", text)

    async def step_finished(self, finish_reason: str, usage: Usage) -> None:
        """Close the step's parts and record its usage (a step-finish part)."""
        self._close_open_parts()
        self._usage = usage
        toks = msg.tokens(
            usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.cache_read_tokens
        )
        self._queue_part(
            msg.step_finish_part(
                new_part_id(), self._sid, self._mid, reason=finish_of(finish_reason), tokens=toks
            )
        )
        self.assistant["tokens"] = toks
        self.assistant["finish"] = finish_of(finish_reason)
        self._pending.append(
            (ev.MESSAGE_UPDATED, {"sessionID": self._sid, "info": copy.deepcopy(self.assistant)})
        )

    async def retrying(self, attempt: int, message: str, next_ms: int) -> None:
        """Show ``retry`` status until the next attempt starts."""
        status = retry_status(attempt, message, next_ms)
        self._on_status(status)
        self._pending.append((ev.SESSION_STATUS, {"sessionID": self._sid, "status": status}))
        await self.flush()
        self._on_status(BUSY)

    # -- outcome ---------------------------------------------------------------------

    async def finish(self, *, error: dict[str, Any] | None, run_status: str) -> None:
        """Complete the assistant message and the run in one commit, then go idle.

        Events, in OpenCode's order: open parts closed, ``message.updated`` (completed, with
        ``error`` when given), ``session.error`` (when failed), ``session.status`` idle,
        ``session.idle``.
        """
        await self._cancel_flush_timer()
        self._close_open_parts()
        self.assistant["time"]["completed"] = now_ms()
        if error is not None:
            self.assistant["error"] = error
        info = copy.deepcopy(self.assistant)
        events = list(self._pending)
        self._pending.clear()
        events.append((ev.MESSAGE_UPDATED, {"sessionID": self._sid, "info": info}))
        if error is not None:
            events.append((ev.SESSION_ERROR, {"sessionID": self._sid, "error": error}))
        events.append((ev.SESSION_STATUS, {"sessionID": self._sid, "status": IDLE}))
        events.append((ev.SESSION_IDLE, {"sessionID": self._sid}))
        run_id = self._run.id

        def commit(tx: Tx) -> None:
            for type_, props in events:
                tx.append(self._sid, type_, props)
            runs.set_status(tx.conn, run_id, run_status)

        await self._db.write(commit)

    async def flush(self) -> None:
        """Commit pending events and buffered deltas now."""
        async with self._lock:
            events = self._take_buffered()
            if not events:
                return
            sid = self._sid

            def commit(tx: Tx) -> None:
                for type_, props in events:
                    tx.append(sid, type_, props)

            await self._db.write(commit)

    # -- internals -------------------------------------------------------------------

    def _queue_part(self, part: dict[str, Any]) -> None:
        # Deep copies: the open part keeps changing before the pending event is committed.
        self._pending.append(
            (ev.PART_UPDATED, {"sessionID": self._sid, "part": copy.deepcopy(part)})
        )

    async def _delta(self, kind: str, text: str) -> None:
        if not text:
            return
        if self._current_kind != kind:
            self._close_open_parts()
            self._current_kind = kind
        open_part = self._open.get(kind)
        if open_part is None:
            pid = new_part_id()
            if kind == "text":
                part = msg.text_part(pid, self._sid, self._mid, "", time={"start": now_ms()})
            else:
                part = msg.reasoning_part(pid, self._sid, self._mid, now_ms())
            open_part = _OpenPart(part, "text")
            self._open[kind] = open_part
            self._queue_part(part)
        open_part.buffered += text
        open_part.part["text"] += text
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(COALESCE_MS / 1000)
        self._flush_task = None
        await self.flush()

    async def _cancel_flush_timer(self) -> None:
        task, self._flush_task = self._flush_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _take_buffered(self) -> list[tuple[str, dict[str, Any]]]:
        events = list(self._pending)
        self._pending.clear()
        for op in self._open.values():
            if op.buffered:
                events.append(
                    (
                        ev.PART_DELTA,
                        {
                            "sessionID": self._sid,
                            "messageID": self._mid,
                            "partID": op.part["id"],
                            "field": op.field,
                            "delta": op.buffered,
                        },
                    )
                )
                op.buffered = ""
        return events

    def _close_open_parts(self) -> None:
        """Move buffered deltas to pending and queue each open part's final state."""
        self._pending.extend(self._take_buffered())
        end = now_ms()
        for op in self._open.values():
            op.part.setdefault("time", {"start": end})["end"] = end
            self._queue_part(op.part)
        self._open.clear()
        self._current_kind = None


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - start) * 1000
