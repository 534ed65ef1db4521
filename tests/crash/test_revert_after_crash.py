"""SIGKILL a server after, or in the middle of, a step that changed files; restart it on the same
port and database: revert still restores the files (snapshots are on disk before the parts that
name them are committed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_llm import Delay, ScriptedLLM, Text, Turn, text_turn, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.crash


def _resumed(server: RoostServer, sid: str) -> list[dict[str, Any]] | None:
    """The messages once the run resumed after the restart has answered "resumed"."""
    if sid in server.get("/session/status").json():
        return None
    msgs = server.messages(sid)
    texts = [p.get("text") for m in msgs for p in m["parts"] if p["type"] == "text"]
    return msgs if "resumed" in texts and "completed" in msgs[-1]["info"]["time"] else None


def _start(server: RoostServer, sid: str) -> None:
    response = server.post(f"/session/{sid}/prompt_async", json=prompt_body("change a.txt"))
    assert response.status_code == 204


def _restart_and_revert(server: RoostServer, llm: ScriptedLLM, sid: str) -> None:
    server.kill()
    llm.enqueue(text_turn("resumed"))
    server.start()
    msgs = wait_for(lambda: _resumed(server, sid), what="the run resumed after the restart")
    user = msgs[0]["info"]["id"]
    response = server.post(f"/session/{sid}/revert", json={"messageID": user})
    assert response.status_code == 200, response.text


def test_revert_restores_a_step_committed_right_before_a_sigkill(
    server: RoostServer, llm: ScriptedLLM, project: Path
) -> None:
    (project / "a.txt").write_text("original\n")
    llm.enqueue(
        tool_turn("write", {"filePath": "a.txt", "content": "changed\n"}),
        Turn([Text("thinking "), Delay(30)]),
    )
    sid = server.create_session()["id"]
    _start(server, sid)
    llm.wait_for_requests(2)  # the write step is committed before the next step asks the model
    _restart_and_revert(server, llm, sid)
    assert (project / "a.txt").read_text() == "original\n"


def test_revert_restores_a_step_cut_by_sigkill_in_the_middle_of_its_tool(
    server: RoostServer, llm: ScriptedLLM, project: Path, tmp_path: Path
) -> None:
    (project / "a.txt").write_text("original\n")
    (project / "b.txt").write_text("deleted by the tool\n")
    # Inside the project: a path outside would make bash ask external_directory first.
    marker = project / "changed"
    command = "echo changed > a.txt && rm b.txt && touch changed && sleep 60"
    llm.enqueue(tool_turn("bash", {"command": command}))
    sid = server.create_session()["id"]
    _start(server, sid)
    wait_for(marker.exists, what="the tool changed the files")
    _restart_and_revert(server, llm, sid)
    assert (project / "a.txt").read_text() == "original\n"
    assert (project / "b.txt").read_text() == "deleted by the tool\n"
