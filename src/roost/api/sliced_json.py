"""JSON bodies whose long strings are decoded a slice at a time.

``loads(body)`` returns what ``orjson.loads(body)`` returns and refuses what it refuses. A C call
holds the GIL until it returns, and orjson decoding one 30 MiB string holds it for 50-300 ms on a
shared 2-core machine, stalling every other request (issue #9 allows 100 ms). So each string
literal longer than ``LONG_BYTES`` is cut out of the body and decoded ``SLICE_BYTES`` per call;
the rest of the body, with a placeholder string where each literal was, is parsed in one call,
and the decoded strings take the placeholders' places. Joining a string's slices is one C call
too, but a copy: 10-35 ms for 30 MiB instead of orjson's 50-300.

**Finding the literals.** Outside a string every ``"`` opens one; inside, the first ``"`` after
an even number of backslashes closes it (RFC 8259 §7). That costs a Python step per quote, so a
body is scanned only if some aligned window of ``LONG_BYTES / 2`` has no quote but escaped ones
(``\\"``), as a window inside a long literal has: bodies of short strings only (a prompt of 100k
short parts) are parsed in one call as before. Inside a long literal, whole windows without a
closing quote are skipped with ``bytes.count``, so the scan stays linear. Object keys are left
in the body.

**Cutting a literal.** A slice ends just before a byte that, in valid JSON string text, is always
a character of its own: printable ASCII other than a letter, a digit, ``"``, ``\\`` or ``/``
(escapes are ``\\`` and one of ``"\\/bfnrt``, or ``\\u`` and four hex digits; UTF-8 continuation
bytes are 0x80 and up). So a slice is valid string text exactly when the literal is, and the
slices' strings join into the literal's. A literal with no such byte for ``SLICE_BYTES`` (one
long hex number, say) is decoded in larger slices.

**Splitting an array.** A body without long literals still costs one long call when it is big:
40-100 ms for a prompt of 100k short parts (6 MiB). A body longer than ``SPLIT_BYTES`` is
scanned for ``},{`` separators outside strings (the same scan, about 0.2 s of Python in small
steps for 100k parts), ``RUN_BYTES`` apart; the elements between the first and the last are
replaced by placeholder strings, one per run. If that body parses and each run parses as an
array, nested as deep as in the body so that orjson's nesting limit applies alike, each
placeholder is an array element (a string followed by a comma is no key) and the runs' elements
take their places. Otherwise (separators in different arrays, a refused body) the body is
parsed whole.

**Errors.** A body whose structure orjson refuses is parsed again whole, so its error is
orjson's own. An error inside a long literal is reported with the byte offset in the body
(orjson reports a character offset).
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

import orjson

LONG_BYTES = 256 * 1024
"""String literals longer than this are decoded in slices."""

SLICE_BYTES = 256 * 1024
"""Bytes of a literal decoded per call (about 1 ms)."""

SPLIT_BYTES = 2 * 1024 * 1024
"""A body of short strings longer than this is parsed a run of array elements at a time (orjson
parses 2 MiB of 100-byte parts in 15-30 ms; finding the runs costs about as much again)."""

RUN_BYTES = 256 * 1024
"""Bytes of array elements parsed per call (about 2 ms)."""

_QUOTE = 0x22
_BACKSLASH = 0x5C
_SAFE_END = re.compile(rb"[ !#-.:-@\[\]-`{-~]")
"""Bytes a slice may end before: printable ASCII but letters, digits, ``"``, ``\\`` and ``/``."""
_KEY_AFTER = re.compile(rb"[ \t\n\r]*:")
_CUT = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")
"""A separator between two objects in an array (outside strings)."""
_ESCAPED_BEFORE_SKIPPING = 64
"""Escaped quotes one string may hold before the scan looks for whole windows to skip."""
_SEARCH_BYTES = 4096
"""How far past the target length to look for a slice end in one call."""


def loads(
    body: bytes,
    *,
    long_bytes: int = LONG_BYTES,
    slice_bytes: int = SLICE_BYTES,
    split_bytes: int = SPLIT_BYTES,
    run_bytes: int = RUN_BYTES,
) -> Any:
    """``orjson.loads(body)``, long strings decoded in slices and long arrays of objects parsed
    a run of elements at a time (see the module docstring).

    Args:
        body: The JSON document.
        long_bytes: Literals longer than this (quotes included) are sliced; at least 2.
        slice_bytes: Target bytes per slice.
        split_bytes: A body without long literals but longer than this is split into runs.
        run_bytes: Target bytes per run of array elements.

    Raises:
        orjson.JSONDecodeError: orjson refuses the body; ``pos`` is a byte offset when the
            error is inside a long literal.
    """
    window = max(long_bytes // 2, 1)
    if len(body) >= 2 * window and _has_candidate_window(body, window):
        spans = _long_literals(body, long_bytes, window)
        if spans:
            return _loads_long_literals(body, spans, slice_bytes)
    if len(body) > split_bytes:
        return _loads_in_runs(body, run_bytes, window)
    return orjson.loads(body)


def _loads_long_literals(body: bytes, spans: list[tuple[int, int]], slice_bytes: int) -> Any:
    """``orjson.loads(body)`` with the literals at ``spans`` decoded in slices."""
    nonce = secrets.token_hex(16)
    placeholders: dict[str, tuple[int, int]] = {}
    pieces: list[bytes | memoryview] = []
    view = memoryview(body)
    last = 0
    for n, (opening, closing) in enumerate(spans):
        name = f"\x00roost-long-string-{nonce}-{n}"
        placeholders[name] = (opening, closing)
        pieces += (view[last:opening], orjson.dumps(name))
        last = closing + 1
    pieces.append(view[last:])
    try:
        value = orjson.loads(b"".join(pieces))
    except orjson.JSONDecodeError:
        return orjson.loads(body)  # raises orjson's own error for the whole body
    decoded = {
        name: _decode_literal(body, opening, closing, slice_bytes)
        for name, (opening, closing) in placeholders.items()
    }
    return _substituted(value, decoded)


def _loads_in_runs(body: bytes, run_bytes: int, window: int) -> Any:
    """``orjson.loads(body)`` with runs of about ``run_bytes`` of one array's elements parsed
    one run per call (module docstring, "Splitting an array")."""
    cuts = _element_cuts(body, run_bytes, window)
    if len(cuts) < 2:
        return orjson.loads(body)
    nonce = secrets.token_hex(16)
    names = [f"\x00roost-elements-{nonce}-{n}" for n in range(len(cuts) - 1)]
    view = memoryview(body)
    shrunk = b"".join(
        (
            view[: cuts[0][0] + 1],
            b",",
            b",".join(orjson.dumps(name) for name in names),
            view[cuts[-1][0] + 1 :],
        )
    )
    try:
        value = orjson.loads(shrunk)
        found = _placeholders_at(value, names)
        if found is None:
            return orjson.loads(body)  # a duplicate key dropped them: no shortcut
        container, index, depth = found
        elements: list[Any] = []
        for (_, first), (last, _) in itertools.pairwise(cuts):
            # Nested as deep as in the body, so orjson's nesting limit applies as it would.
            run = orjson.loads(b"".join((b"[" * depth, view[first : last + 1], b"]" * depth)))
            for _ in range(depth - 1):
                run = run[0]
            elements += run
    except orjson.JSONDecodeError:
        return orjson.loads(body)  # orjson's own error (or cuts in different arrays)
    container[index : index + len(names)] = elements
    return value


def _element_cuts(body: bytes, run_bytes: int, window: int) -> list[tuple[int, int]]:
    """``(closing brace, opening brace)`` offsets of ``},{`` separators outside strings, about
    ``run_bytes`` apart, the first one as early as it comes."""
    cuts: list[tuple[int, int]] = []
    due = 0
    position = 0
    while True:
        opening = body.find(b'"', position)
        gap_end = len(body) if opening < 0 else opening
        if gap_end > due:
            found = _CUT.search(body, position, gap_end)
            if found is not None:
                cuts.append((found.start(), found.end() - 1))
                due = found.start() + run_bytes
        if opening < 0:
            return cuts
        closing = body.find(b'"', opening + 1)
        if closing >= 0 and body[closing - 1] == _BACKSLASH:  # inlined: most strings end here
            closing = _closing_quote(body, opening + 1, window)
        if closing < 0:
            return cuts
        position = closing + 1


def _placeholders_at(value: Any, names: list[str]) -> tuple[list[Any], int, int] | None:
    """The list holding ``names`` in a row (as the shrunk body wrote them), their index in it
    and its nesting depth (the top-level value is at depth 1), or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if type(container) is list:
            for index, item in enumerate(container):
                if type(item) is str and item == names[0]:
                    return container, index, depth  # the others follow it, as written
                if type(item) in (list, dict):
                    stack.append((item, depth + 1))
        elif type(container) is dict:
            stack.extend(
                (item, depth + 1) for item in container.values() if type(item) in (list, dict)
            )
    return None


def _has_candidate_window(body: bytes, window: int) -> bool:
    """Whether some aligned ``window`` has only backslash-preceded quotes (or none); its first
    byte is not counted, as its backslash would lie in the window before."""
    count = body.count
    for start in range(0, len(body) - window + 1, window):
        end = start + window
        if count(b'"', start + 1, end) == count(b'\\"', start, end):
            return True
    return False


def _long_literals(body: bytes, long_bytes: int, window: int) -> list[tuple[int, int]]:
    """``(opening, closing)`` quote offsets of each value literal longer than ``long_bytes``.

    Stops at an unterminated literal (orjson refuses that body anyway).
    """
    spans: list[tuple[int, int]] = []
    position = 0
    while (opening := body.find(b'"', position)) >= 0:
        closing = _closing_quote(body, opening + 1, window)
        if closing < 0:
            break
        if closing - opening + 1 > long_bytes and not _KEY_AFTER.match(body, closing + 1):
            spans.append((opening, closing))
        position = closing + 1
    return spans


def _closing_quote(body: bytes, start: int, window: int) -> int:
    """The offset of the ``"`` closing the string whose text starts at ``start``, or -1.

    Quote by quote; after ``_ESCAPED_BEFORE_SKIPPING`` escaped quotes in one string, whole
    windows holding none but escaped quotes are skipped first (a long string of quoted
    text or code), so the work stays linear in the body either way.
    """
    position = start
    escaped = 0
    while True:
        if escaped >= _ESCAPED_BEFORE_SKIPPING:
            position = _past_escaped_windows(body, position, window)
            escaped = 0
        quote = body.find(b'"', position)
        if quote < 0:
            return -1
        if body[quote - 1] != _BACKSLASH or _backslashes_before(body, quote, start) % 2 == 0:
            return quote
        escaped += 1
        position = quote + 1


def _past_escaped_windows(body: bytes, position: int, window: int) -> int:
    """The start of the first whole ``window`` from ``position`` on that may hold a closing
    quote: one whose every quote follows exactly one backslash holds none."""
    while (
        position + window <= len(body)
        and body[position - 1] != _BACKSLASH
        and body.count(b'"', position, position + window)
        == body.count(b'\\"', position, position + window)
        and body.find(b'\\\\"', position, position + window) < 0
    ):
        position += window
    return position


def _backslashes_before(body: bytes, index: int, floor: int) -> int:
    """How many backslashes immediately precede ``body[index]``, not looking before ``floor``."""
    run = 0
    while index - run > floor and body[index - run - 1] == _BACKSLASH:
        run += 1
    return run


def _decode_literal(body: bytes, opening: int, closing: int, slice_bytes: int) -> str:
    """The string the literal ``body[opening : closing + 1]`` stands for, a slice per call.

    Raises:
        orjson.JSONDecodeError: The literal's text is not valid JSON string text; ``pos`` is
            the body offset of the slice at fault (plus orjson's offset within it).
    """
    view = memoryview(body)
    strings: list[str] = []
    start = opening + 1
    while start < closing:
        end = _slice_end(body, start + slice_bytes, closing)
        try:
            strings.append(orjson.loads(b"".join((b'"', view[start:end], b'"'))))
        except orjson.JSONDecodeError as exc:
            raise orjson.JSONDecodeError(exc.msg, "", start + max(exc.pos - 1, 0)) from None
        start = end
    return "".join(strings)


def _slice_end(body: bytes, target: int, closing: int) -> int:
    """Where a slice reaching for ``target`` ends: before the first safe byte from ``target``
    on (module docstring), or at ``closing``."""
    position = target
    while position < closing:
        found = _SAFE_END.search(body, position, min(position + _SEARCH_BYTES, closing))
        if found is not None:
            return found.start()
        position += _SEARCH_BYTES
    return closing


def _substituted(value: Any, decoded: dict[str, str]) -> Any:
    """``value`` with each placeholder string replaced by its decoded literal (in place)."""
    if type(value) is str:
        return decoded.get(value, value)
    left = len(decoded)
    stack = [value]
    while stack and left:
        container = stack.pop()
        items = container.items() if type(container) is dict else enumerate(container)
        for key, item in items:
            kind = type(item)
            if kind is str:
                if item in decoded:
                    container[key] = decoded[item]
                    left -= 1
            elif kind is dict or kind is list:
                stack.append(item)
    return value
