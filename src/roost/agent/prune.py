"""Pruning: old tool outputs cleared from what the model sees, never from the store.

OpenCode's rule (1.18.34, ``SessionCompaction.prune``, on with ``compaction.prune: true``):
walking back from the newest message, the last two user turns are left alone, and so is
everything from the latest summary back (it already stands for what came before). Of the
completed tool outputs met on the way, the newest ``PROTECT_TOKENS`` worth are kept; the older
ones are cleared, but only when together they come to more than ``MINIMUM_TOKENS`` (clearing
less is not worth breaking the provider's prompt cache). Outputs of ``skill`` are never
cleared: they are instructions the model keeps following.

OpenCode stamps pruned parts in its store; here the rule runs on a copy each time a request is
built, so the stored messages (and ``GET /session/{id}/message``) keep every output.
Tokens are estimated as characters / 4, as OpenCode's ``Token.estimate`` does.
"""

from __future__ import annotations

import copy
from typing import Any, Final

CLEARED: Final = "[Old tool result content cleared]"
"""What the model sees instead of a pruned output (OpenCode's wording, which clients show)."""
PROTECT_TOKENS: Final = 40_000
"""The newest completed tool outputs, in estimated tokens, that are always kept."""
MINIMUM_TOKENS: Final = 20_000
"""Outputs are cleared only when more than this many estimated tokens would go."""
PROTECTED_TOOLS: Final = frozenset({"skill"})
"""Tools whose outputs are never cleared."""
_KEPT_TURNS: Final = 2


def estimate_tokens(text: str) -> int:
    """OpenCode's estimate: one token per four characters."""
    return round(len(text) / 4)


def prune_tool_outputs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with old tool outputs cleared (see module docstring).

    Args:
        messages: ``{"info", "parts"}`` wire dicts, oldest first, as the model will see them.

    Returns:
        ``messages`` itself when nothing is cleared; otherwise a copy in which each cleared
        tool part's ``state.output`` is ``CLEARED``. The input is never changed.
    """
    seen = 0
    cleared = 0
    found: list[tuple[int, int]] = []
    turns = 0
    for m_index in range(len(messages) - 1, -1, -1):
        info, parts = messages[m_index]["info"], messages[m_index]["parts"]
        if info["role"] == "user":
            turns += 1
        if turns < _KEPT_TURNS:
            continue
        if info["role"] == "assistant" and info.get("summary"):
            break
        for p_index in range(len(parts) - 1, -1, -1):
            part = parts[p_index]
            state = part.get("state") or {}
            if part.get("type") != "tool" or state.get("status") != "completed":
                continue
            if part.get("tool") in PROTECTED_TOOLS:
                continue
            size = estimate_tokens(str(state.get("output", "")))
            seen += size
            if seen > PROTECT_TOKENS:
                cleared += size
                found.append((m_index, p_index))
    if cleared <= MINIMUM_TOKENS:
        return messages
    out = list(messages)
    for m_index, p_index in found:
        if out[m_index] is messages[m_index]:
            out[m_index] = copy.deepcopy(messages[m_index])
        out[m_index]["parts"][p_index]["state"]["output"] = CLEARED
    return out
