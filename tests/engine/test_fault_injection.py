"""Fault injection at the store's write sites: never a 2xx without the stored prompt, and a
failure during a turn is durable and the session returns to idle."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from roost.engine.admission import PromptInput
from roost.engine.sessions import SessionService
from roost.store import invariants, runs
from roost.store.database import Database
from tests.support.scripted_llm import ScriptedLLM, Text, Turn, tool_turn

pytestmark = pytest.mark.anyio


class InjectedFault(Exception):
    """The store failed on purpose."""


@pytest.fixture
def lease_ttl_ms() -> int:
    return 600  # short, so recovery finishes a turn whose last write failed


def fail_write(db: Database, target: int) -> None:
    """Fail the ``target``-th write from now (one command, whatever retries it gets)."""
    start = next(db._numbers)  # the counter's current position

    def fault(number: int) -> None:
        if number == start + target:
            raise InjectedFault(f"injected failure of write {target}")

    db.fault = fault


async def _messages(svc: SessionService, sid: str) -> list[dict[str, Any]]:
    rows = await svc.list_messages(sid)
    return [
        {"info": orjson.loads(r.info), "parts": [orjson.loads(p) for p in r.parts]} for r in rows
    ]


@pytest.mark.parametrize("revert_pending", [False, True])
async def test_admission_never_answers_without_the_stored_prompt(
    service: SessionService, revert_pending: bool
) -> None:
    for target in range(1, 4):
        sid = (await service.create_session())["id"]
        if revert_pending:
            first = await service.prompt_async(
                sid, PromptInput(parts=[{"type": "text", "text": "before"}], no_reply=True)
            )
            await service.revert(sid, first.message_id)
        fail_write(service.db, target)
        try:
            admitted = await service.prompt_async(
                sid, PromptInput(parts=[{"type": "text", "text": f"try {target}"}], no_reply=True)
            )
        except InjectedFault:
            admitted = None
        finally:
            service.db.fault = None
        texts = [p["text"] for m in await _messages(service, sid) for p in m["parts"]]
        if admitted is None:
            assert f"try {target}" not in texts  # no 2xx, and nothing half-stored
        else:
            assert f"try {target}" in texts  # a 2xx means it is stored


async def _settle(service: SessionService, sid: str, timeout_s: float = 15) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msgs = await _messages(service, sid)
        busy = sid in await service.statuses()
        open_runs = await service.db.read(lambda c: [r for r in runs.open_runs(c, sid)])
        replies = [m for m in msgs if m["info"]["role"] == "assistant"]
        if (
            not busy
            and not open_runs
            and replies
            and all("completed" in r["info"]["time"] for r in replies)
        ):
            return msgs
        await asyncio.sleep(0.05)
    raise TimeoutError(f"session {sid} did not settle")


async def test_a_failed_write_during_a_turn_is_durable_and_the_session_goes_idle(
    service: SessionService, llm: ScriptedLLM
) -> None:
    failures_seen = 0
    for target in range(1, 9):
        llm.enqueue(
            tool_turn("todowrite", {"todos": []}),
            Turn([Text("a fairly long answer " * 5, chunk_chars=5)]),
        )
        sid = (await service.create_session())["id"]
        admitted = await service.prompt_async(
            sid, PromptInput(parts=[{"type": "text", "text": "work"}])
        )
        fail_write(service.db, target)
        try:
            msgs = await _settle(service, sid)
        finally:
            service.db.fault = None
        errors = [m["info"]["error"] for m in msgs if "error" in m["info"]]
        failures_seen += bool(errors)
        for m in msgs:
            for part in m["parts"]:
                assert (part.get("state") or {}).get("status") not in ("pending", "running")
        report = await service.db.read(lambda c: invariants.check(c, settled=True))
        assert report.ok, report.violations
        assert admitted.run_id is not None
    assert failures_seen > 0  # the injection really hit the turn's writes
