"""RunManager: executes admitted runs one session at a time, in admission order.

Each session with open runs has one worker task; the worker takes the oldest ``queued`` run
from the store, executes its turn as a child task (so abort can cancel the turn alone), then
takes the next. Every task here is owned and awaited by the manager: ``stop()`` cancels and
drains them. A turn always ends in a durable outcome: completed, failed (provider or internal
error: the assistant message carries ``error`` and ``session.error`` is emitted), aborted
(``MessageAbortedError``) or interrupted (server shutdown); then the session goes idle.
A run may compact the conversation on its way (``engine/compaction.py``), and a compaction run
(``POST /session/{id}/summarize``) is one that opens with its summary.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from roost.agent import history
from roost.agent.catalog import AgentConfig, Catalog
from roost.agent.loop import RetryPolicy, TurnOptions, run_turn
from roost.agent.providers.base import ModelRequest
from roost.agent.providers.registry import ProviderRegistry
from roost.agent.tools.base import SubtaskResult, Tool
from roost.engine import chaos, daemons, permissions
from roost.engine.compaction import Compactions
from roost.engine.heartbeat import Heartbeat
from roost.engine.owner import start_ticks, this_owner
from roost.engine.recovery import recover_orphaned_runs
from roost.engine.requests import RequestBroker
from roost.engine.tool_context import EngineToolContext, RunScope, WaitPolicy
from roost.engine.turn import TurnWriter
from roost.errors import ContextOverflow, ProviderError, RoostError
from roost.ids import new_message_id
from roost.model import event as ev
from roost.model import message as msg
from roost.store import leases, processes, queries, runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms

log = logging.getLogger(__name__)


@dataclass
class _Active:
    run: runs.RunRow
    task: asyncio.Task[None]
    status: dict[str, Any]
    stop_reason: str | None = None
    """Why the turn is being cancelled: ``abort``, ``shutdown`` or ``lease_lost``."""
    generation: int | None = None
    """The run lease's generation, once the turn has taken it."""


class RunManager:
    """Owns the worker and turn tasks of every session (see module docstring)."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        providers: ProviderRegistry,
        broker: RequestBroker,
        *,
        directory: str,
        retry: RetryPolicy,
        tools: dict[str, Tool] | None = None,
        output_dir: Path | None = None,
        waits: WaitPolicy | None = None,
        instructions: list[str] | None = None,
        lease_ttl_ms: int = 15_000,
        max_recoveries: int = 3,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._providers = providers
        self._broker = broker
        self._directory = directory
        self._retry = retry
        self._tools = tools or {}
        self._output_dir = output_dir or Path(directory) / ".roost-output"
        self._waits = waits or WaitPolicy()
        self._instructions = instructions or []
        self.run_subtask: Any = None
        """``SessionService.run_subtask``; set by the service (it creates child sessions)."""
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._kicked: set[str] = set()
        self._held: set[str] = set()
        self._active: dict[str, _Active] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._stopping = False
        self.owner = this_owner()
        self.lease_ttl_ms = lease_ttl_ms
        self.max_recoveries = max_recoveries
        self._heartbeat: Heartbeat | None = None
        self._recovery_task: asyncio.Task[None] | None = None
        self._compactions = Compactions(db, catalog, directory=directory, retry=retry)

    # -- queries ---------------------------------------------------------------------

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """Status of every busy session, derived from live leases; idle ones are absent.

        Each status is OpenCode's ``SessionStatus`` (``busy`` or ``retry``) with Roost's extra
        ``reason``: ``running``, ``permission``, ``question`` or ``retry``.
        """
        live = await self._db.read(lambda c: leases.live(c))
        return {lease.session_id: lease.status for lease in live}

    async def is_busy(self, session_id: str) -> bool:
        """Whether the session holds a live lease (a turn is executing somewhere)."""
        lease = await self._db.read(lambda c: leases.get(c, session_id))
        return lease is not None and lease.is_live(now_ms())

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> list[str]:
        """Recover orphaned runs, start the heartbeat and the periodic recovery.

        Returns:
            Sessions that have queued runs (the caller kicks them once it is ready).
        """
        await self.recover(startup=True)
        self._heartbeat = Heartbeat(
            self._db, self.owner, self.lease_ttl_ms, self._on_lease_lost, asyncio.get_running_loop()
        )
        self._heartbeat.start()
        self._recovery_task = asyncio.create_task(self._recover_periodically(), name="recovery")
        queued = await self._db.read(lambda c: runs.open_runs(c))
        return list(dict.fromkeys(r.session_id for r in queued if r.status == runs.QUEUED))

    async def recover(self, *, startup: bool = False) -> int:
        """Recover orphaned runs now and kick their sessions; returns how many."""
        done = await recover_orphaned_runs(
            self._db,
            owner=self.owner,
            ttl_ms=self.lease_ttl_ms,
            max_recoveries=self.max_recoveries,
            startup=startup,
        )
        for item in done:
            self.kick(item.session_id)
        return len(done)

    async def _recover_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_ms / 2000)
            try:
                await self.recover()
            except Exception:
                log.exception("periodic recovery failed; retrying")

    def _on_lease_lost(self, session_id: str, generation: int) -> None:
        active = self._active.get(session_id)
        if active is not None and active.generation == generation:
            active.stop_reason = "lease_lost"
            active.task.cancel()

    # -- commands --------------------------------------------------------------------

    def kick(self, session_id: str) -> None:
        """Make sure the session's queued runs will execute (idempotent)."""
        if self._stopping or session_id in self._held:
            return
        self._kicked.add(session_id)
        if session_id not in self._workers:
            self._workers[session_id] = asyncio.create_task(
                self._worker(session_id), name=f"worker:{session_id}"
            )

    async def wait_run(self, run_id: str) -> None:
        """Return once the run has ended (immediately if it already has)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(fut)
        row = await self._db.read(lambda c: runs.get_run(c, run_id))
        if row is None or row.status not in runs.OPEN_STATUSES:
            self._resolve_waiters(run_id)
        await fut

    async def abort(self, session_id: str, *, reason: str = "abort") -> bool:
        """Cancel the session's executing turn and wait until its outcome is stored.

        Returns:
            True when a turn was executing.
        """
        active = self._active.get(session_id)
        if active is None:
            return False
        active.stop_reason = active.stop_reason or reason
        active.task.cancel()
        chaos.cut("during-abort")
        await asyncio.wait({active.task})
        return True

    async def hold(self, session_id: str) -> None:
        """Stop the session's turn and keep new ones from starting until ``release``."""
        self._held.add(session_id)
        await self.abort(session_id)
        worker = self._workers.get(session_id)
        if worker is not None:
            await asyncio.wait({worker})

    def release(self, session_id: str) -> None:
        """Undo ``hold``; queued runs (if any still exist) start again."""
        self._held.discard(session_id)
        self.kick(session_id)

    async def stop(self) -> None:
        """Interrupt every executing turn (stored as interrupted) and end all workers.

        Callers waiting on a run (``wait_run``) are released, including those whose run is
        still queued: it starts again with the next server. Idempotent.
        """
        if self._stopping:
            return
        self._stopping = True
        if self._recovery_task is not None:
            self._recovery_task.cancel()
            await asyncio.wait({self._recovery_task})
        for active in list(self._active.values()):
            active.stop_reason = "shutdown"
            active.task.cancel()
        tasks = [a.task for a in self._active.values()] + list(self._workers.values())
        if tasks:
            await asyncio.wait(tasks)
        if self._heartbeat is not None:
            await asyncio.to_thread(self._heartbeat.stop)
        # What tool calls left running outside their process groups goes with the server.
        owner = self.owner
        await asyncio.to_thread(daemons.kill_tagged, lambda tagged: tagged == owner)
        for run_id in list(self._waiters):
            self._resolve_waiters(run_id)

    # -- internals -------------------------------------------------------------------

    def _resolve_waiters(self, run_id: str) -> None:
        for fut in self._waiters.pop(run_id, []):
            if not fut.done():
                fut.set_result(None)

    async def _worker(self, session_id: str) -> None:
        # The queued runs are read once and taken in order. They are read again only when the
        # session was kicked meanwhile (a new admission, a recovery) or a turn ended abnormally:
        # every way a run becomes queued kicks, so when nobody kicked, nothing new is queued.
        # A run that stopped being queued after the read is skipped by ``_execute``.
        queued: list[runs.RunRow] = []
        stale = True
        try:
            while not self._stopping and session_id not in self._held:
                if stale or session_id in self._kicked:
                    self._kicked.discard(session_id)
                    open_runs = await self._db.read(lambda c: runs.open_runs(c, session_id))
                    queued = [r for r in open_runs if r.status == runs.QUEUED]
                    stale = False
                if not queued:
                    if session_id in self._kicked:
                        continue
                    return
                run = queued.pop(0)
                task = asyncio.create_task(self._execute(run), name=f"turn:{run.id}")
                self._active[session_id] = _Active(run, task, _running())
                try:
                    await asyncio.wait({task})
                finally:
                    self._active.pop(session_id, None)
                    self._resolve_waiters(run.id)
                if task.cancelled():
                    stale = True
                    continue  # aborted: queued prompts run next (stop/hold end the loop)
                if task.exception() is not None:
                    stale = True
                    # The turn could not even store its outcome (a failed write). If it never
                    # started, its run is still queued and is tried again after a pause; if it
                    # did, its lease expires and recovery finishes it.
                    log.error("turn %s ended without an outcome: %r", run.id, task.exception())
                    await asyncio.sleep(_RETRY_PAUSE_S)
        finally:
            if self._workers.get(session_id) is asyncio.current_task():
                del self._workers[session_id]

    async def _set_status(self, writer: TurnWriter, status: dict[str, Any]) -> None:
        """Show a new busy status: stored on the lease and emitted as ``session.status``."""
        active = self._active.get(writer.session_id)
        if active is not None:
            active.status = dict(status)
        await writer.set_status(status)

    async def _execute(self, run: runs.RunRow) -> None:
        sid = run.session_id
        request = run.request
        agent_name = request.get("agent") or self._catalog.default_agent
        assistant = msg.assistant_message(
            new_message_id(),
            sid,
            parent_id=run.message_id,
            created_ms=now_ms(),
            agent=agent_name,
            provider_id=request.get("providerID", ""),
            model_id=request.get("modelID", ""),
            directory=self._directory,
        )

        def begin(tx: Tx) -> tuple[int, dict[str, Any]] | None:
            if runs.status_of(tx.conn, run.id) != runs.QUEUED:
                return None  # deleted with its session, or taken by another worker
            lease = leases.acquire(tx.conn, sid, run.id, self.owner, self.lease_ttl_ms)
            # A compaction run, or a run whose context window is full, opens with a summary.
            first, before = self._compactions.opening(tx.conn, run, assistant)
            runs.set_status(tx.conn, run.id, runs.RUNNING, assistant_message_id=first["id"])
            tx.append(sid, ev.SESSION_STATUS, {"sessionID": sid, "status": _running()})
            for type_, props in before:
                tx.append(sid, type_, props)
            tx.append(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": first})
            return lease.generation, first

        begun = await self._db.write(begin)
        if begun is None:
            return
        generation, first = begun
        active = self._active.get(sid)
        if active is not None and active.run.id == run.id:
            active.generation = generation
        if self._heartbeat is not None:
            self._heartbeat.hold(sid, generation)
        writer = TurnWriter(self._db, run, first, generation)
        try:
            await self._turn_with_outcome(run, writer, agent_name)
        finally:
            if self._heartbeat is not None:
                self._heartbeat.drop(sid, generation)

    async def _turn_with_outcome(
        self, run: runs.RunRow, writer: TurnWriter, agent_name: str
    ) -> None:
        sid = run.session_id
        try:
            await self._run_turn(run, writer, agent_name)
        except asyncio.CancelledError:
            active = self._active.get(sid)
            reason = active.stop_reason if active is not None else "shutdown"
            if reason == "lease_lost":
                raise  # another owner took the run over; our writes would be fenced
            if reason == "shutdown":
                outcome = (msg.unknown_error("interrupted: server stopped"), runs.INTERRUPTED)
            else:
                outcome = (msg.aborted_error(), runs.ABORTED)
            tool_error = "aborted" if outcome[1] == runs.ABORTED else "interrupted: server stopped"
            await asyncio.shield(
                writer.finish(error=outcome[0], run_status=outcome[1], tool_error=tool_error)
            )
            raise
        except ContextOverflow as exc:
            error = msg.context_overflow_error(exc.message, exc.response_body)
            await writer.finish(error=error, run_status=runs.FAILED)
        except ProviderError as exc:
            error = msg.api_error(
                exc.message,
                status_code=exc.status_code,
                retryable=exc.retryable,
                response_body=exc.response_body,
                response_headers=exc.response_headers,
                url=exc.url,
            )
            await writer.finish(error=error, run_status=runs.FAILED)
        except RoostError as exc:
            await writer.finish(
                error=msg.unknown_error(exc.message), run_status=runs.FAILED, tool_error=exc.message
            )
        except Exception as exc:
            log.exception("turn %s failed", run.id)
            await writer.finish(
                error=msg.unknown_error(f"internal error: {exc!r}"), run_status=runs.FAILED
            )
        else:
            await writer.finish(error=None, run_status=runs.COMPLETED)

    async def _run_turn(self, run: runs.RunRow, writer: TurnWriter, agent_name: str) -> None:
        request = run.request
        agent = self._catalog.agent(agent_name)
        resolved = self._catalog.resolve_model(
            request.get("providerID"), request.get("modelID"), agent
        )
        provider = self._providers.get(resolved.provider)
        sid = run.session_id

        def read(c: Any) -> tuple[list[queries.MessageRow], str | None]:
            return queries.list_messages(c, sid), queries.get_session(c, sid)

        rows, session_json = await self._db.read(read)
        session_info = orjson.loads(session_json) if session_json else {}
        rules = self._rules(agent, session_info)
        tools = {
            name: tool
            for name, tool in self._tools.items()
            if permissions.tool_enabled(rules, name)
            and (request.get("tools") or {}).get(name, True)
        }
        scope = RunScope(
            session_id=sid,
            agent=agent.name,
            directory=Path(self._directory),
            output_dir=self._output_dir,
            rules=rules,
            broker=self._broker,
            writer=writer,
            set_status=lambda s: self._set_status(writer, s),
            approve=lambda approved: self._approve(sid, approved, writer.generation),
            run_subtask=self._subtask,
            waits=self._waits,
            owner=self.owner,
            record_process=lambda pgid, call_id: self._record_process(run, pgid, call_id),
            forget_process=self._forget_process,
        )
        writer.context_factory = lambda call: EngineToolContext(scope, call)
        system = history.system_prompt(
            agent_prompt=agent.prompt,
            directory=self._directory,
            extra=request.get("system"),
            instructions=self._instructions,
        )
        compactor = self._compactions.compactor(
            run,
            writer,
            provider,
            agent=agent.name,
            system=system,
            conversation=lambda rows: _conversation_until(rows, run.message_id),
        )
        if writer.assistant.get("summary"):
            if not await compactor.open(rows):
                return  # ``summarize`` without ``auto``: the summary was the whole run
            rows = await self._db.read(lambda c: queries.list_messages(c, sid))
        model_request = ModelRequest(
            model_id=resolved.model_id,
            messages=compactor.chat_messages(rows),
            temperature=agent.temperature,
            top_p=agent.top_p,
        )
        options = TurnOptions(
            tools=tools, max_steps=agent.steps or 50, retry=self._retry, compactor=compactor
        )
        await run_turn(provider, model_request, writer, options)

    async def _record_process(self, run: runs.RunRow, pgid: int, call_id: str) -> None:
        ticks = start_ticks(pgid)
        await self._db.write(
            lambda tx: processes.record(
                tx.conn, self.owner, pgid, run.id, run.session_id, call_id, ticks
            )
        )
        chaos.cut("mid-tool")

    async def _forget_process(self, pgid: int) -> None:
        await self._db.write(lambda tx: processes.forget(tx.conn, self.owner, pgid))

    async def _subtask(self, **kwargs: Any) -> SubtaskResult:
        if self.run_subtask is None:
            raise RuntimeError("sub-agents are not available")
        result: SubtaskResult = await self.run_subtask(**kwargs)
        return result

    def _rules(self, agent: AgentConfig, session_info: dict[str, Any]) -> list[permissions.Rule]:
        return [
            *permissions.DEFAULT_RULES,
            *permissions.rules_from_config(self._catalog.config.get("permission")),
            *agent.permission,
            *permissions.rules_from_config(session_info.get("permission")),
        ]

    async def _approve(
        self, session_id: str, approved: list[permissions.Rule], generation: int
    ) -> None:
        """Store "always" approvals as session rules (``session.updated``), fenced by the
        run's lease ``generation``."""

        def write(tx: Tx) -> None:
            leases.check(tx.conn, session_id, generation)
            found = queries.get_session(tx.conn, session_id)
            if found is None:
                return
            info = orjson.loads(found)
            info["permission"] = [*(info.get("permission") or []), *approved]
            tx.append(session_id, ev.SESSION_UPDATED, {"sessionID": session_id, "info": info})

        await self._db.write(write)


_RETRY_PAUSE_S = 0.5


def _running() -> dict[str, Any]:
    """Busy status with Roost's extra ``reason`` (clients that don't know it ignore it)."""
    return {"type": "busy", "reason": "running"}


def _conversation_until(rows: list[queries.MessageRow], user_message_id: str) -> list[Any]:
    """The conversation a run answers: earlier turns (each user message followed by its
    assistant replies) up to and including the run's own user message and whatever replies it
    already has (a resumed run). User messages queued after it are left out."""
    decoded = [
        {"info": orjson.loads(r.info), "parts": [orjson.loads(p) for p in r.parts]} for r in rows
    ]
    replies: dict[str, list[Any]] = {}
    for m in decoded:
        if m["info"]["role"] == "assistant":
            replies.setdefault(m["info"].get("parentID", ""), []).append(m)
    out: list[Any] = []
    for m in decoded:
        if m["info"]["role"] != "user":
            continue
        out.append(m)
        # A resumed run sees its own earlier, interrupted replies too.
        out.extend(replies.get(m["info"]["id"], []))
        if m["info"]["id"] == user_message_id:
            break
    return out
