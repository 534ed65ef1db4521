"""A queued run that no worker was told about (its admission committed although the caller
saw an error) is found by the recovery scan and runs."""

from __future__ import annotations

import asyncio

import pytest

from roost.engine.admission import PromptInput, admit_prompt
from roost.engine.sessions import SessionService
from tests.support.scripted_llm import ScriptedLLM, text_turn

pytestmark = pytest.mark.anyio


@pytest.fixture
def lease_ttl_ms() -> int:
    return 2000  # the recovery scan runs every TTL/2 at most


async def test_a_queued_run_nobody_kicked_is_run_by_the_recovery_scan(
    service: SessionService, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("found it"))
    sid = (await service.create_session())["id"]
    # What prompt_async does, minus the kick: as if the 2xx never reached anyone.
    admitted = await admit_prompt(
        service.db,
        service.catalog,
        sid,
        PromptInput(parts=[{"type": "text", "text": "lost ack"}]),
        directory=service.options.directory,
    )
    assert admitted.run_id is not None
    async with asyncio.timeout(10):
        await service.runs.wait_run(admitted.run_id)
    rows = await service.list_messages(sid)
    texts = [p for r in rows for p in r.parts if b"found it" in p.encode()]
    assert texts, [r.info for r in rows]
