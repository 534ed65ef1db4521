"""What a step's snapshots cost: ``SnapshotStore`` on a generated tree of source-like files.

The tree has ``--files`` files (default 2,000) of 0.5 to 8 KiB in 100 directories. Measured, each
``--rounds`` times (p50 and max, ms): the first snapshot (every file hashed), a snapshot with
nothing changed (the cost a step pays twice), a snapshot after 10 files changed, the changed
files between two snapshots, restoring 10 files, and the ``SnapshotFileDiff``s of 10 files; with
objects fsynced (``durable``, the default, as ``synchronous=FULL``) and without. Run:
``.venv/bin/python bench/snapshot_bench.py [--files 2000] [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from roost.engine.snapshots import SnapshotStore  # noqa: E402

T = TypeVar("T")


def make_tree(root: Path, files: int) -> list[Path]:
    """``files`` text files of 0.5 to 8 KiB in 100 directories; returns their paths."""
    rng = random.Random(12)
    paths = []
    for i in range(files):
        path = root / f"pkg{i % 100:02d}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = rng.randint(10, 160)
        path.write_text("".join(f"value_{i}_{n} = {rng.random()!r}\n" for n in range(lines)))
        paths.append(path)
    return paths


def touch(paths: list[Path], round_no: int) -> None:
    for path in paths:
        path.write_text(path.read_text() + f"# round {round_no}\n")


async def timed(operation: Awaitable[T]) -> tuple[float, T]:
    """``(milliseconds, result)`` of awaiting ``operation``."""
    start = time.perf_counter()
    result = await operation
    return (time.perf_counter() - start) * 1000, result


async def measure(files: int, rounds: int, durable: bool) -> dict[str, list[float]]:
    """Milliseconds per operation over ``rounds`` fresh stores on one tree."""
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "project"
        paths = make_tree(work, files)
        for r in range(rounds):
            git_dir = Path(tmp) / f"store-{r}"
            store = SnapshotStore(git_dir, work, durable=durable)
            row: dict[str, float] = {}
            row["first snapshot"], base = await timed(store.track())
            row["snapshot, nothing changed"], _ = await timed(store.track())
            touch(paths[r * 10 : r * 10 + 10], r)
            row["snapshot, 10 files changed"], after = await timed(store.track())
            row["changed files (10)"], changed = await timed(store.changed_files(base, after))
            row["restore 10 files"], _ = await timed(store.restore(dict.fromkeys(changed, base)))
            row["file diffs (10)"], _ = await timed(store.file_diffs(base, after))
            for key, value in row.items():
                results.setdefault(key, []).append(value)
            shutil.rmtree(git_dir)
    return results


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"{args.files} files, {args.rounds} rounds; ms")
    print(f"{'operation':<28} {'durable p50':>12} {'max':>8} {'no fsync p50':>13} {'max':>8}")
    durable = asyncio.run(measure(args.files, args.rounds, durable=True))
    loose = asyncio.run(measure(args.files, args.rounds, durable=False))
    for key, values in durable.items():
        d, n = sorted(values), sorted(loose[key])
        print(
            f"{key:<28} {d[len(d) // 2]:>12.1f} {d[-1]:>8.1f} {n[len(n) // 2]:>13.1f} {n[-1]:>8.1f}"
        )


if __name__ == "__main__":
    main()
