"""The snapshot store on real directories with the real git: what it leaves out, the limits that
bound a snapshot's cost, and a store left locked by a killed git."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.engine.snapshots import SnapshotLimits, SnapshotStore
from roost.errors import SnapshotFailed

pytestmark = pytest.mark.anyio


@pytest.fixture
def work(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "a.txt").write_text("a\n")
    return directory


def store(tmp_path: Path, work: Path, **limits: int) -> SnapshotStore:
    return SnapshotStore(tmp_path / "data" / "snapshot", work, limits=SnapshotLimits(**limits))


async def test_big_ignored_and_roost_files_are_left_out_of_snapshots(work: Path) -> None:
    data = work / ".data"  # Roost's data directory inside the project: its store and database
    snapshots = SnapshotStore(
        data / "snapshot", work, limits=SnapshotLimits(max_file_bytes=100), exclude=[data / "db"]
    )
    (work / ".gitignore").write_text("*.log\n")
    before = await snapshots.track()
    (work / "big.bin").write_bytes(b"x" * 101)
    (work / "run.log").write_text("ignored\n")
    (data / "db").write_text("the server's own\n")
    (work / "small.txt").write_text("kept\n")
    after = await snapshots.track()
    assert await snapshots.changed_files(before, after) == ["small.txt"]


async def test_restore_puts_files_back_deletes_new_ones_and_their_empty_directories(
    tmp_path: Path, work: Path
) -> None:
    snapshots = store(tmp_path, work)
    before = await snapshots.track()
    (work / "a.txt").write_text("changed\n")
    (work / "new" / "deep").mkdir(parents=True)
    (work / "new" / "deep" / "n.txt").write_text("new\n")
    after = await snapshots.track()
    changed = await snapshots.changed_files(before, after)
    assert changed == ["a.txt", "new/deep/n.txt"]
    await snapshots.restore(dict.fromkeys(changed, before))
    assert (work / "a.txt").read_text() == "a\n"
    assert not (work / "new").exists()
    await snapshots.restore(dict.fromkeys(changed, after))
    assert (work / "new" / "deep" / "n.txt").read_text() == "new\n"


async def test_a_snapshot_of_too_many_new_files_is_refused_until_they_are_ignored(
    tmp_path: Path, work: Path
) -> None:
    snapshots = store(tmp_path, work, max_new_files=5)
    (work / "node_modules").mkdir()
    for i in range(10):
        (work / "node_modules" / f"m{i}.js").write_text(f"{i}\n")
    with pytest.raises(SnapshotFailed, match="new or changed files"):
        await snapshots.track()
    (work / ".gitignore").write_text("node_modules/\n")
    await snapshots.track()


async def test_a_lock_left_by_a_killed_git_does_not_block_the_next_server(
    tmp_path: Path, work: Path
) -> None:
    first = store(tmp_path, work)
    before = await first.track()
    (first.git_dir / "index.lock").write_text("")  # git was SIGKILLed with the server
    (work / "a.txt").write_text("changed\n")
    restarted = store(tmp_path, work)
    assert await restarted.changed_files(before, await restarted.track()) == ["a.txt"]
