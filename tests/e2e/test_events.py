"""The event streams end to end: ``/event`` order and ids, coalesced deltas, ``Last-Event-ID``
replay, and ``/global/event`` envelopes."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.support.events import EventCollector, Frame, session_frames, types_of, until_idle
from tests.support.scripted_llm import Delay, ScriptedLLM, Text, Turn, text_turn
from tests.support.server import RoostServer, prompt_body

pytestmark = pytest.mark.e2e

REPLAY_PARTS = 1100
"""Parts in the prompt the reconnecting client missed: more events than one replay page (1000)."""
REPLAY_PART_BYTES = 8000
"""Their size: 8.8 MB, more than the socket buffers on both ends hold (the kernel grows the
server's send buffer up to ``tcp_wmem``'s 4 MiB), so the replay stalls until the client reads."""
STALLED_RECEIVE_BUFFER = 32 * 2**10
"""``SO_RCVBUF`` of a client that reads nothing for a while. Not less: on loopback, smaller
buffers drop the server's large segments, and after ``resume()`` TCP retransmits them with
backoff, at a few KB/s."""


def _send(server: RoostServer, sid: str, text: str) -> None:
    response = server.post(f"/session/{sid}/prompt_async", json=prompt_body(text))
    assert response.status_code == 204, response.text


def _logged(frames: list[Frame]) -> list[tuple[int, dict[str, Any]]]:
    """Frames that carry an id (logged events), with the id as an int."""
    return [(int(i), f) for i, f in frames if i is not None]


def _role(frame: dict[str, Any]) -> str | None:
    info = frame["properties"].get("info") or {}
    return info.get("role")


def test_event_stream_starts_connected_and_a_prompt_follows_opencode_order(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(0.1), Text("hello")]))
    with EventCollector(server.url) as events:
        sid = server.create_session()["id"]
        _send(server, sid, "hi")
        events.wait_until(until_idle(sid), what="session.idle")
        frames = events.snapshot()
    first_id, first = frames[0]
    assert first == {"type": "server.connected", "properties": {}} and first_id is None

    mine = session_frames(frames, sid)
    types = types_of(mine)
    assert types[:2] == ["session.created", "session.updated"]
    start = types.index("message.updated")
    assert types[start : start + 5] == [
        "message.updated",
        "message.part.updated",
        "session.updated",
        "session.status",
        "message.updated",
    ]
    user, user_part, _, busy, assistant = (f for _, f in mine[start : start + 5])
    assert _role(user) == "user"
    assert user_part["properties"]["part"]["messageID"] == user["properties"]["info"]["id"]
    assert busy["properties"]["status"]["type"] == "busy"
    assert _role(assistant) == "assistant"
    assert "completed" not in assistant["properties"]["info"]["time"]
    assert types[-3:] == ["message.updated", "session.status", "session.idle"]
    completed = mine[-3][1]["properties"]["info"]
    assert completed["id"] == assistant["properties"]["info"]["id"]
    assert completed["finish"] == "stop" and "completed" in completed["time"]
    assert mine[-2][1]["properties"]["status"] == {"type": "idle"}
    assert "message.part.delta" in types[start + 5 : -3]


def test_every_logged_frame_has_a_strictly_increasing_id(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(0.2), Text("a" * 200, chunk_chars=2)]), text_turn("b"))
    with EventCollector(server.url) as events:
        one = server.create_session()["id"]
        two = server.create_session()["id"]
        _send(server, one, "first")  # two sessions at once: their events interleave
        _send(server, two, "second")
        events.wait_until(
            lambda fs: until_idle(one)(fs) and until_idle(two)(fs), what="both sessions idle"
        )
        frames = events.snapshot()
    unlogged = [f["type"] for i, f in frames if i is None]
    assert set(unlogged) <= {"server.connected", "server.heartbeat"}
    ids = [i for i, _ in _logged(frames)]
    assert len(ids) == len(frames) - len(unlogged) > 20
    assert all(a < b for a, b in itertools.pairwise(ids))


def test_a_long_answer_is_stored_whole_and_streamed_as_far_fewer_coalesced_deltas(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    text = "".join(f"{i:04d} " for i in range(600))  # 3,000 characters
    llm.enqueue(Turn([Text(text, chunk_chars=3)]))  # 1,000 chunks on the wire
    with EventCollector(server.url) as events:
        sid = server.create_session()["id"]
        _send(server, sid, "long")
        frames = events.wait_until(until_idle(sid), what="session.idle")
    reply = server.messages(sid)[-1]
    parts = [p for p in reply["parts"] if p["type"] == "text"]
    assert [p["text"] for p in parts] == [text]
    part_id = parts[0]["id"]

    rebuilt: str | None = None
    deltas = 0
    for _, f in frames:
        props = f["properties"]
        if f["type"] == "message.part.updated" and props["part"]["id"] == part_id:
            if rebuilt is None:
                rebuilt = props["part"]["text"]  # the part opens with its text so far
        elif f["type"] == "message.part.delta" and props["partID"] == part_id:
            assert props["field"] == "text" and props["messageID"] == reply["info"]["id"]
            assert rebuilt is not None, "a delta before its part"
            rebuilt += props["delta"]
            deltas += 1
    assert rebuilt == text
    assert 0 < deltas <= 100  # coalesced: not one event per provider chunk


def test_last_event_id_replays_exactly_the_logged_events_after_it(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    with EventCollector(server.url) as live:
        _send(server, sid, "one")
        first = _logged(live.wait_until(until_idle(sid), what="the first idle"))
    middle = first[len(first) // 2][0]

    # While no client listens: a prompt of many parts, so that replaying it takes more than
    # one page of the log and more than the socket buffers hold.
    parts = [
        {"type": "text", "text": f"{n:05d}" + "x" * REPLAY_PART_BYTES} for n in range(REPLAY_PARTS)
    ]
    response = server.post(f"/session/{sid}/prompt_async", json={"parts": parts})
    assert response.status_code == 204, response.text
    server.wait_idle(sid)

    # Reconnect, but read nothing yet: the replay stalls on a full socket while the third
    # prompt commits its events. Each of them must then arrive exactly once, either replayed
    # or live.
    llm.enqueue(Turn([Text("three, "), Delay(0.05), Text("streamed")]))
    with EventCollector(
        server.url, last_event_id=str(middle), paused=True, receive_buffer=STALLED_RECEIVE_BUFFER
    ) as resumed:
        _send(server, sid, "three")
        server.wait_idle(sid)
        resumed.resume()
        resumed.wait_until(until_idle(sid, 3), what="three idles after the cursor")
        received = resumed.snapshot()
    assert received[0][1]["type"] == "server.connected"
    after = _logged(received)
    assert len(after) > 1000

    last = after[-1][0]
    with EventCollector(server.url, last_event_id="0") as replay:
        replay.wait_until(
            lambda fs: _logged(fs) and _logged(fs)[-1][0] >= last, what="the full replay"
        )
        everything = _logged(replay.snapshot())
    expected = [(i, f) for i, f in everything if middle < i <= last]
    assert [i for i, _ in after] == [i for i, _ in expected]  # no gap, no duplicate, in order
    assert after == expected  # and the same frames
    # What was sent live earlier is what the log replays now.
    first_ids = {i for i, _ in first}
    assert [(i, f) for i, f in everything if i in first_ids] == first


def test_global_event_frames_wrap_each_event_with_directory_and_project(
    server: RoostServer,
) -> None:
    with (
        EventCollector(server.url, path="/global/event") as wrapped,
        EventCollector(server.url) as plain,
    ):
        session = server.create_session()
        sid = session["id"]
        _send(server, sid, "hi")
        plain_frames = plain.wait_until(until_idle(sid), what="session.idle on /event")

        def global_idle(frames: list[Frame]) -> list[Frame] | None:
            unwrapped = [(i, f["payload"]) for i, f in frames]
            return frames if until_idle(sid)(unwrapped) else None

        frames = wrapped.wait_until(global_idle, what="session.idle on /global/event")
    assert frames[0][1]["payload"]["type"] == "server.connected"
    for _, frame in frames:
        assert set(frame) == {"directory", "project", "payload"}
        assert frame["directory"] == session["directory"]
        assert frame["project"] == session["projectID"]
        assert set(frame["payload"]) == {"type", "properties"}
    mine = [(i, f["payload"]) for i, f in frames]
    assert session_frames(mine, sid) == plain_frames


OVERFLOW_PROMPTS = 6
OVERFLOW_PARTS = 3000
OVERFLOW_PART_BYTES = 2000
"""Six commits of 3,000 events of about 6 MB each: a subscriber that reads nothing is stuck in
the first (more than the socket buffers hold), then falls more than 10,000 events (the
broadcaster's cap) behind."""


def test_a_subscriber_that_stops_reading_is_cut_off_and_resumes_without_gap_or_repeat(
    server: RoostServer,
) -> None:
    sid = server.create_session()["id"]
    with (
        EventCollector(server.url) as reader,
        EventCollector(server.url, paused=True, receive_buffer=STALLED_RECEIVE_BUFFER) as stalled,
    ):
        for n in range(OVERFLOW_PROMPTS):
            parts = [
                {"type": "text", "text": f"{n}-{i}-" + "x" * OVERFLOW_PART_BYTES}
                for i in range(OVERFLOW_PARTS)
            ]
            response = server.post(
                f"/session/{sid}/prompt_async", json={"noReply": True, "parts": parts}
            )
            assert response.status_code == 204, response.text
        _send(server, sid, "last")
        everything = _logged(reader.wait_until(until_idle(sid), timeout_s=60, what="the idle"))
        assert len(everything) > OVERFLOW_PROMPTS * OVERFLOW_PARTS
        # The reader got every event while the other one was stalled; the stalled one was cut
        # off: once it reads, it gets what the server had queued for it, then the end.
        stalled.resume()
        before_cut = _logged(stalled.wait_ended(timeout_s=60))
        assert stalled.error is None
        assert not reader.ended
    assert 0 < len(before_cut) < len(everything)
    assert before_cut == everything[: len(before_cut)]

    last = everything[-1][0]
    with EventCollector(server.url, last_event_id=str(before_cut[-1][0])) as resumed:
        resumed.wait_until(
            lambda fs: _logged(fs) and _logged(fs)[-1][0] >= last, what="the resumed replay"
        )
        after_cut = _logged(resumed.snapshot())
    assert before_cut + after_cut == everything  # no gap, no duplicate, same frames
