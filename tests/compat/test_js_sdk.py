"""OpenCode's official JS SDK (``@opencode-ai/sdk``) against a real Roost process."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.compat.conftest import COMPAT_DIR, require_node_modules
from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import RoostServer

pytestmark = pytest.mark.compat


def run_sdk(server: RoostServer, prompt: str, timeout_ms: int = 20000) -> dict[str, Any]:
    """Run ``sdk_roundtrip.mjs`` against the server; returns its JSON summary."""
    require_node_modules()
    done = subprocess.run(
        ["node", "sdk_roundtrip.mjs", server.url, prompt, str(timeout_ms)],
        cwd=COMPAT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout_ms / 1000 + 10,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_js_sdk_creates_prompts_subscribes_and_lists_the_reply(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("hello from roost via the sdk"))
    summary = run_sdk(server, "say hello")
    assert summary["sessionID"].startswith("ses_")
    assert summary["roles"] == ["user", "assistant"]
    assert summary["text"] == "hello from roost via the sdk"
    assert summary["error"] is None
    for event in (
        "message.updated",
        "message.part.updated",
        "message.part.delta",
        "session.status",
        "session.idle",
    ):
        assert event in summary["events"]
    assert server.messages(summary["sessionID"])[0]["parts"][0]["text"] == "say hello"
    sent_to_model = llm.requests[-1]["messages"][-1]
    assert sent_to_model["role"] == "user"
    assert "say hello" in json.dumps(sent_to_model["content"])


def test_js_sdk_parses_every_frame_including_server_connected(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("every frame parses"))
    summary = run_sdk(server, "hi")
    assert summary["unparsed"] == 0
    assert summary["connected"] is True
