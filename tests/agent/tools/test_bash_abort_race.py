"""An abort that lands while bash is still recording its process group kills the group."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from roost.agent.tools.bash import BashTool
from tests.support.tool_context import LocalToolContext

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class SlowRecording(LocalToolContext):
    """Recording a process takes a while (a slow store), long enough to be cancelled in."""

    recording: asyncio.Event = field(default_factory=asyncio.Event)

    async def record_process(self, pgid: int) -> None:
        self.processes.add(pgid)
        self.recording.set()
        await asyncio.sleep(30)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_cancel_during_record_process_still_kills_the_group(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    ctx = SlowRecording(directory=tmp_path, output_dir=tmp_path / "out")
    tool = BashTool()
    task = asyncio.create_task(tool.run(tool.parse({"command": "trap '' TERM; sleep 60"}), ctx))
    await asyncio.wait_for(ctx.recording.wait(), 10)
    pgid = next(iter(ctx.processes))
    assert _group_alive(pgid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if not _group_alive(pgid):
            break
        await asyncio.sleep(0.05)
    assert not _group_alive(pgid)
