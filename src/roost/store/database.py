"""Opening the database: engines, pragmas, migrations, and the single writer thread.

Every write goes through ``Database.write``: one dedicated thread owns the only write connection
and runs queued commands in ``BEGIN IMMEDIATE`` transactions, so SQLite never answers
"database is locked" to a request. Commands that arrive while a transaction commits are grouped
into the next one (group commit): one fsync serves many concurrent requests. If any command in a
group raises, the group is rolled back and each of its commands is retried in a transaction of its
own, so one bad command fails alone. Commands must therefore have no effects outside the
database; they append events through ``Tx`` and return plain values.

A committed batch of more than ``_FREE_ON_LOOP`` events (a 100k-part prompt) is freed by a
reaper thread, ``_FREE_SLICE`` events per call, once the loop has published it: freeing it in one
go is a cascade of C-level deallocations holding the GIL for 100-400 ms (issue #9). Nothing else
keeps the batch alive by then: the writer's transaction objects are gone, and the loop drops
each command's own list of events before publishing the batch.

Reads run on a few reader threads, each owning one connection for its lifetime
(``Database.read``); in WAL mode they see the last committed state and never block the writer.

Storage failures enter here and leave typed: a command or read that SQLite refuses because the
disk is full, the database is read-only or I/O failed raises ``StorageUnavailable`` (see
``storage_error``); its transaction was rolled back, so nothing of it is stored, and the writer
goes on with the next command (which succeeds once the storage accepts writes again).

Only SQLite is built so far; the dialect-specific pieces (pragmas, ``BEGIN IMMEDIATE``, result
codes) are confined to this module so PostgreSQL can be added behind the same interface.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import itertools
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from roost.errors import DISK_FULL, IO_ERROR, READ_ONLY, StorageUnavailable, StoreClosed
from roost.model.event import StoredEvent
from roost.store.event_log import Tx
from roost.store.schema import metadata

T = TypeVar("T")
log = logging.getLogger(__name__)

HEAD_REVISION = "0003"
"""The newest migration; checked cheaply at start so Alembic is imported only when needed."""

_READERS = 4
"""Reader threads, each with its own connection."""

_MAX_GROUP = 256
"""Most commands folded into one transaction (bounds the work redone when one fails)."""

_FREE_ON_LOOP = 1000
"""Committed batches of at most this many events are freed wherever their last reference goes."""

_FREE_SLICE = 500
"""Events the reaper frees per call (about 0.5 ms)."""

OnCommit = Callable[[list[StoredEvent]], None]


@dataclass
class _Command:
    fn: Callable[[Tx], Any]
    future: asyncio.Future[Any] | concurrent.futures.Future[Any]
    loop: asyncio.AbstractEventLoop | None
    """None for commands from plain threads (``write_blocking``)."""
    number: int = 0
    """Position in submission order (fault injection names commands by it)."""
    result: Any = None
    error: BaseException | None = None
    events: list[StoredEvent] = field(default_factory=list)


@dataclass
class _Read:
    fn: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop

    def deliver(self, result: Any, error: BaseException | None) -> None:
        """Hand the outcome to the caller's loop (nothing if the caller gave up)."""

        def resolve() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self.loop.call_soon_threadsafe(resolve)


def _configure_sqlite(engine: Engine, *, synchronous: str, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy's "begin" hook emit BEGIN IMMEDIATE instead of pysqlite's deferred
        # BEGIN: the writer takes the write lock up front, so it never fails with SQLITE_BUSY
        # half-way through a transaction (SQLAlchemy docs, "Serializable isolation / Savepoints
        # / Transactional DDL" for pysqlite).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.close()

    # Readers take a deferred (shared) snapshot; only the writer takes the write lock. This is
    # the dialect's ``do_begin`` rather than a "begin" event listener: any connection event
    # listener makes every statement dispatch (empty) execute events, which costs more here
    # than the statement.
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    def do_begin(dbapi_conn: Any) -> None:
        dbapi_conn.execute(begin)

    engine.dialect.do_begin = do_begin  # type: ignore[method-assign,assignment]


_STORAGE_CAUSE_BY_CODE = {
    sqlite3.SQLITE_FULL: DISK_FULL,
    sqlite3.SQLITE_READONLY: READ_ONLY,
    sqlite3.SQLITE_IOERR: IO_ERROR,
}
"""Primary result codes that mean the storage refused (https://sqlite.org/rescode.html)."""


def storage_error(exc: BaseException, path: Path) -> StorageUnavailable | None:
    """The ``StorageUnavailable`` that a database error stands for, or None for other errors.

    SQLite reports storage trouble as ``SQLITE_FULL``, ``SQLITE_READONLY`` or one of the
    ``SQLITE_IOERR_*`` extended codes (the primary code is the low byte). A connection that was
    opened before its file system went read-only (ext4 remounts itself read-only after an error)
    sees ``EROFS`` as a failed write, ``SQLITE_IOERR_WRITE``: an I/O error on a file system that
    is now mounted read-only is reported as ``read_only``, which is what the operator must fix.

    Args:
        exc: What the driver or SQLAlchemy raised (``DBAPIError`` wraps ``sqlite3.Error``).
        path: The database file, named in the error.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    if not isinstance(orig, sqlite3.Error) or not isinstance(code, int):
        return None
    cause = _STORAGE_CAUSE_BY_CODE.get(code & 0xFF)
    if cause is None:
        return None
    if cause == IO_ERROR and _on_read_only_fs(path):
        cause = READ_ONLY
    name = getattr(orig, "sqlite_errorname", None) or f"SQLite result code {code}"
    error = StorageUnavailable(cause, str(name), str(path))
    error.__cause__ = exc
    return error


def _on_read_only_fs(path: Path) -> bool:
    """Whether the database's file system refuses writes as read-only (``EROFS``).

    The mount flags are not enough: ext4 that remounted itself after an error ("emergency
    read-only") still shows ``rw``. Opening an unnamed temporary file in the directory asks the
    file system itself and leaves nothing behind; the database file is not opened, because
    closing another descriptor of it would drop SQLite's POSIX locks (sqlite.org, "How To
    Corrupt An SQLite Database File", 2.2.1).
    """
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return True
        fd = os.open(path.parent, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError as exc:
        return exc.errno == errno.EROFS
    os.close(fd)
    return False


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL for an SQLite file."""
    return f"sqlite+pysqlite:///{path}"


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (a no-op when it is already there).

    An empty database gets the declared schema directly and is stamped with the head revision,
    as Alembic's cookbook describes ("Building an Up to Date Database from Scratch"); a test
    proves that running every migration on an empty database yields the same schema. Any other
    database is upgraded by Alembic, which is imported only then (it costs start-up time).
    """
    with engine.begin() as conn:
        tables = {
            row[0]
            for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "alembic_version" in tables:
            current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if current == HEAD_REVISION:
                return
        elif not tables:
            metadata.create_all(conn)
            conn.exec_driver_sql(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
            conn.exec_driver_sql(f"INSERT INTO alembic_version VALUES ('{HEAD_REVISION}')")
            return
    upgrade(engine)


def upgrade(engine: Engine) -> None:
    """Run Alembic's ``upgrade head`` on the database."""
    # Alembic is imported only when there is something to do: it costs start-up time.
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """The store's connections: one writer thread and a pool of readers.

    Use ``await Database.open(path)``; ``close()`` drains the writer and disposes the engines.
    ``on_commit`` (set by the engine) receives each committed transaction's events, in commit
    order, on the event loop thread.
    """

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        url = sqlite_url(path)
        self._write_engine = create_engine(url, poolclass=NullPool)
        self._read_engine = create_engine(url, poolclass=NullPool)
        _configure_sqlite(self._write_engine, synchronous=synchronous, writer=True)
        _configure_sqlite(self._read_engine, synchronous=synchronous, writer=False)
        self._queue: queue.SimpleQueue[_Command | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._reads: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
        self._readers: list[threading.Thread] = []
        self._garbage: queue.SimpleQueue[list[StoredEvent] | None] = queue.SimpleQueue()
        self._reaper: threading.Thread | None = None
        self.on_commit: OnCommit | None = None
        self.fault: Callable[[int], None] | None = None
        """Fault injection for tests: called with each command's number inside its
        transaction; raising fails that command (and only it) as a real error would."""
        self._numbers = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def open(cls, path: Path, *, synchronous: str = "FULL") -> Database:
        """Create the file if needed, migrate it to the newest schema, start the writer.

        Raises:
            StorageUnavailable: The file could not be created or migrated (full, read-only).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        db = cls(path, synchronous=synchronous)
        try:
            await anyio.to_thread.run_sync(migrate, db._write_engine)
        except DBAPIError as exc:
            error = storage_error(exc, path)
            if error is None:
                raise
            raise error from exc
        db._loop = asyncio.get_running_loop()
        db._thread = threading.Thread(target=db._writer_main, name="roost-writer", daemon=True)
        db._thread.start()
        for n in range(_READERS):
            reader = threading.Thread(target=db._reader_main, name=f"roost-reader-{n}", daemon=True)
            reader.start()
            db._readers.append(reader)
        db._reaper = threading.Thread(target=db._reaper_main, name="roost-reaper", daemon=True)
        db._reaper.start()
        return db

    async def close(self) -> None:
        """Finish queued writes, stop the writer thread and dispose the engines."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        for _ in self._readers:
            self._reads.put(None)
        threads = [t for t in (self._thread, *self._readers) if t is not None]
        if self._reaper is not None:  # after the writer: its last batch may still come
            threads.append(self._reaper)

        def join() -> None:
            for thread in threads:
                if thread is self._reaper:
                    self._garbage.put(None)
                thread.join()

        await anyio.to_thread.run_sync(join)
        while True:  # reads still queued behind the stop markers fail rather than hang
            try:
                left = self._reads.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                left.deliver(None, StoreClosed("the store is closed"))
        self._write_engine.dispose()
        self._read_engine.dispose()

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a write transaction on the writer thread and return its result.

        ``fn`` may run more than once (see the module docstring) and must touch nothing but
        the transaction. Its events are published through ``on_commit`` after the commit.

        Raises:
            StoreClosed: The database was closed.
            StorageUnavailable: The disk is full, the database is read-only or I/O failed;
                nothing was stored.
            Exception: Whatever ``fn`` raised; its transaction was rolled back.
        """
        if self._closed:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Command(fn=fn, future=future, loop=loop, number=next(self._numbers)))
        # A cancelled caller cancels only its future: the command is already queued, so the
        # write still commits (and publishes its events); ``_resolve`` skips the done future.
        return await future

    def write_blocking(self, fn: Callable[[Tx], T], timeout_s: float = 30.0) -> T:
        """Like ``write`` but from a plain thread (not the event loop); blocks until committed.

        Used by the lease heartbeat, which must keep working while the loop is busy. Events
        appended this way are published to ``on_commit`` on the loop like any others.

        Raises:
            StoreClosed: The database was closed.
            StorageUnavailable: As for ``write``.
            TimeoutError: The writer did not commit within ``timeout_s``.
        """
        if self._closed:
            raise StoreClosed("the store is closed")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put(_Command(fn=fn, future=fut, loop=None, number=next(self._numbers)))
        return fut.result(timeout=timeout_s)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a read transaction on a reader thread (a consistent WAL snapshot).

        Raises:
            StoreClosed: The database was closed.
            StorageUnavailable: The database file could not be read (I/O error).
            Exception: Whatever ``fn`` raised.
        """
        if self._closed:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._reads.put(_Read(fn, future, loop))
        return await future

    # -- the reader threads ------------------------------------------------------------

    def _reader_main(self) -> None:
        try:
            connection = self._read_engine.connect()
        except Exception as exc:  # e.g. the file became unreadable: fail reads, don't hang them
            log.exception("a reader could not open the database")
            error = self._translate(exc)
            while (read := self._reads.get()) is not None:
                read.deliver(None, error)
            return
        with connection as conn:
            while (read := self._reads.get()) is not None:
                try:
                    with conn.begin():
                        result = read.fn(conn)
                except BaseException as exc:  # delivered to the caller, like any result
                    read.deliver(None, self._translate(exc))
                else:
                    read.deliver(result, None)

    # -- the writer thread -------------------------------------------------------------

    def _writer_main(self) -> None:
        with self._write_engine.connect() as conn:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                group = [first]
                while len(group) < _MAX_GROUP:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    group.append(nxt)
                self._run_group(conn, group)
                # Let the finished commands go before waiting for the next one: a 100k-part
                # prompt's events would otherwise stay alive until then (issue #9).
                del first, group
        # Anything still queued after close() is failed rather than left hanging.
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                left.error = StoreClosed("the store is closed")
                self._deliver([left])

    def _run_group(self, conn: Connection, group: list[_Command]) -> None:
        try:
            with conn.begin():
                for cmd in group:
                    self._run(conn, cmd)
        except Exception as exc:
            if len(group) == 1:
                group[0].result, group[0].events, group[0].error = None, [], self._translate(exc)
            else:
                for cmd in group:
                    self._run_alone(conn, cmd)
        self._deliver(group)

    def _run_alone(self, conn: Connection, cmd: _Command) -> None:
        cmd.result, cmd.events, cmd.error = None, [], None
        try:
            with conn.begin():
                self._run(conn, cmd)
        except Exception as exc:
            cmd.result, cmd.events, cmd.error = None, [], self._translate(exc)

    def _run(self, conn: Connection, cmd: _Command) -> None:
        # The Tx lives only in this frame, so after the commit the command holds the only
        # list of its events (see the module docstring on freeing large batches).
        tx = Tx(conn)
        self._inject(cmd)
        cmd.result = cmd.fn(tx)
        cmd.events = tx.events

    # -- the reaper thread -------------------------------------------------------------

    def _reaper_main(self) -> None:
        while (batch := self._garbage.get()) is not None:
            while batch:
                del batch[-_FREE_SLICE:]

    def _translate(self, exc: BaseException) -> BaseException:
        """``StorageUnavailable`` for storage failures (see ``storage_error``), else ``exc``."""
        return storage_error(exc, self.path) or exc

    def _inject(self, cmd: _Command) -> None:
        if self.fault is not None:
            self.fault(cmd.number)

    def _deliver(self, group: list[_Command]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Command]] = {}
        for cmd in group:
            if cmd.loop is None:
                self._resolve_thread(cmd)
                continue
            by_loop.setdefault(cmd.loop, []).append(cmd)
        for loop, cmds in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed while we committed
                loop.call_soon_threadsafe(self._resolve, cmds)

    def _resolve_thread(self, cmd: _Command) -> None:
        assert isinstance(cmd.future, concurrent.futures.Future)
        if cmd.events and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._publish, cmd.events)
        if cmd.error is not None:
            cmd.future.set_exception(cmd.error)
        else:
            cmd.future.set_result(cmd.result)

    def _publish(self, events: list[StoredEvent]) -> None:
        if self.on_commit is not None:
            try:
                self.on_commit(events)
            except Exception:
                log.exception("on_commit subscriber failed")

    def _resolve(self, cmds: list[_Command]) -> None:
        # Writers are woken before the subscribers: both are only scheduled here, so a request
        # waiting on its commit answers before the SSE streams send that commit's events. Every
        # event is still published before any writer resumes.
        events = [e for cmd in cmds for e in cmd.events]
        for cmd in cmds:
            cmd.events = []
            assert isinstance(cmd.future, asyncio.Future)
            if cmd.future.done():
                continue
            if cmd.error is not None:
                cmd.future.set_exception(cmd.error)
            else:
                cmd.future.set_result(cmd.result)
        if events:
            self._publish(events)
            if len(events) > _FREE_ON_LOOP:
                self._garbage.put(events)
