"""A turn whose writes the store refuses stops at once, keeps its session busy (past its lease's
stored expiry) and ends with a visible error as soon as the store takes writes again, without
recovery taking it over.

The full disk is a real tmpfs filled by a ballast file (root only; skipped otherwise).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from roost.agent.catalog import Catalog
from roost.agent.loop import RetryPolicy
from roost.agent.providers.registry import ProviderRegistry
from roost.agent.tools.registry import builtin_tools
from roost.engine.admission import PromptInput
from roost.engine.sessions import ServiceOptions, SessionService
from roost.errors import StorageUnavailable
from roost.model import event as ev
from roost.store import leases, runs
from roost.store.database import Database
from roost.store.event_log import now_ms, read_session_events
from roost.store.schema import run_recovery
from tests.support.filesystems import Ballast, small_tmpfs
from tests.support.scripted_llm import Delay, ScriptedLLM, Step, Text, Turn
from tests.support.server import project_config

pytestmark = pytest.mark.anyio

TTL_MS = 600
"""Short leases: the outage below outlasts several of them."""


async def _service(directory: Path, llm: ScriptedLLM) -> SessionService:
    db = await Database.open(directory / "engine.db")
    svc = SessionService(
        db,
        Catalog(project_config(llm.base_url), {}),
        ProviderRegistry(),
        ServiceOptions(
            directory=str(directory),
            project_id="global",
            retry=RetryPolicy(max_attempts=1),
            tools=builtin_tools(directory / "config"),
            output_dir=directory / "out",
            lease_ttl_ms=TTL_MS,
        ),
    )
    await svc.start()
    return svc


@pytest.fixture
async def full_disk_service(
    tmp_path: Path, llm: ScriptedLLM
) -> AsyncIterator[tuple[SessionService, Ballast]]:
    with small_tmpfs(tmp_path / "fs", size_mib=16) as fs:
        svc = await _service(fs, llm)
        ballast = Ballast(fs)
        try:
            yield svc, ballast
        finally:
            ballast.free()
            await svc.stop()


@pytest.fixture
def unretrieved(caplog: pytest.LogCaptureFixture) -> Any:
    """Asserts at teardown that asyncio logged no task exception nobody retrieved."""
    yield
    gc.collect()  # asyncio reports an unretrieved exception when its task is collected
    lost = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert lost == []


def _slow_turn() -> Turn:
    items: list[Step] = []
    for i in range(400):
        items += [Text(f"piece{i} ", chunk_chars=64), Delay(0.05)]
    return Turn(items)


async def _messages(svc: SessionService, sid: str) -> list[dict[str, Any]]:
    rows = await svc.list_messages(sid)
    return [
        {"info": orjson.loads(r.info), "parts": [orjson.loads(p) for p in r.parts]} for r in rows
    ]


async def _until(probe: Any, what: str, timeout_s: float = 15) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def _streaming(svc: SessionService, llm: ScriptedLLM) -> tuple[str, str]:
    """A session whose turn streams slowly and has stored some text: (session, run)."""
    llm.enqueue(_slow_turn())
    sid = (await svc.create_session())["id"]
    admitted = await svc.prompt_async(sid, PromptInput(parts=[{"type": "text", "text": "go"}]))
    assert admitted.run_id is not None

    async def text_stored() -> bool:
        msgs = await _messages(svc, sid)
        return any(p.get("text") for m in msgs[1:] for p in m["parts"])

    await _until(text_stored, "the first text stored")
    return sid, admitted.run_id


async def _stopped(caplog: pytest.LogCaptureFixture, sid: str) -> None:
    """Wait until the server reports that it stopped the session's turn."""

    async def reported() -> bool:
        return f"stopping the turn of {sid}" in caplog.text

    await _until(reported, "the turn stopped")


async def test_a_full_disk_stops_the_turn_keeps_it_busy_and_it_ends_once_space_is_back(
    full_disk_service: tuple[SessionService, Ballast],
    llm: ScriptedLLM,
    caplog: pytest.LogCaptureFixture,
    unretrieved: None,
) -> None:
    svc, ballast = full_disk_service
    sid, run_id = await _streaming(svc, llm)
    ballast.fill()
    await _stopped(caplog, sid)
    stored = await _messages(svc, sid)
    await asyncio.sleep(4 * TTL_MS / 1000)  # the stored lease expires; recovery runs meanwhile
    # Still busy (the heartbeat holds the lease), nothing more stored, nothing recovered.
    assert sid in await svc.statuses()
    assert await _messages(svc, sid) == stored
    lease = await svc.db.read(lambda c: leases.get(c, sid))
    assert lease is not None and lease.expires_at_ms < now_ms()

    ballast.free()
    await asyncio.wait_for(svc.runs.wait_run(run_id), 15)
    msgs = await _messages(svc, sid)
    reply = msgs[-1]["info"]
    error = reply["error"]["data"]["message"]
    assert error.startswith("interrupted: storage error: the disk holding the database is full")
    assert "completed" in reply["time"]
    assert sid not in await svc.statuses()
    run = await svc.db.read(lambda c: runs.get_run(c, run_id))
    assert run is not None and run.status == runs.FAILED
    recovered = await svc.db.read(lambda c: c.execute(run_recovery.select()).all())
    assert recovered == []  # the turn ended itself: recovery never took it over
    events = await svc.db.read(lambda c: read_session_events(c, sid))
    types = [e.type for e in events]
    assert types[-3:] == [ev.SESSION_ERROR, ev.SESSION_STATUS, ev.SESSION_IDLE]
    assert events[-3].properties["error"]["data"]["message"] == error
    assert len(llm.requests) == 1  # stopped, not retried or resumed


async def test_abort_while_the_outcome_is_refused_answers_storage_unavailable(
    full_disk_service: tuple[SessionService, Ballast],
    llm: ScriptedLLM,
    caplog: pytest.LogCaptureFixture,
    unretrieved: None,
) -> None:
    svc, ballast = full_disk_service
    sid, run_id = await _streaming(svc, llm)
    ballast.fill()
    await _stopped(caplog, sid)
    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(svc.abort(sid), 10)  # no 2xx: the abort is not stored
    ballast.free()
    await asyncio.wait_for(svc.runs.wait_run(run_id), 15)
    assert await svc.abort(sid)  # nothing left to stop; the store takes writes again
    reply = (await _messages(svc, sid))[-1]["info"]
    assert reply["error"]["data"]["message"].startswith("interrupted: storage error")
