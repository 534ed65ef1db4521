"""A reported lease loss cancels only the turn that held that lease generation.

The heartbeat reports a loss from the loop thread's point of view some time after it renewed:
by then the session may be running its next turn under a newer generation, which must go on.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from roost.engine.admission import PromptInput
from roost.engine.sessions import SessionService
from roost.store import runs
from tests.support.scripted_llm import Delay, ScriptedLLM, Text, Turn

pytestmark = pytest.mark.anyio


async def _running_generation(svc: SessionService, sid: str) -> int:
    """The lease generation of the session's executing turn, once it has one."""
    for _ in range(500):
        active = svc.runs._active.get(sid)
        if active is not None and active.generation is not None:
            return active.generation
        await asyncio.sleep(0.01)
    raise AssertionError("the turn never took its lease")


async def _start_slow_turn(svc: SessionService, llm: ScriptedLLM) -> tuple[str, str, int]:
    llm.enqueue(Turn([Text("slow"), Delay(0.5), Text(" answer")]))
    sid = (await svc.create_session())["id"]
    admitted = await svc.prompt_async(sid, PromptInput(parts=[{"type": "text", "text": "go"}]))
    assert admitted.run_id is not None
    return sid, admitted.run_id, await _running_generation(svc, sid)


async def test_a_loss_of_an_older_generation_leaves_the_running_turn_alone(
    service: SessionService, llm: ScriptedLLM
) -> None:
    sid, run_id, generation = await _start_slow_turn(service, llm)
    service.runs._on_lease_lost(sid, generation - 1)  # the session's previous turn's lease
    await asyncio.wait_for(service.runs.wait_run(run_id), 10)
    run = await service.db.read(lambda c: runs.get_run(c, run_id))
    assert run is not None and run.status == runs.COMPLETED
    rows = await service.list_messages(sid)
    reply = orjson.loads(rows[-1].info)
    assert reply["role"] == "assistant" and "error" not in reply
    assert orjson.loads(rows[-1].parts[-2])["text"] == "slow answer"


async def test_a_loss_of_the_running_generation_stops_the_turn_without_writing(
    service: SessionService, llm: ScriptedLLM
) -> None:
    sid, run_id, generation = await _start_slow_turn(service, llm)
    active = service.runs._active[sid]
    service.runs._on_lease_lost(sid, generation)
    await asyncio.wait({active.task}, timeout=10)
    assert active.task.cancelled()
    run = await service.db.read(lambda c: runs.get_run(c, run_id))
    assert run is not None and run.status == runs.RUNNING  # left to recovery, not finished here
