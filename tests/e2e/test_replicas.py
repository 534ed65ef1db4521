"""Issue #11: several ``roost serve`` processes on one store (one SQLite file, one PostgreSQL
database) behave as one server: every committed event reaches every process's ``/event``
subscribers in order, and an abort, a reply or a prompt sent to any process reaches the turn
wherever it runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from roost.store.location import parse
from tests.support.events import EventCollector, Frame, session_frames, types_of, until_idle
from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for, written

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def _replicas(
    project: Path, target: Path | str, *args: str, prefix_a: list[str] | None = None
) -> Iterator[tuple[RoostServer, RoostServer]]:
    """Replicas ``a`` and ``b`` of one store, both with ``args``; ``prefix_a`` runs ``a`` under
    a command prefix (another host name)."""
    a = RoostServer(project, target, args=["--replica", "a", *args], prefix=prefix_a).start()
    try:
        b = RoostServer(project, target, args=["--replica", "b", *args]).start()
        try:
            yield a, b
        finally:
            b.close()
    finally:
        a.close()


def _first_turn_running(a: RoostServer, project: Path, llm: ScriptedLLM) -> str:
    """A session whose first turn runs a one-second bash call on ``a``; the scripted LLM then
    answers "first done" and, to the next prompt, "second done"."""
    marker = project / "started"
    llm.enqueue(
        tool_turn("bash", {"command": f"touch {marker}; sleep 1"}),
        text_turn("first done"),
        text_turn("second done"),
    )
    sid: str = a.create_session()["id"]
    assert a.post(f"/session/{sid}/prompt_async", json=prompt_body("one")).status_code == 204
    wait_for(lambda: marker.exists(), what="the first turn running on a")
    return sid


def test_every_subscriber_on_every_replica_sees_every_event_in_order(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    with _replicas(project, store_target) as (a, b):
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
        # A client that followed a and reconnects to b resumes with a's Last-Event-ID.
        after = stored_a[0][0]
        assert after is not None
        with EventCollector(b.url, last_event_id=after) as resumed:
            replayed = resumed.wait_until(
                lambda fs: (
                    [(i, f) for i, f in fs if i is not None][: len(stored_a) - 1]
                    if sum(i is not None for i, _ in fs) >= len(stored_a) - 1
                    else None
                ),
                what="the replay on b",
            )
        assert replayed == stored_a[1:]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tool_parts(server: RoostServer, sid: str) -> list[dict[str, Any]]:
    return [p for m in server.messages(sid) for p in m["parts"] if p["type"] == "tool"]


def test_an_abort_sent_to_another_replica_stops_the_turn_and_kills_its_processes(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    with _replicas(project, store_target) as (a, b):
        pid_file = project / "pids"
        command = f"trap '' TERM; sleep 60 & echo $$ $! > {pid_file}; wait"
        llm.enqueue(tool_turn("bash", {"command": command}))
        sid = a.create_session()["id"]
        assert a.post(f"/session/{sid}/prompt_async", json=prompt_body("hang")).status_code == 204
        shell, sleeper = (int(p) for p in wait_for(lambda: (written(pid_file) or "").split()))
        assert b.get("/session/status").json()[sid]["type"] == "busy"  # the lease, seen on b
        assert b.post(f"/session/{sid}/abort").json() is True  # sent to the other process
        for server in (b, a):
            msgs = server.wait_idle(sid, timeout_s=10)
            assert msgs[-1]["info"]["error"]["name"] == "MessageAbortedError"
            assert server.get("/session/status").json() == {}
        wait_for(lambda: not _alive(shell) and not _alive(sleeper), what="the group killed")
        part = _tool_parts(b, sid)[-1]
        assert (part["state"]["status"], part["state"]["error"]) == ("error", "aborted")
        # The coordination event is stored, but no client sees it, live or replayed.
        with EventCollector(b.url, last_event_id="0") as replay:
            replay.wait_until(until_idle(sid), what="the replayed turn")
            assert not [f for _, f in replay.snapshot() if f["type"].startswith("roost.")]


def test_a_question_answered_on_another_replica_reaches_the_waiting_turn(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    with _replicas(project, store_target) as (a, b):
        question = {
            "questions": [
                {
                    "question": "Pick a colour",
                    "header": "Colour",
                    "options": [{"label": "Red", "description": "warm"}],
                }
            ]
        }
        llm.enqueue(tool_turn("question", question), text_turn("Red it is"))
        sid = a.create_session()["id"]
        assert a.post(f"/session/{sid}/prompt_async", json=prompt_body("ask")).status_code == 204
        pending = wait_for(lambda: b.get("/question").json(), what="the question, on b")
        reply = b.post(f"/question/{pending[0]['id']}/reply", json={"answers": [["Red"]]})
        assert reply.status_code == 200 and reply.json() is True
        msgs = a.wait_idle(sid, timeout_s=10)
        part = _tool_parts(a, sid)[0]
        assert part["state"]["status"] == "completed"
        assert '"Pick a colour"="Red"' in part["state"]["output"]
        assert msgs[-1]["parts"][-2]["text"] == "Red it is"


def test_a_prompt_admitted_while_another_replica_runs_the_session_runs_next_once(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    with _replicas(project, store_target) as (a, b):
        sid = _first_turn_running(a, project, llm)
        assert b.post(f"/session/{sid}/prompt_async", json=prompt_body("two")).status_code == 204
        wait_for(
            lambda: (
                [
                    p.get("text")
                    for m in a.messages(sid)
                    if m["info"]["role"] == "assistant"
                    for p in m["parts"]
                    if p["type"] == "text"
                ]
                == ["first done", "second done"]
            ),
            timeout_s=20,
            what="both turns, in order",
        )
        assert len(llm.requests) == 3
        assert "LeaseHeld" not in "".join(a.log_lines + b.log_lines)


_TTL_MS = 3000


def _sleep_in_bash(project: Path, llm: ScriptedLLM, server: RoostServer) -> tuple[str, int]:
    """Start a turn on ``server`` whose bash call sleeps; returns the session and the sleep's
    pid once it runs."""
    pid_file = project / "sleep.pid"
    llm.enqueue(tool_turn("bash", {"command": f"sleep 60 & echo $! > {pid_file}; wait"}))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("nap")).status_code == 204
    return sid, int(wait_for(lambda: written(pid_file), what="the sleep started"))


def _interrupted(server: RoostServer, sid: str) -> dict[str, Any] | None:
    if sid in server.get("/session/status").json():
        return None
    parts = _tool_parts(server, sid)
    done = parts and parts[0]["state"]["status"] == "error"
    return parts[0] if done else None


def test_a_replica_killed_mid_tool_is_recovered_by_another_within_ttl_plus_2s(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    ttl = ["--lease-ttl-ms", str(_TTL_MS)]
    with _replicas(project, store_target, *ttl) as (a, b):
        sid, sleeper = _sleep_in_bash(project, llm, a)
        llm.enqueue(text_turn("resumed on b"))
        a.kill()
        part = wait_for(
            lambda: _interrupted(b, sid),
            timeout_s=_TTL_MS / 1000 + 2,
            what="b recovering a's run within the lease TTL + 2 s",
        )
        assert part["state"]["error"].startswith("interrupted")
        wait_for(lambda: not _alive(sleeper), what="a's process group killed by b")
        texts = wait_for(
            lambda: (
                [
                    p.get("text")
                    for m in b.messages(sid)
                    for p in m["parts"]
                    if p["type"] == "text" and m["info"]["role"] == "assistant"
                ]
                or None
            ),
            what="the turn resumed on b",
        )
        assert texts == ["resumed on b"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root")
def test_a_recovered_run_says_which_host_s_processes_it_could_not_stop(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    # Replica a runs under another host name (its own UTS namespace): b cannot know whether
    # its process ids mean anything here, so it must not signal them, and says so.
    other = ["unshare", "--uts", "sh", "-c", 'hostname far-away && exec "$@"', "sh"]
    ttl = ["--lease-ttl-ms", str(_TTL_MS)]
    with _replicas(project, store_target, *ttl, prefix_a=other) as (a, b):
        sid, sleeper = _sleep_in_bash(project, llm, a)
        try:
            llm.enqueue(text_turn("resumed"))
            a.kill()
            part = wait_for(lambda: _interrupted(b, sid), timeout_s=10, what="the recovery on b")
            assert part["state"]["error"].endswith("could not be stopped: host far-away")
            # Left alone, as reported: its record stays for a replica on that host to act on.
            engine = create_engine(parse(store_target).url, poolclass=NullPool)
            with engine.connect() as conn:
                owners = [r[0] for r in conn.execute(text("SELECT owner FROM run_process"))]
            engine.dispose()
            assert [o.split("/")[0] for o in owners] == ["far-away"]
        finally:
            if _alive(sleeper):  # nobody else may stop it
                os.kill(sleeper, signal.SIGKILL)


def test_a_synchronous_prompt_to_a_replica_that_waits_for_the_lease_gets_its_own_reply(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    with _replicas(project, store_target) as (a, b):
        sid = _first_turn_running(a, project, llm)
        reply = b.post(f"/session/{sid}/message", json=prompt_body("two"), timeout=30)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["info"]["role"] == "assistant"
        assert [p["text"] for p in body["parts"] if p["type"] == "text"] == ["second done"]


def test_delete_and_revert_sent_to_another_replica_stop_the_turn_first(
    project: Path, store_target: Path | str, llm: ScriptedLLM
) -> None:
    with _replicas(project, store_target) as (a, b):
        # Revert on b while a's turn runs bash: the turn stops, its sleep dies, b reverts.
        sid, sleeper = _sleep_in_bash(project, llm, a)
        user = b.messages(sid)[0]["info"]["id"]
        response = b.post(f"/session/{sid}/revert", json={"messageID": user})
        assert response.status_code == 200, response.text
        assert response.json()["revert"]["messageID"] == user
        wait_for(lambda: not _alive(sleeper), what="a's sleep killed")
        assert a.get("/session/status").json() == {}
        # Delete on b while a's new turn runs: the turn stops and the session is gone on a.
        (project / "sleep.pid").unlink(missing_ok=True)  # the revert took it away already
        other, sleeper = _sleep_in_bash(project, llm, a)
        assert b.request("DELETE", f"/session/{other}").json() is True
        wait_for(lambda: not _alive(sleeper), what="the deleted session's sleep killed")
        assert a.get(f"/session/{other}").status_code == 404
        assert other not in a.get("/session/status").json()
