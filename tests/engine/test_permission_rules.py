"""A session whose stored rules are malformed (written before rules were checked on the way in)
fails its turn with the reason; no tool runs under a rule that cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from roost.engine.admission import PromptInput
from roost.engine.sessions import SessionService
from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn

pytestmark = pytest.mark.anyio


async def test_a_stored_rule_without_pattern_fails_the_turn_and_runs_nothing(
    service: SessionService, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.enqueue(tool_turn("bash", {"command": "touch ran"}), text_turn("done"))
    legacy: Any = [{"permission": "bash", "action": "deny"}]  # the engine trusts its callers
    sid = (await service.create_session(permission=legacy))["id"]
    admitted = await service.prompt_async(sid, PromptInput(parts=[{"type": "text", "text": "go"}]))
    assert admitted.run_id is not None
    await service.runs.wait_run(admitted.run_id)

    rows = await service.list_messages(sid)
    reply = orjson.loads(rows[-1].info)
    assert reply["role"] == "assistant"
    assert "session permission[0].pattern" in reply["error"]["data"]["message"]
    assert llm.requests == []  # failed before the model was asked for anything
    assert not (tmp_path / "ran").exists()
