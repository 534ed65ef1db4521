"""Recovery names what orphaned a run: a recovery in a running server does not claim a restart.

Start-up recovery after a restart ("interrupted: server restarted") is covered by the crash
tests, which restart a real server.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable

import orjson
import pytest

from roost.engine.admission import PromptInput
from roost.engine.owner import this_owner
from roost.engine.sessions import SessionService
from roost.ids import new_message_id, new_run_id
from roost.model import event as ev
from roost.model import message as msg
from roost.store import leases, runs
from roost.store.event_log import Tx, now_ms

pytestmark = pytest.mark.anyio


def _dead_owner_on_this_host() -> str:
    """The owner id a process of this host that has exited would have had."""
    host, boot, _, _ = this_owner().split("/")
    proc = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return f"{host}/{boot}/{proc.stdout.strip()}/1"


async def _orphan(svc: SessionService, owner: str) -> str:
    """A session whose running turn, owned by ``owner``, lost its lease; returns its id."""
    sid: str = (await svc.create_session())["id"]
    user = await svc.prompt_async(
        sid, PromptInput(parts=[{"type": "text", "text": "go"}], no_reply=True)
    )
    run_id = new_run_id()
    assistant = msg.assistant_message(
        new_message_id(),
        sid,
        parent_id=user.message_id,
        created_ms=now_ms(),
        agent="build",
        provider_id="scripted",
        model_id="scripted-model",
        directory="/",
    )

    def start(tx: Tx) -> None:
        runs.insert_run(tx.conn, run_id, sid, user.message_id, {"agent": "build"})
        runs.set_status(tx.conn, run_id, runs.RUNNING, assistant_message_id=assistant["id"])
        leases.acquire(tx.conn, sid, run_id, owner, ttl_ms=1)
        tx.append(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": assistant})

    await svc.db.write(start)
    await asyncio.sleep(0.01)  # past its 1 ms lease
    return sid


@pytest.mark.parametrize(
    ("owner", "reason"),
    [
        (lambda: "elsewhere/another-boot/4242/77", "lease lost"),
        (_dead_owner_on_this_host, "server stopped"),
    ],
)
async def test_recovery_in_a_running_server_says_why_the_run_was_orphaned(
    service: SessionService, owner: Callable[[], str], reason: str
) -> None:
    sid = await _orphan(service, owner())
    assert await service.runs.recover() == 1
    rows = await service.list_messages(sid)
    interrupted = orjson.loads(rows[1].info)
    assert interrupted["error"]["data"]["message"] == f"interrupted: {reason}"
