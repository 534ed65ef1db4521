"""Real file systems that refuse writes, for storage-failure tests: a small tmpfs that a ballast
file fills, and a loop-mounted ext4 image that the kernel turns read-only.

Both need root (``mount``); a test that cannot mount is skipped with the reason. CI runs as
root on the same kind of machine, so there they run.

- **Full disk.** ``small_tmpfs`` mounts a tmpfs of a few MiB; ``Ballast.fill`` writes zeros
  until ``ENOSPC``, so the next write that needs a new block fails the way a full disk does.
  ``Ballast.free`` deletes the file and the space is back at once.
- **Read-only.** ``ext4_image`` loop-mounts a fresh ext4 image with ``errors=remount-ro``;
  ``make_read_only`` reports a file-system error through ext4's ``trigger_fs_error`` (sysfs),
  and the kernel remounts the file system read-only under the open files, as it does after a
  real media error. ``mount -o remount,ro`` cannot do this while the server holds the database
  open for writing ("mount point is busy"), and ``chmod`` does not stop root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_MIB = 1 << 20


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (mount); this test runs as uid {os.geteuid()}")


@contextlib.contextmanager
def small_tmpfs(directory: Path, size_mib: int = 16) -> Iterator[Path]:
    """Mount a tmpfs of ``size_mib`` MiB on ``directory`` (created); unmount it afterwards."""
    _need_root("a small tmpfs")
    directory.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(directory))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        _unmount(directory)


@contextlib.contextmanager
def ext4_image(directory: Path, image: Path, size_mib: int = 32) -> Iterator[Path]:
    """Loop-mount a new ext4 image on ``directory`` with ``errors=remount-ro``."""
    _need_root("a loop-mounted ext4 image")
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 is not installed (Debian package e2fsprogs)")
    directory.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as f:
        f.truncate(size_mib * _MIB)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mounted = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(directory))
    if mounted.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        _unmount(directory)


def repair_ext4(directory: Path, image: Path) -> None:
    """Unmount the image, check it (``e2fsck -fy``) and mount it read-write again.

    The processes that had files open on it must have exited: until then it cannot unmount.
    """
    _unmount(directory)
    checked = _run("e2fsck", "-fy", str(image))
    assert checked.returncode in (0, 1), checked.stdout + checked.stderr  # 1: errors corrected
    mounted = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(directory))
    assert mounted.returncode == 0, mounted.stderr


def make_read_only(directory: Path) -> None:
    """Make the ext4 file system mounted on ``directory`` read-only, as a media error would."""
    device = Path(_run("findmnt", "-no", "SOURCE", str(directory)).stdout.strip()).name
    trigger = Path("/sys/fs/ext4") / device / "trigger_fs_error"
    if not trigger.exists():
        pytest.skip(f"this kernel has no {trigger} to report an ext4 error")
    trigger.write_text("roost test: make the file system read-only\n")
    assert is_read_only(directory), "the file system did not go read-only"


def is_read_only(directory: Path) -> bool:
    """Whether the file system holding ``directory`` refuses writes as read-only.

    ext4's emergency read-only state does not show in the mount flags: ask the file system by
    creating an unnamed temporary file.
    """
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return True
        raise
    os.close(fd)
    return False


class Ballast:
    """A file that takes the free space of a file system (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "ballast"

    def fill(self) -> int:
        """Write zeros until the file system is full; returns the bytes written."""
        written = 0
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (_MIB, 64 * 1024, 4096, 512, 1):  # smaller and smaller: every block
                chunk = b"\0" * size
                while True:
                    try:
                        written += os.write(fd, chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        """Delete the ballast: the space is free again."""
        self.path.unlink(missing_ok=True)


def _unmount(directory: Path) -> None:
    for _ in range(50):
        if _run("umount", str(directory)).returncode == 0 or not os.path.ismount(directory):
            return
        time.sleep(0.1)
    _run("umount", "-l", str(directory))  # still busy: detach it lazily rather than leak it
