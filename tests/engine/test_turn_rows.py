"""A turn reads the messages from its last compaction on, and sees what the whole history gives.

``engine.compaction.turn_rows`` and ``engine.subagents.last_reply`` read a suffix of the
session instead of all of it (issue #13, "big histories"). The property test writes random
histories (prompts, replies, compactions by request and automatic, with and without a tail,
failed and unfinished summaries, replies minted before their prompt) to a real store and checks
that the model's view built from the suffix is the one built from every message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from roost.agent.compaction import model_view
from roost.engine.admission import PromptInput
from roost.engine.compaction import compaction_requests, conversation_until, turn_rows
from roost.engine.sessions import SessionService
from roost.ids import new_message_id, new_part_id
from roost.model import event as ev
from roost.model import message as msg
from roost.store import queries
from roost.store.database import Database
from roost.store.event_log import Tx
from tests.store.builders import session_info, user_info
from tests.support.scripted_llm import ScriptedLLM, text_turn

pytestmark = pytest.mark.anyio

SID = "ses_turnrows"


@dataclass(frozen=True)
class Prompt:
    """A user prompt and its replies: each ``"ok"`` (finished) or ``"error"`` (failed)."""

    replies: tuple[str, ...] = ("ok",)
    skewed: bool = False
    """The replies' ids sort before the prompt's (a client's message id from a clock ahead)."""


@dataclass(frozen=True)
class Compaction:
    """A compaction: a request message, then its summary.

    ``auto``: inside a prompt's run, the summary answering that prompt (else ``POST
    /summarize``, the summary answering the request). ``summary``: ``"done"``, ``"failed"`` or
    ``"open"`` (still streaming). ``tail``: how many user messages back the kept tail starts
    (0: no tail). ``skewed``: the summary's id sorts before its request's.
    """

    auto: bool = False
    summary: str = "done"
    tail: int = 0
    skewed: bool = False
    removed: bool = False
    """The request message was deleted afterwards (``DELETE /session/{id}/message/{id}``)."""


Step = Prompt | Compaction


class _History:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.users: list[str] = []
        """Ids of the prompts (not compaction requests), in the order written."""
        self.at = 1_000

    def _message(self, info: dict[str, Any], parts: list[dict[str, Any]]) -> None:
        self.at += 1
        self.events.append((ev.MESSAGE_UPDATED, {"sessionID": SID, "info": info}))
        for part in parts:
            self.events.append((ev.PART_UPDATED, {"sessionID": SID, "part": part}))

    def _reply(self, mid: str, parent: str, kind: str, *, summary: bool = False) -> None:
        make = msg.summary_message if summary else msg.assistant_message
        extra = {} if summary else {"agent": "build"}
        info = make(
            mid,
            SID,
            parent_id=parent,
            created_ms=self.at,
            provider_id="p",
            model_id="m",
            directory="/p",
            **extra,
        )
        if kind in ("ok", "done"):
            info.update(finish="stop", tokens=msg.tokens(100, 10))
        elif kind in ("error", "failed"):
            info.update(finish="stop", error=msg.unknown_error("boom"))
        body = msg.text_part(new_part_id(), SID, mid, f"{'summary' if summary else 'reply'} {mid}")
        self._message(info, [body])

    def _user(self, mid: str, parts: list[dict[str, Any]] | None = None) -> None:
        info = user_info(mid, SID, created_ms=self.at)
        self._message(info, parts or [msg.text_part(new_part_id(), SID, mid, f"prompt {mid}")])

    def prompt(self, step: Prompt) -> None:
        ids = [new_message_id() for _ in range(len(step.replies) + 1)]
        if step.skewed:
            ids = ids[1:] + ids[:1]
        uid, reply_ids = ids[0], ids[1:]
        self._user(uid)
        self.users.append(uid)
        for rid, kind in zip(reply_ids, step.replies, strict=True):
            self._reply(rid, uid, kind)

    def compaction(self, step: Compaction) -> None:
        prompt = None
        if step.auto:
            prompt = new_message_id()
            self._user(prompt)
        request, summary = new_message_id(), new_message_id()
        if step.skewed:
            request, summary = summary, request
        tail = self.users[-step.tail] if step.tail and len(self.users) >= step.tail else None
        part = msg.compaction_part(new_part_id(), SID, request, auto=step.auto, tail_start_id=tail)
        self._user(request, [part])
        self._reply(summary, prompt or request, step.summary, summary=True)
        if prompt is not None:
            self.users.append(prompt)
            self._reply(new_message_id(), prompt, "ok")
        if step.removed:
            removed = {"sessionID": SID, "messageID": request}
            self.events.append((ev.MESSAGE_REMOVED, removed))


def _history(steps: list[Step]) -> _History:
    history = _History()
    for step in steps:
        if isinstance(step, Prompt):
            history.prompt(step)
        else:
            history.compaction(step)
    return history


async def _store(db: Database, history: _History) -> None:
    def write(tx: Tx) -> None:
        tx.append(SID, ev.SESSION_CREATED, {"sessionID": SID, "info": session_info(SID)})
        for type_, props in history.events:
            tx.append(SID, type_, props)

    await db.write(write)


def _view(rows: list[queries.MessageRow], user_message_id: str) -> list[Any]:
    return model_view(conversation_until(rows, user_message_id), compaction_requests(rows))


prompts = st.builds(
    Prompt,
    replies=st.lists(st.sampled_from(["ok", "error"]), max_size=2).map(tuple),
    skewed=st.booleans(),
)
compactions = st.builds(
    Compaction,
    auto=st.booleans(),
    summary=st.sampled_from(["done", "done", "failed", "open"]),
    tail=st.integers(min_value=0, max_value=3),
    skewed=st.booleans(),
    removed=st.sampled_from([False, False, False, True]),
)
histories = st.lists(st.one_of(prompts, compactions), min_size=1, max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=histories, pick=st.integers(min_value=0, max_value=100))
# The tail starts before the summary's prompt: the suffix alone does not decide the view.
@example(steps=[Prompt(), Prompt(), Compaction(tail=2), Prompt()], pick=0)
# The newest summary failed: the view is that of the older one.
@example(steps=[Prompt(), Compaction(), Prompt(), Compaction(summary="failed")], pick=0)
# An automatic compaction's request is not the summary's parent.
@example(steps=[Prompt(), Compaction(), Prompt(), Compaction(auto=True), Prompt()], pick=0)
# A summary whose id sorts before its request's.
@example(steps=[Prompt(), Compaction(), Prompt(), Compaction(skewed=True), Prompt()], pick=0)
# A prompt after the summary whose reply sorts before it.
@example(steps=[Prompt(), Compaction(), Prompt(skewed=True)], pick=0)
# The newest summary answers a deleted request: it is in no conversation.
@example(steps=[Prompt(), Compaction(), Prompt(), Compaction(removed=True), Prompt()], pick=0)
# The newest summary sorts before its request: the request it answers is an older one, with a
# tail.
@example(
    steps=[Prompt(), Prompt(), Compaction(tail=1), Prompt(), Compaction(auto=True, skewed=True)],
    pick=0,
)
# The run's prompt comes before the newest compaction.
@example(steps=[Prompt(), Compaction(), Prompt(), Compaction(), Prompt()], pick=1)
async def test_a_turn_sees_from_its_rows_what_the_whole_history_gives(
    tmp_path: Path, steps: list[Step], pick: int
) -> None:
    """Whichever prompt the run answers, the suffix ``turn_rows`` reads is the end of the
    session, and the model view built from it is the one built from every message."""
    history = _history(steps)
    if not history.users:
        return
    user_message_id = history.users[-1 - pick % len(history.users)]  # 0: the newest prompt
    db = await Database.open(tmp_path / f"turn-rows-{time.monotonic_ns()}.db")
    try:
        await _store(db, history)
        every = await db.read(lambda c: queries.list_messages(c, SID))
        read = await db.read(lambda c: turn_rows(c, SID, user_message_id))
        assert read == every[len(every) - len(read) :]
        assert _view(read, user_message_id) == _view(every, user_message_id)
    finally:
        await db.close()


async def test_after_a_compaction_a_turn_reads_from_the_summarys_request_on(
    store_target: Path | str,
) -> None:
    """On both stores: 30 turns, a summary, 3 turns: the last turn reads 8 messages, not 68."""
    steps: list[Step] = [Prompt()] * 30 + [Compaction()] + [Prompt()] * 3
    history = _history(steps)
    db = await Database.open(store_target)
    try:
        await _store(db, history)
        last = history.users[-1]
        every = await db.read(lambda c: queries.list_messages(c, SID))
        read = await db.read(lambda c: turn_rows(c, SID, last))
        assert len(every) == 68
        assert len(read) == 8
        assert '"compaction"' in read[0].parts[0]
        assert _view(read, last) == _view(every, last)
        # Before any compaction, everything is read.
        first = history.users[10]
        assert await db.read(lambda c: turn_rows(c, SID, first)) == every
    finally:
        await db.close()


async def test_a_synchronous_prompt_whose_id_sorts_after_its_reply_gets_the_reply(
    service: SessionService, llm: ScriptedLLM
) -> None:
    """A client's ``messageID`` that sorts after every id the server mints (a clock ahead)
    sorts after its reply; the synchronous prompt still answers with that reply, not the
    prompt."""
    sid = (await service.create_session())["id"]
    llm.enqueue(text_turn("first"))
    await service.prompt(sid, PromptInput(parts=[{"type": "text", "text": "one"}]))
    ahead = "msg_ffffffffffff" + "A" * 14
    llm.enqueue(text_turn("from the future"))
    row = await service.prompt(
        sid, PromptInput(parts=[{"type": "text", "text": "two"}], message_id=ahead)
    )
    info = orjson.loads(row.info)
    assert info["role"] == "assistant"
    assert info["parentID"] == ahead
    assert row.id < ahead
    assert any('"from the future"' in p for p in row.parts)
