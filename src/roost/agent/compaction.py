"""Compaction as the model sees it: the view after a summary, and the request that writes one.

A compaction is stored as OpenCode 1.18.34 stores it: a user message holding a ``compaction``
part (``CompactionPart``: ``auto``, ``overflow``, ``tail_start_id``), then an assistant message
with ``summary: true`` (``mode``/``agent`` ``"compaction"``) whose text is the summary. Nothing
is deleted: the store keeps every message and ``model_view`` decides what the model is sent.

The view after the latest *completed* summary (``finish`` set, no ``error``) is, as OpenCode's
``filterCompacted`` orders it:

1. a user message asking for a recap (``RECAP_QUESTION``) and the summary as its answer;
2. the tail the summary left out: the messages from the compaction's ``tail_start_id`` up to the
   summary (Roost keeps a tail only when it compacts before a prompt got any answer: the prompt
   itself stays verbatim);
3. everything after the summary. When no user message comes next (the turn goes on after an
   automatic compaction), ``CONTINUE_NOTE`` is put first: the model needs a user turn to answer.

Compaction request messages and summaries that failed are never part of the view. Before any
completed summary the view is the conversation as it is. Summaries that came before the latest
one are behind it, so their text reaches the model only through the newer summary.

The summary request sends the part of the view being summarized as one transcript in a user
message, under a system prompt of its own (``SUMMARY_SYSTEM``), with no tools. Tool results in
the transcript are cut to ``TRANSCRIPT_TOOL_CHARS`` characters: the summary needs what a call
found, not every byte of it, and a transcript that fits is what lets compaction succeed.
"""

from __future__ import annotations

import json
from typing import Any, Final

from roost.agent import history

Message = dict[str, Any]
"""``{"info": Message, "parts": [Part]}``, as stored and served."""

RECAP_QUESTION: Final = "Where do we stand? Sum up this session so far."
"""The user turn that the summary answers in the model's view."""
CONTINUE_NOTE: Final = (
    "The conversation so far was condensed into the summary above, and the work goes on from "
    "there. Carry on with the next step. If the task is complete, or you are unsure what the "
    "user wants next, say so and stop."
)
"""The user turn put after a summary when the turn itself continues."""
SUMMARY_SYSTEM: Final = (
    "You write hand-over notes. You are shown the transcript of a session between a user and "
    "a coding agent, and you condense it so that another agent, who will see only your notes, "
    "can take over the work without asking anything again. You are not part of the session: "
    "do not answer its questions, do not call tools and do not carry on with the work. Write "
    "in the language the user wrote in."
)
SUMMARY_INSTRUCTIONS: Final = """Write the hand-over notes for the transcript above.
Be specific: keep file paths, function and variable names, commands, versions and error
messages exactly as they appear. Prefer short bullet points. Use these headings:

## Task
What the user asked for, with every constraint and preference they stated.

## Done so far
What was completed, and what was learned along the way (including dead ends).

## In progress
What was being worked on when the transcript ends, and exactly how far it got.

## Next steps
What remains to be done, in order.

## Files
Each file read, created or changed, with a few words on its role.

If the transcript starts with earlier notes, fold them in: keep what is still true and drop
what is not."""
TRANSCRIPT_TOOL_CHARS: Final = 2_000
"""Most characters of one tool result in the summary transcript."""


def compaction_part(message: Message) -> dict[str, Any] | None:
    """The ``compaction`` part of a user message, or None."""
    if message["info"].get("role") != "user":
        return None
    return next((p for p in message["parts"] if p.get("type") == "compaction"), None)


def is_completed_summary(info: dict[str, Any]) -> bool:
    """Whether an assistant message is a summary that finished without error."""
    return (
        info.get("role") == "assistant"
        and info.get("summary") is True
        and bool(info.get("finish"))
        and "error" not in info
    )


def model_view(conversation: list[Message], markers: dict[str, dict[str, Any]]) -> list[Message]:
    """What the model is sent of ``conversation`` (see module docstring).

    Args:
        conversation: The messages a run sees, oldest first, each user message followed by its
            assistant replies.
        markers: Every compaction request of the session, by message id, with its
            ``compaction`` part (the request may come after its summary in ``conversation``,
            or not be in it at all).

    Returns:
        The view; it shares message dicts with ``conversation`` (copy before changing them).
    """
    latest = _latest_summary(conversation)
    if latest is None:
        return [m for m in conversation if _shown(m)]
    summary = conversation[latest]
    marker = _marker_of(summary["info"], markers) or {}
    tail: list[Message] = []
    tail_start = marker.get("tail_start_id")
    if tail_start:
        start = next(
            (i for i, m in enumerate(conversation[:latest]) if m["info"]["id"] == tail_start), None
        )
        if start is not None:
            tail = [m for m in conversation[start:latest] if _shown(m)]
    rest = [m for m in conversation[latest + 1 :] if _shown(m)]
    view = [synthetic_user(RECAP_QUESTION), summary, *tail]
    if not tail and not (rest and rest[0]["info"]["role"] == "user"):
        view.append(synthetic_user(CONTINUE_NOTE))
    return view + rest


def decides_view(conversation: list[Message], markers: dict[str, dict[str, Any]]) -> bool:
    """Whether ``model_view(conversation, markers)`` is the view of every longer conversation
    that ends with ``conversation``, whatever comes before it.

    What comes before may be any messages, and compaction requests added to ``markers`` whose
    ids sort before every id in ``markers``. It holds when ``conversation`` has a completed
    summary, the request that summary answers is its parent or one of ``markers`` made before
    it (any earlier request added would be older, so not the newest), and that request's
    ``tail_start_id``, if any, is a message before the summary. Then the view's summary, tail
    and rest all lie in ``conversation`` (ids are unique, so an earlier message cannot be the
    tail's start). A turn in a long session therefore needs only the messages from its last
    summary's prompt on (``roost.engine.compaction.turn_rows``).
    """
    latest = _latest_summary(conversation)
    if latest is None:
        return False
    marker = _marker_of(conversation[latest]["info"], markers)
    if marker is None:
        return False
    tail_start = marker.get("tail_start_id")
    return not tail_start or any(m["info"]["id"] == tail_start for m in conversation[:latest])


def before_message(view: list[Message], message_id: str) -> list[Message]:
    """The messages of ``view`` that come before ``message_id`` (all when it is absent)."""
    index = next((i for i, m in enumerate(view) if m["info"].get("id") == message_id), None)
    return view if index is None else view[:index]


def synthetic_user(text: str) -> Message:
    """A user message that exists only in the model's view (never stored)."""
    return {"info": {"role": "user"}, "parts": [{"type": "text", "text": text}]}


def summary_request(head: list[Message]) -> list[dict[str, Any]]:
    """The chat messages that ask for a summary of ``head`` (see module docstring)."""
    chat = history.to_chat_messages("", head)[1:]
    transcript = "\n\n".join(_transcript_entry(m) for m in chat)
    return [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {
            "role": "user",
            "content": f"<transcript>\n{transcript}\n</transcript>\n\n{SUMMARY_INSTRUCTIONS}",
        },
    ]


def _latest_summary(conversation: list[Message]) -> int | None:
    """The index of the last completed summary in ``conversation``, or None."""
    return next(
        (
            index
            for index in range(len(conversation) - 1, -1, -1)
            if is_completed_summary(conversation[index]["info"])
        ),
        None,
    )


def _shown(message: Message) -> bool:
    info = message["info"]
    if info.get("summary") is True and not is_completed_summary(info):
        return False
    return compaction_part(message) is None


def _marker_of(
    summary: dict[str, Any], markers: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The compaction request a summary answers: its parent (``POST /summarize``), else the
    newest request made before it (automatic compactions answer the run's prompt)."""
    parent = markers.get(summary.get("parentID", ""))
    if parent is not None:
        return parent
    earlier = [mid for mid in markers if mid < summary["id"]]
    return markers[max(earlier)] if earlier else None


def _transcript_entry(message: dict[str, Any]) -> str:
    role = message["role"]
    if role == "tool":
        output = str(message.get("content") or "")
        if len(output) > TRANSCRIPT_TOOL_CHARS:
            left = len(output) - TRANSCRIPT_TOOL_CHARS
            output = f"{output[:TRANSCRIPT_TOOL_CHARS]}\n[… {left} more characters not shown]"
        return f"[tool result]\n{output}"
    lines = [f"[{role}]"]
    if message.get("content"):
        lines.append(str(message["content"]))
    for call in message.get("tool_calls") or []:
        function = call["function"]
        arguments = json.loads(function.get("arguments") or "{}")
        lines.append(f"[tool call] {function['name']} {json.dumps(arguments, ensure_ascii=False)}")
    return "\n".join(lines)
