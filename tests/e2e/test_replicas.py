"""Issue #11: several ``roost serve`` processes on one store (one SQLite file, one PostgreSQL
database) deliver every committed event to every process's ``/event`` subscribers, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.events import EventCollector, Frame, session_frames, types_of, until_idle
from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import RoostServer, prompt_body

pytestmark = pytest.mark.e2e


def test_every_subscriber_on_every_replica_sees_every_event_in_order(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    a = RoostServer(project, store_target, args=["--replica", "a"]).start()
    b = RoostServer(project, store_target, args=["--replica", "b"]).start()
    try:
        with EventCollector(a.url) as on_a, EventCollector(b.url) as on_b:
            sessions = [a.create_session()["id"], b.create_session()["id"]]
            llm.enqueue(*(text_turn(f"reply {n}") for n in range(4)))
            for n in range(4):  # prompts round-robin over both processes and both sessions
                target, sid = (a, b)[n % 2], sessions[n // 2]
                response = target.post(f"/session/{sid}/prompt_async", json=prompt_body(f"q{n}"))
                assert response.status_code == 204, response.text
                on_a.wait_until(until_idle(sid, n % 2 + 1), what=f"idle {n} on a")
            for sid in sessions:
                on_b.wait_until(until_idle(sid, 2), what=f"both turns of {sid} on b")
            seen_a, seen_b = on_a.snapshot(), on_b.snapshot()
        stored_a: list[Frame] = [(i, f) for i, f in seen_a if i is not None]
        stored_b: list[Frame] = [(i, f) for i, f in seen_b if i is not None]
        # The same committed events, with the same ids, in the same (ascending) order.
        assert [i for i, _ in stored_a] == [i for i, _ in stored_b]
        ids = [int(i or 0) for i, _ in stored_a]
        assert ids == sorted(ids)
        assert stored_a == stored_b
        assert len(llm.requests) == 4  # one turn per prompt, wherever it ran
        for sid in sessions:
            mine = session_frames(stored_b, sid)
            assert types_of(mine).count("session.idle") == 2
            assert "session.created" in types_of(mine)
    finally:
        a.close()
        b.close()
