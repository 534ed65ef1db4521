"""Compaction: a session's conversation summarized by its model, as a run under its lease.

What is stored, and what the model then sees, is described in ``roost.agent.compaction``.
A compaction always happens inside a run and is written through the run's ``TurnWriter``, so
every write is fenced by the run's lease, abort stops it like any turn (the summary message
gets ``MessageAbortedError``), and recovery finishes it like any turn (the summary message is
closed as interrupted and the run is resumed, which summarizes again):

- ``POST /session/{id}/summarize`` admits a compaction run (``engine/summarize.py``). It opens
  with its summary message, writes the summary and ends; with ``auto`` the turn goes on after.
- Automatic compaction happens inside a prompt's run: before the run's first request when the
  last request of the session filled the model's context window (``opening``), before a later
  request when the previous step filled it, and when the provider refuses a request as too long
  (the request is then sent once more). The compaction request, the summary and the rest of
  the run's messages answer the run's prompt (``parentID``), so replies, recovery and
  synchronous prompts find them as before.
- It never loops: after a compaction, another one in the same run is refused until a request
  has fitted the window again. A compaction whose result still does not fit ends the run with
  ``ContextOverflowError`` instead (OpenCode 1.18.34 compacts again and again here).

A compaction that happens before the prompt got any answer keeps the prompt verbatim after the
summary (``tail_start_id``); any other summarizes everything and the turn goes on from the
summary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, TypeVar

import orjson
from sqlalchemy import Connection

from roost.agent import history
from roost.agent.catalog import Catalog
from roost.agent.compaction import (
    Message,
    before_message,
    decides_view,
    is_completed_summary,
    model_view,
    summary_request,
)
from roost.agent.context_window import (
    CompactionSettings,
    ContextWindow,
    is_context_overflow,
    message_tokens,
    usage_tokens,
)
from roost.agent.loop import RetryPolicy, TurnOptions, run_turn
from roost.agent.providers.base import ModelRequest, Provider, Usage
from roost.agent.prune import prune_tool_outputs
from roost.engine.turn import TurnWriter
from roost.errors import CompactionFailed, ContextOverflow, ProviderError
from roost.ids import new_message_id, new_part_id
from roost.model import event as ev
from roost.model import message as msg
from roost.store import queries, runs
from roost.store.database import Database
from roost.store.event_log import now_ms

Event = tuple[str, dict[str, Any]]

_RECENT_REPLIES: Final = 20
"""Assistant messages read back to find the session's last request at a run's start."""
_SUMMARY_MARK: Final = '"summary":true'
"""How a summary's stored ``Message`` JSON (compact, as ``orjson`` writes it) says so: the
database looks back for it, and only the messages holding it are parsed."""


OFF_LOOP_CHARS: Final = 256 * 1024
"""Stored characters of the messages a model request is built from, from which it is built on
a worker thread. Decoding and converting them takes about 14 ms per MiB on a 2-core VM, all of
it in one call that holds the event loop: a turn in a session of 5 MiB that was never compacted
kept every other request waiting about 100 ms (``bench/long_history.py --no-compact``)."""

T = TypeVar("T")


async def off_loop_if_long(rows: list[queries.MessageRow], fn: Callable[[], T]) -> T:
    """``fn()``: called here when ``rows`` hold fewer than ``OFF_LOOP_CHARS`` characters,
    else on a worker thread, where the loop keeps its share of the GIL between the small
    decodes ``fn`` is made of (it must touch nothing but its arguments)."""
    if sum(len(r.info) + sum(map(len, r.parts)) for r in rows) < OFF_LOOP_CHARS:
        return fn()
    return await asyncio.to_thread(fn)


def conversation_until(rows: list[queries.MessageRow], user_message_id: str) -> list[Message]:
    """The conversation a run answers: earlier turns (each user message followed by its
    assistant replies) up to and including the run's own user message and whatever replies it
    already has (a resumed run). User messages queued after it are left out."""
    decoded = [
        {"info": orjson.loads(r.info), "parts": [orjson.loads(p) for p in r.parts]} for r in rows
    ]
    replies: dict[str, list[Message]] = {}
    for m in decoded:
        if m["info"]["role"] == "assistant":
            replies.setdefault(m["info"].get("parentID", ""), []).append(m)
    out: list[Message] = []
    for m in decoded:
        if m["info"]["role"] != "user":
            continue
        out.append(m)
        # A resumed run sees its own earlier, interrupted replies too.
        out.extend(replies.get(m["info"]["id"], []))
        if m["info"]["id"] == user_message_id:
            break
    return out


def turn_rows(conn: Connection, session_id: str, user_message_id: str) -> list[queries.MessageRow]:
    """The rows a run builds its model request from, oldest first: the session's messages from
    the prompt of its newest completed summary on, when those alone decide what the model sees
    (``decides_view``), else all of them.

    So a turn in a long session that was compacted costs what happened since the compaction,
    not the whole history: OpenCode 1.18.34's ``MessageV2.filterCompacted`` likewise reads the
    messages newest first and stops at the compaction (or the start of the tail it kept). Like
    it, this relies on a reply's id sorting after its prompt's (ids are minted in time order);
    a summary whose id sorts before its prompt's (a client's message id from a clock ahead)
    makes it read everything. Looking back for the summary is a scan in the database; only
    summaries are parsed.

    Called in a read transaction (it reads twice).
    """
    floor = _newest_summary_prompt(conn, session_id, user_message_id)
    if floor is not None:
        rows = queries.list_messages(conn, session_id, since=floor)
        if decides_view(conversation_until(rows, user_message_id), compaction_requests(rows)):
            return rows
    return queries.list_messages(conn, session_id)


def _newest_summary_prompt(conn: Connection, session_id: str, user_message_id: str) -> str | None:
    """The parent (prompt) of the newest completed summary answering a prompt up to
    ``user_message_id``, when it sorts before the summary itself; else None."""
    for raw in queries.message_infos_containing(
        conn, session_id, role="assistant", needle=_SUMMARY_MARK
    ):
        info = orjson.loads(raw)
        parent = info.get("parentID") or ""
        if is_completed_summary(info) and parent <= user_message_id:
            return parent if parent and parent < info["id"] else None
    return None


def is_compaction_run(run: runs.RunRow) -> bool:
    """Whether the run answers ``POST /session/{id}/summarize``."""
    return run.request.get("compaction") is not None


class Compactions:
    """Compaction for the runs of one ``RunManager``: how a run opens, and its ``Compactor``.

    Args:
        catalog: Models' limits, and the config's ``compaction`` settings.
        directory: The project directory (``path`` of the messages written).
        retry: How the summary request is retried.
    """

    def __init__(
        self, db: Database, catalog: Catalog, *, directory: str, retry: RetryPolicy
    ) -> None:
        self.db = db
        self.directory = directory
        self.retry = retry
        self.settings = CompactionSettings.from_config(catalog.config)
        self._catalog = catalog

    def window(self, run: runs.RunRow) -> ContextWindow:
        """The context window of the run's model."""
        limit = self._catalog.model_limit(
            run.request.get("providerID", ""), run.request.get("modelID", "")
        )
        return ContextWindow(limit, self.settings)

    def opening(
        self, conn: Connection, run: runs.RunRow, assistant: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Event]]:
        """The run's first assistant message, and events to commit before it; called in the
        transaction that starts the run.

        A compaction run opens with its summary message. A prompt's run whose session's last
        request filled the context window opens with a compaction request and a summary;
        any other opens with ``assistant``.
        """
        if is_compaction_run(run):
            return self.summary_message(run, assistant["id"]), []
        window = self.window(run)
        if window.usable <= 0 or not self.settings.auto:
            return assistant, []
        infos = [
            orjson.loads(raw)
            for raw in queries.recent_message_infos(
                conn, run.session_id, role="assistant", limit=_RECENT_REPLIES
            )
        ]
        last = next((i for i in infos if _is_request(i) or is_completed_summary(i)), None)
        if last is None or is_completed_summary(last) or not window.is_full(_tokens(last)):
            return assistant, []
        answered = any(_is_request(i) and i.get("parentID") == run.message_id for i in infos)
        request = self.compaction_request(run, keep_prompt=not answered)
        return self.summary_message(run, new_message_id()), request

    def compactor(
        self,
        run: runs.RunRow,
        writer: TurnWriter,
        provider: Provider,
        *,
        agent: str,
        system: str,
    ) -> RunCompactor:
        """The ``Compactor`` of one executing run."""
        return RunCompactor(self, run, writer, provider, agent=agent, system=system)

    def summary_message(self, run: runs.RunRow, message_id: str) -> dict[str, Any]:
        """A new summary message answering the run's prompt."""
        return msg.summary_message(
            message_id,
            run.session_id,
            parent_id=run.message_id,
            created_ms=now_ms(),
            provider_id=run.request.get("providerID", ""),
            model_id=run.request.get("modelID", ""),
            directory=self.directory,
        )

    def compaction_request(
        self, run: runs.RunRow, *, keep_prompt: bool, overflow: bool | None = None
    ) -> list[Event]:
        """An automatic compaction request: the events of its user message and its
        ``compaction`` part (``tail_start_id`` is the run's prompt when ``keep_prompt``)."""
        sid = run.session_id
        info = msg.user_message(
            new_message_id(),
            sid,
            created_ms=now_ms(),
            agent=run.request.get("agent") or self._catalog.default_agent,
            provider_id=run.request.get("providerID", ""),
            model_id=run.request.get("modelID", ""),
        )
        part = msg.compaction_part(
            new_part_id(),
            sid,
            info["id"],
            auto=True,
            overflow=overflow,
            tail_start_id=run.message_id if keep_prompt else None,
        )
        return [
            (ev.MESSAGE_UPDATED, {"sessionID": sid, "info": info}),
            (ev.PART_UPDATED, {"sessionID": sid, "part": part}),
        ]


class RunCompactor:
    """One run's compactions (``roost.agent.loop.Compactor``; see module docstring)."""

    def __init__(
        self,
        compactions: Compactions,
        run: runs.RunRow,
        writer: TurnWriter,
        provider: Provider,
        *,
        agent: str,
        system: str,
    ) -> None:
        self._compactions = compactions
        self._db = compactions.db
        self._run = run
        self._writer = writer
        self._provider = provider
        self._agent = agent
        self._system = system
        self._window = compactions.window(run)
        self._settings = compactions.settings
        self._fitted = True
        """Whether a request fitted the window since this run's last compaction."""

    async def chat_messages(self, rows: list[queries.MessageRow]) -> list[dict[str, Any]]:
        """What the run's next request sends, from the session's rows: the compacted view,
        pruned when configured, as chat messages under the run's system prompt (built off
        the loop for a long history, ``off_loop_if_long``)."""

        def build() -> list[dict[str, Any]]:
            view = self._view(rows)
            if self._settings.prune:
                view = prune_tool_outputs(view)
            return history.to_chat_messages(self._system, view)

        return await off_loop_if_long(rows, build)

    def _view(self, rows: list[queries.MessageRow]) -> list[Message]:
        """The compacted view of the conversation the run answers (``model_view``)."""
        conversation = conversation_until(rows, self._run.message_id)
        return model_view(conversation, compaction_requests(rows))

    def is_full(self, usage: Usage) -> bool:
        """Whether the last request filled the window (see ``Compactor``)."""
        full = self._window.is_full(usage_tokens(usage))
        if not full:
            self._fitted = True
        return full

    async def open(self, rows: list[queries.MessageRow]) -> bool:
        """Write the summary the run opened with (``Compactions.opening``).

        Returns:
            Whether the turn goes on after it (not for ``summarize`` without ``auto``).
        """
        compaction = self._run.request.get("compaction")
        keep_prompt = compaction is None and not _answered(rows, self._run.message_id)
        await self._summarize(rows, keep_prompt=keep_prompt, automatic=compaction is None)
        if compaction is not None and not compaction.get("auto"):
            return False
        await self._writer.open_message(self._next_message())
        return True

    async def compact(self, refused: ProviderError | None) -> list[dict[str, Any]]:
        """Compact in the middle of the run (see ``Compactor.compact``)."""
        if not self._settings.auto or not self._fitted:
            why = (
                "automatic compaction is off (compaction.auto: false)"
                if not self._settings.auto
                else "it was compacted already and still does not fit"
            )
            reason = f"the conversation is too long for the model's context window: {why}"
            if refused is not None:
                reason += f" ({refused.message})"
            raise ContextOverflow(reason, response_body=refused.response_body if refused else None)
        rows = await self._db.read(
            lambda c: turn_rows(c, self._run.session_id, self._run.message_id)
        )
        keep_prompt = not _answered(rows, self._run.message_id)
        request = self._compactions.compaction_request(
            self._run, keep_prompt=keep_prompt, overflow=refused is not None
        )
        error = (
            msg.context_overflow_error(refused.message, refused.response_body)
            if refused is not None
            else None
        )
        summary = self._compactions.summary_message(self._run, new_message_id())
        await self._writer.open_message(summary, before=request, error=error)
        await self._summarize(rows, keep_prompt=keep_prompt, automatic=True)
        await self._writer.open_message(self._next_message())
        rows = await self._db.read(
            lambda c: turn_rows(c, self._run.session_id, self._run.message_id)
        )
        return await self.chat_messages(rows)

    async def _summarize(
        self, rows: list[queries.MessageRow], *, keep_prompt: bool, automatic: bool
    ) -> None:
        """Stream the summary into the current (summary) message, then complete it and emit
        ``session.compacted``.

        Raises:
            ContextOverflow: There is nothing before the prompt to summarize, or the provider
                refused even the summary request as too long.
            CompactionFailed: The model wrote no summary (no text, or tool calls instead).
        """
        sid = self._run.session_id

        def build() -> list[dict[str, Any]] | None:
            view = self._view(rows)
            head = before_message(view, self._run.message_id) if keep_prompt else view
            return summary_request(head) if any("id" in m["info"] for m in head) else None

        messages = await off_loop_if_long(rows, build)
        if messages is None:
            if automatic:
                raise ContextOverflow("the prompt alone is too long for the model's context window")
            raise CompactionFailed(sid, "the session has nothing to summarize")
        request = ModelRequest(model_id=self._run.request.get("modelID", ""), messages=messages)
        options = TurnOptions(max_steps=1, retry=self._compactions.retry)
        try:
            finish = await run_turn(self._provider, request, self._writer, options)
        except ProviderError as exc:
            if not is_context_overflow(exc):
                raise
            raise ContextOverflow(
                f"the conversation is too long for the model even to summarize: {exc.message}",
                response_body=exc.response_body,
            ) from exc
        if finish == "tool-calls" or not self._writer.final_text.strip():
            raise CompactionFailed(sid, "the model answered without a summary")
        await self._writer.complete_message()
        await self._writer.append(ev.SESSION_COMPACTED, {"sessionID": sid})
        self._fitted = False

    def _next_message(self) -> dict[str, Any]:
        """The assistant message the turn goes on in after a summary."""
        return msg.assistant_message(
            new_message_id(),
            self._run.session_id,
            parent_id=self._run.message_id,
            created_ms=now_ms(),
            agent=self._agent,
            provider_id=self._run.request.get("providerID", ""),
            model_id=self._run.request.get("modelID", ""),
            directory=self._compactions.directory,
        )


def _is_request(info: dict[str, Any]) -> bool:
    """Whether an assistant message records a finished model request: a step with token usage,
    not a summary and not failed."""
    return info.get("summary") is not True and "error" not in info and _tokens(info) > 0


def _tokens(info: dict[str, Any]) -> int:
    return message_tokens(info.get("tokens") or {})


def _answered(rows: list[queries.MessageRow], user_message_id: str) -> bool:
    """Whether the prompt already has a reply that made a request (a resumed run's)."""
    for row in rows:
        if row.id <= user_message_id:
            continue
        info = orjson.loads(row.info)
        if info.get("parentID") == user_message_id and _is_request(info):
            return True
    return False


def compaction_requests(rows: list[queries.MessageRow]) -> dict[str, dict[str, Any]]:
    """The session's compaction requests: ``compaction`` part by user message id."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        for raw in row.parts:
            if '"type":"compaction"' not in raw:
                continue
            part = orjson.loads(raw)
            if part.get("type") == "compaction":
                out[row.id] = part
    return out
