import copy
from typing import Any

from roost.agent.prune import CLEARED, prune_tool_outputs


def _user(text: str) -> dict[str, Any]:
    return {"info": {"role": "user"}, "parts": [{"type": "text", "text": text}]}


def _tools(*outputs: str, tool: str = "bash") -> dict[str, Any]:
    parts = [
        {
            "type": "tool",
            "tool": tool,
            "callID": f"c{i}",
            "state": {"status": "completed", "output": o},
        }
        for i, o in enumerate(outputs)
    ]
    return {"info": {"role": "assistant"}, "parts": parts}


def _summary(text: str) -> dict[str, Any]:
    info = {"role": "assistant", "summary": True, "finish": "stop"}
    return {"info": info, "parts": [{"type": "text", "text": text}]}


def _outputs(messages: list[dict[str, Any]]) -> list[str]:
    return [p["state"]["output"][:6] for m in messages for p in m["parts"] if p["type"] == "tool"]


KB45 = "x" * 45_000  # 11250 estimated tokens


def test_outputs_older_than_the_protected_40k_tokens_are_cleared_in_a_copy() -> None:
    old = _tools(*(f"out{i}-{KB45}" for i in range(1, 7)))
    messages = [_user("one"), old, _user("two"), _tools("recent"), _user("three")]
    before = copy.deepcopy(messages)
    pruned = prune_tool_outputs(messages)
    assert _outputs(pruned) == [CLEARED[:6]] * 3 + ["out4-x", "out5-x", "out6-x", "recent"]
    assert messages == before


def test_the_last_two_user_turns_are_never_pruned() -> None:
    messages = [_user("one"), _tools(*(f"out{i}-{KB45}" for i in range(6))), _user("two")]
    assert prune_tool_outputs(messages) is messages


def test_nothing_is_cleared_unless_more_than_20k_tokens_would_go() -> None:
    # 4 outputs: 45k tokens seen, the oldest (11250 tokens) would go: not worth it.
    messages = [_user("one"), _tools(*(KB45 for _ in range(4))), _user("two"), _user("three")]
    assert prune_tool_outputs(messages) is messages


def test_pruning_stops_at_the_latest_summary_and_spares_skill_outputs() -> None:
    before_summary = _tools(*(KB45 for _ in range(6)))
    skills = _tools(*(f"skill{i}-{KB45}" for i in range(6)), tool="skill")
    messages = [
        _user("one"),
        before_summary,
        _user("recap"),
        _summary("the summary"),
        _user("two"),
        skills,
        _user("three"),
        _user("four"),
    ]
    assert prune_tool_outputs(messages) is messages
