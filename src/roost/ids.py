"""Id minting in OpenCode's format: ``<prefix>_<12 hex><14 base62>``.

The 12 hex digits encode 48 bits of ``time_ms * 0x1000 + counter`` (the counter orders ids minted
in the same millisecond). Ascending ids (messages, parts, events) sort oldest first; descending
ids (sessions) store the bitwise complement, so a plain string sort lists the newest first. The
remaining 14 characters are random base62. This mirrors OpenCode's ``Identifier`` module
(packages/opencode/src/id/id.ts); ids minted by OpenCode and by Roost sort together.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
from typing import Final, Literal, NewType

SessionID = NewType("SessionID", str)
MessageID = NewType("MessageID", str)
PartID = NewType("PartID", str)
RunID = NewType("RunID", str)

Prefix = Literal["ses", "msg", "prt", "run", "evt", "per", "que", "err"]

_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS: Final = 14
_MASK_48: Final = (1 << 48) - 1
_lock = threading.Lock()
_last_ms = 0
_counter = 0

ID_PATTERN: Final = re.compile(r"^(ses|msg|prt|run|evt|per|que|err)_[0-9a-f]{12}[0-9A-Za-z]{14}$")


def _stamp() -> int:
    global _last_ms, _counter
    now_ms = int(time.time() * 1000)
    with _lock:
        if now_ms <= _last_ms:
            # Same (or an earlier, after a clock step) millisecond: keep ids strictly ordered.
            now_ms = _last_ms
            _counter += 1
        else:
            _counter = 0
        _last_ms = now_ms
        return now_ms * 0x1000 + _counter


_rng = random.Random(secrets.randbits(128))
"""Ids need uniqueness, not secrecy: a PRNG seeded from the OS is much cheaper per id than a
system call for every id."""


def _random_tail() -> str:
    value = _rng.getrandbits(84)  # 62**14 > 2**83: every 14-character tail is reachable
    chars = []
    for _ in range(_RANDOM_CHARS):
        value, digit = divmod(value, 62)
        chars.append(_BASE62[digit])
    return "".join(chars)


def new_id(prefix: Prefix, *, descending: bool = False) -> str:
    """Mint an id like ``msg_2021f9be9001w6T5xqJczuJlX9``.

    Args:
        prefix: The three-letter kind.
        descending: Complement the time bits so newer ids sort first (sessions).
    """
    stamp = _stamp()
    if descending:
        stamp = ~stamp
    head = format(stamp & _MASK_48, "012x")
    tail = _random_tail()
    return f"{prefix}_{head}{tail}"


def new_session_id() -> SessionID:
    """A new ``ses_…`` id; session ids sort newest first."""
    return SessionID(new_id("ses", descending=True))


def new_message_id() -> MessageID:
    """A new ``msg_…`` id; message ids sort oldest first."""
    return MessageID(new_id("msg"))


def new_part_id() -> PartID:
    """A new ``prt_…`` id; part ids sort oldest first."""
    return PartID(new_id("prt"))


def new_run_id() -> RunID:
    """A new ``run_…`` id for one execution of the agent loop."""
    return RunID(new_id("run"))


def new_error_ref() -> str:
    """A short reference (``err_…``) that ties a logged 500 to its response body."""
    return "err_" + secrets.token_hex(4)


def new_call_id() -> str:
    """A tool call id for a call Roost makes itself (a user's shell command), where providers
    mint their own: ``call_`` and the 26 characters of a new sortable id."""
    return "call_" + new_id("prt")[4:]
