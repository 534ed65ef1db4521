"""Admission refuses client ids that are already taken, and a refused prompt stores nothing."""

from __future__ import annotations

import orjson
import pytest

from roost.engine.admission import PromptInput
from roost.engine.sessions import SessionService
from roost.errors import InvalidInput
from roost.ids import new_message_id, new_part_id

pytestmark = pytest.mark.anyio


def _text(text: str, part_id: str | None = None) -> dict[str, str]:
    part = {"type": "text", "text": text}
    if part_id is not None:
        part["id"] = part_id
    return part


async def _event_count(svc: SessionService) -> int:
    count = await svc.db.read(lambda c: c.exec_driver_sql("SELECT count(*) FROM event").scalar())
    assert isinstance(count, int)
    return count


async def test_a_part_id_already_used_by_another_message_is_refused(
    service: SessionService,
) -> None:
    sid = (await service.create_session())["id"]
    taken = new_part_id()
    await service.prompt_async(sid, PromptInput(parts=[_text("first", taken)], no_reply=True))
    other = (await service.create_session())["id"]
    events = await _event_count(service)
    with pytest.raises(InvalidInput, match=taken):
        await service.prompt_async(
            other, PromptInput(parts=[_text("ok"), _text("second", taken)], no_reply=True)
        )
    assert await _event_count(service) == events
    assert await service.list_messages(other) == []


async def test_the_same_part_id_twice_in_one_prompt_is_refused(service: SessionService) -> None:
    sid = (await service.create_session())["id"]
    events = await _event_count(service)
    part_id = new_part_id()
    with pytest.raises(InvalidInput, match="unique"):
        await service.prompt_async(
            sid, PromptInput(parts=[_text("a", part_id), _text("b", part_id)], no_reply=True)
        )
    assert await _event_count(service) == events
    assert await service.list_messages(sid) == []


async def test_a_message_id_of_another_session_is_refused(service: SessionService) -> None:
    first = (await service.create_session())["id"]
    message_id = new_message_id()
    await service.prompt_async(
        first, PromptInput(parts=[_text("mine")], message_id=message_id, no_reply=True)
    )
    second = (await service.create_session())["id"]
    events = await _event_count(service)
    with pytest.raises(InvalidInput, match="another session"):
        await service.prompt_async(
            second, PromptInput(parts=[_text("theirs")], message_id=message_id, no_reply=True)
        )
    assert await _event_count(service) == events
    assert await service.list_messages(second) == []
    assert [r.id for r in await service.list_messages(first)] == [message_id]


async def test_prompts_without_ids_get_distinct_minted_ids(service: SessionService) -> None:
    sid = (await service.create_session())["id"]
    for n in range(20):
        await service.prompt_async(
            sid, PromptInput(parts=[_text(f"{n}a"), _text(f"{n}b")], no_reply=True)
        )
    rows = await service.list_messages(sid)
    assert len({r.id for r in rows}) == 20
    assert len({orjson.loads(p)["id"] for r in rows for p in r.parts}) == 40
