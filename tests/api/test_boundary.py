"""Unit tests of the body boundary's pure parts: what ``parse_json`` accepts and refuses, and
the sliced validation of long lists (``roost.api.boundary``)."""

from __future__ import annotations

import asyncio
import gc

import pytest
from fastapi.exceptions import RequestValidationError

from roost.api.boundary import (
    _SLICE_ITEMS,
    _CollectorPause,
    _validate_sliced,
    is_json,
    parse_json,
)
from roost.api.sse import parse_cursor
from roost.api.wire import PromptBody
from roost.errors import MalformedBody


@pytest.mark.parametrize(
    "text",
    [
        b"9223372036854775807",
        b"-9223372036854775808",
        b"-9.2e18",
        b"9.2e18",
        b"1e-400",
        b'"\\ud83d\\ude00"',
        b'{"a": [1, 2.5, "x", null, true]}',
    ],
)
def test_values_roost_can_store_are_parsed(text: bytes) -> None:
    parse_json(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"9223372036854775808", "int64"),
        (b"18446744073709551616", "int64"),
        (b"-9223372036854775809", "int64"),
        (b"-9223372036854775808.0", "int64"),
        (b"1e19", "int64"),
        (b"1e400", "infinity"),
        (b"NaN", "expected a JSON value"),
        (b"-Infinity", "no digit after sign"),
        (b'"\\ud800"', "surrogate"),
        (b'"\\udc00"', "surrogate"),
        (b'{"\\ud800": 1}', "surrogate"),
        (b'"\xed\xa0\x80"', "UTF-8"),
        (b'{"a": 1', "end of data"),
    ],
)
def test_values_roost_cannot_store_are_refused(text: bytes, reason: str) -> None:
    with pytest.raises(MalformedBody) as refused:
        parse_json(text)
    assert reason in refused.value.reason, refused.value.reason
    assert refused.value.kind == "Payload"


def test_the_refusal_names_the_path_of_the_number() -> None:
    with pytest.raises(MalformedBody) as refused:
        parse_json(b'{"a": [0, {"b": 1}, {"c": [2, 18446744073709551616]}]}')
    assert refused.value.at == "a[2].c[1]"


def test_deep_nesting_up_to_orjsons_limit_does_not_recurse() -> None:
    depth = 1024  # more than Python's default recursion limit
    assert parse_json(b"[" * depth + b"1" + b"]" * depth) is not None
    with pytest.raises(MalformedBody) as refused:
        parse_json(b"[" * (depth - 1) + b"9223372036854775808" + b"]" * (depth - 1))
    assert refused.value.at.endswith("[0]")


def test_json_content_types_are_those_fastapi_parses() -> None:
    assert is_json("application/json")
    assert is_json("Application/JSON; charset=utf-8")
    assert is_json("application/merge-patch+json")
    assert not is_json("text/plain")
    assert not is_json(None)


def test_a_long_list_validated_in_slices_equals_one_validation() -> None:
    parts = [{"type": "text", "text": f"p{i}", "extra": i} for i in range(_SLICE_ITEMS * 3 + 7)]
    body = {"parts": parts, "noReply": True}
    assert _validate_sliced(PromptBody, body) == PromptBody.model_validate(body)


def test_errors_in_later_slices_carry_their_index_in_the_whole_list() -> None:
    parts: list[dict[str, object]] = [{"type": "text", "text": "x"}] * (_SLICE_ITEMS * 2 + 3)
    parts = list(parts)
    parts[_SLICE_ITEMS * 2 + 1] = {"type": "text"}
    with pytest.raises(RequestValidationError) as invalid:
        _validate_sliced(PromptBody, {"parts": parts, "messageID": "nope"})
    locs = [tuple(err["loc"]) for err in invalid.value.errors()]
    assert ("body", "messageID") in locs
    assert ("body", "parts", _SLICE_ITEMS * 2 + 1, "text", "text") in locs


@pytest.mark.parametrize(
    ("header", "cursor"),
    [
        ("42", 42),
        (" 7 ", 7),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),
        ("\u00b2", None),
        ("\uff19", None),
        ("-1", None),
        ("abc", None),
        (None, None),
    ],
)
def test_last_event_id_is_a_cursor_only_within_int64(
    header: str | None, cursor: int | None
) -> None:
    assert parse_cursor(header) == cursor


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_collector_pause_ends_with_its_last_holder_or_its_time_limit() -> None:
    pause = _CollectorPause(max_pause_s=0.05)
    assert gc.isenabled()
    with pause.held():
        assert not gc.isenabled()
        with pause.held():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pause.held():
        await asyncio.sleep(0.2)  # a synchronous prompt waiting for its turn
        assert gc.isenabled()
    assert gc.isenabled()


@pytest.mark.anyio
async def test_objects_made_during_a_pause_leave_it_in_the_oldest_generation() -> None:
    pause = _CollectorPause()
    with pause.held():
        made = [[n] for n in range(1000)]  # lists are always tracked; small dicts may not be
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(made) in oldest and all(id(o) in oldest for o in made)
    assert not gc.get_freeze_count()
