"""A streamed reply end to end: reads mid-stream see the text so far, the part's row is written
once rather than at every flush, and the events keep OpenCode's shape (issue #13)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support.events import EventCollector, until_idle
from tests.support.projections import assert_closed_part_stored_once, part_row, rebuilt_and_live
from tests.support.scripted_llm import Hang, ScriptedLLM, Text, Turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(server_on_each_store: RoostServer) -> RoostServer:
    """Streaming is stored differently per database: run on both."""
    return server_on_each_store


SO_FAR = "".join(f"line {i:05d} — naïve\n" for i in range(3000))
"""60,000 characters: long enough that their deltas wait longer than the shortest wait."""


def _streamed_part(server: RoostServer, sid: str) -> dict[str, Any] | None:
    """The reply's text part once it holds all of ``SO_FAR``."""
    messages = server.messages(sid)
    for part in messages[-1]["parts"] if len(messages) > 1 else []:
        if part["type"] == "text" and part["text"] == SO_FAR:
            found: dict[str, Any] = part
            return found
    return None


def test_a_reply_read_mid_stream_shows_its_text_so_far_and_its_row_is_written_once(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Text(SO_FAR, chunk_chars=16), Hang()]))
    with EventCollector(server.url) as events:
        sid = server.create_session()["id"]
        response = server.post(f"/session/{sid}/prompt_async", json=prompt_body("go"))
        assert response.status_code == 204
        part = wait_for(lambda: _streamed_part(server, sid), what="the text so far")
        assert "end" not in part.get("time", {})  # still streaming
        mid = part["messageID"]
        one = server.get(f"/session/{sid}/message/{mid}").json()
        assert [p["text"] for p in one["parts"] if p["type"] == "text"] == [SO_FAR]

        data, deltas_from = part_row(server.db_path, part["id"])
        assert orjson.loads(data)["text"] == ""  # the row still holds the part as it opened
        assert deltas_from is not None

        assert server.post(f"/session/{sid}/abort").json() is True
        server.wait_idle(sid)
        frames = events.wait_until(until_idle(sid), what="session.idle")

    (closed,) = [p for p in server.messages(sid)[-1]["parts"] if p["id"] == part["id"]]
    assert closed["text"] == SO_FAR and "end" in closed["time"]
    assert_closed_part_stored_once(server.db_path, closed)

    # On the wire, as OpenCode: the part opens empty, grows by deltas, closes whole.
    updated = [
        f["properties"]["part"]["text"]
        for _, f in frames
        if f["type"] == "message.part.updated" and f["properties"]["part"]["id"] == part["id"]
    ]
    deltas = [
        f["properties"]["delta"]
        for _, f in frames
        if f["type"] == "message.part.delta" and f["properties"]["partID"] == part["id"]
    ]
    assert updated == ["", SO_FAR]
    assert "".join(deltas) == SO_FAR

    server.close()
    rebuilt, live = rebuilt_and_live(server.db_path)
    assert rebuilt == live
