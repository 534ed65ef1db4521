"""``encoding.encode``: orjson's bytes, long strings encoded a slice at a time."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.store.encoding import encode

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=30,
)
"""JSON values whose strings hold any code point but a lone surrogate (orjson refuses those)."""


@given(value=_JSON, long_chars=st.integers(0, 8), slice_chars=st.integers(1, 7))
def test_encoding_in_slices_gives_orjsons_bytes(
    value: Any, long_chars: int, slice_chars: int
) -> None:
    assert encode(value, long_chars=long_chars, slice_chars=slice_chars) == orjson.dumps(value)


def test_a_long_string_with_escapes_and_wide_characters_encodes_as_one() -> None:
    line = 'naïve "café"\n\t\\ — 😀 \x00\x1f </script>\u2028'
    value = {"part": {"type": "text", "text": line * 100_000}, "n": [1, line * 3]}
    assert encode(value, long_chars=64, slice_chars=1000) == orjson.dumps(value)
    assert encode(value) == orjson.dumps(value)


def test_a_value_without_long_strings_is_encoded_as_it_is() -> None:
    value = {"a": ["x" * 10, {"b": "y"}], "c": 1.5}
    assert encode(value, long_chars=10) == orjson.dumps(value)


def test_fragments_are_embedded_verbatim() -> None:
    inner = {"text": "é" * 50}
    outer = {"sessionID": "ses_a", "part": orjson.Fragment(encode(inner, long_chars=8))}
    assert encode(outer, long_chars=8) == orjson.dumps({"sessionID": "ses_a", "part": inner})


def test_a_lone_surrogate_is_refused_as_orjson_refuses_it() -> None:
    with pytest.raises(orjson.JSONEncodeError):
        encode({"text": "a" * 20 + "\ud800"}, long_chars=4, slice_chars=3)
