"""Snapshots of the project's files, kept in a private git object store, as OpenCode keeps them.

A snapshot is a git tree hash. ``track`` stages the project directory into the store's own
index (``git add -A``) and writes that index as a tree (``git write-tree``); ``restore`` checks
files out of trees again, or deletes them where a tree does not have them. The store is a bare
git directory of Roost's own under its data directory (``store_dir``), always used as
``git --git-dir <store> --work-tree <project>``: the user's repository is never written, and its
``.git`` never enters a snapshot (git skips ``.git`` entries). This is what OpenCode 1.18 does
(``packages/opencode/src/snapshot/index.ts``), for any directory rather than only git projects.

Invariants:
    - A hash returned by ``track`` names a tree whose objects are on disk, fsynced first when
      ``durable``: a caller that stores the hash afterwards can always restore from it.
    - One git command at a time per store (an ``asyncio.Lock``): the index is a stat cache
      shared by every session of the project. One server per data directory: a lock file left
      by a killed git command is removed.

What is left out, and what a snapshot costs (``SnapshotLimits``; ``bench/snapshot_bench.py``):
    - Ignored files (``.gitignore`` files, the repository's ``.git/info/exclude``, the user's
      global excludes file), Roost's data directory and files over ``max_file_bytes`` (2 MiB,
      as OpenCode) are not snapshotted, so revert never touches them. Nested repositories are
      recorded as gitlinks: their files are not restored.
    - The index caches stat data, so a snapshot hashes only files new or changed since the
      previous one; the rest is a walk of the tree (``ls-files``, ``diff-files``, ``add``).
      Many new files (the first snapshot) go into one pack rather than a file each. On 2,000
      files (a shared 2-core VM, load 4 to 5): first snapshot 0.5 to 1.9 s, then 30 to 55 ms
      with nothing changed and 70 to 290 ms with 10 files changed; a step that changes files
      takes two.
    - A snapshot that would hash more than ``max_new_files`` files or ``max_new_bytes`` bytes at
      once is refused (``SnapshotFailed``): an unignored ``node_modules`` costs each step one
      walk, not minutes and gigabytes.
    - Every git command has a timeout (``timeout_s``); one that times out or is cancelled is
      killed.
    - Nothing is pruned: objects stay until the store is deleted (OpenCode prunes after 7 days,
      after which older sessions cannot be reverted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.errors import SnapshotFailed

log = logging.getLogger(__name__)

_CONFIG = (
    *("-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "core.symlinks=true"),
    *("-c", "core.longpaths=true", "-c", "core.quotepath=false", "-c", "core.fsmonitor=false"),
    # No hooks (a global core.hooksPath would run the user's on our checkouts), no automatic gc
    # (it would prune the unreferenced trees that snapshots are), no nested-repo advice.
    *("-c", f"core.hooksPath={os.devnull}", "-c", "gc.auto=0", "-c", "maintenance.auto=false"),
    *("-c", "advice.addEmbeddedRepo=false"),
)
_DURABLE = ("-c", "core.fsync=objects,pack-metadata", "-c", "core.fsyncMethod=batch")
_LITERAL = ("--literal-pathspecs",)
_BULK = ("-c", "core.bigFileThreshold=1")
_BULK_FILES = 200
"""More new or changed files than this are added in bulk, into one pack."""
_CHECKOUT_BATCH = 500
"""Paths per ``ls-tree`` command line."""


@dataclass(frozen=True)
class SnapshotLimits:
    """Bounds on what one snapshot may cost (see the module docstring)."""

    max_file_bytes: int = 2 * 1024 * 1024
    """Larger files are left out of snapshots."""
    max_new_files: int = 20_000
    """Most files one snapshot may hash (new or changed since the previous snapshot)."""
    max_new_bytes: int = 512 * 1024 * 1024
    """Most bytes one snapshot may hash."""
    timeout_s: float = 60.0
    """Longest any one git command may run."""


def store_dir(data_dir: Path, project_id: str, directory: Path) -> Path:
    """Where the snapshots of ``directory`` live: ``<data>/snapshot/<project id>/<16 hex>``
    (OpenCode: ``<data>/snapshot/<project id>/<hash of the worktree>``)."""
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return data_dir / "snapshot" / project_id / digest


@dataclass(frozen=True)
class _Result:
    code: int
    out: bytes
    err: bytes


class SnapshotStore:
    """The snapshots of one project directory (see the module docstring).

    Args:
        git_dir: The private store (created on first use), e.g. ``store_dir(...)``.
        work_tree: The project directory, absolute.
        durable: fsync objects before ``track`` returns (as the database's ``synchronous=FULL``).
        exclude: Files and directories never snapshotted (Roost's data directory, or its
            database files when it is the project directory); the store's own directory never
            is either.
    """

    def __init__(
        self,
        git_dir: Path,
        work_tree: Path,
        *,
        durable: bool = True,
        limits: SnapshotLimits | None = None,
        exclude: Sequence[Path] = (),
    ) -> None:
        self.git_dir = git_dir
        self.work_tree = work_tree
        self.limits = limits or SnapshotLimits()
        self._exclude = [
            p for p in (git_dir, *exclude) if p.is_relative_to(work_tree) and p != work_tree
        ]
        self._git_args = ("git", *_CONFIG, *(_DURABLE if durable else ()), f"--git-dir={git_dir}")
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self._lock = asyncio.Lock()
        self._ready = False

    # -- paths -----------------------------------------------------------------------

    def absolute(self, relative: str) -> str:
        """The absolute path of a path relative to the work tree (as OpenCode's patch files)."""
        return str(self.work_tree / relative)

    def relative(self, path: str) -> str | None:
        """``path`` relative to the work tree, or None when it lies outside."""
        normal = Path(os.path.normpath(path))
        if not normal.is_absolute() or not normal.is_relative_to(self.work_tree):
            return None
        rel = normal.relative_to(self.work_tree).as_posix()
        return None if rel == "." else rel

    # -- commands --------------------------------------------------------------------

    async def track(self) -> str:
        """Snapshot the work tree now; returns the tree hash (40 hex).

        Raises:
            SnapshotFailed: git failed or timed out, or the snapshot exceeds ``limits``.
        """
        async with self._lock:
            await self._prepare()
            others, changed = await asyncio.gather(
                self._git("ls-files", "-z", "--others", "--exclude-standard"),
                self._git("diff-files", "-z", "--name-only"),
            )
            candidates = _names(others) + _names(changed)
            left_out = await asyncio.to_thread(self._check_sizes, candidates)
            specs = [b".", *(b":(exclude,literal)" + os.fsencode(p) for p in left_out)]
            added = await self._run(
                "add",
                "-A",
                "--ignore-errors",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                # Many new files go into one pack instead of a loose file each ("bulk checkin"),
                # so a first snapshot costs a few file creations rather than thousands.
                options=_BULK if len(candidates) > _BULK_FILES else (),
                stdin=b"\0".join(specs),
            )
            problem = added.err.decode(errors="replace").strip()
            if added.code == 1:  # files it could not read: the others are staged all the same
                log.warning("snapshot add: %s", problem)
            elif added.code != 0:
                raise SnapshotFailed("add", problem)
            return (await self._git("write-tree")).decode().strip()

    async def changed_files(self, old: str, new: str) -> list[str]:
        """Paths (relative, ``/``-separated) that differ between two snapshots."""
        async with self._lock:
            out = await self._git("diff-tree", "-r", "-z", "--name-only", "--no-renames", old, new)
        return _names(out)

    async def restore(self, plan: Mapping[str, str]) -> None:
        """Put each path back as a snapshot has it: ``{relative path: tree hash}``.

        A path the tree has is checked out of it; a path it lacks is deleted from the work tree,
        with the directories that leaves empty.

        Raises:
            SnapshotFailed: git failed or timed out.
        """
        by_tree: dict[str, list[str]] = {}
        for path, tree in plan.items():
            by_tree.setdefault(tree, []).append(path)
        async with self._lock:
            await self._prepare()
            for tree, paths in by_tree.items():
                present: set[str] = set()
                for i in range(0, len(paths), _CHECKOUT_BATCH):
                    batch = paths[i : i + _CHECKOUT_BATCH]
                    out = await self._git(
                        "ls-tree", "-r", "-z", "--name-only", tree, "--", *batch, options=_LITERAL
                    )
                    present.update(set(_names(out)) & set(batch))
                if present:
                    await self._git(
                        "checkout",
                        tree,
                        "--pathspec-from-file=-",
                        "--pathspec-file-nul",
                        options=_LITERAL,
                        stdin=b"\0".join(os.fsencode(p) for p in sorted(present)),
                    )
                absent = [p for p in paths if p not in present]
                if absent:
                    await asyncio.to_thread(self._delete, absent)

    async def diff_text(self, old: str, new: str) -> str:
        """The unified diff between two snapshots (git's ``diff --git`` format)."""
        async with self._lock:
            out = await self._git("diff-tree", "-r", "-p", "--no-renames", old, new)
        return out.decode(errors="replace")

    async def file_diffs(self, old: str, new: str) -> list[dict[str, Any]]:
        """One OpenCode ``SnapshotFileDiff`` per path that differs, by path.

        Each is ``{file, patch, additions, deletions, status}``: ``status`` is ``added``,
        ``deleted`` or ``modified``; a binary file counts 0 lines.
        """
        async with self._lock:
            numstat, statuses, patch = await asyncio.gather(
                self._git("diff-tree", "-r", "-z", "--numstat", "--no-renames", old, new),
                self._git("diff-tree", "-r", "-z", "--name-status", "--no-renames", old, new),
                self._git("diff-tree", "-r", "-p", "--no-renames", old, new),
            )
        codes = _names(statuses)
        status = {
            codes[i + 1]: {"A": "added", "D": "deleted"}.get(codes[i][:1], "modified")
            for i in range(0, len(codes) - 1, 2)
        }
        counts = []
        for entry in _names(numstat):
            added, deleted, path = entry.split("\t", 2)  # "-" for a binary file
            counts.append((path, _count(added), _count(deleted)))
        patches = _split_patch(patch.decode(errors="replace"))
        if len(patches) != len(counts):  # never seen; one diff per file then
            patches = [await self._file_patch(old, new, path) for path, _, _ in counts]
        return [
            {
                "file": path,
                "patch": text,
                "additions": added,
                "deletions": deleted,
                "status": status.get(path, "modified"),
            }
            for (path, added, deleted), text in zip(counts, patches, strict=True)
        ]

    # -- internals -------------------------------------------------------------------

    async def _file_patch(self, old: str, new: str, path: str) -> str:
        async with self._lock:
            out = await self._git(
                "diff-tree", "-r", "-p", "--no-renames", old, new, "--", path, options=_LITERAL
            )
        return out.decode(errors="replace")

    async def _prepare(self) -> None:
        """Create the store on first use, drop a stale index lock, mirror the excludes."""
        if not self._ready:
            await asyncio.to_thread(self.git_dir.mkdir, parents=True, exist_ok=True)
            await self._git("init", "--bare", "-q", work_tree=False)
            await asyncio.to_thread(_remove_index_lock, self.git_dir)
            self._ready = True
        await asyncio.to_thread(self._sync_excludes)

    def _sync_excludes(self) -> None:
        """``<store>/info/exclude``: the repository's own ``info/exclude`` (git reads only the
        store's) and the excluded directories."""
        lines = []
        own = self.work_tree / ".git" / "info" / "exclude"
        with contextlib.suppress(OSError):
            lines.append(own.read_text(errors="replace").rstrip())
        for path in self._exclude:
            lines.append("/" + _literal_pattern(path.relative_to(self.work_tree).as_posix()))
        text = "\n".join(line for line in lines if line) + "\n"
        target = self.git_dir / "info" / "exclude"
        with contextlib.suppress(OSError):
            if target.read_text() == text:
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def _check_sizes(self, candidates: list[str]) -> list[str]:
        """The candidates to leave out (over ``max_file_bytes``).

        Raises:
            SnapshotFailed: The rest exceed ``max_new_files`` or ``max_new_bytes``.
        """
        limits = self.limits
        if len(candidates) > limits.max_new_files:
            raise SnapshotFailed(
                "limits", f"{len(candidates)} new or changed files (limit {limits.max_new_files})"
            )
        left_out, total = [], 0
        for name in candidates:
            try:
                size = (self.work_tree / name).lstat().st_size
            except OSError:
                continue  # deleted meanwhile, or a nested repository's directory entry
            if size > limits.max_file_bytes:
                left_out.append(name)
            else:
                total += size
        if total > limits.max_new_bytes:
            raise SnapshotFailed(
                "limits", f"{total} bytes of new or changed files (limit {limits.max_new_bytes})"
            )
        return left_out

    def _delete(self, paths: list[str]) -> None:
        for path in paths:
            target = self.work_tree / path
            try:
                target.unlink()
            except FileNotFoundError:
                continue
            except IsADirectoryError:
                log.warning("snapshot restore: %s is a directory now; left alone", path)
                continue
            parent = target.parent
            while parent != self.work_tree and parent.is_relative_to(self.work_tree):
                try:
                    parent.rmdir()
                except OSError:
                    break  # not empty
                parent = parent.parent

    async def _git(
        self,
        command: str,
        *args: str,
        options: Sequence[str] = (),
        stdin: bytes | None = None,
        work_tree: bool = True,
    ) -> bytes:
        """Run ``git [options] command args`` on the store (and the work tree); its stdout.

        Raises:
            SnapshotFailed: It exited non-zero, timed out, or could not start.
        """
        result = await self._run(command, *args, options=options, stdin=stdin, work_tree=work_tree)
        if result.code != 0:
            raise SnapshotFailed(command, result.err.decode(errors="replace").strip())
        return result.out

    async def _run(
        self,
        command: str,
        *args: str,
        options: Sequence[str] = (),
        stdin: bytes | None = None,
        work_tree: bool = True,
    ) -> _Result:
        trees = (f"--work-tree={self.work_tree}",) if work_tree else ()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._git_args,
                *trees,
                *options,
                command,
                *args,
                cwd=self.work_tree,
                env=self._env,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise SnapshotFailed(command, f"cannot run git: {exc}") from exc
        finished = False
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                out, err = await proc.communicate(stdin)
            finished = True
        except TimeoutError as exc:
            raise SnapshotFailed(command, f"timed out after {self.limits.timeout_s} s") from exc
        finally:
            if not finished:  # timed out or cancelled: no git left running, no lock left behind
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                await asyncio.to_thread(_remove_index_lock, self.git_dir)
        assert proc.returncode is not None
        return _Result(proc.returncode, out, err)


def _names(out: bytes) -> list[str]:
    """NUL-separated git output as paths; names that are not UTF-8 are skipped (they could not
    travel in JSON parts)."""
    names = []
    for raw in out.split(b"\0"):
        if not raw:
            continue
        try:
            names.append(raw.decode())
        except UnicodeDecodeError:
            log.warning("snapshot: skipping a path that is not UTF-8: %r", raw)
    return names


def _count(field: str) -> int:
    return int(field) if field.isdigit() else 0


def _split_patch(text: str) -> list[str]:
    """A multi-file patch cut into one patch per file (each starts with ``diff --git``)."""
    pieces: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git "):
            pieces.append([line])
        elif pieces:
            pieces[-1].append(line)
    return ["".join(p) for p in pieces]


def _literal_pattern(path: str) -> str:
    """``path`` as a gitignore pattern matching only itself, once prefixed with ``/``
    (gitignore(5): wildcards and trailing spaces escaped)."""
    escaped = "".join("\\" + c if c in "*?[\\" else c for c in path)
    stripped = escaped.rstrip(" ")
    return stripped + "\\ " * (len(escaped) - len(stripped))


def _remove_index_lock(git_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (git_dir / "index.lock").unlink()
