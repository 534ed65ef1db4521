"""``file`` parts reach the model, as OpenCode sends them: text files as the read tool's output,
images and PDFs as content blocks when the model takes them, else a 400 before anything is
stored."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import RoostServer, project_config

pytestmark = pytest.mark.e2e

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _prompt(server: RoostServer, sid: str, *parts: dict[str, Any]) -> Any:
    body = {"parts": [{"type": "text", "text": "look at this"}, *parts]}
    return server.post(f"/session/{sid}/prompt_async", json=body)


def _user_content(llm: ScriptedLLM) -> Any:
    return [m for m in llm.requests[-1]["messages"] if m["role"] == "user"][-1]["content"]


def test_a_project_text_file_is_read_for_the_model(server: RoostServer, llm: ScriptedLLM) -> None:
    (server.directory / "notes.txt").write_text("alpha\nbeta\n")
    llm.enqueue(text_turn("read it"))
    sid = server.create_session()["id"]
    url = (server.directory / "notes.txt").as_uri()
    part = {"type": "file", "mime": "text/plain", "filename": "notes.txt", "url": url}
    assert _prompt(server, sid, part).status_code == 204
    server.wait_idle(sid)

    content = _user_content(llm)
    assert isinstance(content, str)
    assert content.startswith("look at this\n\nCalled the Read tool with the following input:")
    assert "1: alpha\n2: beta" in content
    user = server.messages(sid)[0]
    assert [p["type"] for p in user["parts"]] == ["text", "file", "text", "text"]
    assert user["parts"][2]["synthetic"] is True


def test_a_data_url_text_attachment_reaches_the_model(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("ok"))
    sid = server.create_session()["id"]
    data = base64.b64encode(b"gamma delta").decode()
    part = {
        "type": "file",
        "mime": "text/plain",
        "filename": "g.txt",
        "url": f"data:text/plain;base64,{data}",
    }
    assert _prompt(server, sid, part).status_code == 204
    server.wait_idle(sid)
    assert "gamma delta" in _user_content(llm)


def test_an_image_for_a_model_without_attachments_is_a_400_and_stores_nothing(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    (server.directory / "dot.png").write_bytes(PNG)
    sid = server.create_session()["id"]
    part = {"type": "file", "mime": "image/png", "url": (server.directory / "dot.png").as_uri()}
    response = _prompt(server, sid, part)
    assert response.status_code == 400
    assert "does not accept image input" in response.json()["data"]["message"]
    assert server.messages(sid) == []
    assert llm.requests == []


def test_paths_outside_the_project_are_refused(server: RoostServer, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("nope")
    sid = server.create_session()["id"]
    for url in (outside.as_uri(), (server.directory / ".." / "secret.txt").as_uri()):
        part = {"type": "file", "mime": "text/plain", "url": url}
        response = _prompt(server, sid, part)
        assert response.status_code == 400, url
        assert "outside the project" in response.json()["data"]["message"]
    assert server.messages(sid) == []


def test_images_and_pdfs_reach_a_model_that_takes_them(
    project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    config = project_config(llm.base_url)
    config["provider"]["scripted"]["models"]["scripted-model"] = {"attachment": True}
    (project / "opencode.json").write_text(json.dumps(config))
    (project / "dot.png").write_bytes(PNG)
    srv = RoostServer(project, tmp_path / "media.db").start()
    try:
        llm.enqueue(text_turn("a dot"))
        sid = srv.create_session()["id"]
        pdf = base64.b64encode(b"%PDF-1.4 tiny").decode()
        parts = [
            {"type": "file", "mime": "image/png", "url": (project / "dot.png").as_uri()},
            {
                "type": "file",
                "mime": "application/pdf",
                "filename": "t.pdf",
                "url": f"data:application/pdf;base64,{pdf}",
            },
        ]
        assert _prompt(srv, sid, *parts).status_code == 204
        srv.wait_idle(sid)
        stored = srv.messages(sid)[0]["parts"][1]
    finally:
        srv.close()

    image_url = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
    assert stored["url"] == image_url  # read at the prompt's time, kept as it was
    assert _user_content(llm) == [
        {"type": "text", "text": "look at this"},
        {"type": "image_url", "image_url": {"url": image_url}},
        {
            "type": "file",
            "file": {"filename": "t.pdf", "file_data": f"data:application/pdf;base64,{pdf}"},
        },
    ]
