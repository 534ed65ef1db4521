"""Issue #11: ``roost serve --db postgresql://…`` against a real PostgreSQL cluster.

One process and two replicas on one database, a PostgreSQL restart under a running server, and
the start-up errors of a ``--db`` that names no supported store.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.postgres import PostgresCluster
from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _roost(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROOST_DB": ""},
    )


@pytest.mark.parametrize(
    "value", ["mysql://root@localhost/roost", "postgresql+asyncpg://x@h/db", "sqlite://"]
)
def test_a_db_that_names_no_supported_store_is_a_start_up_error(value: str, tmp_path: Path) -> None:
    done = _roost("serve", "--port", "0", "--db", value, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "--db" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the URL


def test_a_server_on_postgresql_answers_prompts_and_reports_its_store(
    project: Path, postgres_url: str, llm: ScriptedLLM, postgres_cluster: PostgresCluster
) -> None:
    secret_url = postgres_url.replace("roost@", "roost:s3cret@")  # trust auth ignores it
    server = RoostServer(project, secret_url, args=["--replica", "alpha"]).start()
    try:
        assert set(server.get("/global/health").json()) == {"healthy", "version"}
        health = server.get("/global/health?detail=true").json()
        assert health["healthy"] is True
        assert health["store"]["kind"] == "postgresql"
        assert "s3cret" not in health["store"]["location"]
        assert health["store"]["location"].endswith(postgres_url.rsplit("/", 1)[1])
        assert health["replica"] == "alpha" and health["leases"] == []
        sid = server.create_session()["id"]
        llm.enqueue(text_turn("stored in postgres"))
        reply = server.post(f"/session/{sid}/message", json=prompt_body("hi"), timeout=30)
        assert reply.status_code == 200, reply.text
        texts = [
            p.get("text") for m in server.messages(sid) for p in m["parts"] if p["type"] == "text"
        ]
        assert texts == ["hi", "stored in postgres"]
    finally:
        server.close()


def test_two_replicas_on_one_database_share_sessions_and_run_each_prompt_once(
    project: Path, postgres_url: str, llm: ScriptedLLM
) -> None:
    a = RoostServer(project, postgres_url, args=["--replica", "a"]).start()
    b = RoostServer(project, postgres_url, args=["--replica", "b"]).start()
    try:
        sid = a.create_session()["id"]
        assert sid in [s["id"] for s in b.get("/session").json()]
        llm.enqueue(*(text_turn(f"reply {n}") for n in range(4)))
        for n in range(4):  # round-robin; each waits for its answer
            target = (a, b)[n % 2]
            reply = target.post(f"/session/{sid}/message", json=prompt_body(f"q{n}"), timeout=30)
            assert reply.status_code == 200, reply.text
        assert len(llm.requests) == 4
        for server in (a, b):
            messages = server.messages(sid)
            assert [m["info"]["role"] for m in messages] == ["user", "assistant"] * 4
            replies = [
                p["text"]
                for m in messages
                if m["info"]["role"] == "assistant"
                for p in m["parts"]
                if p["type"] == "text"
            ]
            assert replies == [f"reply {n}" for n in range(4)]
    finally:
        a.close()
        b.close()


def test_a_postgresql_restart_fails_requests_fast_then_heals_and_loses_nothing(
    project: Path, postgres_url: str, llm: ScriptedLLM, postgres_cluster: PostgresCluster
) -> None:
    server = RoostServer(project, postgres_url).start()
    try:
        before = [server.create_session()["id"] for _ in range(3)]
        postgres_cluster.stop()
        try:
            # Answered (a client timeout would fail the test), and answered as a 503.
            down = server.post("/session", json={"title": "while down"}, timeout=30)
            assert down.status_code == 503, down.text
            data = down.json()["data"]
            assert (data["service"], data["cause"]) == ("storage", "unreachable"), data
        finally:
            postgres_cluster.start()
        wait_for(
            lambda: _created(server),
            what="a session created once PostgreSQL is back",
            timeout_s=30,
        )
        ids = [s["id"] for s in server.get("/session").json()]
        assert set(before) <= set(ids)
        assert "while down" not in [s["title"] for s in server.get("/session").json()]
    finally:
        server.close()


def _created(server: RoostServer) -> bool:
    try:
        return server.post("/session", json={"title": "after"}, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def test_prompts_admitted_while_postgresql_restarts_under_load_are_all_answered(
    project: Path, postgres_url: str, llm: ScriptedLLM, postgres_cluster: PostgresCluster
) -> None:
    """Four clients prompt four sessions in a loop while PostgreSQL stops and starts again:
    every prompt answered 204 is stored and answered; every other one got a 503, and nothing
    hangs."""
    server = RoostServer(project, postgres_url).start()
    sessions = [server.create_session()["id"] for _ in range(4)]
    admitted: list[tuple[str, str]] = []
    refused: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(sid: str) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for n in range(400):  # bounded; the restart ends the loop much earlier
                if stop.is_set():
                    return
                text = f"{sid} #{n}"
                try:
                    response = http.post(f"/session/{sid}/prompt_async", json=prompt_body(text))
                except httpx.TransportError:
                    continue
                with lock:
                    if response.status_code == 204:
                        admitted.append((sid, text))
                    else:
                        refused.append(response.status_code)
                time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(sid,)) for sid in sessions]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: len(admitted) >= 8, what="load before the restart")
        postgres_cluster.stop()
        try:  # down until the clients have met it
            wait_for(
                lambda: refused, timeout_s=30, what="a prompt refused while PostgreSQL is down"
            )
        finally:
            postgres_cluster.start()
        wait_for(lambda: len(admitted) >= 40, timeout_s=60, what="admissions after the restart")
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert set(refused) <= {503}, refused
        for sid in sessions:
            # Prompts queued behind each other run one by one: wait for every reply, not for
            # the first moment between two turns when the session looks idle.
            msgs = wait_for(functools.partial(_all_answered, server, sid), timeout_s=60)
            asked = {p["text"] for m in msgs if m["info"]["role"] == "user" for p in m["parts"]}
            assert {text for s, text in admitted if s == sid} <= asked
    finally:
        stop.set()
        server.close()


def _all_answered(server: RoostServer, sid: str) -> list[dict[str, Any]] | None:
    """The session's messages once every user message has a completed reply."""
    msgs = server.messages(sid)
    replied = {
        m["info"].get("parentID")
        for m in msgs
        if m["info"]["role"] == "assistant" and "completed" in m["info"]["time"]
    }
    users = [m["info"]["id"] for m in msgs if m["info"]["role"] == "user"]
    return msgs if all(u in replied for u in users) else None
