"""Writes one run's turn into the log: assistant messages, parts, deltas, tool calls, outcome.

``TurnWriter`` is the engine's ``TurnSink``. Each model step is one assistant message (as in
OpenCode): step-start, reasoning and text parts, tool parts, step-finish, then the message is
completed and the next step opens a new one. Small events are held in ``_pending`` and committed
with the next write, and text deltas are coalesced: a delta event is committed at most every
``COALESCE_MS`` (or when the part ends), so a long answer is a handful of commits rather than one
per token; nothing is lost at the end because ``finish`` flushes first. The wait grows with the
part's length, up to ``COALESCE_MAX_MS``: every commit rewrites a few pages of the log's tables
whatever it carries, which for a long, fast part would otherwise cost more than its text
(issue #13). A streamed part's text is stored whole once, by the ``message.part.updated`` that
closes it; until then it is its deltas in the log (``store/deltas.py``).

Every commit is fenced by the run's lease generation (``leases.check`` in the same
transaction): a turn whose lease was taken over cannot write. ``finish`` releases the lease in
the commit that ends the run.

A compaction writes into the same turn: ``open_message`` goes on in a message of another shape
(the summary, then the message the turn continues in), committed with the compaction request.

Tool parts go ``pending → running → completed | error`` with OpenCode's state fields
(``ToolState*`` schemas). ``finish`` closes every part still open, so no part outlives its turn
in a non-terminal state: on abort they become ``error`` ("aborted").

A failed commit loses nothing: its events go back to the front of ``_pending`` and are stored
by the next commit that succeeds, the outcome at the latest. The first failure of a background
flush, and any ``StorageUnavailable``, is recorded as ``failure`` and reported to the run
(``on_write_failed``), which stops the turn; every later call that would write raises it again,
so a turn cannot go on past writes that were refused. ``finish`` may be called again after it
raised: it commits the outcome decided by its first call. The delta-coalescing timers are owned
here: ``finish`` and ``discard`` wait for them, so none outlives the turn.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from roost.agent.providers.base import ToolCallRequest, Usage
from roost.agent.tools.base import ToolResult
from roost.engine import chaos
from roost.errors import StorageUnavailable
from roost.ids import new_message_id, new_part_id
from roost.model import event as ev
from roost.model import message as msg
from roost.model.part import close_open_tool
from roost.model.session import IDLE, empty_tokens
from roost.store import leases, queries, runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms

log = logging.getLogger(__name__)

COALESCE_MS = 50
"""Longest a streamed delta waits before it is committed, while its part is short (ms)."""
COALESCE_MAX_MS = 1000
"""Longest a streamed delta waits, however long its part (ms)."""
COALESCE_CHARS_PER_MS = 500
"""A delta of a part of N characters waits N / this ms, within ``COALESCE_MS`` ..
``COALESCE_MAX_MS``: 50 ms up to 25,000 characters, 1 s from 500,000 on."""
METADATA_EVERY_MS = 100
"""Most frequent commit of a running tool's streamed metadata (ms)."""


def finish_of(provider_reason: str) -> str:
    """OpenCode's ``finish`` for a provider finish reason: ``tool_calls`` → ``tool-calls``."""
    return provider_reason.replace("_", "-")


@dataclass
class _OpenPart:
    """A text or reasoning part being streamed.

    Its text is kept as a list of pieces and joined only when the part is closed (``text``):
    ``+=`` on a dict item or an attribute copies the whole string every time, which is quadratic
    in the part's size. Each ``take_delta`` joins the pieces it takes into one, so the list
    holds one piece per commit plus the deltas received since the last.
    """

    part: dict[str, Any]
    field: str
    pieces: list[str] = dataclasses.field(default_factory=list)
    committed: int = 0
    """How many of ``pieces`` were already taken into ``message.part.delta`` events."""
    chars: int = 0
    """Characters received so far."""

    def take_delta(self) -> str:
        """The text received since the last call (empty when none)."""
        delta = "".join(self.pieces[self.committed :])
        if delta:
            self.pieces[self.committed :] = [delta]
        self.committed = len(self.pieces)
        return delta

    def text(self) -> str:
        """The whole text so far."""
        return "".join(self.pieces)


def _add_usage(tx: Tx, session_id: str, step: dict[str, Any]) -> None:
    """Add a finished step's tokens and cost to the session and make its model the session's
    (OpenCode updates ``Session.tokens``, ``cost`` and ``model`` after each step)."""
    stored = queries.get_session(tx.conn, session_id)
    if stored is None:
        return
    info = orjson.loads(stored)
    totals = info.get("tokens") or empty_tokens()
    tokens = step.get("tokens") or {}
    for key in ("input", "output", "reasoning"):
        totals[key] = totals.get(key, 0) + int(tokens.get(key, 0))
    cache = totals.setdefault("cache", {"read": 0, "write": 0})
    for key in ("read", "write"):
        cache[key] = cache.get(key, 0) + int((tokens.get("cache") or {}).get(key, 0))
    info["tokens"] = totals
    info["cost"] = float(info.get("cost") or 0) + float(step.get("cost") or 0)
    info["model"] = {"id": step["modelID"], "providerID": step["providerID"]}
    info.setdefault("time", {})["updated"] = now_ms()
    tx.append(session_id, ev.SESSION_UPDATED, {"sessionID": session_id, "info": info})


class TurnWriter:
    """Records one run's assistant messages (see module docstring).

    Args:
        db: The store.
        run: The run being answered.
        assistant: The first assistant message (already committed by the run's start).
        generation: The run's lease generation; every commit checks it still holds.
        on_write_failed: Told about ``failure`` once, as soon as it is recorded (from the task
            that saw it: the turn's own, a tool call's or a flush timer's).
    """

    def __init__(
        self,
        db: Database,
        run: runs.RunRow,
        assistant: dict[str, Any],
        generation: int,
        on_write_failed: Callable[[Exception], None] | None = None,
    ) -> None:
        self._db = db
        self._run = run
        self.assistant = assistant
        self._sid = run.session_id
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._open: dict[str, _OpenPart] = {}
        self._current_kind: str | None = None
        self._armed: asyncio.Task[None] | None = None
        """The flush timer still waiting to flush (deltas arriving meanwhile ride along)."""
        self._timers: set[asyncio.Task[None]] = set()
        """Every flush timer not yet done, the armed one included."""
        self._on_write_failed = on_write_failed
        self.failure: Exception | None = None
        """The first refused write that stops the turn (see the module docstring)."""
        self._outcome: tuple[list[tuple[str, dict[str, Any]]], str] | None = None
        """Terminal events and run status, fixed by the first ``finish``."""
        self._lock = asyncio.Lock()
        self.generation = generation
        self._retrying = False
        self._step_done = False
        self._step_start: dict[str, Any] = {}
        self._steps = 0
        self.tools: dict[str, dict[str, Any]] = {}
        """Tool parts of the current step, by call id."""
        self._metadata_at: dict[str, int] = {}
        self._final_text = io.StringIO()
        """Text of the last step: a buffer, as ``+=`` on an attribute is quadratic."""
        self.context_factory: Callable[[ToolCallRequest], Any] | None = None
        self.price: Callable[[dict[str, Any]], float] | None = None
        """A step's cost in USD from its tokens (``Catalog.step_cost``); None: free."""

    @property
    def final_text(self) -> str:
        """Text of the last step (what a sub-agent's parent receives)."""
        return self._final_text.getvalue()

    @property
    def session_id(self) -> str:
        """The session the run belongs to."""
        return self._sid

    @property
    def run_id(self) -> str:
        """The run being answered."""
        return self._run.id

    @property
    def message_id(self) -> str:
        """The current step's assistant message id."""
        return str(self.assistant["id"])

    @property
    def storage_error(self) -> StorageUnavailable | None:
        """``failure`` when the store refused a write for its storage (disk full, …)."""
        return self.failure if isinstance(self.failure, StorageUnavailable) else None

    # -- TurnSink: steps and text -------------------------------------------------------

    async def step_started(self) -> None:
        """Open a step: a new assistant message after the first step, then step-start."""
        if self._step_done:
            self._complete_message()
            self.assistant = copy.deepcopy(self.assistant)
            for key in ("error", "finish"):
                self.assistant.pop(key, None)
            self.assistant["id"] = new_message_id()
            self.assistant["time"] = {"created": now_ms()}
            self.assistant["tokens"] = msg.tokens(0, 0)
            self._queue_message()
            self._step_done = False
            self.tools.clear()
        self._steps += 1
        self._final_text = io.StringIO()
        self._step_start = msg.step_start_part(new_part_id(), self._sid, self.message_id)
        self._queue_part(self._step_start)

    def set_step_snapshot(self, snapshot: str) -> None:
        """Record on the current step-start part the snapshot of the files before the step
        changed any (queued: committed with the next write, before the tool runs)."""
        self._step_start["snapshot"] = snapshot
        self._queue_part(self._step_start)

    async def text_delta(self, text: str) -> None:
        """Buffer answer text."""
        await self._resume_status()
        self._final_text.write(text)
        await self._delta("text", text)

    async def reasoning_delta(self, text: str) -> None:
        """Buffer reasoning text."""
        await self._resume_status()
        await self._delta("reasoning", text)

    async def step_finished(
        self,
        finish_reason: str,
        usage: Usage,
        *,
        snapshot: str | None = None,
        patch: tuple[str, list[str]] | None = None,
    ) -> None:
        """Close the step's parts and record its usage (a step-finish part).

        Args:
            snapshot: The files after the step (step-finish ``snapshot``).
            patch: ``(snapshot before, files changed)``, stored as a patch part after it.
        """
        await self._resume_status()
        self._close_open_parts()
        toks = msg.tokens(
            usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.cache_read_tokens
        )
        finish = msg.step_finish_part(
            new_part_id(), self._sid, self.message_id, reason=finish_of(finish_reason), tokens=toks
        )
        if snapshot is not None:
            finish["snapshot"] = snapshot
        self._queue_part(finish)
        if patch is not None:
            self._queue_part(
                msg.patch_part(
                    new_part_id(), self._sid, self.message_id, snapshot=patch[0], files=patch[1]
                )
            )
        self.assistant["tokens"] = toks
        self.assistant["cost"] = self.price(toks) if self.price is not None else 0
        self.assistant["finish"] = finish_of(finish_reason)
        self._queue_message()
        self._step_done = True
        await self.flush(usage=self.assistant)

    async def retrying(self, attempt: int, message: str, next_ms: int) -> None:
        """Show ``retry`` status until the next attempt starts."""
        from roost.model.session import retry_status

        await self.set_status({**retry_status(attempt, message, next_ms), "reason": "retry"})
        self._retrying = True

    async def _resume_status(self) -> None:
        """After a retry wait, the next output shows the session running again."""
        if self._retrying:
            self._retrying = False
            await self.set_status({"type": "busy", "reason": "running"})

    async def set_status(self, status: dict[str, Any]) -> None:
        """Store the busy status on the lease and emit ``session.status`` (one commit)."""
        self._pending.append((ev.SESSION_STATUS, {"sessionID": self._sid, "status": status}))
        await self.flush(status=status)

    # -- TurnSink: tools ----------------------------------------------------------------

    async def tool_pending(self, call: ToolCallRequest) -> None:
        """A ``pending`` tool part for a call the model just made."""
        await self._resume_status()
        self._close_open_parts()
        part = {
            "id": new_part_id(),
            "sessionID": self._sid,
            "messageID": self.message_id,
            "type": "tool",
            "callID": call.call_id,
            "tool": call.name,
            "state": {"status": "pending", "input": call.arguments, "raw": ""},
        }
        self.tools[call.call_id] = part
        self._queue_part(part)

    async def tool_running(self, call: ToolCallRequest) -> None:
        """The call starts executing."""
        part = self._tool_part(call)
        part["state"] = {"status": "running", "input": call.arguments, "time": {"start": now_ms()}}
        self._queue_part(part)
        await self.flush()

    async def tool_progress(
        self, call_id: str, *, title: str | None, metadata: dict[str, Any], force: bool = False
    ) -> None:
        """Streamed progress of a running call (``state.metadata``), committed at most every
        ``METADATA_EVERY_MS`` unless ``force``."""
        part = self.tools.get(call_id)
        if part is None or part["state"]["status"] != "running":
            return
        state = part["state"]
        state["metadata"] = {**state.get("metadata", {}), **metadata}
        if title is not None:
            state["title"] = title
        at = now_ms()
        if force or at - self._metadata_at.get(call_id, 0) >= METADATA_EVERY_MS:
            self._metadata_at[call_id] = at
            self._queue_part(part)
            await self.flush()

    async def tool_completed(self, call: ToolCallRequest, result: ToolResult) -> None:
        """The call returned."""
        part = self._tool_part(call)
        start = part["state"].get("time", {}).get("start", now_ms())
        part["state"] = {
            "status": "completed",
            "input": call.arguments,
            "output": result.output,
            "title": result.title,
            "metadata": result.metadata,
            "time": {"start": start, "end": now_ms()},
        }
        if result.attachments:
            part["state"]["attachments"] = [
                {**a, "id": new_part_id(), "sessionID": self._sid, "messageID": self.message_id}
                for a in result.attachments
            ]
        self._queue_part(part)
        await self.flush()

    async def tool_failed(self, call: ToolCallRequest, error: str) -> None:
        """The call failed (or was refused); the model is told ``error``."""
        part = self.tools.get(call.call_id)
        if part is None:
            await self.tool_pending(call)
            part = self._tool_part(call)
        state = part["state"]
        start = state.get("time", {}).get("start", now_ms())
        part["state"] = {
            "status": "error",
            "input": call.arguments,
            "error": error,
            "time": {"start": start, "end": now_ms()},
        }
        if state.get("metadata"):
            part["state"]["metadata"] = state["metadata"]
        self._queue_part(part)
        await self.flush()

    async def open_message(
        self,
        info: dict[str, Any],
        *,
        before: list[tuple[str, dict[str, Any]]] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Go on in a new assistant message ``info`` (not yet stored), e.g. a summary.

        In one commit: the current message is completed (with ``error`` when given), the
        ``before`` events follow, then ``info``; the next step writes into ``info``.
        """
        self._close_open_parts()
        if error is not None:
            self.assistant["error"] = error
        if error is not None or "completed" not in self.assistant["time"]:
            self._complete_message()
        self._pending.extend(before or [])
        self.assistant = info
        self._queue_message()
        self._step_done = False
        self.tools.clear()
        await self.flush()

    async def complete_message(self) -> None:
        """Complete the current message now, before the turn ends (``finish`` leaves it)."""
        self._close_open_parts()
        if "completed" not in self.assistant["time"]:
            self._complete_message()
        await self.flush()

    def tool_context(self, call: ToolCallRequest) -> Any:
        """The call's ``ToolContext``, made by ``context_factory`` (set by the run manager)."""
        if self.context_factory is None:
            raise RuntimeError("this turn offers no tools")
        return self.context_factory(call)

    # -- outcome ---------------------------------------------------------------------

    async def finish(
        self, *, error: dict[str, Any] | None, run_status: str, tool_error: str = "aborted"
    ) -> None:
        """Complete the current assistant message and the run in one commit, then go idle.

        Open parts are closed first; tool parts not yet terminal become ``error`` with
        ``tool_error``. Events, in OpenCode's order: ``message.updated`` (completed, with
        ``error`` when given), ``session.error`` (when failed), ``session.status`` idle,
        ``session.idle``. The lease is released in the same commit.

        The first call decides the outcome; calling again after it raised (the store refused
        the commit) tries the same commit again, and its arguments are ignored.

        Raises:
            StorageUnavailable: The store refused the commit; nothing of it is stored.
            LeaseLost: Another owner has taken the run over.
        """
        await self._settle_timers()
        async with self._lock:
            if self._outcome is None:
                self._outcome = (self._close_for_outcome(error, tool_error), run_status)
            terminal, status = self._outcome
            events = [*self._pending, *terminal]
            sid, run_id, generation = self._sid, self._run.id, self.generation

            def commit(tx: Tx) -> None:
                leases.check(tx.conn, sid, generation)
                for type_, props in events:
                    tx.append(sid, type_, props)
                runs.set_status(tx.conn, run_id, status)
                leases.release(tx.conn, sid, generation)

            await self._db.write(commit)
            self._pending.clear()

    def _close_for_outcome(
        self, error: dict[str, Any] | None, tool_error: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """Queue the final states of open parts and the completed message; returns the
        terminal session events that follow them."""
        self._close_open_parts()
        end = now_ms()
        for part in self.tools.values():
            closed = close_open_tool(part, tool_error, end)
            if closed is not None:
                part["state"] = closed["state"]  # in place: the queued writes hold this dict
                self._queue_part(part)
        if error is not None:
            self.assistant["error"] = error
        if error is not None or "completed" not in self.assistant["time"]:
            self._complete_message()
        terminal: list[tuple[str, dict[str, Any]]] = []
        if error is not None:
            terminal.append((ev.SESSION_ERROR, {"sessionID": self._sid, "error": error}))
        terminal.append((ev.SESSION_STATUS, {"sessionID": self._sid, "status": IDLE}))
        terminal.append((ev.SESSION_IDLE, {"sessionID": self._sid}))
        return terminal

    async def discard(self) -> None:
        """Stop the flush timers without writing (the turn ends without ``finish``)."""
        await self._settle_timers()

    async def flush(
        self, *, status: dict[str, Any] | None = None, usage: dict[str, Any] | None = None
    ) -> None:
        """Commit pending events and buffered deltas now (and a new lease status, if given).

        ``usage``: a finished step's assistant message, whose tokens and cost are added to
        the session's totals in the same commit (``session.updated``).

        Raises:
            StorageUnavailable: The store refused the commit (the turn is told and stops).
            Exception: ``failure``, when an earlier write was refused; or whatever the commit
                raised (its events stay pending).
        """
        self._raise_failure()
        async with self._lock:
            events = self._take_buffered()
            if not events and status is None and usage is None:
                return
            sid, generation = self._sid, self.generation
            step = copy.deepcopy(usage) if usage is not None else None

            def commit(tx: Tx) -> None:
                leases.check(tx.conn, sid, generation)
                for type_, props in events:
                    tx.append(sid, type_, props)
                if status is not None:
                    leases.set_status(tx.conn, sid, generation, status)
                if step is not None:
                    _add_usage(tx, sid, step)

            try:
                await self._db.write(commit)
            except Exception as exc:
                # Not committed: keep the events, so the turn's next commit (its outcome at
                # the latest) stores them. (A cancelled caller is not a failure: the queued
                # write still commits.)
                self._pending[:0] = events
                if isinstance(exc, StorageUnavailable):
                    self._fail(exc)
                raise
            if any(type_ == ev.PART_DELTA for type_, _ in events):
                chaos.cut("mid-stream")

    async def append(self, type_: str, properties: dict[str, Any]) -> None:
        """Commit one more event of this session, in order with the turn's own."""
        self._pending.append((type_, properties))
        await self.flush()

    # -- internals -------------------------------------------------------------------

    def _tool_part(self, call: ToolCallRequest) -> dict[str, Any]:
        part = self.tools.get(call.call_id)
        if part is None:
            raise KeyError(f"no tool part for call {call.call_id}")
        return part

    def _complete_message(self) -> None:
        self.assistant["time"].setdefault("completed", now_ms())
        self._queue_message()

    def _queue_message(self) -> None:
        # Deep copies: the dicts keep changing before the pending event is committed.
        self._pending.append(
            (ev.MESSAGE_UPDATED, {"sessionID": self._sid, "info": copy.deepcopy(self.assistant)})
        )

    def _queue_part(self, part: dict[str, Any]) -> None:
        self._pending.append(
            (ev.PART_UPDATED, {"sessionID": self._sid, "part": copy.deepcopy(part)})
        )

    async def _delta(self, kind: str, text: str) -> None:
        self._raise_failure()
        if not text:
            return
        if self._current_kind != kind:
            self._close_open_parts()
            self._current_kind = kind
        open_part = self._open.get(kind)
        if open_part is None:
            pid = new_part_id()
            if kind == "text":
                part = msg.text_part(pid, self._sid, self.message_id, "", time={"start": now_ms()})
            else:
                part = msg.reasoning_part(pid, self._sid, self.message_id, now_ms())
            open_part = _OpenPart(part, "text")
            self._open[kind] = open_part
            self._queue_part(part)
        open_part.pieces.append(text)
        open_part.chars += len(text)
        if self._armed is None:
            wait_ms = min(
                max(COALESCE_MS, open_part.chars / COALESCE_CHARS_PER_MS), COALESCE_MAX_MS
            )
            self._armed = asyncio.create_task(self._flush_later(wait_ms / 1000))
            self._timers.add(self._armed)
            self._armed.add_done_callback(self._timers.discard)

    async def _flush_later(self, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        self._armed = None  # deltas from now on arm the next timer
        try:
            await self.flush()
        except Exception as exc:
            # Nobody awaits this flush: its failure is handed to the run here (which stops
            # the turn) and raised again by the turn's next write.
            self._fail(exc)

    async def _settle_timers(self) -> None:
        """Cancel the armed timer and wait for every timer (their flushes commit first)."""
        armed, self._armed = self._armed, None
        if armed is not None and armed is not asyncio.current_task():
            armed.cancel()
        timers = [t for t in self._timers if t is not asyncio.current_task()]
        if timers:
            # The timers catch their own failures: only their cancellations come back here.
            await asyncio.gather(*timers, return_exceptions=True)

    def _fail(self, exc: Exception) -> None:
        """Record the first refused write and tell the run (see the module docstring)."""
        if self.failure is not None:
            return
        self.failure = exc
        if self._on_write_failed is not None:
            self._on_write_failed(exc)

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _take_buffered(self) -> list[tuple[str, dict[str, Any]]]:
        events = list(self._pending)
        self._pending.clear()
        for op in self._open.values():
            delta = op.take_delta()
            if delta:
                events.append(
                    (
                        ev.PART_DELTA,
                        {
                            "sessionID": self._sid,
                            "messageID": self.message_id,
                            "partID": op.part["id"],
                            "field": op.field,
                            "delta": delta,
                        },
                    )
                )
        return events

    def _close_open_parts(self) -> None:
        """Move buffered deltas to pending and queue each open part's final state."""
        self._pending.extend(self._take_buffered())
        end = now_ms()
        for op in self._open.values():
            op.part[op.field] = op.text()
            op.part.setdefault("time", {"start": end})["end"] = end
            self._queue_part(op.part)
        self._open.clear()
        self._current_kind = None
