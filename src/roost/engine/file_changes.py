"""What a session's steps change in the project's files, recorded per step.

Recording (``SnapshotTurnWriter``): a step that calls a tool which may change files
(``Tool.changes_files``: bash, edit, write, task) snapshots the files right before the first such
call and puts the hash on its step-start part, committed before the tool runs. When the step
ends it snapshots again: the step-finish part gets that ``snapshot`` and, when files differ, a
``patch`` part ``{hash: the snapshot before, files}`` follows (OpenCode's parts,
``session/message-v2.ts``). Each snapshot is on disk before the part naming it is committed, so a
stored hash can always be restored. A step that calls no such tool takes no snapshot (OpenCode
snapshots every step; here a chat-only turn costs nothing).
"""

from __future__ import annotations

import logging
from typing import Any

from roost.agent.providers.base import ToolCallRequest, Usage
from roost.engine.snapshots import SnapshotStore
from roost.engine.turn import TurnWriter
from roost.errors import SnapshotFailed
from roost.store import runs
from roost.store.database import Database

log = logging.getLogger(__name__)


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
        *,
        store: SnapshotStore,
        file_tools: frozenset[str],
    ) -> None:
        super().__init__(db, run, assistant, generation)
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
