"""``roost serve``: the composition root. Settings → Database → SessionService → app → uvicorn.

The socket is bound before the app starts so ``--port 0`` can report the port it got; the
``listening on`` line is printed only after start-up (migrations, recovery) has finished, and
connections made earlier wait in the listen backlog until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from roost.agent.catalog import Catalog
from roost.agent.loop import RetryPolicy
from roost.agent.providers.registry import ProviderRegistry
from roost.agent.tools.registry import builtin_tools
from roost.api.app import create_app
from roost.api.origins import OriginPolicy, is_loopback
from roost.config import (
    ConfigError,
    Settings,
    environment,
    global_config_dir,
    instructions,
    load_config,
    mcp_servers,
    mcp_timeout_ms,
    project_id,
    server_names,
    wait_policy_values,
)
from roost.engine.commands import load_commands
from roost.engine.mcp import McpServers
from roost.engine.owner import this_owner
from roost.engine.sessions import ServiceOptions, SessionService
from roost.engine.snapshots import SnapshotStore, store_dir
from roost.engine.tool_context import WaitPolicy
from roost.errors import StorageUnavailable
from roost.store.database import Database
from roost.store.location import parse

log = logging.getLogger(__name__)

_SHUTDOWN_POLL_S = 0.005
"""How often a stopping server checks whether its connections and request tasks are gone."""


class _Server(uvicorn.Server):
    """Prints the URL once the app is ready to answer, and starts shutting down as soon as
    SIGINT/SIGTERM arrives (uvicorn alone notices it at its next 100 ms tick).

    Args:
        drain: The first step of a stop (``SessionService.interrupt``).
        settled: Returns once what start-up began in the background is made (the provider
            clients, ``SessionService.preloaded``); the collector then freezes it too.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        url: str,
        drain: Callable[[], Awaitable[None]],
        settled: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(config)
        self._url = url
        self._drain = drain
        self._settled = settled
        self._freeze: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_requested: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"roost server listening on {self._url}", flush=True)
            self._freeze = asyncio.create_task(self._freeze_when_settled(), name="gc-freeze")

    async def _freeze_when_settled(self) -> None:
        # The provider SDKs and clients (tens of thousands of objects) are made after the
        # start-up freeze; left to the collector, its next full pass took 36-49 ms, in the
        # middle of the turns (gc.callbacks, 100 stored turns, /tmp script).
        await self._settled()
        gc.freeze()

    async def main_loop(self) -> None:
        # uvicorn's own loop (``on_tick`` every 0.1 s until it says to exit), except that
        # ``handle_exit`` also ends the wait at once.
        self._loop = asyncio.get_running_loop()
        self._exit_requested = asyncio.Event()
        # uvicorn takes the signals with ``signal.signal``, whose Python handler runs only once
        # the loop wakes up for something else (its next 0.1 s timeout): 50 ms of every stop
        # on average. The loop's own handlers wake it at once (its signal wakeup fd).
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.handle_exit, sig, None)
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting, then let the service finish what open connections wait for (turns
        # stored as interrupted, final events delivered, streams ended) before the connections
        # are asked to close and what still runs after the grace period is cancelled.
        #
        # This is uvicorn 0.54's ``Server.shutdown`` but for its waits: it sleeps 0.1 s after
        # asking the connections to close, whether any was open or not, then polls every 0.1 s;
        # here the wait lasts only while a connection or request task is left, polled every
        # ``_SHUTDOWN_POLL_S``. A stop of an idle server took 105-125 ms, 100 of them asleep.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        if self._freeze is not None:
            self._freeze.cancel()
        await self._drain()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        grace_s = self.config.timeout_graceful_shutdown  # None: no limit
        deadline = None if grace_s is None else time.monotonic() + grace_s
        while (state.connections or state.tasks) and not self.force_exit:
            if deadline is not None and time.monotonic() >= deadline:
                log.error("cancelling %d request task(s) after the grace period", len(state.tasks))
                for task in state.tasks:
                    task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
                break
            await asyncio.sleep(_SHUTDOWN_POLL_S)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._exit_requested is not None:
            # A signal handler may run in the middle of the loop's own code: only schedule.
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._exit_requested.set)


def retry_policy(config: dict[str, Any]) -> RetryPolicy:
    """Provider retry policy from ``roost.json``'s ``retry``: ``maxAttempts``, ``initialMs``,
    ``maxMs`` (defaults: 4 attempts, 1 s doubling up to 30 s)."""
    entry = config.get("retry") or {}
    default = RetryPolicy()
    return RetryPolicy(
        max_attempts=int(entry.get("maxAttempts", default.max_attempts)),
        initial_s=float(entry.get("initialMs", default.initial_s * 1000)) / 1000,
        max_s=float(entry.get("maxMs", default.max_s * 1000)) / 1000,
    )


def bind(hostname: str, port: int) -> socket.socket:
    """A listening TCP socket (``port`` 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in hostname else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((hostname, port))
    sock.listen(2048)
    # Not inheritable (Python's default, said again because it matters): a tool process that
    # held the listening socket would keep the port after a crash, so the restarted server
    # could not bind it, and recovery, which kills such processes, could never run.
    sock.set_inheritable(False)
    return sock


def origin_policy(settings: Settings, config: dict[str, Any]) -> OriginPolicy:
    """Flags and config ``server.cors`` / ``server.allowedHosts`` together.

    Raises:
        ConfigError: A configured origin is malformed.
    """
    cors, hosts = server_names(config)
    try:
        return OriginPolicy.build(
            hostname=settings.hostname,
            cors=[*settings.cors, *cors],
            hosts=[*settings.allowed_hosts, *hosts],
        )
    except ValueError as exc:
        raise ConfigError(f"--cors / server.cors: {exc}") from exc


def snapshot_store(
    settings: Settings, config: dict[str, Any], directory: Path, project: str
) -> SnapshotStore | None:
    """The project's file snapshots, next to the database (``<data>/snapshot/…``); None when
    the config says ``"snapshot": false`` (as OpenCode's) or git is not installed."""
    if config.get("snapshot") is False:
        return None
    if shutil.which("git") is None:
        print("WARNING: git not found: revert will not restore files", file=sys.stderr)
        return None
    data_dir = settings.data_dir.resolve()
    own = [data_dir / "tool-output"]
    if isinstance(settings.db_path, Path):
        db = settings.db_path.resolve()
        own += [db, *(db.with_name(db.name + end) for end in ("-wal", "-shm", "-journal"))]
    return SnapshotStore(
        store_dir(data_dir, project, directory),
        directory,
        durable=settings.synchronous.upper() == "FULL",
        # The data directory may be the project itself (``--db ./roost.db``): then only
        # Roost's own files there are left out.
        exclude=[data_dir] if data_dir != directory else own,
    )


def warn_if_exposed(settings: Settings) -> None:
    """Warn loudly when the server listens beyond loopback without a password."""
    if settings.password or is_loopback(settings.hostname):
        return
    print(
        f"WARNING: roost serve listens on {settings.hostname} without a password: anyone who "
        "can reach this port can run commands on this machine. Set ROOST_SERVER_PASSWORD.",
        file=sys.stderr,
        flush=True,
    )


async def serve(settings: Settings) -> None:
    """Run the server until SIGINT/SIGTERM."""
    env = environment()
    directory = settings.directory.resolve()
    config = load_config(directory, env)
    catalog = Catalog(config, env)
    policy = origin_policy(settings, config)
    mcp_entries = mcp_servers(config)
    mcp_default_timeout_ms = mcp_timeout_ms(config)
    warn_if_exposed(settings)
    try:
        db = await Database.open(
            settings.db_path, synchronous=settings.synchronous, pool_size=settings.pool_size
        )
    except StorageUnavailable as exc:
        raise ConfigError(f"cannot open the store: {exc}") from exc
    project = project_id(directory)
    service = SessionService(
        db,
        catalog,
        ProviderRegistry(),
        ServiceOptions(
            directory=str(directory),
            project_id=project,
            retry=retry_policy(config),
            instructions=instructions(directory, env, config),
            tools=builtin_tools(global_config_dir(env)),
            output_dir=settings.data_dir / "tool-output",
            waits=WaitPolicy(*wait_policy_values(config)),
            commands=load_commands(config, directory, global_config_dir(env)),
            config_dir=global_config_dir(env),
            snapshots=snapshot_store(settings, config, directory, project),
            lease_ttl_ms=settings.lease_ttl_ms,
            lease_renew_ms=settings.lease_renew_ms,
            replica=settings.replica,
        ),
        mcp=McpServers(
            db,
            mcp_entries,
            directory=directory,
            owner=this_owner(),
            default_timeout_ms=mcp_default_timeout_ms,
        ),
    )
    app = create_app(
        service,
        password=settings.password,
        username=settings.username,
        data_dir=settings.data_dir,
        config_dir=global_config_dir(env),
        heartbeat_s=settings.heartbeat_s,
        origins=policy,
        max_body_bytes=settings.max_body_bytes,
    )
    try:
        sock = bind(settings.hostname, settings.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.hostname}:{settings.port}: {exc}") from exc
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    server = _Server(
        uvicorn.Config(
            app,
            log_level=settings.log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        ),
        f"http://{shown}:{port}",
        service.interrupt,
        service.preloaded,
    )
    # What start-up made (modules, the app, the catalog) lives as long as the server: the
    # collector's full passes need not walk it. Without this, the first one, a few seconds
    # after start, paused the loop for about 57 ms (bench/store_scale.py's p99).
    gc.freeze()
    await server.serve(sockets=[sock])


SWITCH_INTERVAL_S = 0.001
"""How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).

The store's writer thread waits for the GIL after every fsync and statement; with the default
it waits up to 5 ms behind the event loop each time, and an admission waits for the writer.
Under 16 concurrent turns (``ocbench roundtrip``) admission p50 was lower at 1 ms than at 5 ms
in most runs (the runs vary by a third); see bench/README.md, "Admission under load"."""


def run_server(settings: Settings) -> None:
    """Blocking entry point used by the CLI."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop

        uvloop.run(serve(settings))
    except ImportError:  # uvloop is optional on platforms without it
        asyncio.run(serve(settings))


def resolve_db(db: str | Path | None, env: dict[str, str]) -> Path | str:
    """Where the store lives: ``--db`` if given, else ``ROOST_DB``, else the default file.
    A path for SQLite, a URL for PostgreSQL.

    Raises:
        InvalidLocation: The value is a URL of an unsupported kind.
    """
    if db is None:
        db = env.get("ROOST_DB") or None
    if db is None:
        return Settings.default_db_path({})
    location = parse(db if isinstance(db, str) else db.expanduser())
    return location.path if location.path is not None else location.url
