"""The store on PostgreSQL, through psycopg 3 and SQLAlchemy Core: replicas on many hosts.

What differs from SQLite, and why:
- **Locking.** PostgreSQL runs write transactions concurrently, and a sequence hands out ids in
  the order transactions *ask*, not the order they *commit*: a reader could see event 11
  committed before event 10, move its cursor past 10 and never send it. Every write transaction
  therefore first takes one transaction-scoped advisory lock (``pg_advisory_xact_lock``),
  held until its commit, the "global append lock" of the issue. Ids are then handed out and
  committed in the same order, so ``id > cursor`` in any snapshot misses nothing that commits
  later (a rolled-back transaction leaves a gap, which no reader waits on). It also gives
  every check-then-write path of the store (lease acquisition, the per-session ``seq``
  counter, admission's id checks, the recovery counter) the one-writer-at-a-time semantics it
  has on SQLite. The price: write transactions of different replicas do not overlap; each
  replica still folds its concurrent commands into one transaction (group commit), so the
  store commits about one transaction per replica at a time. The alternative, a
  transaction-id snapshot cursor (``pg_snapshot_xmin``), lets writers overlap but needs every
  reader of the log to hold back events above the oldest running writer; measured need first.
- **Isolation.** Readers run ``REPEATABLE READ, READ ONLY``: one snapshot per read, like an
  SQLite WAL reader. The writer runs ``READ COMMITTED``: behind the lock every statement sees
  everything committed before it.
- **Clock.** Leases expire by the database server's clock (``clock_timestamp()``), which every
  replica shares, never by one host's clock against another's.
- **Storage errors.** SQLSTATE class 53 (insufficient resources: disk full, out of memory),
  class 08 (connection exceptions), 57P01-57P03 (server shutting down or starting) and
  ``25006`` (read-only transaction, a standby) become ``StorageUnavailable``: a PostgreSQL
  restart fails requests fast with 503, and the next command reconnects.
- **Migrations** take a transaction-scoped advisory lock of their own, so replicas that start
  together migrate once.
- **Wake-ups.** A write transaction that appended events sends ``NOTIFY roost_events``, which
  PostgreSQL delivers at its commit; each process listens on its own connection (a thread) and
  wakes its event feed, which reads the log back: the notification carries no data. Its own
  writer's notifications are skipped. The feed still polls every ``poll_s`` in case a
  notification is lost with a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from roost.errors import DISK_FULL, IO_ERROR, READ_ONLY, UNREACHABLE, StorageUnavailable
from roost.store.database import Database, migrate

WRITE_LOCK = 0x526F6F7374_01
"""Advisory lock key every write transaction takes ("Roost" + 1)."""
MIGRATION_LOCK = 0x526F6F7374_02
"""Advisory lock key of the migration transaction."""

_CONNECT_TIMEOUT_S = 5
"""How long a connection attempt waits for the server (libpq ``connect_timeout``)."""

_CHANNEL = "roost_events"
"""The ``LISTEN/NOTIFY`` channel of committed events."""
_LISTEN_TICK_S = 0.5
"""How often the listener thread checks whether it should stop."""
_LISTEN_RETRY_S = 0.2
_LISTEN_RETRY_MAX_S = 5.0
log = logging.getLogger(__name__)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as libpq reads it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _cause(orig: BaseException) -> str | None:
    if isinstance(orig, psycopg.OperationalError) and not isinstance(
        orig, psycopg.errors.QueryCanceled
    ):
        sqlstate = getattr(orig, "sqlstate", None) or ""
        if sqlstate.startswith("53"):
            return DISK_FULL if sqlstate == "53100" else IO_ERROR
        if sqlstate.startswith("58"):  # system error (I/O)
            return IO_ERROR
        # Connection failures carry no SQLSTATE (libpq) or class 08 / 57P0x.
        return UNREACHABLE
    if isinstance(orig, psycopg.errors.ReadOnlySqlTransaction):
        return READ_ONLY
    if isinstance(orig, psycopg.InterfaceError):  # the connection is closed
        return UNREACHABLE
    return None


def _engine(url: str, *, writer: bool) -> Engine:
    options: dict[str, Any] = {"connect_timeout": _CONNECT_TIMEOUT_S}
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args=options,
        isolation_level="READ COMMITTED" if writer else "REPEATABLE READ",
    )
    if not writer:
        engine = engine.execution_options(postgresql_readonly=True)
    return engine


class PostgresDatabase(Database):
    """The store on a PostgreSQL database (``postgresql://…``), shared by any number of
    replicas.

    Args:
        url: A SQLAlchemy URL with the psycopg driver (``postgresql+psycopg://…``).
        where: The URL without its password, for errors and health.
        readers: Reader threads, each with its own connection.
    """

    kind = "postgresql"
    poll_s = 1.0
    """A fallback: wake-ups come from ``LISTEN/NOTIFY``."""

    def __init__(self, url: str, *, where: str, readers: int = 4) -> None:
        self.url = url
        """The SQLAlchemy URL, password included: never shown (``where`` is)."""
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._writer_pid = 0
        """The writer connection's server process id: its notifications are our own."""
        super().__init__(
            _engine(url, writer=True), _engine(url, writer=False), readers=readers, where=where
        )

    def _prepare(self) -> None:
        migrate(self._write_engine, lock=_lock_migrations)

    def storage_error(self, exc: BaseException) -> StorageUnavailable | None:
        """Storage and connection failures as ``StorageUnavailable`` (see the module
        docstring); None for every other error."""
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            cause: str | None = UNREACHABLE
        else:
            cause = _cause(orig) if isinstance(orig, BaseException) else None
        if cause is None:
            return None
        code = getattr(orig, "sqlstate", None) or type(orig).__name__
        error = StorageUnavailable(cause, str(code), self.where)
        error.__cause__ = exc
        return error

    def clock_ms(self, conn: Connection) -> int:
        """The database server's clock, shared by every replica."""
        return int(
            conn.exec_driver_sql(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
            ).scalar_one()
        )

    def _begin_write(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        raw = conn.connection.driver_connection
        if isinstance(raw, psycopg.Connection):
            self._writer_pid = raw.info.backend_pid

    def _committed_events(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"NOTIFY {_CHANNEL}")

    def _listen(self, wake: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self._listening.set()

        def main() -> None:
            pause = _LISTEN_RETRY_S
            while self._listening.is_set():
                try:
                    with psycopg.connect(
                        libpq_url(self.url), autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
                    ) as conn:
                        conn.execute(f"LISTEN {_CHANNEL}")
                        pause = _LISTEN_RETRY_S
                        with contextlib.suppress(RuntimeError):  # the loop closed
                            loop.call_soon_threadsafe(wake)  # what came while we were away
                        while self._listening.is_set():
                            for note in conn.notifies(timeout=_LISTEN_TICK_S):
                                if note.pid != self._writer_pid:
                                    loop.call_soon_threadsafe(wake)
                except (psycopg.Error, RuntimeError) as exc:
                    if not self._listening.is_set():
                        return
                    log.debug("LISTEN connection lost (%s); reconnecting", exc)
                    time.sleep(pause)
                    pause = min(pause * 2, _LISTEN_RETRY_MAX_S)

        self._listener = threading.Thread(target=main, name="roost-listen", daemon=True)
        self._listener.start()

    def _stop_listening(self) -> None:
        self._listening.clear()
        if self._listener is not None:
            self._listener.join(timeout=_LISTEN_TICK_S + _CONNECT_TIMEOUT_S)
            self._listener = None


def _lock_migrations(conn: Connection) -> None:
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
