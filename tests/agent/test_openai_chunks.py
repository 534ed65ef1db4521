"""OpenAI chat-completion chunks, read as the provider's JSON (no SDK models)."""

from __future__ import annotations

import pytest

from roost.agent.providers.base import ReasoningDelta, TextDelta, ToolCallRequest, Usage
from roost.agent.providers.openai_compat import _Accumulator
from roost.errors import ProviderError


def _chunk(delta: object, finish: str | None = None, **extra: object) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def test_text_reasoning_tool_calls_and_usage_are_folded_from_plain_json() -> None:
    acc = _Accumulator()
    out = [
        *acc.feed(_chunk({"role": "assistant", "content": ""})),
        *acc.feed(_chunk({"reasoning_content": "hmm"})),
        *acc.feed(_chunk({"reasoning": "more"})),
        *acc.feed(_chunk({"content": "hi"})),
        *acc.feed(
            _chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_a", "function": {"name": "ba", "arguments": ""}},
                        {"index": 1, "id": "call_b", "function": {"name": "read"}},
                    ]
                }
            )
        ),
        *acc.feed(
            _chunk({"tool_calls": [{"index": 0, "function": {"name": "sh", "arguments": '{"c'}}]})
        ),
        *acc.feed(
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ommand": "ls"}'}}]})
        ),
        *acc.feed(
            _chunk(
                {},
                "tool_calls",
                usage={
                    "prompt_tokens": 12,
                    "completion_tokens": 5,
                    "completion_tokens_details": {"reasoning_tokens": 2},
                    "prompt_tokens_details": {"cached_tokens": 7},
                },
            )
        ),
    ]
    assert out == [ReasoningDelta("hmm"), ReasoningDelta("more"), TextDelta("hi")]
    assert acc.finish == "tool_calls"
    assert acc.usage == Usage(
        input_tokens=12, output_tokens=5, reasoning_tokens=2, cache_read_tokens=7
    )
    assert acc.tool_calls() == [
        ToolCallRequest("call_a", "bash", {"command": "ls"}),
        ToolCallRequest("call_b", "read", {}),
    ]


def test_malformed_members_are_skipped_and_a_non_object_chunk_is_a_provider_error() -> None:
    acc = _Accumulator()
    assert acc.feed({"choices": "nope", "usage": None}) == []
    assert acc.feed({"choices": [None, {"delta": "x"}, {"delta": {"content": 3}}]}) == []
    assert acc.feed({"usage": {"prompt_tokens": "many", "completion_tokens": True}}) == []
    assert acc.usage == Usage()
    with pytest.raises(ProviderError, match="not an object"):
        acc.feed(["a list"])
