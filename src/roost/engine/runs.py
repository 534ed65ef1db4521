"""RunManager: executes admitted runs one session at a time, in admission order.

Each session with open runs has one worker task; the worker takes the oldest ``queued`` run
from the store, executes its turn as a child task (so abort can cancel the turn alone), then
takes the next. Every task here is owned and awaited by the manager: ``stop()`` cancels and
drains them. A turn always ends in a durable outcome: completed, failed (provider or internal
error: the assistant message carries ``error`` and ``session.error`` is emitted), aborted
(``MessageAbortedError``) or interrupted (server shutdown); then the session goes idle.

Storage errors. When the store refuses one of the turn's writes (``StorageUnavailable``: disk
full, read-only, I/O error), the turn is stopped at once, like an abort: the provider stream
and the tool calls are cancelled. Its outcome, failed with "interrupted: storage error: …", is
then committed as soon as the store accepts writes again, retried with backoff (at most
``OUTCOME_RETRY_MAX_S`` apart) for as long as it refuses. Until then nothing is released: the
lease stays held (``heartbeat`` keeps it, and the session busy, past its stored expiry) and the
turn's events stay pending in its writer, to be stored with the outcome. Any outcome whose
commit is refused is retried the same way, except on shutdown, which tries once and leaves the
run to recovery at the next start. ``abort`` answers ``StorageUnavailable`` instead of waiting
while the outcome cannot be stored.

A run may compact the conversation on its way (``engine/compaction.py``), and a compaction run
(``POST /session/{id}/summarize``) is one that opens with its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from roost.agent import history
from roost.agent.catalog import AgentConfig, Catalog
from roost.agent.loop import RetryPolicy, TurnOptions, run_turn
from roost.agent.providers.base import ModelRequest, Provider, ProviderEvent
from roost.agent.providers.registry import ProviderRegistry
from roost.agent.shell import run_user_call
from roost.agent.tools.base import SubtaskResult, Tool
from roost.engine import chaos, daemons, permissions
from roost.engine.compaction import Compactions, turn_rows
from roost.engine.file_changes import SnapshotTurnWriter
from roost.engine.heartbeat import Heartbeat
from roost.engine.outcomes import Outcome, failed_outcome, see_through, stopped_outcome
from roost.engine.owner import start_ticks, this_owner
from roost.engine.recovery import (
    recover_orphaned_runs,
)
from roost.engine.requests import RequestBroker
from roost.engine.snapshots import SnapshotStore
from roost.engine.tool_context import EngineToolContext, RunScope, WaitPolicy
from roost.engine.turn import TurnWriter
from roost.errors import StorageUnavailable
from roost.ids import new_message_id
from roost.model import event as ev
from roost.model import message as msg
from roost.model.event import StoredEvent
from roost.store import leases, processes, queries, runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms, store_now_ms

T = TypeVar("T")
ALLOW_ALL: Final = [permissions.Rule(permission="*", pattern="*", action="allow")]
"""The rules of a call the user made (``PromptInput.call``)."""
log = logging.getLogger(__name__)

OUTCOME_RETRY_FIRST_S = 0.1
"""First pause before a refused outcome commit is tried again; doubled each time."""
OUTCOME_RETRY_MAX_S = 2.0
"""Longest pause between two tries of a refused outcome commit (and of a refused start)."""


def _new_future() -> asyncio.Future[StorageUnavailable]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Active:
    run: runs.RunRow
    task: asyncio.Task[None]
    status: dict[str, Any]
    stop_reason: str | None = None
    """Why the turn is being stopped: ``abort``, ``shutdown``, ``lease_lost``, ``storage`` (the
    store refused its writes) or ``write_failed`` (a background write failed otherwise)."""
    generation: int | None = None
    """The run lease's generation, once the turn has taken it."""
    finishing: bool = False
    """The outcome is decided and being committed: abort and lease loss no longer cancel."""
    blocked: asyncio.Future[StorageUnavailable] = field(default_factory=_new_future)
    """Resolved when the store refuses a try of the outcome commit (``abort`` answers with it);
    renewed before each further try."""


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
        more_tools: Callable[[], dict[str, Tool]] | None = None,
        snapshots: SnapshotStore | None = None,
        lease_ttl_ms: int = 15_000,
        lease_renew_ms: int | None = None,
        max_recoveries: int = 3,
        run_subtask: Callable[..., Awaitable[SubtaskResult]] | None = None,
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
        self._more_tools = more_tools
        """Tools that come and go (MCP servers'), offered next to the built-in ones."""
        self._snapshots = snapshots
        self._file_tools = frozenset(n for n, t in self._tools.items() if t.changes_files)
        self._run_subtask = run_subtask
        """``SessionService.run_subtask`` (it creates child sessions); None: no sub-agents."""
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._kicked: set[str] = set()
        self._held: set[str] = set()
        self._active: dict[str, _Active] = {}
        self._lease_waits: set[str] = set()
        """Sessions whose queued runs found the lease held by another process's turn: they
        are tried again when a turn ends (``observe``) or at the next recovery scan."""
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._stopping = False
        self.owner = this_owner()
        self.lease_ttl_ms = lease_ttl_ms
        self.lease_renew_ms = lease_renew_ms
        """Between renewals of the held leases, ms; None: a third of the TTL."""
        self.max_recoveries = max_recoveries
        self._heartbeat: Heartbeat | None = None
        self._recovery_task: asyncio.Task[None] | None = None
        self._compactions = Compactions(db, catalog, directory=directory, retry=retry)

    # -- queries ---------------------------------------------------------------------

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """Status of every busy session, derived from live leases (and the leases this process
        holds past their stored expiry, see the module docstring); idle ones are absent.

        Each status is OpenCode's ``SessionStatus`` (``busy`` or ``retry``) with Roost's extra
        ``reason``: ``running``, ``permission``, ``question`` or ``retry``.
        """
        held = self._heartbeat.held() if self._heartbeat is not None else {}
        live = await self._db.read(lambda c: _busy_leases(c, self.owner, held))
        return {lease.session_id: lease.status for lease in live}

    def held_leases(self) -> dict[str, int]:
        """The run leases this process holds: generation by session id."""
        return self._heartbeat.held() if self._heartbeat is not None else {}

    async def is_busy(self, session_id: str) -> bool:
        """Whether the session holds a live lease (a turn is executing somewhere), or this
        process holds its lease (see the module docstring)."""
        held = self._heartbeat.held() if self._heartbeat is not None else {}
        lease, at = await self._db.read(lambda c: (leases.get(c, session_id), store_now_ms(c)))
        return lease is not None and _is_busy(lease, self.owner, held, at)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> list[str]:
        """Recover orphaned runs, start the heartbeat and the periodic recovery.

        Returns:
            Sessions that have queued runs (the caller kicks them once it is ready).
        """
        await self.recover(startup=True)
        self._heartbeat = Heartbeat(
            self._db,
            self.owner,
            self.lease_ttl_ms,
            self._on_lease_lost,
            asyncio.get_running_loop(),
            renew_ms=self.lease_renew_ms,
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
            holds=self._heartbeat.holds if self._heartbeat is not None else None,
        )
        for item in done:
            self.kick(item.session_id)
        return len(done)

    async def _recover_periodically(self) -> None:
        """Recover runs whose lease expired, woken at the next expiry of a lease this process
        does not hold (so a dead replica's run is taken over within the TTL plus one short
        pause, not a fixed poll later), and at least every TTL/2."""
        pause_s = self.lease_ttl_ms / 2000
        while True:
            await asyncio.sleep(pause_s)
            pause_s = self.lease_ttl_ms / 2000
            try:
                await self.recover()
                for session_id in list(self._lease_waits):
                    self._lease_waits.discard(session_id)
                    self.kick(session_id)
                unattended = functools.partial(_unattended, exclude=set(self._workers))
                for session_id in await self._db.read(unattended):
                    self.kick(session_id)
                pause_s = await self._db.read(self._until_next_expiry_s)
            except StorageUnavailable as exc:
                log.warning("periodic recovery could not write (%s); retrying", exc.message)
            except Exception:
                log.exception("periodic recovery failed; retrying")

    def _until_next_expiry_s(self, conn: Any) -> float:
        """Seconds until the earliest expiry of a live lease held by another owner (plus
        ``_EXPIRY_MARGIN_S``), capped at TTL/2."""
        at = store_now_ms(conn)
        cap = self.lease_ttl_ms / 2000
        foreign = [le.expires_at_ms for le in leases.live(conn, at) if le.owner != self.owner]
        if not foreign:
            return cap
        return max(_EXPIRY_MARGIN_S, min(cap, (min(foreign) - at) / 1000 + _EXPIRY_MARGIN_S))

    def _on_lease_lost(self, session_id: str, generation: int) -> None:
        self._stop_turn(session_id, generation, "lease_lost")

    def _on_write_failed(self, session_id: str, generation: int, exc: Exception) -> None:
        """A write of the turn was refused (``TurnWriter.failure``): stop the turn."""
        if isinstance(exc, StorageUnavailable):
            log.warning("stopping the turn of %s: %s", session_id, exc.message)
            reason = "storage"
        else:
            reason = "lease_lost" if isinstance(exc, leases.LeaseLost) else "write_failed"
        self._stop_turn(session_id, generation, reason)

    def _stop_turn(self, session_id: str, generation: int, reason: str) -> None:
        """Cancel the turn holding this lease generation, unless it is already stopping.

        Called from the turn's own task the cancellation is left out: the exception being
        raised there ends the turn (and a cancellation would cut its outcome short).
        """
        active = self._active.get(session_id)
        if active is None or active.generation != generation:
            return
        if active.stop_reason is not None or active.finishing:
            return
        active.stop_reason = reason
        if active.task is not asyncio.current_task():
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
        """Return once the run has ended (immediately if it already has), or this process
        stops.

        The store decides: a local worker's wake-up is only a hint, and so is the lapse of
        ``_WAIT_RECHECK_S`` (another process on the store may run it, or take it over after a
        crash); each is followed by a read of the run's status.
        """
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(run_id, []).append(fut)
            try:
                row = await self._db.read(lambda c: runs.get_run(c, run_id))
                if row is None or row.status not in runs.OPEN_STATUSES:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(fut), _WAIT_RECHECK_S)
                if self._stopping:
                    return
            finally:
                waiting = self._waiters.get(run_id)
                if waiting is not None and fut in waiting:
                    waiting.remove(fut)
                    if not waiting:
                        del self._waiters[run_id]

    async def abort(self, session_id: str, *, reason: str = "abort") -> bool:
        """Cancel the session's executing turn and wait until its outcome is stored.

        A turn that is already stopping (its outcome decided) is not cancelled again; this
        waits for its outcome all the same.

        Returns:
            True when a turn was executing.

        Raises:
            StorageUnavailable: The store refuses the turn's outcome for now. The turn is
                stopped and records its outcome once the store accepts writes.
        """
        active = self._active.get(session_id)
        if active is None:
            return await self._abort_elsewhere(session_id, reason)
        if active.stop_reason is None and not active.finishing:
            active.stop_reason = reason
            active.task.cancel()
        chaos.cut("during-abort")
        # Any: the turn (None) or the refusal (StorageUnavailable), whichever comes first.
        either: set[asyncio.Future[Any]] = {active.task, active.blocked}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not active.task.done():
            raise active.blocked.result()
        return True

    async def _abort_elsewhere(self, session_id: str, reason: str) -> bool:
        """Ask the process whose turn holds the session's live lease to stop it, and wait
        (at most ``_REMOTE_ABORT_WAIT_S``) until that lease is released or taken over.

        The request is a committed ``roost.run.abort`` event: the event feed brings it to
        every process, and the one running that generation cancels its turn (``observe``).

        Returns:
            True when another process's turn was asked to stop.
        """

        def request(tx: Tx) -> int | None:
            lease = leases.get(tx.conn, session_id)
            if lease is None or lease.owner == self.owner:
                return None
            if not lease.is_live(store_now_ms(tx.conn)):
                return None
            props = {
                "sessionID": session_id,
                "runID": lease.run_id,
                "generation": lease.generation,
                "reason": reason,
            }
            tx.append(session_id, ev.RUN_ABORT, props)
            return lease.generation

        generation = await self._db.write(request)
        if generation is None:
            return False

        def still_held(c: Any) -> bool:
            lease = leases.get(c, session_id)
            return (
                lease is not None
                and lease.generation == generation
                and lease.expires_at_ms != leases.RELEASED
                and lease.is_live(store_now_ms(c))
            )

        deadline = asyncio.get_running_loop().time() + _REMOTE_ABORT_WAIT_S
        while await self._db.read(still_held):
            if asyncio.get_running_loop().time() >= deadline:
                log.warning("the turn of %s on another process has not stopped yet", session_id)
                break
            await asyncio.sleep(_REMOTE_ABORT_POLL_S)
        return True

    def observe(self, events: list[StoredEvent]) -> None:
        """Signals committed by any process on the store (``SessionService._on_commit``):
        an abort request for a turn running here stops it; a turn that ended anywhere lets
        a session whose lease another process held try its queued runs here again."""
        for e in events:
            if e.type == ev.RUN_ABORT:
                props = e.properties
                self._stop_turn(e.session_id, props["generation"], props.get("reason", "abort"))
            elif e.type == ev.SESSION_IDLE and e.session_id in self._lease_waits:
                self._lease_waits.discard(e.session_id)
                self.kick(e.session_id)

    async def hold(self, session_id: str) -> None:
        """Stop the session's turn and keep new ones from starting until ``release``.

        Raises:
            StorageUnavailable: As for ``abort``; the session is not held then.
        """
        self._held.add(session_id)
        try:
            await self.abort(session_id)
        except StorageUnavailable:
            self._held.discard(session_id)
            raise
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
        pause = _RETRY_PAUSE_S
        try:
            while not self._stopping and session_id not in self._held:
                if stale or session_id in self._kicked:
                    self._kicked.discard(session_id)
                    try:
                        open_runs = await self._db.read(lambda c: runs.open_runs(c, session_id))
                    except StorageUnavailable as exc:
                        log.warning("cannot read the runs of %s (%s)", session_id, exc.message)
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, OUTCOME_RETRY_MAX_S)
                        continue
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
                error = task.exception()
                if error is None:
                    pause = _RETRY_PAUSE_S
                    continue
                stale = True
                # The turn could not even store its outcome (a failed write). If it never
                # started, its run is still queued and is tried again after a pause (longer
                # each time while the store refuses writes); if it did, its lease expires and
                # recovery finishes it.
                if isinstance(error, leases.LeaseHeld):
                    # Another process's turn runs in this session: normal with replicas. Its
                    # end (a committed session.idle) or the next recovery scan tries again.
                    log.debug("run %s waits for %s's lease", run.id, session_id)
                    self._lease_waits.add(session_id)
                    return
                if isinstance(error, StorageUnavailable):
                    log.warning("cannot start run %s (%s); retrying", run.id, error.message)
                else:
                    log.error("turn %s ended without an outcome: %r", run.id, error)
                await asyncio.sleep(pause)
                pause = min(pause * 2, OUTCOME_RETRY_MAX_S)
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
        on_write_failed = functools.partial(self._on_write_failed, sid, generation)
        writer = (
            TurnWriter(self._db, run, first, generation, on_write_failed)
            if self._snapshots is None
            else SnapshotTurnWriter(
                self._db,
                run,
                first,
                generation,
                on_write_failed,
                store=self._snapshots,
                file_tools=self._file_tools,
            )
        )
        try:
            await self._turn_with_outcome(run, writer, agent_name)
        finally:
            await writer.discard()
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
            await self._record_outcome(writer, stopped_outcome(reason, writer))
            raise
        except Exception as exc:
            await self._record_outcome(writer, failed_outcome(run, writer, exc))
        else:
            await self._record_outcome(writer, Outcome(None, runs.COMPLETED))

    async def _record_outcome(self, writer: TurnWriter, outcome: Outcome) -> None:
        """Commit the turn's outcome (``TurnWriter.finish``), retrying while the store refuses.

        Each try runs to its end even if the turn is cancelled meanwhile. Between tries the
        pause doubles up to ``OUTCOME_RETRY_MAX_S``; a cancellation there (shutdown) ends the
        tries and the run is left to recovery, as is one whose lease was taken over.
        """
        active = self._active.get(writer.session_id)
        if active is not None:
            active.finishing = True
        pause = OUTCOME_RETRY_FIRST_S
        refused = False
        while True:
            if active is not None and active.blocked.done():
                active.blocked = _new_future()  # an abort now waits for this try
            try:
                await see_through(
                    writer.finish(
                        error=outcome.error,
                        run_status=outcome.run_status,
                        tool_error=outcome.tool_error,
                    )
                )
                return
            except StorageUnavailable as exc:
                if active is not None:
                    active.blocked.set_result(exc)
                first, refused = not refused, True
                if not outcome.retry:
                    log.warning(
                        "the outcome of run %s is not stored (%s); recovery finishes it at the "
                        "next start",
                        writer.run_id,
                        exc.message,
                    )
                    return
                if first:
                    log.warning(
                        "the outcome of run %s cannot be stored yet (%s); retrying until the "
                        "store accepts writes",
                        writer.run_id,
                        exc.message,
                    )
            except leases.LeaseLost:
                log.warning(
                    "run %s: its lease was taken over; its new holder ends it", writer.run_id
                )
                return
            try:
                await asyncio.sleep(pause)
            except asyncio.CancelledError:
                log.warning(
                    "the outcome of run %s is not stored (the store still refuses writes); "
                    "recovery finishes it at the next start",
                    writer.run_id,
                )
                raise
            pause = min(pause * 2, OUTCOME_RETRY_MAX_S)

    async def _run_turn(self, run: runs.RunRow, writer: TurnWriter, agent_name: str) -> None:
        request = run.request
        agent = self._catalog.agent(agent_name)
        resolved = self._catalog.resolve_model(
            request.get("providerID"), request.get("modelID"), agent
        )
        provider = _AdmissionsFirst(self._providers.get(resolved.provider), self._db)
        sid = run.session_id
        writer.price = functools.partial(
            self._catalog.step_cost, resolved.provider.id, resolved.model_id
        )

        def read(c: Any) -> tuple[list[queries.MessageRow], str | None]:
            return turn_rows(c, sid, run.message_id), queries.get_session(c, sid)

        rows, session_json = await self._db.read(read)
        session_info = orjson.loads(session_json) if session_json else {}
        # A call the user made (a shell command, a command's task) asks no permission: the
        # user asked for it (as in OpenCode).
        rules = self._rules(agent, session_info) if "call" not in request else [*ALLOW_ALL]

        def offered(available: dict[str, Tool]) -> dict[str, Tool]:
            return {
                name: tool
                for name, tool in available.items()
                if permissions.tool_enabled(rules, name)
                and (request.get("tools") or {}).get(name, True)
            }

        tools = offered(self._tools)
        more = self._more_tools
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
        if request.get("call") is not None:
            call = request["call"]
            await run_user_call(self._tools[call["tool"]], call["input"], writer)
            return
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
        )
        if writer.assistant.get("summary"):
            if not await compactor.open(rows):
                return  # ``summarize`` without ``auto``: the summary was the whole run
            rows = await self._db.read(lambda c: turn_rows(c, sid, run.message_id))
        model_request = ModelRequest(
            model_id=resolved.model_id,
            messages=await compactor.chat_messages(rows),
            temperature=agent.temperature,
            top_p=agent.top_p,
        )
        options = TurnOptions(
            tools=tools,
            max_steps=agent.steps or 50,
            retry=self._retry,
            continue_on_deny=bool(
                (self._catalog.config.get("experimental") or {}).get("continue_loop_on_deny")
            ),
            more_tools=(lambda: offered(more())) if more is not None else None,
            compactor=compactor,
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
        if self._run_subtask is None:
            raise RuntimeError("sub-agents are not available")
        result: SubtaskResult = await self._run_subtask(**kwargs)
        return result

    def _rules(self, agent: AgentConfig, session_info: dict[str, Any]) -> list[permissions.Rule]:
        """The run's rules, in evaluation order (``engine/permissions.py``), merged as
        OpenCode 1.18.34 merges them: the defaults, the built-in agent's own rules, the
        config's top-level ``permission`` (so a config ``"*": "allow"`` lifts plan's edit
        deny), the config's rules for the agent, then the session's.

        Raises:
            InvalidPermissionRule: The session's stored rules are malformed (written before
                they were checked on the way in); the turn fails instead of misreading them.
        """
        return [
            *permissions.DEFAULT_RULES,
            *agent.defaults,
            *self._catalog.permission,
            *agent.permission,
            *permissions.ruleset(session_info.get("permission"), where="session permission"),
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
_REMOTE_ABORT_WAIT_S = 5.0
"""Longest wait for another process's turn to stop after an abort request."""
_REMOTE_ABORT_POLL_S = 0.05
_WAIT_RECHECK_S = 1.0
"""How often ``wait_run`` reads a run's status while no local worker wakes it."""
_EXPIRY_MARGIN_S = 0.05
"""How long after a lease's expiry the recovery scan looks (clock reads round down)."""


def _unattended(conn: Any, *, exclude: set[str]) -> list[str]:
    """Sessions with a queued run that nothing runs: no live lease anywhere, and not in
    ``exclude`` (sessions this process's workers serve). An admission whose commit landed
    although its caller saw an error (a connection lost during COMMIT) was never kicked; the
    recovery scan picks it up."""
    at = store_now_ms(conn)
    leased = {lease.session_id for lease in leases.live(conn, at)}
    queued = {r.session_id for r in runs.open_runs(conn) if r.status == runs.QUEUED}
    return sorted(queued - leased - exclude)


def _is_busy(lease: leases.Lease, owner: str, held: dict[str, int], at_ms: int) -> bool:
    """A lease makes its session busy while it is live, or while this process holds it (the
    store may have refused its renewals: see ``heartbeat``)."""
    if lease.is_live(at_ms):
        return True
    return (
        lease.owner == owner
        and held.get(lease.session_id) == lease.generation
        and lease.expires_at_ms != leases.RELEASED
    )


def _busy_leases(conn: Any, owner: str, held: dict[str, int]) -> list[leases.Lease]:
    """The leases that make their sessions busy (``_is_busy``)."""
    at = store_now_ms(conn)
    found = {lease.session_id: lease for lease in leases.live(conn, at)}
    for session_id in held.keys() - found.keys():
        lease = leases.get(conn, session_id)
        if lease is not None and _is_busy(lease, owner, held, at):
            found[session_id] = lease
    return list(found.values())


def _running() -> dict[str, Any]:
    """Busy status with Roost's extra ``reason`` (clients that don't know it ignore it)."""
    return {"type": "busy", "reason": "running"}


@dataclass(frozen=True)
class _AdmissionsFirst:
    """A ``Provider`` whose requests wait for the admissions in flight to commit first.

    Sending a model request is the costliest step of a turn on the event loop (building and
    sending it through the SDK is about a third of the loop's time under 16 concurrent turns,
    py-spy). Waiting, at most ``Database.yield_to_urgent``'s bound, while a prompt is being
    admitted keeps that work out of the admission's way (issue #13, "admission first").
    """

    provider: Provider
    db: Database

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        """``provider.stream(request)``, once no admission is in flight."""
        await self.db.yield_to_urgent()
        events = self.provider.stream(request)
        try:
            async for event in events:
                yield event
        finally:  # closed with this one (an abort), not whenever it is collected
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()
