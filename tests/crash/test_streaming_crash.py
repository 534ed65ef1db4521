"""SIGKILL in the middle of a streamed reply: what was flushed is kept, and recovery closes
the part and stores it once (issue #13: the text lives in the log's deltas until the part
closes, and after it too when it came in few flushes)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support.projections import assert_closed_part_stored_once, part_row, rebuilt_and_live
from tests.support.scripted_llm import Hang, ScriptedLLM, Text, Turn, text_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.crash


FLUSHED = "".join(f"chunk {i:05d} ünïcode\n" for i in range(2000))


def _text_parts(server: RoostServer, sid: str) -> list[dict[str, Any]]:
    return [
        p
        for m in server.messages(sid)
        if m["info"]["role"] == "assistant"
        for p in m["parts"]
        if p["type"] == "text"
    ]


def test_sigkill_mid_stream_keeps_the_flushed_text_and_recovery_stores_it_once(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Text(FLUSHED, chunk_chars=16), Hang()]), text_turn("resumed"))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    (streamed,) = wait_for(
        lambda: [p for p in _text_parts(server, sid) if p["text"] == FLUSHED],
        what="the text flushed",
    )
    port = server.port

    server.kill()
    data, deltas_from = part_row(server.db_path, streamed["id"])
    assert orjson.loads(data)["text"] == "" and deltas_from is not None  # text in the log only

    server.start()
    assert server.port == port
    # Recovery shows the session idle for a moment before the resumed turn starts: wait for
    # the resumed reply itself.
    wait_for(
        lambda: [p["text"] for p in _text_parts(server, sid)][-1:] == ["resumed"],
        what="the resumed turn's reply",
    )
    server.wait_idle(sid)
    parts = {p["id"]: p for p in _text_parts(server, sid)}
    kept = parts[streamed["id"]]
    assert kept["text"] == FLUSHED
    assert "end" in kept["time"]  # recovery closed it
    assert [p["text"] for p in parts.values()][-1] == "resumed"
    assert_closed_part_stored_once(server.db_path, kept)

    server.close()
    rebuilt, live = rebuilt_and_live(server.db_path)
    assert rebuilt == live
