"""The store on an embedded SQLite file: the default, and replicas on one host.

What differs from PostgreSQL, and why:
- **Locking.** SQLite has one writer per file. The writer connection begins with
  ``BEGIN IMMEDIATE``, so it takes the write lock up front and never fails with ``SQLITE_BUSY``
  half-way through a transaction; readers take deferred (shared) WAL snapshots. Several
  processes on one file queue on that lock (``busy_timeout``), which serialises every write
  transaction: the event ids (``INTEGER PRIMARY KEY AUTOINCREMENT``) are therefore in commit
  order and gapless, and the store's check-then-write paths need no other lock.
- **Clock.** Every process on one file runs on one host, so lease expiry uses the host's clock.
- **Storage errors** come as result codes (``SQLITE_FULL``, ``SQLITE_READONLY``,
  ``SQLITE_IOERR_*``), mapped to ``StorageUnavailable``.
- **Migrations** run in one ``BEGIN IMMEDIATE`` transaction, so replicas that start together
  migrate once: the second waits for the lock, then finds the head revision.
- **Page size.** A new file gets 2 KiB pages (``PAGE_SIZE_BYTES``); a file keeps the size it
  was created with.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from roost.errors import DISK_FULL, IO_ERROR, READ_ONLY, StorageUnavailable
from roost.store.database import Database, migrate
from roost.store.event_log import now_ms

_STORAGE_CAUSE_BY_CODE = {
    sqlite3.SQLITE_FULL: DISK_FULL,
    sqlite3.SQLITE_READONLY: READ_ONLY,
    sqlite3.SQLITE_IOERR: IO_ERROR,
}
"""Primary result codes that mean the storage refused (https://sqlite.org/rescode.html)."""


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL for an SQLite file."""
    return f"sqlite+pysqlite:///{path}"


_BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for another connection's lock before "database is locked"."""

PAGE_SIZE_BYTES = 2048
"""Page size of a new database file, bytes (SQLite's default is 4096).

Every commit appends each page it changed to the WAL, and a turn's commits each change one leaf
page of most of the tables and indexes it touches (about 12-20) while adding far less data than
that: a turn answered in a word wrote 254 KB with 4 KiB pages and 147 KB with 2 KiB, and a
100 KB streamed reply 4.3 and 2.9 bytes per byte (issue #13, ``bench/write_amp.py``). 1 KiB
pages wrote less for short replies and more for long ones (rows spill into more overflow
pages); list and history reads measured the same (``bench/store_scale.py``). SQLite sets the
size when the file is first written (https://sqlite.org/pragma.html#pragma_page_size), so an
existing database keeps its own."""


def _use_wal(cur: sqlite3.Cursor) -> None:
    """Switch the file to WAL mode (a no-op once it is).

    The first switch of a new file needs it to itself, and SQLite answers SQLITE_BUSY at once
    rather than through the busy handler when other connections (replicas starting together
    on one new file) hold it meanwhile; so the switch is tried again for up to the busy
    timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _configure(engine: Engine, *, synchronous: str, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Let the dialect's ``do_begin`` (below) emit BEGIN IMMEDIATE instead of pysqlite's
        # deferred BEGIN (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional
        # DDL" for pysqlite).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA page_size={PAGE_SIZE_BYTES}")  # a no-op once the file has pages
        _use_wal(cur)
        cur.execute(f"PRAGMA synchronous={synchronous}")
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


def storage_error(exc: BaseException, path: Path) -> StorageUnavailable | None:
    """The ``StorageUnavailable`` that an SQLite error stands for, or None for other errors.

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


class SQLiteDatabase(Database):
    """The store on one SQLite file (WAL mode), for one process or several on one host.

    Args:
        path: The database file; its directory is created if needed.
        synchronous: SQLite's ``synchronous`` pragma: ``FULL`` (durable against power loss)
            or ``NORMAL`` (against process crashes only).
        readers: Reader threads, each with its own connection.
    """

    kind = "sqlite"
    poll_s = 0.1
    """SQLite has no notifications: other processes' commits are found by polling the
    event table's newest ids (a primary-key range read)."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", readers: int = 4) -> None:
        url = sqlite_url(path)
        write_engine = create_engine(url, poolclass=NullPool)
        read_engine = create_engine(url, poolclass=NullPool)
        _configure(write_engine, synchronous=synchronous, writer=True)
        _configure(read_engine, synchronous=synchronous, writer=False)
        super().__init__(write_engine, read_engine, readers=readers, where=str(path))
        self.path = path
        self.synchronous = synchronous

    def _prepare(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        migrate(self._write_engine)

    def storage_error(self, exc: BaseException) -> StorageUnavailable | None:
        """See the module function ``storage_error``."""
        return storage_error(exc, self.path)

    def _begin_write(self, conn: Connection) -> None:
        # Nothing to add: the writer's BEGIN IMMEDIATE already holds SQLite's one write lock.
        pass

    def _listen(self, wake: Callable[[], None]) -> None:
        # SQLite has no notifications between processes: the feed polls (``poll_s``).
        pass

    def _stop_listening(self) -> None:
        pass

    def _committed_events(self, conn: Connection) -> None:
        pass

    def clock_ms(self, conn: Connection) -> int:
        """The host's clock: every process on one SQLite file shares it."""
        return now_ms()
