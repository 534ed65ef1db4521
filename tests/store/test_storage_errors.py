"""Storage failures enter the store as ``StorageUnavailable`` naming the cause, store nothing,
and the writer takes commands again once the storage accepts writes.

The full disk is a real tmpfs filled by a ballast file and the read-only database a real ext4
file system the kernel remounted read-only (``tests/support/filesystems.py``); both need root
and are skipped without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from roost.errors import DISK_FULL, READ_ONLY, StorageUnavailable
from roost.model import event as ev
from roost.store import queries
from roost.store.database import Database
from roost.store.event_log import Tx
from tests.support.filesystems import Ballast, ext4_image, make_read_only, small_tmpfs

pytestmark = pytest.mark.anyio


def _create(session_id: str, text: str = "") -> Callable[[Tx], None]:
    """A command that creates a session whose title carries ``text`` (any size)."""
    info = {"id": session_id, "title": text, "directory": "/", "time": {"created": 1, "updated": 1}}

    def write(tx: Tx) -> None:
        tx.append(session_id, ev.SESSION_CREATED, {"sessionID": session_id, "info": info})

    return write


async def _stored(db: Database, session_id: str) -> bool:
    return await db.read(lambda c: queries.get_session(c, session_id)) is not None


async def test_a_write_on_a_full_disk_is_refused_as_disk_full_and_succeeds_once_space_is_back(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "fs", size_mib=4) as fs:
        db = await Database.open(fs / "roost.db")
        try:
            await db.write(_create("ses_before"))
            ballast = Ballast(fs)
            ballast.fill()
            big = "x" * (256 * 1024)  # needs new blocks whatever the WAL has left
            with pytest.raises(StorageUnavailable) as caught:
                await db.write(_create("ses_full", big))
            assert caught.value.cause == DISK_FULL
            assert caught.value.code == "SQLITE_FULL"
            assert "full" in caught.value.message
            assert not await _stored(db, "ses_full")  # nothing half-stored
            assert await _stored(db, "ses_before")  # reads still work on a full disk
            ballast.free()
            await db.write(_create("ses_full", big))  # the same writer connection goes on
            assert await _stored(db, "ses_full")
        finally:
            await db.close()


async def test_a_write_after_the_file_system_went_read_only_is_refused_as_read_only(
    tmp_path: Path,
) -> None:
    with ext4_image(tmp_path / "fs", tmp_path / "fs.img") as fs:
        db = await Database.open(fs / "roost.db")
        try:
            await db.write(_create("ses_before"))
            make_read_only(fs)
            with pytest.raises(StorageUnavailable) as caught:
                await db.write(_create("ses_after"))
            # The open connection sees EROFS as a failed write (SQLITE_IOERR_WRITE) ...
            assert caught.value.cause == READ_ONLY
            assert "read-only" in caught.value.message
            assert await _stored(db, "ses_before")
            assert not await _stored(db, "ses_after")
            # ... and a connection opened now is read-only from the start (SQLITE_READONLY).
            again = await Database.open(fs / "roost.db")
            try:
                with pytest.raises(StorageUnavailable) as refused:
                    await again.write(_create("ses_after"))
                assert (refused.value.cause, refused.value.code) == (READ_ONLY, "SQLITE_READONLY")
            finally:
                await again.close()
        finally:
            await db.close()
