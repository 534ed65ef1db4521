"""What a session's steps changed in the project's files: recorded per step, undone by revert.

Recording (``SnapshotTurnWriter``): a step that calls a tool which may change files
(``Tool.changes_files``: bash, edit, write, task) snapshots the files right before the first such
call and puts the hash on its step-start part, committed before the tool runs. When the step
ends it snapshots again: the step-finish part gets that ``snapshot`` and, when files differ, a
``patch`` part ``{hash: the snapshot before, files}`` follows (OpenCode's parts,
``session/message-v2.ts``). Each snapshot is on disk before the part naming it is committed, so a
stored hash can always be restored. A step that calls no such tool takes no snapshot (OpenCode
snapshots every step; here a chat-only turn costs nothing).

Undoing (``FileChanges``), as OpenCode's ``session/revert.ts``:
    - revert takes the changes of the steps from the revert point on (exactly the messages and
      parts a new prompt drops, ``admission.drop_reverted``), oldest first: each file goes back to
      the snapshot before the first step that changed it, and is deleted if it did not exist
      then. First the files as they are are snapshotted into ``revert.snapshot``, committed with
      the mark before any file is touched, so a crash half-way still unreverts fully.
      ``revert.diff`` is the unified diff from that snapshot to the reverted files. Reverting
      again while reverted keeps the first snapshot and first puts back what the earlier revert
      touched.
    - unrevert puts the files the revert touched back as ``revert.snapshot`` has them.
    - A step that never finished its snapshots (aborted, interrupted, the server killed mid-tool)
      has a step-start snapshot and no patch: its files are those that differ between that
      snapshot and ``revert.snapshot``.
    - A new prompt after a revert keeps the files as they are (the mark is dropped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from roost.agent.providers.base import ToolCallRequest, Usage
from roost.engine.snapshots import SnapshotStore
from roost.engine.turn import TurnWriter
from roost.errors import SnapshotFailed
from roost.store import runs
from roost.store.database import Database
from roost.store.queries import MessageRow

log = logging.getLogger(__name__)

MAX_REVERT_DIFF_CHARS = 256 * 1024
"""``revert.diff`` is cut here: the session JSON carrying it travels in every
``session.updated``."""

Mark = dict[str, Any]
"""A session's ``revert``: ``{messageID, partID?, snapshot?, diff?}``."""


class SnapshotTurnWriter(TurnWriter):
    """A ``TurnWriter`` that snapshots the files around steps that may change them.

    Args:
        store: The project's snapshots.
        file_tools: Names of the tools that may change files.
    """

    def __init__(
        self,
        db: Database,
        run: runs.RunRow,
        assistant: dict[str, Any],
        generation: int,
        on_write_failed: Callable[[Exception], None] | None = None,
        *,
        store: SnapshotStore,
        file_tools: frozenset[str],
    ) -> None:
        super().__init__(db, run, assistant, generation, on_write_failed)
        self._store = store
        self._file_tools = file_tools
        self._before: str | None = None

    async def step_started(self) -> None:
        self._before = None
        await super().step_started()

    async def tool_running(self, call: ToolCallRequest) -> None:
        if self._before is None and call.name in self._file_tools:
            self._before = await self._track()
            if self._before is not None:
                self.set_step_snapshot(self._before)
        await super().tool_running(call)

    async def step_finished(
        self,
        finish_reason: str,
        usage: Usage,
        *,
        snapshot: str | None = None,
        patch: tuple[str, list[str]] | None = None,
    ) -> None:
        before = self._before
        if before is not None and snapshot is None:
            snapshot = await self._track()
            if snapshot is not None:
                try:
                    files = await self._store.changed_files(before, snapshot)
                except SnapshotFailed as exc:
                    log.warning("session %s: step files unknown: %s", self.session_id, exc.message)
                    snapshot, files = None, []  # unfinished then: revert diffs from `before`
                if files:
                    patch = (before, [self._store.absolute(f) for f in files])
        await super().step_finished(finish_reason, usage, snapshot=snapshot, patch=patch)

    async def _track(self) -> str | None:
        """A snapshot, or None (logged): a step runs on without one, it is not undoable."""
        try:
            return await self._store.track()
        except SnapshotFailed as exc:
            log.warning("session %s: no snapshot for this step: %s", self.session_id, exc.message)
            return None


@dataclass(frozen=True)
class _StepChange:
    before: str
    """The snapshot before the step changed files."""
    files: tuple[str, ...] | None
    """Paths relative to the project; None when the step never finished its snapshots."""


class FileChanges:
    """Revert, unrevert and diffs of a session's file changes (see the module docstring).

    Revert and unrevert run one at a time.
    """

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self._lock = asyncio.Lock()

    async def revert(
        self,
        rows: list[MessageRow],
        mark: Mark,
        previous: Mark | None,
        commit: Callable[[Mark], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Restore the files to the revert point ``mark`` and commit the mark twice: with
        ``snapshot`` before any file is touched, then with ``diff``.

        Args:
            rows: The session's messages, oldest first.
            previous: The session's current mark, if it is reverted already.
            commit: Stores a mark as the session's ``revert``; returns the ``Session``.

        Returns:
            The session as the last commit stored it.

        Raises:
            SnapshotFailed: git failed; the first commit may have happened (a retry finishes).
        """
        async with self._lock:
            kept = (previous or {}).get("snapshot")
            snapshot = kept or await self._store.track()
            mark = {**mark, "snapshot": snapshot}
            await commit(mark)
            plan: dict[str, str] = {}
            if previous and kept:
                plan = dict.fromkeys(await self._plan(rows, previous, snapshot), snapshot)
            plan.update(await self._plan(rows, mark, snapshot))
            await self._store.restore(plan)
            diff = await self._store.diff_text(snapshot, await self._store.track())
            if len(diff) > MAX_REVERT_DIFF_CHARS:
                diff = diff[:MAX_REVERT_DIFF_CHARS] + "\n… (diff cut)\n"
            return await commit({**mark, "diff": diff})

    async def unrevert(self, rows: list[MessageRow], mark: Mark) -> None:
        """Put the files ``mark``'s revert touched back as ``mark.snapshot`` has them.

        Raises:
            SnapshotFailed: git failed.
        """
        snapshot: str | None = mark.get("snapshot")
        if not snapshot:
            return
        async with self._lock:
            plan = await self._plan(rows, mark, snapshot)
            await self._store.restore(dict.fromkeys(plan, snapshot))

    async def diff(self, rows: list[MessageRow], message_id: str | None) -> list[dict[str, Any]]:
        """``SnapshotFileDiff``s of a turn (the user message ``message_id`` and its replies), or
        of the whole session: from the first step-start snapshot to the last step-finish one.

        Raises:
            SnapshotFailed: git failed.
        """
        first = last = None
        for row in rows:
            if (
                message_id is not None
                and row.id != message_id
                and orjson.loads(row.info).get("parentID") != message_id
            ):
                continue  # not the turn asked for
            for part in map(orjson.loads, row.parts):
                if part.get("type") == "step-start" and part.get("snapshot") and first is None:
                    first = part["snapshot"]
                if part.get("type") == "step-finish" and part.get("snapshot"):
                    last = part["snapshot"]
        if first is None or last is None:
            return []
        return await self._store.file_diffs(first, last)

    async def _plan(self, rows: list[MessageRow], mark: Mark, snapshot: str) -> dict[str, str]:
        """``{path: snapshot to restore it from}`` for the steps from ``mark`` on."""
        plan: dict[str, str] = {}
        for change in self._changes(rows, mark):
            files = change.files
            if files is None:
                files = tuple(await self._store.changed_files(change.before, snapshot))
            for path in files:
                plan.setdefault(path, change.before)
        return plan

    def _changes(self, rows: list[MessageRow], mark: Mark) -> list[_StepChange]:
        """The file changes of the steps from the revert point on, oldest first."""
        found = []
        for row in rows:
            if row.id < mark["messageID"]:
                continue
            parts = [orjson.loads(p) for p in row.parts]
            chosen = parts
            if row.id == mark["messageID"] and mark.get("partID"):
                chosen = [p for p in parts if p["id"] >= mark["partID"]]
            patches = [p for p in chosen if p.get("type") == "patch"]
            for p in patches:
                files = (self._store.relative(f) for f in p.get("files") or [])
                found.append(_StepChange(p["hash"], tuple(f for f in files if f is not None)))
            start = next((p["snapshot"] for p in parts if _is_step(p, "step-start")), None)
            finished = any(_is_step(p, "step-finish") for p in parts)
            if chosen and not patches and start is not None and not finished:
                found.append(_StepChange(start, None))
        return found


def _is_step(part: dict[str, Any], kind: str) -> bool:
    return part.get("type") == kind and bool(part.get("snapshot"))
