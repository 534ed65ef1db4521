from typing import Any

import orjson

from roost.agent.compaction import (
    CONTINUE_NOTE,
    RECAP_QUESTION,
    SUMMARY_SYSTEM,
    TRANSCRIPT_TOOL_CHARS,
    model_view,
    summary_request,
)
from roost.agent.history import to_chat_messages
from roost.engine.compaction import compaction_requests, conversation_until
from roost.store.queries import MessageRow


def _row(mid: str, role: str, *parts: dict[str, Any], **info: Any) -> MessageRow:
    data = {"id": mid, "role": role, "sessionID": "ses_1", "time": {"created": 1}, **info}
    return MessageRow(mid, orjson.dumps(data).decode(), [orjson.dumps(p).decode() for p in parts])


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _request(tail_start_id: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "compaction", "auto": tail_start_id is not None}
    if tail_start_id:
        part["tail_start_id"] = tail_start_id
    return part


def _chat(rows: list[MessageRow], run_message_id: str) -> list[tuple[str, str]]:
    view = model_view(conversation_until(rows, run_message_id), compaction_requests(rows))
    return [(m["role"], m["content"]) for m in to_chat_messages("sys", view)[1:]]


def test_after_a_summary_the_model_sees_a_recap_the_summary_and_what_came_after() -> None:
    rows = [
        _row("msg_01", "user", _text("one")),
        _row("msg_02", "assistant", _text("answer one"), parentID="msg_01"),
        _row("msg_03", "user", _request()),
        _row(
            "msg_04", "assistant", _text("SUMMARY"), parentID="msg_03", summary=True, finish="stop"
        ),
        _row("msg_05", "user", _text("two")),
    ]
    assert _chat(rows, "msg_05") == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY"),
        ("user", "two"),
    ]


def test_a_compaction_before_the_first_answer_keeps_the_prompt_after_the_summary() -> None:
    rows = [
        _row("msg_01", "user", _text("one")),
        _row("msg_02", "assistant", _text("answer one"), parentID="msg_01"),
        _row("msg_03", "user", _text("two")),
        _row("msg_04", "user", _request(tail_start_id="msg_03")),
        _row(
            "msg_05", "assistant", _text("SUMMARY"), parentID="msg_03", summary=True, finish="stop"
        ),
        _row("msg_06", "assistant", _text("answer two"), parentID="msg_03"),
    ]
    assert _chat(rows, "msg_03") == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY"),
        ("user", "two"),
        ("assistant", "answer two"),
    ]


def test_a_compaction_in_the_middle_of_a_turn_asks_the_model_to_continue() -> None:
    rows = [
        _row("msg_01", "user", _text("one")),
        _row("msg_02", "assistant", _text("working"), parentID="msg_01"),
        _row("msg_03", "user", _request()),
        _row(
            "msg_04", "assistant", _text("SUMMARY"), parentID="msg_01", summary=True, finish="stop"
        ),
        _row("msg_05", "assistant", _text("carried on"), parentID="msg_01"),
        _row("msg_06", "user", _text("two")),
    ]
    assert _chat(rows, "msg_06") == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY"),
        ("user", CONTINUE_NOTE),
        ("assistant", "carried on"),
        ("user", "two"),
    ]


def test_failed_summaries_and_compaction_requests_are_left_out() -> None:
    aborted = {"name": "MessageAbortedError", "data": {"message": "Aborted"}}
    rows = [
        _row("msg_01", "user", _text("one")),
        _row("msg_02", "assistant", _text("answer one"), parentID="msg_01"),
        _row("msg_03", "user", _request()),
        _row(
            "msg_04",
            "assistant",
            _text("half a sum"),
            parentID="msg_03",
            summary=True,
            error=aborted,
        ),
        _row("msg_05", "user", _text("two")),
    ]
    assert _chat(rows, "msg_05") == [
        ("user", "one"),
        ("assistant", "answer one"),
        ("user", "two"),
    ]


def test_the_summary_request_is_a_transcript_with_long_tool_results_cut() -> None:
    call = {
        "type": "tool",
        "tool": "bash",
        "callID": "call_1",
        "state": {"status": "completed", "input": {"command": "ls"}, "output": "y" * 5000},
    }
    rows = [
        _row("msg_01", "user", _text("list files")),
        _row("msg_02", "assistant", _text("listing"), call, parentID="msg_01"),
    ]
    head = model_view(conversation_until(rows, "msg_01"), {})
    system, user = summary_request(head)
    assert system == {"role": "system", "content": SUMMARY_SYSTEM}
    transcript = user["content"]
    assert "[user]\nlist files" in transcript
    assert '[tool call] bash {"command": "ls"}' in transcript
    assert "y" * TRANSCRIPT_TOOL_CHARS + "\n[… 3000 more characters not shown]" in transcript
    assert "y" * (TRANSCRIPT_TOOL_CHARS + 1) not in transcript
