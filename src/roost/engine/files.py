"""The project's files and version control, as OpenCode's clients browse them: the TUI's ``@``
picker (``/api/fs/find``, ``/find/file``), text search (``/find``), listings and contents
(``/file``, ``/file/content``), git status and diffs (``/file/status``, ``/vcs``, ``/vcs/diff``).

Invariant: every path a client names is resolved inside the project directory (symlinks
followed); anything outside is refused with ``InvalidInput``. File lists come from ripgrep
(``rg --files``, so ``.gitignore`` is respected, as OpenCode's are), text search from
``rg --json``, version control from the real ``git`` binary; each runs as a subprocess with a
timeout, off the event loop. Shapes: OpenAPI ``FileNode``, ``FileContent``, ``File``,
``VcsInfo``, ``VcsFileDiff`` of OpenCode 1.18.34.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
from pathlib import Path
from typing import Any

import anyio
import orjson

from roost.agent.tools.base import ToolError
from roost.agent.tools.ripgrep import run_rg
from roost.errors import InvalidInput

GIT_TIMEOUT_S = 30.0
MAX_CONTENT_BYTES = 10 * 1024 * 1024
"""Largest file ``/file/content`` returns."""
MAX_MATCHES = 500
"""Most matches ``/find`` returns."""


class ProjectFiles:
    """Read-only views of one project directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.root = directory.resolve()

    # -- paths -------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """``path`` (relative to the project, or absolute) as an absolute path inside it.

        Raises:
            InvalidInput: It resolves outside the project, or cannot be resolved at all.
        """
        try:
            candidate = (self.root / path).resolve()
        except (ValueError, OSError) as exc:  # a NUL byte, a loop of symlinks, …
            raise InvalidInput(f"not a usable path: {path!r} ({exc})", field="path") from exc
        if candidate != self.root and self.root not in candidate.parents:
            raise InvalidInput(f"{path} is outside the project directory", field="path")
        return candidate

    def relative(self, path: Path) -> str:
        """``path`` relative to the project, with ``/`` separators."""
        return path.relative_to(self.root).as_posix()

    # -- finding -----------------------------------------------------------------------

    async def _all_files(self) -> list[str]:
        try:
            _, out, _ = await run_rg(["--files", "--hidden", "--glob", "!.git"], self.root)
        except ToolError as exc:
            raise InvalidInput(exc.message) from exc
        return sorted(line for line in out.splitlines() if line)

    async def find(self, query: str, *, kind: str | None, limit: int) -> list[str]:
        """Project files (and directories, ending in ``/``) whose path matches ``query``
        fuzzily (its characters in order, case-insensitive), best first: a match in the file
        name before one in the directories, then shorter paths. ``kind`` is ``file``,
        ``directory`` or None for both."""
        files = await self._all_files()
        candidates: list[str] = []
        if kind in (None, "file"):
            candidates += files
        if kind in (None, "directory"):
            candidates += sorted(
                {
                    "/".join(p.split("/")[:i]) + "/"
                    for p in files
                    for i in range(1, p.count("/") + 1)
                }
            )
        needle = query.lower().strip()
        scored = [(s, c) for c in candidates if (s := _score(needle, c)) is not None]
        scored.sort(key=lambda item: (item[0], len(item[1]), item[1]))
        return [c for _, c in scored[:limit]]

    async def search(self, pattern: str) -> list[dict[str, Any]]:
        """Lines matching the regular expression ``pattern`` (ripgrep's ``--json`` match
        records: ``path``, ``lines``, ``line_number``, ``absolute_offset``, ``submatches``),
        at most ``MAX_MATCHES``."""
        try:
            code, out, err = await run_rg(
                ["--json", "--hidden", "--glob", "!.git", "--max-count", "50", "-e", pattern],
                self.root,
            )
        except ToolError as exc:
            raise InvalidInput(exc.message) from exc
        if code == 2 and not out:
            raise InvalidInput(f"search failed: {err.strip().splitlines()[0] if err else ''}")
        matches = []
        for line in out.splitlines():
            record = orjson.loads(line)
            if record.get("type") != "match":
                continue
            data = record["data"]
            matches.append(
                {
                    "path": {"text": data["path"].get("text", "")},
                    "lines": {"text": data["lines"].get("text", "")},
                    "line_number": data["line_number"],
                    "absolute_offset": data["absolute_offset"],
                    "submatches": [
                        {
                            "match": {"text": m["match"].get("text", "")},
                            "start": m["start"],
                            "end": m["end"],
                        }
                        for m in data["submatches"]
                    ],
                }
            )
            if len(matches) >= MAX_MATCHES:
                break
        return matches

    # -- reading -----------------------------------------------------------------------

    async def list_dir(self, path: str) -> list[dict[str, Any]]:
        """The entries of a project directory (``FileNode``), folders first, then by name;
        ``ignored`` says whether git ignores them.

        Raises:
            InvalidInput: Outside the project, or not a directory.
        """
        folder = self.resolve(path or ".")
        if not await anyio.Path(folder).is_dir():
            raise InvalidInput(f"{path} is not a directory", field="path")
        entries = await anyio.to_thread.run_sync(
            lambda: [(e, e.is_dir()) for e in sorted(folder.iterdir())]
        )
        names = [self.relative(e) for e, _ in entries]
        ignored = await self._ignored(names)
        nodes: list[dict[str, Any]] = [
            {
                "name": _printable(entry.name),
                "path": _printable(name),
                "absolute": _printable(str(entry)),
                "type": "directory" if is_dir else "file",
                "ignored": entry.name == ".git" or name in ignored,
            }
            for (entry, is_dir), name in zip(entries, names, strict=True)
        ]
        nodes.sort(key=lambda n: (n["type"] != "directory", n["name"].lower()))
        return nodes

    async def content(self, path: str) -> dict[str, Any]:
        """A project file's content (``FileContent``): ``text``, or ``binary`` as base64.

        Raises:
            InvalidInput: Outside the project, not a file, or larger than ``MAX_CONTENT_BYTES``.
        """
        file = self.resolve(path)
        if not await anyio.Path(file).is_file():
            raise InvalidInput(f"{path} is not a file", field="path")
        data = await anyio.Path(file).read_bytes()
        if len(data) > MAX_CONTENT_BYTES:
            raise InvalidInput(f"{path} is larger than {MAX_CONTENT_BYTES} bytes", field="path")
        if b"\0" not in data[:8192]:
            try:
                return {"type": "text", "content": data.decode("utf-8")}
            except UnicodeDecodeError:
                pass
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return {
            "type": "binary",
            "content": base64.b64encode(data).decode(),
            "encoding": "base64",
            "mimeType": mime,
        }

    # -- version control -----------------------------------------------------------------

    async def _git(
        self, *args: str, stdin: bytes | None = None, errors: str = "replace"
    ) -> tuple[int, str]:
        """Run ``git ARGS`` in the project (``GIT_TIMEOUT_S`` at most, killed if cancelled);
        returns the exit code and stdout decoded with ``errors``."""
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-c",
            "core.quotepath=off",
            *args,
            cwd=self.root,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(GIT_TIMEOUT_S):
                out, _ = await proc.communicate(stdin)
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        return proc.returncode or 0, out.decode(errors=errors)

    async def _ignored(self, names: list[str]) -> set[str]:
        if not names or not await self.is_repository():
            return set()
        # Names travel as the bytes they are on disk (not UTF-8 ones included).
        _, out = await self._git(
            "check-ignore",
            "--stdin",
            stdin="\n".join(names).encode(errors="surrogateescape"),
            errors="surrogateescape",
        )
        return set(out.splitlines())

    async def is_repository(self) -> bool:
        """Whether the project is in a git work tree."""
        code, out = await self._git("rev-parse", "--is-inside-work-tree")
        return code == 0 and out.strip() == "true"

    async def vcs(self) -> dict[str, Any]:
        """``VcsInfo``: the current branch and the default one (empty outside git)."""
        if not await self.is_repository():
            return {}
        _, branch = await self._git("rev-parse", "--abbrev-ref", "HEAD")
        info = {"branch": branch.strip()}
        code, head = await self._git("symbolic-ref", "--short", "refs/remotes/origin/HEAD")
        if code == 0 and head.strip():
            info["default_branch"] = head.strip().split("/", 1)[-1]
        return info

    async def status(self) -> list[dict[str, Any]]:
        """Changed files against ``HEAD`` (``File``: path, added and removed lines, status),
        untracked files counted as added."""
        if not await self.is_repository():
            return []
        changes = await self._changes("HEAD", context=0, patches=False)
        return [
            {
                "path": c["file"],
                "added": c["additions"],
                "removed": c["deletions"],
                "status": c["status"],
            }
            for c in changes
        ]

    async def diff(self, mode: str, context: int) -> list[dict[str, Any]]:
        """``VcsFileDiff`` of every changed file: ``git`` mode against ``HEAD`` (the working
        tree, untracked files included), ``branch`` mode against the merge base with the
        default branch."""
        if not await self.is_repository():
            return []
        base = "HEAD"
        if mode == "branch":
            default = (await self.vcs()).get("default_branch") or "main"
            code, merge_base = await self._git("merge-base", "HEAD", default)
            if code == 0 and merge_base.strip():
                base = merge_base.strip()
        return await self._changes(base, context=context, patches=True)

    async def _changes(self, base: str, *, context: int, patches: bool) -> list[dict[str, Any]]:
        """Changes against ``base`` (the caller checked the project is a repository)."""
        code, numstat = await self._git("diff", "--numstat", "-z", "--no-renames", base)
        if code != 0:  # no commit yet: everything is new
            numstat = ""
        changes: dict[str, dict[str, Any]] = {}
        for record in numstat.split("\0"):
            fields = record.split("\t")
            if len(fields) != 3:
                continue
            added, removed, name = fields
            changes[name] = {
                "file": name,
                "additions": int(added) if added.isdigit() else 0,
                "deletions": int(removed) if removed.isdigit() else 0,
                "status": "modified",
            }
        _, deleted = await self._git("diff", "--name-only", "-z", "--diff-filter=D", base)
        _, added = await self._git("diff", "--name-only", "-z", "--diff-filter=A", base)
        for name in filter(None, deleted.split("\0")):
            changes.setdefault(name, {"file": name, "additions": 0, "deletions": 0})["status"] = (
                "deleted"
            )
        for name in filter(None, added.split("\0")):
            changes.setdefault(name, {"file": name, "additions": 0, "deletions": 0})["status"] = (
                "added"
            )
        _, untracked = await self._git("ls-files", "--others", "--exclude-standard", "-z")
        new_files = set(filter(None, untracked.split("\0")))
        for name in sorted(new_files):
            text = await anyio.to_thread.run_sync(_read_text, self.root / name)
            changes[name] = {
                "file": name,
                "additions": len(text.splitlines()),
                "deletions": 0,
                "status": "added",
            }
        if patches:
            for name, change in changes.items():
                if name in new_files:
                    _, patch = await self._git(
                        "diff", "--no-index", f"-U{context}", "--", "/dev/null", name
                    )
                else:
                    _, patch = await self._git("diff", f"-U{context}", base, "--", name)
                change["patch"] = patch
        return [changes[name] for name in sorted(changes)]


def _printable(name: str) -> str:
    """A file name as JSON can carry it: bytes that are not UTF-8 (kept by Python as lone
    surrogates) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _score(needle: str, candidate: str) -> int | None:
    """Fuzzy rank of ``candidate`` for ``needle`` (lower is better), None when it does not
    contain the needle's characters in order. A match inside the last path segment ranks
    before one spread over directories; a contiguous match before a scattered one."""
    if not needle:
        return 0
    text = candidate.lower()
    name = text.rstrip("/").rsplit("/", 1)[-1]
    if needle in name:
        return 0 if name.startswith(needle) else 1
    if needle in text:
        return 2
    position = 0
    for char in needle:
        position = text.find(char, position)
        if position < 0:
            return None
        position += 1
    return 3
