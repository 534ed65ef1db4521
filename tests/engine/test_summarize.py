"""``summarize`` on a real store: single flight, and no summary means an error, not ``true``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from roost.engine.admission import PromptInput
from roost.engine.sessions import SessionService
from roost.engine.summarize import admit_compaction
from roost.errors import CompactionFailed
from tests.support.scripted_llm import Fail, ScriptedLLM, Turn, text_turn
from tests.support.server import MODEL_ID, PROVIDER_ID

pytestmark = pytest.mark.anyio

MODEL: dict[str, Any] = {"provider_id": PROVIDER_ID, "model_id": MODEL_ID}


async def _compaction_requests(service: SessionService, sid: str) -> list[str]:
    rows = await service.list_messages(sid)
    return [r.id for r in rows if any(orjson.loads(p)["type"] == "compaction" for p in r.parts)]


async def test_a_second_request_joins_the_open_compaction_run(
    service: SessionService, llm: ScriptedLLM
) -> None:
    sid = (await service.create_session())["id"]
    await service.prompt(sid, PromptInput(parts=[{"type": "text", "text": "one"}]))
    await service.runs.hold(sid)  # the compaction run stays queued
    try:
        first = await admit_compaction(service.db, service.catalog, sid, auto=False, **MODEL)
        second = await admit_compaction(service.db, service.catalog, sid, auto=False, **MODEL)
    finally:
        llm.enqueue(text_turn("SUMMARY"))
        service.runs.release(sid)
    assert second == first
    [request] = await _compaction_requests(service, sid)

    await service.runs.wait_run(first)
    infos = [orjson.loads(r.info) for r in await service.list_messages(sid)]
    [summary] = [i for i in infos if i.get("summary") is True]
    assert summary["parentID"] == request
    assert "error" not in summary and summary["finish"] == "stop"


async def test_a_compaction_without_a_summary_is_an_error_naming_the_reason(
    service: SessionService, llm: ScriptedLLM
) -> None:
    sid = (await service.create_session())["id"]
    await service.prompt(sid, PromptInput(parts=[{"type": "text", "text": "one"}]))
    llm.enqueue(Turn([Fail(500, "the provider is down")]))
    with pytest.raises(CompactionFailed, match="the provider is down") as failed:
        await service.summarize(sid, **MODEL)
    assert failed.value.reason == "APIError"
