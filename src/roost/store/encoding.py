"""The JSON text the store writes: orjson's, with long strings encoded a slice at a time.

``encode(value)`` returns exactly ``orjson.dumps(value)``. A C call holds the GIL until it
returns, and ``orjson.dumps`` of a 30 MiB string holds it for 40-90 ms on a shared 2-core machine
(issue #9: no other request may wait 100 ms). Strings longer than ``LONG_CHARS`` are therefore
encoded ``SLICE_CHARS`` characters per call and the pieces handed back to ``orjson.dumps`` as an
``orjson.Fragment``, which it copies verbatim. The result is the same bytes: JSON escapes each
code point on its own, and a Python ``str`` holds code points, so no escape spans two slices.

``Fragment`` is also how one encoding serves twice: the projector's row JSON (a part, a
message's or a session's ``info``) is encoded once and embedded in the event's JSON as a
fragment (see ``event_log.Tx.append``).
"""

from __future__ import annotations

from typing import Any

import orjson

LONG_CHARS = 256 * 1024
"""Strings longer than this (in code points) are encoded in slices."""

SLICE_CHARS = 256 * 1024
"""Code points encoded per ``orjson.dumps`` call (≈0.3 ms on this machine)."""


def encode(value: Any, *, long_chars: int = LONG_CHARS, slice_chars: int = SLICE_CHARS) -> bytes:
    """``orjson.dumps(value)``, long strings encoded a slice per C call (module docstring).

    Args:
        value: A JSON-serializable value; may contain ``orjson.Fragment`` values.
        long_chars: Strings longer than this are sliced (tests pass small sizes).
        slice_chars: Code points per slice.

    Raises:
        orjson.JSONEncodeError: As ``orjson.dumps`` raises it (a lone surrogate, say).
    """
    return orjson.dumps(_sliced(value, long_chars, slice_chars))


def _sliced(value: Any, long_chars: int, slice_chars: int) -> Any:
    """``value`` with each long string replaced by its encoded ``Fragment``; containers are
    copied only where something inside them changed, so a value without long strings is
    returned as it is."""
    kind = type(value)
    if kind is str:
        if len(value) <= long_chars:
            return value
        return _encoded_str(value, slice_chars)
    if kind is dict:
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(item) in _WALKED:
                new = _sliced(item, long_chars, slice_chars)
                if new is not item:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = new
        return value if changed is None else changed
    if kind is list:
        copied: list[Any] | None = None
        for index, item in enumerate(value):
            if type(item) in _WALKED:
                new = _sliced(item, long_chars, slice_chars)
                if new is not item:
                    if copied is None:
                        copied = list(value)
                    copied[index] = new
        return value if copied is None else copied
    return value


_WALKED = frozenset({str, dict, list})


def _encoded_str(text: str, slice_chars: int) -> orjson.Fragment:
    """The JSON string literal of ``text``, encoded ``slice_chars`` code points per call."""
    pieces: list[bytes | memoryview] = [b'"']
    for start in range(0, len(text), slice_chars):
        encoded = orjson.dumps(text[start : start + slice_chars])
        pieces.append(memoryview(encoded)[1:-1])  # without the slice's own quotes
    pieces.append(b'"')
    return orjson.Fragment(b"".join(pieces))
