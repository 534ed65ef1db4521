import orjson

from roost.agent.history import to_chat_messages
from roost.engine.compaction import conversation_until
from roost.store.queries import MessageRow


def _row(mid: str, role: str, text: str, parent: str | None = None) -> MessageRow:
    info = {"id": mid, "role": role, "sessionID": "ses_1", "time": {"created": 1}}
    if parent:
        info["parentID"] = parent
    parts = [orjson.dumps({"id": "prt_" + mid, "type": "text", "text": text}).decode()]
    return MessageRow(mid, orjson.dumps(info).decode(), parts)


def test_a_run_sees_earlier_turns_in_order_and_not_prompts_queued_after_it() -> None:
    rows = [
        _row("msg_1", "user", "first"),
        _row("msg_2", "user", "second"),  # admitted while the first turn ran
        _row("msg_3", "assistant", "answer one", parent="msg_1"),
        _row("msg_4", "user", "third"),
    ]
    convo = conversation_until(rows, "msg_2")
    chat = to_chat_messages("sys", convo)
    assert [(m["role"], m["content"]) for m in chat] == [
        ("system", "sys"),
        ("user", "first"),
        ("assistant", "answer one"),
        ("user", "second"),
    ]
