"""SessionService: the façade the HTTP layer calls for every session operation.

``start()`` finishes runs a previous process left open and resumes queued prompts; ``stop()``
interrupts executing turns (durably) and closes the store. Reads return stored wire JSON
(``str``) so the API can serve them without re-encoding.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from roost.agent.catalog import Catalog
from roost.agent.loop import RetryPolicy
from roost.agent.providers.registry import ProviderRegistry
from roost.agent.shell import USER_SHELL_NOTE
from roost.agent.tools.base import SubtaskResult, Tool
from roost.agent.tools.skill import discover_skills
from roost.engine import chaos
from roost.engine.admission import Admitted, PromptInput, admit_prompt
from roost.engine.broadcaster import Broadcaster, Subscription
from roost.engine.commands import Command, expand
from roost.engine.file_changes import FileChanges
from roost.engine.files import ProjectFiles
from roost.engine.fork import copy_messages
from roost.engine.mcp import McpServers
from roost.engine.owner import this_owner
from roost.engine.requests import RequestBroker
from roost.engine.runs import RunManager
from roost.engine.snapshots import SnapshotStore
from roost.engine.subagents import last_reply, run_subtask
from roost.engine.summarize import admit_compaction, compaction_outcome
from roost.engine.titles import TitleWriter
from roost.engine.tool_context import WaitPolicy
from roost.errors import (
    CommandNotFound,
    InvalidInput,
    MessageNotFound,
    PartInUse,
    PartNotFound,
    SessionNotFound,
)
from roost.ids import new_session_id
from roost.model import event as ev
from roost.model.event import StoredEvent
from roost.model.part import is_open_tool
from roost.model.permission import Rule
from roost.model.session import IDLE, new_session
from roost.store import queries, runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms, read_events_after
from roost.store.queries import MessageRow

log = logging.getLogger(__name__)

_SIGNALS = frozenset(
    {
        ev.RUN_ABORT,
        ev.PERMISSION_REPLIED,
        ev.QUESTION_REPLIED,
        ev.QUESTION_REJECTED,
        ev.SESSION_IDLE,
    }
)
"""Committed event types the engine acts on, whichever process committed them. Every internal
type (``ev.is_internal``) is one of them: ``_on_commit`` hides internal events from clients
only when a batch holds a signal."""


@dataclass(frozen=True)
class ServiceOptions:
    """What the composition root decides for the engine.

    Attributes:
        directory: The project directory sessions work in.
        project_id: OpenCode's ``projectID`` for that directory.
        instructions: Extra system prompt sections (AGENTS.md and the like).
    """

    directory: str
    project_id: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    instructions: tuple[str, ...] = ()
    tools: dict[str, Tool] = field(default_factory=dict)
    output_dir: Path | None = None
    """Where full outputs of truncated tool results are kept."""
    waits: WaitPolicy = field(default_factory=WaitPolicy)
    snapshots: SnapshotStore | None = None
    """The project's file snapshots; None keeps none (revert then only hides messages)."""
    commands: dict[str, Command] = field(default_factory=dict)
    """Slash commands by name (``engine/commands.py``)."""
    config_dir: Path | None = None
    """The global OpenCode config folder (``~/.config/opencode``): skills, commands."""
    lease_ttl_ms: int = 15_000
    """Run lease lifetime without renewal, ms."""
    lease_renew_ms: int | None = None
    """Between renewals of held leases, ms; None: a third of the TTL."""
    replica: str | None = None
    """This process's name among the store's replicas (``--replica``), for health."""


class SessionService:
    """Session semantics over the store, the run manager and the broadcaster."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        providers: ProviderRegistry,
        options: ServiceOptions,
        *,
        mcp: McpServers | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.options = options
        self._providers = providers
        self._preload: asyncio.Task[None] | None = None
        self.broadcaster = Broadcaster()
        db.on_commit = self._on_commit
        self.requests = RequestBroker(db)
        self.mcp = mcp or McpServers(db, {}, directory=Path(options.directory), owner=this_owner())
        """The MCP servers; their tools are offered to every turn."""
        self.runs = RunManager(
            db,
            catalog,
            providers,
            self.requests,
            directory=options.directory,
            retry=options.retry,
            tools=options.tools,
            output_dir=options.output_dir,
            waits=options.waits,
            instructions=list(options.instructions),
            more_tools=self.mcp.tools,
            snapshots=options.snapshots,
            lease_ttl_ms=options.lease_ttl_ms,
            lease_renew_ms=options.lease_renew_ms,
            run_subtask=self.run_subtask,
        )
        self._files = FileChanges(options.snapshots) if options.snapshots else None
        self.titles = TitleWriter(db, catalog, providers)
        self.files = ProjectFiles(Path(options.directory))
        """The project's files and version control, for the file and VCS routes."""

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Recover orphaned runs, close requests nobody can answer, resume queued prompts."""
        queued = await self.runs.start()
        # A request whose waiting tool call is gone (its run is not live) can never be
        # answered: close it, so the lists never show it.
        live = await self.runs.statuses()
        stale = await self.db.read(lambda c: queries.pending_requests(c))
        for sid in dict.fromkeys(r.session_id for r in stale if r.session_id not in live):
            await self.requests.cancel(sid)
        for sid in queued:
            self.runs.kick(sid)
        self.mcp.start()  # connects in the background
        # Provider clients are made on a thread now rather than on the loop at the first prompt.
        self._preload = asyncio.create_task(
            asyncio.to_thread(self._providers.preload, list(self.catalog.providers.values())),
            name="preload-providers",
        )

    async def preloaded(self) -> None:
        """Return once the provider clients that ``start`` began making exist (at once when
        ``start`` has not run)."""
        if self._preload is not None:
            await asyncio.shield(self._preload)

    async def interrupt(self) -> None:
        """The first step of a graceful stop: interrupt executing turns durably ("interrupted:
        server stopped"), then end every event stream after the events committed so far.

        The store stays open, so a request still waiting on a turn (a synchronous prompt) is
        answered from it. MCP servers are closed (local ones stopped) after the turns that
        used them. Idempotent; ``stop`` runs it too.
        """
        self.mcp.hold()
        await self.runs.stop()
        await self.titles.stop()
        await self.mcp.stop()
        self.broadcaster.close_all()

    async def stop(self) -> None:
        """Interrupt turns durably, end event streams, close providers and the store."""
        await self.interrupt()
        if self._preload is not None:
            await self._preload  # the clients it makes are closed with the others
        await self._providers.close()
        await self.db.close()

    # -- sessions --------------------------------------------------------------------

    async def create_session(
        self,
        *,
        parent_id: str | None = None,
        title: str | None = None,
        agent: str | None = None,
        model: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        permission: list[Rule] | None = None,
    ) -> dict[str, Any]:
        """Create a session and return its ``Session`` object.

        Raises:
            InvalidInput: ``parent_id`` names no session.
        """
        sid = new_session_id()
        info = new_session(
            sid,
            directory=self.options.directory,
            project_id=self.options.project_id,
            created_ms=now_ms(),
            title=title,
            parent_id=parent_id,
            agent=agent,
            model=model,
            metadata=metadata,
            permission=permission,
        )

        def create(tx: Tx) -> None:
            if parent_id is not None and queries.get_session(tx.conn, parent_id) is None:
                raise InvalidInput(f"parentID {parent_id} names no session", field="parentID")
            tx.append(sid, ev.SESSION_CREATED, {"sessionID": sid, "info": info})
            tx.append(sid, ev.SESSION_UPDATED, {"sessionID": sid, "info": info})

        await self.db.write(create)
        return info

    async def get_session(self, session_id: str) -> str:
        """The session's ``Session`` JSON.

        Raises:
            SessionNotFound: No such session.
        """
        found = await self.db.read(lambda c: queries.get_session(c, session_id))
        if found is None:
            raise SessionNotFound(session_id)
        return found

    async def list_sessions(self, **filters: Any) -> list[str]:
        """Sessions, most recently updated first; see ``queries.list_sessions``."""
        return await self.db.read(lambda c: queries.list_sessions(c, **filters))

    async def children(self, session_id: str) -> list[str]:
        """A session's direct children.

        Raises:
            SessionNotFound: No such session.
        """
        await self.get_session(session_id)
        return await self.db.read(lambda c: queries.list_children(c, session_id))

    async def update_session(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``title``, ``metadata``, ``permission`` or ``time.archived``; emit
        ``session.updated``.

        Raises:
            SessionNotFound: No such session.
        """

        def update(tx: Tx) -> dict[str, Any]:
            found = queries.get_session(tx.conn, session_id)
            if found is None:
                raise SessionNotFound(session_id)
            info: dict[str, Any] = orjson.loads(found)
            for key in ("title", "metadata", "permission"):
                if changes.get(key) is not None:
                    info[key] = changes[key]
            archived = (changes.get("time") or {}).get("archived")
            if archived is not None:
                info["time"]["archived"] = archived
            info["time"]["updated"] = now_ms()
            tx.append(session_id, ev.SESSION_UPDATED, {"sessionID": session_id, "info": info})
            return info

        return await self.db.write(update)

    async def delete_session(self, session_id: str) -> None:
        """Stop the session's (and its descendants') turns, then delete them all.

        Raises:
            SessionNotFound: No such session.
        """
        await self.get_session(session_id)
        tree = await self.db.read(lambda c: _descendants(c, session_id))
        try:
            for sid in tree:
                await self.runs.hold(sid)

            def delete(tx: Tx) -> None:
                for sid in reversed(tree):  # children before their parent
                    found = queries.get_session(tx.conn, sid)
                    if found is None:
                        continue
                    tx.append(
                        sid, ev.SESSION_DELETED, {"sessionID": sid, "info": orjson.loads(found)}
                    )
                    runs.delete_session_runs(tx.conn, sid)

            await self.db.write(delete)
        finally:
            for sid in tree:
                self.runs.release(sid)

    def _on_commit(self, events: list[StoredEvent]) -> None:
        """Every committed event, from this process or another on the store, in id order:
        clients get the visible ones; the run manager and the request broker act on the
        signals among them (abort requests, replies, turns ending elsewhere)."""
        signals = [e for e in events if e.type in _SIGNALS]
        if any(ev.is_internal(e.type) for e in signals):
            self.broadcaster.publish([e for e in events if not ev.is_internal(e.type)])
        else:
            self.broadcaster.publish(events)
        if signals:
            self.requests.observe(signals)
            self.runs.observe(signals)

    def replica_info(self) -> dict[str, Any]:
        """This process among the store's replicas: ``{"store": {"kind", "location"},
        "replica", "owner", "leases": [session ids whose run lease it holds]}``."""
        return {
            "store": {"kind": self.db.kind, "location": self.db.where},
            "replica": self.options.replica or f"{socket.gethostname()}:{os.getpid()}",
            "owner": self.runs.owner,
            "leases": sorted(self.runs.held_leases()),
        }

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """``GET /session/status``: busy and retrying sessions (from live leases)."""
        return await self.runs.statuses()

    # -- messages --------------------------------------------------------------------

    async def list_messages(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        before: str | None = None,
        since: str | None = None,
    ) -> list[MessageRow]:
        """Messages with parts, oldest first (``queries.list_messages`` for the arguments).

        Raises:
            SessionNotFound: No such session.
        """

        def read(c: Any) -> list[MessageRow] | None:
            if queries.get_session(c, session_id) is None:
                return None
            return queries.list_messages(c, session_id, limit=limit, before=before, since=since)

        found = await self.db.read(read)
        if found is None:
            raise SessionNotFound(session_id)
        return found

    async def get_message(self, session_id: str, message_id: str) -> MessageRow:
        """One message with its parts.

        Raises:
            SessionNotFound, MessageNotFound: Either does not exist.
        """
        await self.get_session(session_id)
        found = await self.db.read(lambda c: queries.get_message(c, session_id, message_id))
        if found is None:
            raise MessageNotFound(session_id, message_id)
        return found

    async def delete_message(self, session_id: str, message_id: str) -> None:
        """Remove a message and its parts (``message.removed``).

        A turn executing in the session is aborted first, in the same request: deleting never
        answers "busy".

        Raises:
            SessionNotFound, MessageNotFound: Either does not exist.
        """
        await self.get_message(session_id, message_id)
        await self.runs.abort(session_id)
        await self.requests.cancel(session_id, message_id=message_id)

        def delete(tx: Tx) -> None:
            if queries.get_message(tx.conn, session_id, message_id) is None:
                raise MessageNotFound(session_id, message_id)
            for pid in queries.part_ids(tx.conn, message_id):
                tx.append(
                    session_id,
                    ev.PART_REMOVED,
                    {"sessionID": session_id, "messageID": message_id, "partID": pid},
                )
            tx.append(
                session_id, ev.MESSAGE_REMOVED, {"sessionID": session_id, "messageID": message_id}
            )

        await self.db.write(delete)

    # -- parts, revert, fork --------------------------------------------------------

    async def _live_run_part(
        self, session_id: str, message_id: str, part_id: str
    ) -> dict[str, Any]:
        """The part; raises ``PartInUse`` when it is a non-terminal tool part of a live run."""
        row = await self.get_message(session_id, message_id)
        part = next((orjson.loads(p) for p in row.parts if orjson.loads(p)["id"] == part_id), None)
        if part is None:
            raise PartNotFound(message_id, part_id)
        if is_open_tool(part) and await self.runs.is_busy(session_id):
            raise PartInUse(session_id, part_id)
        result: dict[str, Any] = part
        return result

    async def delete_part(self, session_id: str, message_id: str, part_id: str) -> None:
        """Remove one part (``message.part.removed``).

        Raises:
            PartInUse: It is an open tool part of a running turn (abort first). OpenCode allows
                this while the tool's process keeps running.
        """
        await self._live_run_part(session_id, message_id, part_id)
        await self.db.write(
            lambda tx: tx.append(
                session_id,
                ev.PART_REMOVED,
                {"sessionID": session_id, "messageID": message_id, "partID": part_id},
            )
        )

    async def update_part(
        self, session_id: str, message_id: str, part_id: str, part: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace one part (``message.part.updated``); ids in the body must match the path.

        Raises:
            PartInUse: It is an open tool part of a running turn (abort first).
            InvalidInput: The body names another part, message or session.
        """
        await self._live_run_part(session_id, message_id, part_id)
        for key, expected in (
            ("id", part_id),
            ("messageID", message_id),
            ("sessionID", session_id),
        ):
            if part.get(key, expected) != expected:
                raise InvalidInput(f"{key} in the body must be {expected}", field=key)
        updated = {**part, "id": part_id, "messageID": message_id, "sessionID": session_id}
        await self.db.write(
            lambda tx: tx.append(
                session_id, ev.PART_UPDATED, {"sessionID": session_id, "part": updated}
            )
        )
        return updated

    async def revert(
        self, session_id: str, message_id: str, part_id: str | None = None
    ) -> dict[str, Any]:
        """Mark the session reverted to ``message_id`` (``Session.revert``) and restore the
        files its steps changed from there on (``file_changes``).

        A running turn is aborted first, in the same request. Messages from the revert point
        on stay stored until the next prompt removes them (``unrevert`` cancels the mark), as
        in OpenCode. The mark carries ``snapshot`` (the files before reverting, for unrevert)
        and ``diff``.

        Raises:
            SnapshotFailed: Files could not be restored.
        """
        await self.get_message(session_id, message_id)
        await self.runs.abort(session_id)
        await self.requests.cancel(session_id)
        mark: dict[str, Any] = {"messageID": message_id}
        if part_id is not None:
            mark["partID"] = part_id
        if self._files is None:
            return await self._set_revert(session_id, mark)
        previous = orjson.loads(await self.get_session(session_id)).get("revert")
        rows = await self.list_messages(session_id)
        return await self._files.revert(
            rows, mark, previous, lambda m: self._set_revert(session_id, m)
        )

    async def unrevert(self, session_id: str) -> dict[str, Any]:
        """Put the files back as they were before the revert, then clear the mark; aborts a
        running turn first.

        Raises:
            SnapshotFailed: Files could not be restored.
        """
        mark = orjson.loads(await self.get_session(session_id)).get("revert")
        await self.runs.abort(session_id)
        if self._files is not None and mark:
            await self._files.unrevert(await self.list_messages(session_id), mark)
        return await self._set_revert(session_id, None)

    async def diff(self, session_id: str, message_id: str | None = None) -> list[dict[str, Any]]:
        """``GET /session/{id}/diff``: the files a turn changed (``message_id``, a user
        message), or the whole session, from the step snapshots (``SnapshotFileDiff``s).

        Raises:
            SessionNotFound: No such session.
            SnapshotFailed: git failed.
        """
        rows = await self.list_messages(session_id)
        return [] if self._files is None else await self._files.diff(rows, message_id)

    async def _set_revert(self, session_id: str, mark: dict[str, Any] | None) -> dict[str, Any]:
        def write(tx: Tx) -> dict[str, Any]:
            found = queries.get_session(tx.conn, session_id)
            if found is None:
                raise SessionNotFound(session_id)
            info: dict[str, Any] = orjson.loads(found)
            if mark is None:
                info.pop("revert", None)
            else:
                info["revert"] = mark
            info["time"]["updated"] = now_ms()
            tx.append(session_id, ev.SESSION_UPDATED, {"sessionID": session_id, "info": info})
            return info

        return await self.db.write(write)

    async def fork(self, session_id: str, message_id: str | None = None) -> dict[str, Any]:
        """A new session with copies of the messages before ``message_id`` (all without it).

        Copies get new ids. A part that was not terminal (a running tool, an unfinished
        message) is never copied as still running: it is copied as ``error`` "interrupted:
        not finished when the session was forked".
        """
        source = orjson.loads(await self.get_session(session_id))
        rows = await self.list_messages(session_id)
        child = await self.create_session(title=f"{source.get('title', '')} (fork)")
        new_id = child["id"]
        note = "interrupted: not finished when the session was forked"

        write = copy_messages(rows, into=new_id, before=message_id, note=note)
        await self.db.write(write)
        return child

    # -- prompts ---------------------------------------------------------------------

    async def prompt_async(self, session_id: str, prompt: PromptInput) -> Admitted:
        """Admit a prompt durably and schedule its run; see ``admission``."""
        admitted = await admit_prompt(
            self.db, self.catalog, session_id, prompt, directory=self.options.directory
        )
        chaos.cut("after-admission")
        if admitted.run_id is not None:
            self.runs.kick(session_id)
            if admitted.session is not None and admitted.model is not None and not prompt.call:
                text = "\n".join(p.get("text", "") for p in prompt.parts if p.get("type") == "text")
                self.titles.schedule(session_id, admitted.session, text, admitted.model)
        return admitted

    async def prompt(self, session_id: str, prompt: PromptInput) -> MessageRow:
        """Admit a prompt and wait for its turn to end.

        Returns:
            The last assistant message answering it (with ``error`` when the turn failed), or
            the user message itself for ``noReply``.
        """
        admitted = await self.prompt_async(session_id, prompt)
        if admitted.run_id is None:
            return await self.get_message(session_id, admitted.message_id)
        await self.runs.wait_run(admitted.run_id)
        reply = await last_reply(self, session_id, admitted.message_id)
        return reply or await self.get_message(session_id, admitted.message_id)

    async def shell(
        self,
        session_id: str,
        command: str,
        *,
        agent: str | None,
        provider_id: str | None = None,
        model_id: str | None = None,
        message_id: str | None = None,
    ) -> MessageRow:
        """Run a user's shell command in the session and return its assistant message.

        As OpenCode 1.18.34's ``SessionPrompt.shell``: a user message (one synthetic text part)
        and an assistant message with one ``bash`` tool part holding the command's output; no
        model request. It runs as a run of its own (queued behind a running turn, under the
        session's lease, aborted and recovered like one), asks no permission, and is never
        run again by recovery.

        Raises:
            SessionNotFound: No such session.
            UnknownAgent, UnknownModel: As for a prompt.
        """
        note = {"type": "text", "text": USER_SHELL_NOTE, "synthetic": True}
        prompt = PromptInput(
            parts=[note],
            message_id=message_id,
            agent=agent,
            provider_id=provider_id,
            model_id=model_id,
            call={"tool": "bash", "input": {"command": command}},
        )
        return await self.prompt(session_id, prompt)

    def list_skills(self) -> list[dict[str, Any]]:
        """The skills the ``skill`` tool can load (``GET /skill``: name, description, location,
        content)."""
        found = discover_skills(Path(self.options.directory), self.options.config_dir or Path())
        return [
            {
                "name": s.name,
                "description": s.description,
                "location": str(s.path),
                "content": s.body,
            }
            for s in found.values()
        ]

    def list_commands(self) -> list[dict[str, Any]]:
        """Every slash command, as OpenAPI ``Command`` objects."""
        return [c.to_wire() for c in self.options.commands.values()]

    async def command(
        self,
        session_id: str,
        name: str,
        arguments: str,
        *,
        agent: str | None = None,
        model: str | None = None,
        message_id: str | None = None,
        parts: list[dict[str, Any]] | None = None,
    ) -> MessageRow:
        """Run a slash command as a prompt and return the last assistant message.

        The template is expanded (``commands.expand``). The command's own ``agent`` and
        ``model`` win over the request's. A ``subtask`` command, or one whose agent is a
        sub-agent, runs as a ``task`` call made for the user in a child session (with that
        sub-agent, else ``general``), as OpenCode does; the result is its task tool part.
        Emits ``command.executed``.

        Raises:
            CommandNotFound: No command of that name.
            SessionNotFound, UnknownAgent, UnknownModel, InvalidInput: As for a prompt.
        """
        found = self.options.commands.get(name)
        if found is None:
            raise CommandNotFound(name)
        await self.get_session(session_id)
        text, files = await expand(found.template, arguments, Path(self.options.directory))
        chosen = self.catalog.agent(found.agent or agent)
        pair = (found.model or model or "").split("/", 1)
        provider_id, model_id = (pair[0], pair[1]) if len(pair) == 2 else (None, None)
        prompt_parts = [{"type": "text", "text": text}, *files, *(parts or [])]
        if found.subtask or chosen.mode == "subagent":
            sub_agent = chosen.name if chosen.mode != "primary" else "general"
            task = {
                "description": found.description or name,
                "prompt": text,
                "subagent_type": sub_agent,
                "command": name,
            }
            primary = self.catalog.agent(agent if chosen.mode == "subagent" else chosen.name)
            prompt = PromptInput(
                parts=prompt_parts,
                message_id=message_id,
                agent=primary.name if primary.mode != "subagent" else None,
                provider_id=provider_id,
                model_id=model_id,
                call={"tool": "task", "input": task},
            )
        else:
            prompt = PromptInput(
                parts=prompt_parts,
                message_id=message_id,
                agent=chosen.name,
                provider_id=provider_id,
                model_id=model_id,
            )
        reply = await self.prompt(session_id, prompt)
        user_id = orjson.loads(reply.info).get("parentID") or reply.id

        def announce(tx: Tx) -> None:
            tx.append(
                session_id,
                ev.COMMAND_EXECUTED,
                {
                    "name": name,
                    "sessionID": session_id,
                    "arguments": arguments,
                    "messageID": user_id,
                },
            )

        await self.db.write(announce)
        return reply

    async def summarize(
        self, session_id: str, *, provider_id: str, model_id: str, auto: bool = False
    ) -> None:
        """Compact the session with the given model and return once the summary is stored.

        The compaction is a run of its own, after the runs already queued (see
        ``engine/compaction.py``); while one is open, another request joins it. With ``auto``
        the turn goes on after the summary (this returns once it ends).

        Raises:
            SessionNotFound: No such session.
            UnknownModel: The model cannot run.
            CompactionFailed: No summary was stored: the compaction failed, was aborted, or
                the server is stopping.
        """
        run_id = await admit_compaction(
            self.db, self.catalog, session_id, provider_id=provider_id, model_id=model_id, auto=auto
        )
        self.runs.kick(session_id)
        await self.runs.wait_run(run_id)
        await self.db.read(lambda c: compaction_outcome(c, session_id, run_id))

    async def abort(self, session_id: str) -> bool:
        """Stop the session's executing turn, if any; always succeeds.

        The turn's pending permission and question requests are closed, running child
        sessions are aborted with it, and prompts queued behind it stay queued and run next.
        When nothing was executing, ``session.status`` idle and ``session.idle`` are emitted
        all the same, as OpenCode 1.18.34 does: a client that still shows the session busy
        (a TUI that missed the end of a turn across a server restart) recovers from them.

        Raises:
            SessionNotFound: No such session.
        """
        await self.get_session(session_id)
        stopped = await self.runs.abort(session_id)
        await self.requests.cancel(session_id)
        if not stopped and not await self.runs.is_busy(session_id):

            def announce_idle(tx: Tx) -> None:
                tx.append(session_id, ev.SESSION_STATUS, {"sessionID": session_id, "status": IDLE})
                tx.append(session_id, ev.SESSION_IDLE, {"sessionID": session_id})

            await self.db.write(announce_idle)
        return True

    # -- sub-agents ------------------------------------------------------------------

    async def run_subtask(
        self,
        *,
        parent_id: str,
        agent: str,
        prompt: str,
        description: str,
        task_id: str | None,
        call_id: str,
    ) -> SubtaskResult:
        """Run a sub-agent's turn in a child session; see ``subagents.run_subtask``."""
        return await run_subtask(
            self,
            parent_id=parent_id,
            agent=agent,
            prompt=prompt,
            description=description,
            task_id=task_id,
        )

    # -- permissions, questions, todos -----------------------------------------------

    async def pending_permissions(self) -> list[str]:
        """``GET /permission``: pending ``PermissionRequest`` JSON, oldest first."""
        return await self.requests.pending("permission")

    async def pending_questions(self) -> list[str]:
        """``GET /question``: pending ``QuestionRequest`` JSON, oldest first."""
        return await self.requests.pending("question")

    async def reply_permission(self, request_id: str, reply: str) -> None:
        """Answer a permission request: ``once``, ``always`` or ``reject``.

        Raises:
            RequestNotFound: It is not pending (answered, cancelled, or never existed).
        """
        await self.requests.reply(request_id, "permission", reply)

    async def reply_question(self, request_id: str, answers: list[list[str]] | None) -> None:
        """Answer a question request (None rejects it).

        Raises:
            RequestNotFound: It is not pending.
        """
        await self.requests.reply(request_id, "question", answers)

    async def todos(self, session_id: str) -> str:
        """The session's todo list as JSON.

        Raises:
            SessionNotFound: No such session.
        """
        await self.get_session(session_id)
        return await self.db.read(lambda c: queries.get_todos(c, session_id))

    # -- events ----------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """A live subscription to committed events."""
        return self.broadcaster.subscribe()

    async def events_after(self, after_id: int, *, limit: int = 1000) -> list[StoredEvent]:
        """Logged events with global id ``> after_id``, oldest first (replay)."""
        return await self.db.read(
            lambda c: read_events_after(c, after_id, limit=limit, visible_only=True)
        )


def _descendants(conn: Any, root: str) -> list[str]:
    """``root`` and every session below it, parents before children."""
    order = [root]
    i = 0
    while i < len(order):
        order.extend(queries.child_ids(conn, order[i]))
        i += 1
    return order
