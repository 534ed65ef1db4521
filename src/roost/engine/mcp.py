"""McpServers: the MCP servers this Roost uses, each kept connected by a task of its own.

Invariants:

- **Background.** ``start`` only launches one supervisor task per enabled server; connecting
  never delays readiness or a prompt's admission. Every supervisor is owned here and awaited by
  ``stop`` (or by ``disconnect``/``add`` for one server).
- **A dead server is a tool error, never a stuck call.** A call to a server that is not
  connected fails at once with ``ToolError`` naming the server and its status. When a
  connection closes (a local server exited, a remote one broke the transport), in-flight calls
  fail "Connection closed" at once (the SDK fails them), the status becomes ``failed`` with the
  cause, the server's tools vanish from the next model request, and the supervisor reconnects
  with exponential backoff (``BACKOFF_INITIAL_S`` doubling up to ``BACKOFF_MAX_S``). A 401 from
  a remote server is ``needs_auth`` (unless its ``oauth`` is ``false``) and is not retried.
- **No orphaned servers.** A local server runs in its own process group, tagged with the owner
  id (``PROCESS_OWNER_ENV``), and the group is recorded in ``run_process`` (``run_id`` =
  ``mcp:<name>``) before the handshake. When its connection ends the group is killed and
  forgotten; after a crash, recovery's start-up sweep kills the groups of the dead owner and
  ``daemons.kill_tagged`` the strays.
- **Visible status.** ``status()`` is OpenCode's ``MCPStatus`` per configured server; each change
  is logged as ``mcp.status`` and, when the server's tools appear or vanish, OpenCode's
  ``mcp.tools.changed`` (under the ``mcp`` aggregate, so ``/event`` streams and replays them).
  Before its first attempt ends, a server shows ``failed`` with error ``connecting``:
  ``MCPStatus`` has no state for that.

Timeouts follow OpenCode: connecting and listing tools get the entry's ``timeout`` (default
``CONNECT_TIMEOUT_MS``); a call gets the entry's ``timeout``, else ``experimental.mcp_timeout``,
else ``DEFAULT_CALL_TIMEOUT_MS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.agent.mcp.errors import McpCallError, McpConnectError
from roost.agent.tools.base import PROCESS_OWNER_ENV, Tool, ToolError
from roost.agent.tools.mcp import DEFAULT_CALL_TIMEOUT_MS, McpOutcome, McpTool
from roost.engine.owner import start_ticks
from roost.engine.recovery import kill_group
from roost.errors import McpOAuthUnsupported, McpServerNotFound
from roost.model import event as ev
from roost.model import mcp as model
from roost.store import processes
from roost.store.database import Database
from roost.store.event_log import Tx

if TYPE_CHECKING:
    from roost.agent.mcp.connection import McpConnection

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 30_000
"""Connecting and listing tools, when the entry gives no ``timeout``."""
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
STOP_WAIT_S = 8.0
"""How long a supervisor may take to close its connection before it is cancelled."""
CONNECTING = "connecting"

Entry = model.McpLocalConfig | model.McpRemoteConfig


@dataclass
class _Server:
    name: str
    entry: Entry | None
    status: dict[str, Any]
    connection: McpConnection | None = None
    tools: dict[str, Tool] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set to skip the backoff wait (``connect``)."""
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by a call that found the transport broken."""
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever an attempt to connect has ended, either way."""
    group: processes.ProcessRow | None = None


class McpServers:
    """The configured MCP servers and their connections (see the module docstring).

    Args:
        db: The store (events, process records).
        entries: Parsed ``mcp`` config (``model.mcp.parse_servers``); None entries are
            switched-off names.
        directory: The project directory: local servers' default cwd.
        owner: This server's owner id (``engine/owner.py``).
        default_timeout_ms: ``experimental.mcp_timeout``.
    """

    def __init__(
        self,
        db: Database,
        entries: dict[str, Entry | None],
        *,
        directory: Path,
        owner: str,
        default_timeout_ms: int | None = None,
    ) -> None:
        self._db = db
        self._directory = directory
        self._owner = owner
        self._default_timeout_ms = default_timeout_ms
        self._servers = {name: _Server(name, e, _initial(e)) for name, e in entries.items()}
        self._holding = False

    # -- queries ---------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        """``GET /mcp``: ``MCPStatus`` of every configured server, by name."""
        return {name: dict(s.status) for name, s in self._servers.items()}

    def tools(self) -> dict[str, Tool]:
        """The tools of every connected server, by the name the model sees."""
        found: dict[str, Tool] = {}
        for server in self._servers.values():
            if server.connection is not None and server.status["status"] == "connected":
                found.update(server.tools)
        return found

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Launch a supervisor for every enabled server; returns at once."""
        for server in self._servers.values():
            if _enabled(server.entry):
                self._launch(server)

    def hold(self) -> None:
        """Stop reconnecting (the first step of a stop: turns are interrupted next)."""
        self._holding = True

    async def stop(self) -> None:
        """Close every connection and stop every local server; idempotent."""
        self._holding = True
        await asyncio.gather(*(self._halt(s) for s in self._servers.values()))

    # -- commands (HTTP) ---------------------------------------------------------------

    async def add(self, name: str, entry: Entry) -> dict[str, dict[str, Any]]:
        """``POST /mcp``: add (or replace) a server and try to connect it; returns every
        server's status."""
        old = self._servers.get(name)
        if old is not None:
            await self._halt(old)
        server = _Server(name, entry, _initial(entry))
        self._servers[name] = server
        if _enabled(entry):
            await self._attempt(server)
        return self.status()

    async def connect(self, name: str) -> bool:
        """``POST /mcp/{name}/connect``: connect now (even if the entry says disabled), and wait
        for the attempt to end. OpenCode answers true either way; the status tells how it went.

        Raises:
            McpServerNotFound: No such server, or it is only an ``enabled`` switch.
        """
        server = self._get(name)
        if server.status["status"] != "connected":
            await self._attempt(server)
        return True

    async def disconnect(self, name: str) -> bool:
        """``POST /mcp/{name}/disconnect``: close the connection; the status becomes disabled.

        Raises:
            McpServerNotFound: No such server.
        """
        server = self._get(name)
        had_tools = server.status["status"] == "connected"
        await self._halt(server)
        await self._set_status(server, model.disabled(), tools_changed=had_tools)
        return True

    def start_oauth(self, name: str) -> None:
        """The ``/mcp/{name}/auth`` routes: Roost runs no OAuth flows.

        Raises:
            McpServerNotFound: No such server.
            McpOAuthUnsupported: Always, for a known server.
        """
        self._get(name)
        raise McpOAuthUnsupported(name)

    def require(self, name: str) -> None:
        """Check that ``name`` is a configured server.

        Raises:
            McpServerNotFound: It is not.
        """
        self._get(name)

    # -- McpCaller ---------------------------------------------------------------------

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any]) -> McpOutcome:
        """See ``McpCaller.call_tool``."""
        found = self._servers.get(server)
        connection = found.connection if found is not None else None
        if found is None or connection is None or found.status["status"] != "connected":
            state = found.status if found is not None else model.failed("not configured")
            reason = state.get("error") or state["status"]
            raise ToolError(f"MCP server {server!r} is not connected ({reason})")
        try:
            return await connection.call(tool, arguments)
        except McpCallError as exc:
            if exc.connection_lost:
                found.lost.set()
            raise ToolError(f"MCP server {server!r}: {exc.message}") from exc

    # -- internals -------------------------------------------------------------------

    def _get(self, name: str) -> _Server:
        server = self._servers.get(name)
        if server is None or server.entry is None:
            raise McpServerNotFound(name)
        return server

    def _launch(self, server: _Server) -> None:
        server.stop = asyncio.Event()
        server.settled.clear()
        server.task = asyncio.create_task(self._supervise(server), name=f"mcp:{server.name}")

    async def _attempt(self, server: _Server) -> None:
        """Start (or hurry) the server's supervisor and wait until an attempt has ended."""
        server.settled.clear()
        if server.task is None or server.task.done():
            self._launch(server)
        else:
            server.wake.set()
        assert server.entry is not None
        wait_s = (server.entry.timeout or CONNECT_TIMEOUT_MS) / 1000 + 5
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await server.settled.wait()

    async def _halt(self, server: _Server) -> None:
        """Stop the server's supervisor (closing its connection) and wait for it."""
        task = server.task
        if task is None:
            return
        server.stop.set()
        server.wake.set()
        done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if not done:
            log.warning(
                "MCP server %s did not close in %.0f s; cancelling", server.name, STOP_WAIT_S
            )
            task.cancel()
            await asyncio.wait({task})
        server.task = None

    async def _supervise(self, server: _Server) -> None:
        """Keep one server connected until ``stop`` (see the module docstring)."""
        await asyncio.to_thread(_import_sdk)
        attempt = 0
        while not server.stop.is_set():
            server.wake.clear()
            server.lost.clear()
            error, connected = await self._connection_once(server)
            server.settled.set()
            if server.stop.is_set() or self._holding:
                return
            if error is None:  # 401: needs_auth, set already
                return
            await self._set_status(server, model.failed(error), tools_changed=connected)
            attempt = 0 if connected else attempt + 1
            delay_s = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** max(0, attempt - 1))
            await _first(server.stop, server.wake, timeout_s=delay_s)

    async def _connection_once(self, server: _Server) -> tuple[str | None, bool]:
        """Connect, serve until the connection ends, clean up.

        Returns:
            ``(error, was connected)``; error None means the server needs auth.
        """
        connected = False
        try:
            async with self._open(server) as connection:
                server.connection = connection
                server.tools = self._make_tools(server, connection)
                connected = True
                await self._set_status(server, model.connected(), tools_changed=True)
                server.settled.set()
                await _first(connection.closed, server.stop, server.lost)
                error = "Connection closed"
        except McpConnectError as exc:
            oauth_off = isinstance(server.entry, model.McpRemoteConfig) and not (
                server.entry.oauth is None or server.entry.oauth
            )
            if exc.needs_auth and not oauth_off:
                await self._set_status(server, model.needs_auth())
                return None, False
            error = exc.message
        except Exception as exc:  # the transport failed under a live connection
            from roost.agent.mcp.connection import describe

            log.warning("MCP server %s: connection failed: %r", server.name, exc)
            error = describe(exc)
        finally:
            server.connection = None
            server.tools = {}
            await asyncio.shield(self._reap(server))
        return error, connected

    @contextlib.asynccontextmanager
    async def _open(self, server: _Server) -> AsyncIterator[McpConnection]:
        from roost.agent.mcp.connection import open_local, open_remote

        entry = server.entry
        assert entry is not None
        timeout_s = (entry.timeout or CONNECT_TIMEOUT_MS) / 1000
        if isinstance(entry, model.McpLocalConfig):
            cwd = self._directory / entry.cwd if entry.cwd else self._directory

            async def on_spawn(pgid: int) -> None:
                await self._record(server, pgid)

            async with open_local(
                entry.command,
                cwd=cwd,
                environment=entry.environment or {},
                extra_env={PROCESS_OWNER_ENV: self._owner},
                timeout_s=timeout_s,
                on_spawn=on_spawn,
            ) as connection:
                yield connection
        else:
            async with open_remote(
                entry.url, headers=entry.headers or {}, timeout_s=timeout_s
            ) as connection:
                yield connection

    def _make_tools(self, server: _Server, connection: McpConnection) -> dict[str, Tool]:
        entry = server.entry
        assert entry is not None
        timeout_ms = entry.timeout or self._default_timeout_ms or DEFAULT_CALL_TIMEOUT_MS
        tools: dict[str, Tool] = {}
        for listed in connection.tools:
            tool = McpTool(
                server=server.name,
                tool=listed.name,
                description=listed.description,
                input_schema=listed.input_schema,
                timeout_ms=timeout_ms,
                caller=self,
            )
            tools[tool.name] = tool
        return tools

    async def _record(self, server: _Server, pgid: int) -> None:
        """Remember a local server's process group durably, before its handshake."""
        row = processes.ProcessRow(
            self._owner, pgid, f"mcp:{server.name}", "", None, start_ticks(pgid)
        )

        def write(tx: Tx) -> None:
            processes.record(
                tx.conn, row.owner, row.pgid, row.run_id, row.session_id, None, row.start_ticks
            )

        await self._db.write(write)
        server.group = row

    async def _reap(self, server: _Server) -> None:
        """Kill what is left of a local server's group and forget the record."""
        group, server.group = server.group, None
        if group is None:
            return
        await asyncio.to_thread(kill_group, group)
        await self._db.write(lambda tx: processes.forget(tx.conn, group.owner, group.pgid))

    async def _set_status(
        self, server: _Server, status: dict[str, Any], *, tools_changed: bool = False
    ) -> None:
        """Change the status and log ``mcp.status`` (and ``mcp.tools.changed``)."""
        if status == server.status and not tools_changed:
            return
        server.status = status
        name = server.name
        events: list[tuple[str, dict[str, Any]]] = [
            (ev.MCP_STATUS, {"server": name, "status": dict(status)})
        ]
        if tools_changed:
            events.append((ev.MCP_TOOLS_CHANGED, {"server": name}))

        def write(tx: Tx) -> None:
            for type_, props in events:
                tx.append(ev.MCP_AGGREGATE, type_, props)

        try:
            await self._db.write(write)
        except Exception:
            # The status in memory (what GET /mcp shows) has changed; only the event is lost.
            log.exception("could not log the status of MCP server %s", name)


def _import_sdk() -> None:
    """Import the SDK adapter (about a second of CPU), in a worker thread."""
    import roost.agent.mcp.connection  # noqa: F401


def _initial(entry: Entry | None) -> dict[str, Any]:
    return model.failed(CONNECTING) if _enabled(entry) else model.disabled()


def _enabled(entry: Entry | None) -> bool:
    return entry is not None and entry.enabled is not False


async def _first(*events: asyncio.Event, timeout_s: float | None = None) -> None:
    """Return when any of ``events`` is set (or ``timeout_s`` passes)."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
