"""The store's connections: the writer thread, the readers, migrations; shared by every database.

Every write goes through ``Database.write``: one dedicated thread owns the process's only write
connection and runs queued commands in transactions, so the database never answers "locked" to a
request. Commands that arrive while a transaction commits are grouped into the next one (group
commit): one fsync serves many concurrent requests. If any command in a group raises, the group
is rolled back and each of its commands is retried in a transaction of its own, so one bad
command fails alone. Commands must therefore have no effects outside the database; they append
events through ``Tx`` and return plain values.

Admissions come first (issue #13). A write marked ``urgent`` (a prompt's admission: a client
is waiting for its 2xx) skips the queue: the writer runs the urgent writes as soon as the
transaction in progress commits, in a transaction of their own, and then the ordinary writes it
had taken, so neither lane starves the other. While an urgent write is in flight, ordinary
writes from the loop wait for it (at most ``_YIELD_S``) before queueing, and so do turns
about to send a model request (``engine/runs.py``): the loop and the writer then serve the
admission before more turn work (bench/README.md, "Admission under load"). They wait for the
urgent writes in flight when they start waiting, not for later ones, so a steady stream of
admissions delays a turn by one bound at most, not until the stream pauses.

Each write transaction first takes the database's write lock (``BEGIN IMMEDIATE`` on SQLite, a
transaction-scoped advisory lock on PostgreSQL: see the subclasses), so write transactions of
all processes on one store run one at a time. Event ids are then assigned in commit order, the
global event cursor (``Last-Event-ID``) never skips a later-visible event, and the store's
check-then-write paths (lease acquisition, the per-session ``seq`` counter, admission's id
checks) stay correct with several replicas, as they are with one.

Committed events reach ``on_commit`` through the event feed (``feed.py``): this process's at
once, other processes' read back from the log when woken (PostgreSQL's ``LISTEN/NOTIFY``) or
every ``poll_s`` (a short poll on SQLite, a fallback on PostgreSQL), all in id order.

A committed batch of more than ``_FREE_ON_LOOP`` events (a 100k-part prompt) is freed by a
reaper thread, ``_FREE_SLICE`` events per call, once the loop has published it: freeing it in one
go is a cascade of C-level deallocations holding the GIL for 100-400 ms (issue #9). Nothing else
keeps the batch alive by then: the writer's transaction objects are gone, and the loop drops
each command's own list of events before publishing the batch.

Reads run on a few reader threads, each owning one connection for its lifetime
(``Database.read``); each read sees one consistent committed snapshot and never blocks the
writer.

Storage failures enter here and leave typed: a command or read that the database refuses
because the disk is full, the database is read-only, I/O failed or its server cannot be reached
raises ``StorageUnavailable`` (see ``storage_error``); its transaction was rolled back, so nothing
of it is stored, and the writer goes on with the next command (which succeeds once the storage
accepts writes again).
"""

from __future__ import annotations

import abc
import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError, IntegrityError

from roost.errors import Conflict, StorageUnavailable, StoreClosed
from roost.model.event import StoredEvent
from roost.store.event_log import CLOCK, Tx
from roost.store.feed import EventFeed
from roost.store.schema import metadata

T = TypeVar("T")
log = logging.getLogger(__name__)

HEAD_REVISION = "0006"
"""The newest migration; checked cheaply at start so Alembic is imported only when needed."""

_READERS = 4
"""Reader threads, each with its own connection."""

_MAX_GROUP = 256
"""Most commands folded into one transaction (bounds the work redone when one fails)."""

_YIELD_S = 0.05
"""Longest an ordinary write waits, on the loop, for urgent writes in flight to commit."""

_FREE_ON_LOOP = 1000
"""Committed batches of at most this many events are freed wherever their last reference goes."""

_FREE_SLICE = 500
"""Events the reaper frees per call (about 0.5 ms)."""


OnCommit = Callable[[list[StoredEvent]], None]


class _Wake:
    """Put on the writer's queue after an urgent command, to wake a waiting writer."""


_WAKE = _Wake()


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


def migrate(engine: Engine, lock: Callable[[Connection], None] | None = None) -> None:
    """Bring the database to the newest schema (a no-op when it is already there).

    An empty database gets the declared schema directly and is stamped with the head revision,
    as Alembic's cookbook describes ("Building an Up to Date Database from Scratch"); a test
    proves that running every migration on an empty database yields the same schema. Any other
    database is upgraded by Alembic, which is imported only then (it costs start-up time).

    Everything runs in one transaction, after ``lock(conn)`` (the subclass's migration lock), so
    replicas that start together migrate once: the others wait, then find the head revision.
    """
    with engine.begin() as conn:
        if lock is not None:
            lock(conn)
        tables = set(inspect(conn).get_table_names())
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
        _upgrade(conn)


def upgrade(engine: Engine) -> None:
    """Run Alembic's ``upgrade head`` on the database."""
    with engine.begin() as conn:
        _upgrade(conn)


def _upgrade(conn: Connection) -> None:
    # Alembic is imported only when there is something to do: it costs start-up time.
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


class Database(abc.ABC):
    """The store's connections: one writer thread and a pool of reader threads.

    Open one with ``await Database.open(target)``: an SQLite file path or a ``postgresql://``
    URL (see ``location.parse``). ``close()`` drains the writer and disposes the engines.
    ``on_commit`` (set by the engine) receives each committed transaction's events, in commit
    order, on the event loop thread.

    The shared logic lives here: the writer thread and its group commit, the readers, the
    translation of storage failures, the hand-over of results and events to the loop. The
    subclasses (``sqlite.SQLiteDatabase``, ``postgres.PostgresDatabase``) override only what
    differs between the databases: engine set-up, migration locking, the lock every write
    transaction takes (``_begin_write``), the clock leases are judged by (``clock_ms``) and the
    reading of storage errors (``storage_error``). This is the shape of DBOS's system database
    (``dbos/_sys_db.py`` with ``_sys_db_sqlite.py`` and ``_sys_db_postgres.py``).

    Attributes:
        kind: ``"sqlite"`` or ``"postgresql"``.
        where: The file, or the URL without its password: for errors and ``/global/health``.
    """

    kind: ClassVar[str]
    poll_s: float
    """How often the event feed reads the log for other processes' events, seconds."""

    def __init__(
        self, write_engine: Engine, read_engine: Engine, *, readers: int, where: str
    ) -> None:
        self.where = where
        self._write_engine = write_engine
        self._read_engine = read_engine
        self._reader_count = readers
        self._queue: queue.SimpleQueue[_Command | _Wake | None] = queue.SimpleQueue()
        self._urgent: collections.deque[_Command] = collections.deque()
        self._urgent_in_flight: set[asyncio.Future[Any]] = set()
        # Futures of the urgent writes not yet committed (``yield_to_urgent`` waits for them).
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
        self._feed = EventFeed(self.read, self._publish_ordered, self.poll_s)

    @staticmethod
    async def open(
        target: Path | str,
        *,
        synchronous: str = "FULL",
        pool_size: int | None = None,
        poll_s: float | None = None,
    ) -> Database:
        """Open the store ``target`` names, migrate it to the newest schema, start the writer.

        Args:
            target: An SQLite file (a path, or ``sqlite:///…``) or a PostgreSQL URL
                (``postgresql://user:pass@host:port/db``); see ``location.parse``.
            synchronous: SQLite's ``synchronous`` pragma (ignored by PostgreSQL, whose
                commits are durable as its server is configured).
            pool_size: Reader connections (default 4).
            poll_s: Override the event feed's poll interval (tests prove the wake-ups with a
                long one).

        Raises:
            InvalidLocation: ``target`` is neither a path nor a supported URL.
            StorageUnavailable: The store could not be created, reached or migrated.
        """
        from roost.store.location import parse

        location = parse(target)
        readers = pool_size or _READERS
        db: Database
        if location.kind == "postgresql":
            from roost.store.postgres import PostgresDatabase

            db = PostgresDatabase(location.url, where=location.display, readers=readers)
        else:
            from roost.store.sqlite import SQLiteDatabase

            assert location.path is not None
            db = SQLiteDatabase(location.path, synchronous=synchronous, readers=readers)
        if poll_s is not None:
            db._feed = EventFeed(db.read, db._publish_ordered, poll_s)
        try:
            await anyio.to_thread.run_sync(db._prepare)
        except Exception as exc:
            error = db.storage_error(exc)
            db._write_engine.dispose()
            db._read_engine.dispose()
            if error is None:
                raise
            raise error from exc
        db._start()
        await db._feed.start()
        db._listen(db._feed.wake)
        return db

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._writer_main, name="roost-writer", daemon=True)
        self._thread.start()
        for n in range(self._reader_count):
            reader = threading.Thread(
                target=self._reader_main, name=f"roost-reader-{n}", daemon=True
            )
            reader.start()
            self._readers.append(reader)
        self._reaper = threading.Thread(target=self._reaper_main, name="roost-reaper", daemon=True)
        self._reaper.start()

    # -- what each database overrides --------------------------------------------------

    @abc.abstractmethod
    def _prepare(self) -> None:
        """Create the database if needed and migrate it (on a worker thread, before start)."""

    @abc.abstractmethod
    def storage_error(self, exc: BaseException) -> StorageUnavailable | None:
        """The ``StorageUnavailable`` that a driver error stands for, or None for other
        errors (a constraint violation, a bug)."""

    @abc.abstractmethod
    def clock_ms(self, conn: Connection) -> int:
        """Now, in Unix epoch ms, by the clock every replica agrees on: lease expiry is judged
        by it (``leases``), never by one host's clock against another's."""

    @abc.abstractmethod
    def _listen(self, wake: Callable[[], None]) -> None:
        """Start calling ``wake`` (on the loop) whenever another process commits events; a
        database without notifications relies on the feed's poll."""

    @abc.abstractmethod
    def _stop_listening(self) -> None:
        """Stop what ``_listen`` started."""

    @abc.abstractmethod
    def _committed_events(self, conn: Connection) -> None:
        """Called inside a write transaction that appended events, just before its commit:
        the place to notify other processes."""

    @abc.abstractmethod
    def _begin_write(self, conn: Connection) -> None:
        """Called first in every write transaction: take the lock that makes write
        transactions of all processes on the store run one at a time (module docstring)."""

    async def close(self) -> None:
        """Finish queued writes, stop the writer thread and dispose the engines."""
        if self._closed:
            return
        await self._feed.stop()
        self._stop_listening()
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

    async def write(self, fn: Callable[[Tx], T], *, urgent: bool = False) -> T:
        """Run ``fn`` in a write transaction on the writer thread and return its result.

        ``fn`` may run more than once (see the module docstring) and must touch nothing but
        the transaction. Its events are published through ``on_commit`` after the commit.

        An ``urgent`` write (an admission: a client waits for its answer) jumps the queue: the
        writer runs the urgent writes, grouped, in a transaction of their own as soon as the
        one in progress commits. Urgent writes keep their order among themselves; against
        ordinary writes queued at the same time they have none (no caller relies on one:
        writes that must follow each other are awaited one after the other).

        Raises:
            StoreClosed: The database was closed.
            StorageUnavailable: The disk is full, the database is read-only or I/O failed;
                nothing was stored.
            Exception: Whatever ``fn`` raised; its transaction was rolled back.
        """
        if self._closed:
            raise StoreClosed("the store is closed")
        if not urgent:
            await self.yield_to_urgent()
        return await self._submit(fn, urgent=urgent)

    async def yield_to_urgent(self) -> None:
        """Wait, up to ``_YIELD_S``, for the urgent writes in flight now to commit (returns at
        once when none is; urgent writes submitted meanwhile are not waited for)."""
        if self._urgent_in_flight:
            await asyncio.wait(list(self._urgent_in_flight), timeout=_YIELD_S)

    async def _submit(self, fn: Callable[[Tx], T], *, urgent: bool) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        command = _Command(fn=fn, future=future, loop=loop, number=next(self._numbers))
        if urgent:
            self._urgent_in_flight.add(future)
            future.add_done_callback(self._urgent_in_flight.discard)
            self._urgent.append(command)
            self._queue.put(_WAKE)
        else:
            self._queue.put(command)
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
        conn: Connection | None = None
        while (read := self._reads.get()) is not None:
            # A read is idempotent: one whose connection turns out dead (the database server
            # restarted since its last use) runs again on a new one.
            for attempt in (1, 2):
                try:
                    if conn is None:
                        conn = self._read_engine.connect()
                    with conn.begin():
                        conn.info[CLOCK] = self.clock_ms
                        result = read.fn(conn)
                except BaseException as exc:  # delivered to the caller, like any result
                    if attempt == 1 and _disconnected(exc):
                        continue
                    if conn is None:  # e.g. the file became unreadable: fail, don't hang
                        log.warning("a reader could not open the database: %s", exc)
                    read.deliver(None, self._translate(exc))
                else:
                    read.deliver(result, None)
                break
        if conn is not None:
            conn.close()

    # -- the writer thread -------------------------------------------------------------

    def _writer_main(self) -> None:
        with self._write_engine.connect() as conn:
            stop = False
            while True:
                ordinary: list[_Command] = []
                if not stop:
                    ordinary, stop = self._take_ordinary(block=not self._urgent)
                # Urgent commands (admissions) run first, in a transaction of their own, then
                # the ordinary ones taken with them: an urgent command waits for at most the
                # transaction in progress, and ordinary ones for at most one urgent group.
                urgent = self._take_urgent()
                if urgent:
                    self._run_group(conn, urgent)
                if ordinary:
                    self._run_group(conn, ordinary)
                elif stop and not self._urgent:
                    break
                # Let the finished commands go before waiting for the next one: a 100k-part
                # prompt's events would otherwise stay alive until then (issue #9).
                del urgent, ordinary
        # Anything still queued after close() is failed rather than left hanging.
        left_over = self._take_urgent(limit=None)
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(left, _Command):
                left_over.append(left)
        for left in left_over:
            left.error = StoreClosed("the store is closed")
            self._deliver([left])

    def _take_ordinary(self, *, block: bool) -> tuple[list[_Command], bool]:
        """Up to ``_MAX_GROUP`` queued ordinary commands, waiting for the first if ``block``
        (until an urgent command wakes the writer); and whether ``close()`` asked it to stop."""
        group: list[_Command] = []
        while len(group) < _MAX_GROUP:
            try:
                nxt = self._queue.get() if block and not group else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return group, True
            if isinstance(nxt, _Wake):
                block = False  # an urgent command is waiting
                continue
            group.append(nxt)
        return group, False

    def _take_urgent(self, limit: int | None = _MAX_GROUP) -> list[_Command]:
        taken: list[_Command] = []
        while self._urgent and (limit is None or len(taken) < limit):
            taken.append(self._urgent.popleft())
        return taken

    def _run_group(self, conn: Connection, group: list[_Command]) -> None:
        for attempt in (1, 2):
            locked = False
            try:
                with conn.begin():
                    self._begin_write(conn)
                    locked = True
                    for cmd in group:
                        self._run(conn, cmd)
                    if any(cmd.events for cmd in group):
                        self._committed_events(conn)
            except Exception as exc:
                # A connection found dead before the write lock was taken ran nothing of the
                # group: run it again on a new connection (SQLAlchemy reconnects an invalidated
                # one on its next use). Later failures are never retried here: a connection
                # lost during COMMIT may have committed.
                if attempt == 1 and not locked and _disconnected(exc):
                    continue
                if len(group) == 1:
                    group[0].result, group[0].events = None, []
                    group[0].error = self._translate(exc)
                else:
                    for cmd in group:
                        self._run_alone(conn, cmd)
            break
        self._deliver(group)

    def _run_alone(self, conn: Connection, cmd: _Command) -> None:
        cmd.result, cmd.events, cmd.error = None, [], None
        try:
            with conn.begin():
                self._begin_write(conn)
                self._run(conn, cmd)
                if cmd.events:
                    self._committed_events(conn)
        except Exception as exc:
            cmd.result, cmd.events, cmd.error = None, [], self._translate(exc)

    def _run(self, conn: Connection, cmd: _Command) -> None:
        # The Tx lives only in this frame, so after the commit the command holds the only
        # list of its events (see the module docstring on freeing large batches).
        conn.info[CLOCK] = self.clock_ms
        tx = Tx(conn)
        self._inject(cmd)
        cmd.result = cmd.fn(tx)
        tx.finish()
        cmd.events = tx.events

    # -- the reaper thread -------------------------------------------------------------

    def _reaper_main(self) -> None:
        while (batch := self._garbage.get()) is not None:
            while batch:
                del batch[-_FREE_SLICE:]

    def _translate(self, exc: BaseException) -> BaseException:
        """``StorageUnavailable`` for storage failures (see ``storage_error``), ``Conflict``
        for a violated unique key (either driver's ``IntegrityError``), else ``exc``."""
        if isinstance(exc, IntegrityError):
            conflict = Conflict(f"conflicting write: {exc.orig}")
            conflict.__cause__ = exc
            return conflict
        return self.storage_error(exc) or exc

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
        self._feed.local(events)

    def _publish_ordered(self, events: list[StoredEvent]) -> None:
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


def _disconnected(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection was dead (SQLAlchemy invalidated it)."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
