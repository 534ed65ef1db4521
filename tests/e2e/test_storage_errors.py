"""A real server whose database's file system fills up, or goes read-only, in the middle of a
turn: prompts get a clear 503, the turn stops at once, and it ends with a visible error as soon
as the store takes writes again; no task exception goes unobserved.

The file systems are real (``tests/support/filesystems.py``): a 16 MiB tmpfs filled by a
ballast file, and an ext4 image the kernel turns read-only. Both need root; without it these
tests are skipped.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.events import EventCollector, session_frames
from tests.support.filesystems import Ballast, ext4_image, make_read_only, repair_ext4, small_tmpfs
from tests.support.scripted_llm import Delay, ScriptedLLM, Step, Text, Turn, text_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

PIECES = 400
"""Pieces of the slowly streamed answer, 50 ms apart (20 s: far longer than the test)."""


def _slow_answer() -> tuple[Turn, str]:
    """A turn that streams for ~20 s, and its whole text."""
    items: list[Step] = []
    for i in range(PIECES):
        items += [Text(f"piece{i} ", chunk_chars=64), Delay(0.05)]
    return Turn(items), "".join(f"piece{i} " for i in range(PIECES))


def _start_streaming(server: RoostServer, llm: ScriptedLLM) -> tuple[str, str]:
    """A session whose turn is streaming and has stored some text; returns (id, full text)."""
    turn, full = _slow_answer()
    llm.enqueue(turn)
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    wait_for(lambda: _text(server, sid), what="the first text stored")
    return sid, full


def _text(server: RoostServer, sid: str) -> str:
    msgs = server.messages(sid)
    return "".join(p.get("text", "") for m in msgs[1:] for p in m["parts"] if p["type"] == "text")


def _log(server: RoostServer) -> str:
    return "".join(server.log_lines)


def _assert_refused(server: RoostServer, sid: str, cause: str) -> None:
    """A prompt now is refused with a 503 naming ``cause``, and nothing of it is stored."""
    response = server.post(f"/session/{sid}/prompt_async", json=prompt_body("refused"))
    assert response.status_code == 503, response.text
    body: dict[str, Any] = response.json()
    assert body["name"] == "ServiceUnavailableError"
    assert body["data"]["service"] == "storage"
    assert body["data"]["cause"] == cause
    assert "storage unavailable" in body["data"]["message"]


def _assert_log_clean(server: RoostServer) -> None:
    log = _log(server)
    assert "Task exception was never retrieved" not in log
    assert "Unexpected server error" not in log
    assert "unexpected error" not in log


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "fs", size_mib=16) as directory:
        yield directory


def test_a_full_disk_mid_turn_answers_503_and_the_turn_ends_with_a_visible_error(
    project: Path, tmpfs: Path, llm: ScriptedLLM
) -> None:
    server = RoostServer(project, tmpfs / "roost.db").start()
    try:
        with EventCollector(server.url) as events:
            sid, full = _start_streaming(server, llm)
            ballast = Ballast(tmpfs)
            ballast.fill()
            wait_for(lambda: f"stopping the turn of {sid}" in _log(server), what="the turn stopped")
            _assert_refused(server, sid, "disk_full")
            # The turn is stopped but cannot record that yet: the session stays busy.
            assert sid in server.get("/session/status").json()
            stored_while_full = _text(server, sid)

            ballast.free()
            msgs = server.wait_idle(sid)
            events.wait_until(
                lambda frames: any(
                    f["type"] == "session.idle" for _, f in session_frames(frames, sid)
                ),
                what="session.idle",
            )
            frames = session_frames(events.snapshot(), sid)
        assert server.get("/session/status").json() == {}
    finally:
        server.close()

    reply = msgs[-1]["info"]
    error = reply["error"]["data"]["message"]
    assert error.startswith("interrupted: storage error: the disk holding the database is full")
    assert "completed" in reply["time"]
    # The refused prompt was not stored; the stream was cut, and nothing it stored was lost.
    assert [m["info"]["role"] for m in msgs] == ["user", "assistant"]
    text = _text_of(msgs)
    assert full.startswith(text) and len(stored_while_full) <= len(text) < len(full)
    assert len(llm.requests) == 1
    session_errors = [f for _, f in frames if f["type"] == "session.error"]
    assert [e["properties"]["error"]["data"]["message"] for e in session_errors] == [error]
    _assert_log_clean(server)
    assert "server restarted" not in _log(server)  # no restart happened, none is claimed


def _text_of(msgs: list[dict[str, Any]]) -> str:
    return "".join(p.get("text", "") for m in msgs[1:] for p in m["parts"] if p["type"] == "text")


def test_a_read_only_database_mid_turn_answers_503_and_a_restart_finishes_the_turn(
    project: Path, tmp_path: Path, llm: ScriptedLLM
) -> None:
    image = tmp_path / "fs.img"
    with ext4_image(tmp_path / "fs", image) as fs:
        server = RoostServer(project, fs / "roost.db").start()
        try:
            sid, _ = _start_streaming(server, llm)
            make_read_only(fs)
            wait_for(lambda: f"stopping the turn of {sid}" in _log(server), what="the turn stopped")
            _assert_refused(server, sid, "read_only")
            assert sid in server.get("/session/status").json()
            # Stopping while the store refuses writes is bounded: the outcome is left to
            # recovery at the next start.
            assert server.terminate(timeout_s=15) in (0, -signal.SIGTERM)
            _assert_log_clean(server)
            assert "recovery finishes it at the next start" in _log(server)

            repair_ext4(fs, image)
            llm.enqueue(text_turn("resumed"))
            server.start()
            msgs = wait_for(
                lambda: _resumed(server, sid), what="the turn recovered and resumed", timeout_s=30
            )
        finally:
            server.close()
    interrupted, resumed = msgs[1]["info"], msgs[2]
    assert interrupted["error"]["data"]["message"] == "interrupted: server restarted"
    assert [p["text"] for p in resumed["parts"] if p["type"] == "text"] == ["resumed"]
    _assert_log_clean(server)


def _resumed(server: RoostServer, sid: str) -> list[dict[str, Any]] | None:
    msgs = server.messages(sid)
    if len(msgs) < 3 or sid in server.get("/session/status").json():
        return None
    return msgs if "completed" in msgs[-1]["info"]["time"] else None
