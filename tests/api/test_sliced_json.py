"""``sliced_json.loads``: orjson's result and refusals, long strings decoded in slices."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.api import sliced_json
from roost.api.sliced_json import loads

_TEXT = st.text(
    alphabet=st.sampled_from(list('ab "\\/\n\t\x00\x1f é—😀\u2028 :,{}[]')) | st.characters(),
    max_size=60,
).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _written(value: Any, ascii_only: bool, indent: int | None) -> bytes:
    """``value`` as a client might write it: escaped or raw UTF-8, compact or indented."""
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()


def _outcome(fn: Any, body: bytes) -> Any:
    try:
        return ("value", fn(body))
    except orjson.JSONDecodeError:
        return ("refused",)


@given(
    value=_JSON,
    ascii_only=st.booleans(),
    indent=st.none() | st.integers(0, 2),
    long_bytes=st.integers(2, 12),
    slice_bytes=st.integers(1, 9),
)
def test_a_valid_body_parses_as_orjson_parses_it(
    value: Any, ascii_only: bool, indent: int | None, long_bytes: int, slice_bytes: int
) -> None:
    body = _written(value, ascii_only, indent)
    assert loads(body, long_bytes=long_bytes, slice_bytes=slice_bytes) == orjson.loads(body)


@given(
    value=_JSON,
    ascii_only=st.booleans(),
    data=st.data(),
    long_bytes=st.integers(2, 12),
    slice_bytes=st.integers(1, 9),
)
def test_a_damaged_body_is_refused_exactly_when_orjson_refuses_it(
    value: Any, ascii_only: bool, data: st.DataObject, long_bytes: int, slice_bytes: int
) -> None:
    body = bytearray(_written(value, ascii_only, None))
    at = data.draw(st.integers(0, len(body)))
    damage = data.draw(
        st.sampled_from([b"", b'"', b"\\", b"\\u", b"\\ud800", b"\xff", b"\xc3", b"\x01", b","])
    )
    body[at : at + data.draw(st.integers(0, 2))] = damage
    sliced = _outcome(
        lambda b: loads(b, long_bytes=long_bytes, slice_bytes=slice_bytes), bytes(body)
    )
    assert sliced == _outcome(orjson.loads, bytes(body))


def test_a_long_prose_string_decodes_in_slices() -> None:
    line = 'He said "naïve café" — 20 °C, \\ and / 😀\n\t'
    value = {"noReply": True, "parts": [{"type": "text", "text": line * 20_000}, {"n": 1}]}
    body = _written(value, False, None)
    assert len(body) > 2 * sliced_json.LONG_BYTES
    assert loads(body) == value
    escaped = _written(value, True, None)
    assert loads(escaped) == value


@pytest.mark.parametrize(
    ("tail", "message"),
    [(b"\\ud800", "surrogate"), (b"\\x", "escape"), (b"\x01", "control")],
)
def test_an_error_at_the_end_of_a_long_string_is_orjsons(tail: bytes, message: str) -> None:
    body = b'{"parts": [{"text": "' + b"word " * 200_000 + tail + b'"}]}'
    with pytest.raises(orjson.JSONDecodeError) as sliced:
        loads(body)
    with pytest.raises(orjson.JSONDecodeError) as whole:
        orjson.loads(body)
    assert sliced.value.msg == whole.value.msg
    assert message in sliced.value.msg.lower() or message in whole.value.msg.lower()
    assert abs(sliced.value.pos - body.index(tail)) < 8  # a byte offset, near the fault


def test_a_structural_error_after_a_long_string_is_refused() -> None:
    body = b'{"text": "' + b"word " * 200_000 + b'",}'
    with pytest.raises(orjson.JSONDecodeError):
        loads(body)


def test_a_long_key_and_a_long_top_level_string_are_parsed() -> None:
    key = "k" * 10
    assert loads(orjson.dumps({key: "v" * 40}), long_bytes=8, slice_bytes=3) == {key: "v" * 40}
    assert loads(orjson.dumps("é" * 40), long_bytes=8, slice_bytes=3) == "é" * 40


def test_a_body_of_short_strings_only_is_parsed_in_one_call() -> None:
    parts = [{"type": "text", "text": f"part {i}: a short one"} for i in range(20_000)]
    body = orjson.dumps({"parts": parts})
    assert not sliced_json._has_candidate_window(body, sliced_json.LONG_BYTES // 2)
    assert loads(body) == {"parts": parts}


@pytest.mark.parametrize("window_bytes", [8, 64, 4096])
def test_a_long_string_of_escaped_quotes_is_scanned_window_by_window(window_bytes: int) -> None:
    # Hundreds of escaped quotes (and backslash runs before them) in one string, then short
    # strings again: the scan skips whole windows of escaped quotes and must still find the
    # exact end of each string.
    code = 'print("a \\\\" + \'b\') \\\\\\" x = {"k": "v\\\\\\\\"}\n'
    value = [{"text": code * 500}, {"t": "short"}, "x" * 9, {"text": 'q"' * 300}]
    for ascii_only in (True, False):
        body = _written(value, ascii_only, None)
        assert loads(body, long_bytes=2 * window_bytes, slice_bytes=7) == value


_OBJECTS = st.lists(st.dictionaries(_TEXT, _JSON, max_size=3), max_size=12)
"""Arrays of objects, the shape a body is split along (``},{`` between elements)."""


@given(
    parts=_OBJECTS,
    extra=_JSON,
    ascii_only=st.booleans(),
    indent=st.none() | st.integers(0, 1),
    run_bytes=st.integers(1, 60),
)
def test_a_body_split_into_runs_of_elements_parses_as_orjson_parses_it(
    parts: list[Any], extra: Any, ascii_only: bool, indent: int | None, run_bytes: int
) -> None:
    body = _written({"parts": parts, "extra": extra, "more": [parts]}, ascii_only, indent)
    split = loads(body, split_bytes=0, run_bytes=run_bytes)
    assert split == orjson.loads(body)


@given(parts=_OBJECTS, data=st.data(), run_bytes=st.integers(1, 60))
def test_a_damaged_split_body_is_refused_exactly_when_orjson_refuses_it(
    parts: list[Any], data: st.DataObject, run_bytes: int
) -> None:
    body = bytearray(_written({"parts": parts}, False, None))
    at = data.draw(st.integers(0, len(body)))
    damage = data.draw(st.sampled_from([b"", b'"', b"}", b"]", b"},{", b'"},{"', b"[", b","]))
    body[at : at + data.draw(st.integers(0, 2))] = damage
    sliced = _outcome(lambda b: loads(b, split_bytes=0, run_bytes=run_bytes), bytes(body))
    assert sliced == _outcome(orjson.loads, bytes(body))


@pytest.mark.parametrize("depth", [1020, 1021, 1022, 1023, 1024, 1025])
def test_nesting_in_split_elements_meets_orjsons_limit_alike(depth: int) -> None:
    deep = b"[" * depth + b"1" + b"]" * depth
    body = b'{"parts": [{"a": 1}, {"b": ' + deep + b'}, {"c": 2}, {"d": 3}]}'

    def shape(value: Any) -> tuple[list[list[str]], int]:
        """Keys of each part and how deep ``b`` nests (compared without recursing)."""
        nested, levels = value["parts"][1]["b"], 0
        while isinstance(nested, list):
            nested, levels = nested[0], levels + 1
        return [list(p) for p in value["parts"]], levels

    split = _outcome(lambda b: shape(loads(b, split_bytes=0, run_bytes=1)), body)
    assert split == _outcome(lambda b: shape(orjson.loads(b)), body)


def test_a_prompt_of_many_short_parts_is_split_and_parsed_exactly() -> None:
    parts = [{"type": "text", "text": f"part {i}: " + '"},{" {}'} for i in range(60_000)]
    body = orjson.dumps({"noReply": True, "parts": parts})
    assert len(body) > sliced_json.SPLIT_BYTES
    assert sliced_json._element_cuts(body, sliced_json.RUN_BYTES, sliced_json.LONG_BYTES // 2)
    assert loads(body) == {"noReply": True, "parts": parts}


def test_runs_a_duplicate_key_drops_are_dropped_as_orjson_drops_them() -> None:
    body = b'{"parts": [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}], "parts": [{"e": 5}]}'
    assert loads(body, split_bytes=0, run_bytes=1) == orjson.loads(body) == {"parts": [{"e": 5}]}
