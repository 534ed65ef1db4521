"""The scripted LLM speaks Anthropic Messages the way the official ``anthropic`` SDK expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from anthropic.types import (
    InputJSONDelta,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStreamEvent,
    SignatureDelta,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
)

from tests.support.scripted_llm import (
    Delay,
    Drop,
    Fail,
    Hang,
    Reasoning,
    ScriptedLLM,
    Text,
    ToolCall,
    Turn,
    text_turn,
)

MESSAGES: list[MessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def client(llm: ScriptedLLM) -> Iterator[anthropic.Anthropic]:
    # The SDK appends /v1/messages to its base URL itself.
    base_url = llm.base_url.removesuffix("/v1")
    with anthropic.Anthropic(base_url=base_url, api_key="x", max_retries=0) as sdk:
        yield sdk


def stream_events(client: anthropic.Anthropic, model: str = "claude-test") -> list[Any]:
    # Any: RawMessageStreamEvent is an annotated union; tests narrow with isinstance.
    events: list[RawMessageStreamEvent] = []
    with client.messages.create(
        model=model, max_tokens=100, messages=MESSAGES, stream=True
    ) as stream:
        events.extend(stream)
    return events


def deltas(events: list[Any], kind: type[Any]) -> list[Any]:
    return [
        e.delta
        for e in events
        if isinstance(e, RawContentBlockDeltaEvent) and isinstance(e.delta, kind)
    ]


def test_streamed_text_is_one_text_block_of_several_deltas(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Text("Hello, ", chunk_chars=4), Text("world!", chunk_chars=4)]))

    events = stream_events(client, model="claude-echo")

    assert [e.type for e in events[:2]] == ["message_start", "content_block_start"]
    assert [e.type for e in events[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0]
    assert isinstance(start, RawMessageStartEvent)
    assert start.message.model == "claude-echo"
    assert start.message.id.startswith("msg_")
    assert [d.text for d in deltas(events, TextDelta)] == ["Hell", "o, ", "worl", "d!"]
    assert [e.index for e in events if isinstance(e, RawContentBlockStartEvent)] == [0]
    end = events[-2]
    assert isinstance(end, RawMessageDeltaEvent)
    assert end.delta.stop_reason == "end_turn"


def test_input_tokens_come_first_and_output_tokens_last(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Text("hi")], usage=(120, 7)))

    events = stream_events(client)

    start, end = events[0], events[-2]
    assert isinstance(start, RawMessageStartEvent)
    assert isinstance(end, RawMessageDeltaEvent)
    assert start.message.usage.input_tokens == 120
    assert end.usage.output_tokens == 7


def test_reasoning_is_a_signed_thinking_block_before_the_text(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Reasoning("let me think", chunk_chars=5), Text("42")]))

    events = stream_events(client)

    blocks = [e.content_block for e in events if isinstance(e, RawContentBlockStartEvent)]
    assert [b.type for b in blocks] == ["thinking", "text"]
    assert [d.thinking for d in deltas(events, ThinkingDelta)] == ["let m", "e thi", "nk"]
    assert len(deltas(events, SignatureDelta)) == 1
    assert [d.text for d in deltas(events, TextDelta)] == ["42"]


def test_parallel_tool_calls_are_tool_use_blocks_assembled_from_json_deltas(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    read_args = {"path": "src/roost/agent/loop.py", "limit": 200}
    llm.enqueue(
        Turn([Text("Reading."), ToolCall("read", read_args), ToolCall("bash", {}, "toolu_x")])
    )

    events = stream_events(client)

    starts = [e for e in events if isinstance(e, RawContentBlockStartEvent)]
    tools = [
        (e.index, e.content_block) for e in starts if isinstance(e.content_block, ToolUseBlock)
    ]
    assert [(i, b.name) for i, b in tools] == [(1, "read"), (2, "bash")]
    assert tools[0][1].id.startswith("toolu_")
    assert tools[1][1].id == "toolu_x"
    fragments: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, RawContentBlockDeltaEvent) and isinstance(e.delta, InputJSONDelta):
            fragments.setdefault(e.index, []).append(e.delta.partial_json)
    assert json.loads("".join(fragments[1])) == read_args
    assert json.loads("".join(fragments[2])) == {}
    assert all(len(f) >= 2 for f in fragments.values())
    end = events[-2]
    assert isinstance(end, RawMessageDeltaEvent)
    assert end.delta.stop_reason == "tool_use"


def test_the_sdk_accumulates_the_stream_into_a_message(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Reasoning("hmm"), Text("Calling it."), ToolCall("glob", {"pattern": "*"})]))

    with client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream:
        message = stream.get_final_message()

    thinking, text, tool = message.content
    assert isinstance(thinking, ThinkingBlock) and thinking.thinking == "hmm"
    assert isinstance(text, TextBlock) and text.text == "Calling it."
    assert isinstance(tool, ToolUseBlock)
    assert (tool.name, tool.input) == ("glob", {"pattern": "*"})
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 5)


def test_non_streaming_reply_carries_blocks_stop_reason_and_usage(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Reasoning("hmm"), Text("Calling it."), ToolCall("glob", {"pattern": "*"})]))

    message = client.messages.create(model="claude-test", max_tokens=100, messages=MESSAGES)

    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    thinking, text, tool = message.content
    assert isinstance(thinking, ThinkingBlock) and thinking.signature
    assert isinstance(text, TextBlock) and text.text == "Calling it."
    assert isinstance(tool, ToolUseBlock) and tool.id.startswith("toolu_")
    assert tool.input == {"pattern": "*"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 5)


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [("length", "max_tokens"), ("stop", "end_turn"), ("refusal", "refusal")],
)
def test_scripted_finish_reason_becomes_the_stop_reason(
    llm: ScriptedLLM, client: anthropic.Anthropic, finish_reason: str, stop_reason: str
) -> None:
    llm.enqueue(Turn([Text("trunc")], finish_reason=finish_reason))

    end = stream_events(client)[-2]

    assert isinstance(end, RawMessageDeltaEvent)
    assert end.delta.stop_reason == stop_reason


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_fail_before_content_is_an_http_error_with_an_anthropic_body(
    llm: ScriptedLLM,
    client: anthropic.Anthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
    stream: bool,
) -> None:
    llm.enqueue(Turn([Delay(0.01), Fail(status, "slow down")]))

    with pytest.raises(error_class) as raised:
        client.messages.create(
            model="claude-test", max_tokens=100, messages=MESSAGES, stream=stream
        )

    assert raised.value.status_code == status
    assert raised.value.body == {
        "type": "error",
        "error": {"type": error_type, "message": "slow down"},
    }


def test_fail_mid_stream_sends_an_error_event(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Text("partial", chunk_chars=100), Fail(529, "Overloaded")]))
    received: list[Any] = []

    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.create(
            model="claude-test", max_tokens=100, messages=MESSAGES, stream=True
        ) as stream,
    ):
        received.extend(stream)

    assert [d.text for d in deltas(received, TextDelta)] == ["partial"]
    assert raised.value.status_code == 200  # the error came in an `event: error` frame
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_drop_mid_stream_is_a_transport_error(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Text("abc", chunk_chars=100), Drop()]))
    received: list[Any] = []

    # The SDK does not wrap errors raised while reading a stream's body.
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        client.messages.create(
            model="claude-test", max_tokens=100, messages=MESSAGES, stream=True
        ) as stream,
    ):
        received.extend(stream)

    assert [d.text for d in deltas(received, TextDelta)] == ["abc"]


def test_drop_before_response_is_a_connection_error(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(Turn([Drop()]))

    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model="claude-test", max_tokens=100, messages=MESSAGES)


def test_hang_times_the_client_out(llm: ScriptedLLM) -> None:
    llm.enqueue(Turn([Hang()]))
    base_url = llm.base_url.removesuffix("/v1")
    impatient = anthropic.Anthropic(base_url=base_url, api_key="x", max_retries=0, timeout=0.5)

    with impatient, pytest.raises(anthropic.APITimeoutError):
        impatient.messages.create(
            model="claude-test", max_tokens=100, messages=MESSAGES, stream=True
        )


def test_both_endpoints_record_requests_and_share_one_queue(
    llm: ScriptedLLM, client: anthropic.Anthropic
) -> None:
    llm.enqueue(text_turn("first"), text_turn("second"))

    message = client.messages.create(
        model="claude-test", max_tokens=64, system="be brief", messages=MESSAGES
    )
    with openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0) as chat:
        completion = chat.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )

    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "first"
    assert completion.choices[0].message.content == "second"
    first, second = llm.wait_for_requests(2)
    assert first["system"] == "be brief"
    assert first["max_tokens"] == 64
    assert first["messages"] == [{"role": "user", "content": "hi"}]
    assert second["model"] == "gpt-test"


def test_messages_also_served_without_v1_prefix(llm: ScriptedLLM) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{llm.port}/messages",
        json={"model": "m", "max_tokens": 10, "messages": []},
    )

    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "ok"}]
    assert response.json()["stop_reason"] == "end_turn"


def test_a_bad_body_gets_an_anthropic_error(llm: ScriptedLLM) -> None:
    response = httpx.post(f"http://127.0.0.1:{llm.port}/v1/messages", content=b"[1, 2]")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert llm.requests == []
