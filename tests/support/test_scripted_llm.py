"""The scripted LLM speaks Chat Completions the way the official ``openai`` SDK expects."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

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
    tool_turn,
)

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def client(llm: ScriptedLLM) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0) as sdk:
        yield sdk


def stream_chunks(
    client: openai.OpenAI, *, include_usage: bool = False, model: str = "gpt-test"
) -> list[ChatCompletionChunk]:
    with client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True} if include_usage else openai.omit,
    ) as stream:
        return list(stream)


def content_of(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]


def test_streamed_text_arrives_in_several_chunks(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Text("Hello, world!", chunk_chars=4)]))

    chunks = stream_chunks(client, model="gpt-echo")

    assert content_of(chunks) == ["Hell", "o, w", "orld", "!"]
    assert {c.model for c in chunks} == {"gpt-echo"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_reasoning_streams_as_reasoning_content(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Reasoning("let me think", chunk_chars=5), Text("42")]))

    chunks = stream_chunks(client)

    reasoning = [(c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks]
    assert [r for r in reasoning if r] == ["let m", "e thi", "nk"]
    assert content_of(chunks) == ["42"]


def test_parallel_tool_calls_assemble_from_fragments(
    llm: ScriptedLLM, client: openai.OpenAI
) -> None:
    read_args = {"path": "src/roost/agent/loop.py", "limit": 200}
    llm.enqueue(Turn([ToolCall("read", read_args), ToolCall("bash", {}, call_id="call_x")]))

    chunks = stream_chunks(client)

    calls: dict[int, dict[str, Any]] = {}
    fragments: dict[int, int] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            assert delta.function is not None
            call["id"] = call["id"] or delta.id
            call["name"] = call["name"] or delta.function.name
            if delta.function.arguments:
                call["arguments"] += delta.function.arguments
                fragments[delta.index] = fragments.get(delta.index, 0) + 1
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["name"] == "read"
    assert json.loads(calls[0]["arguments"]) == read_args
    assert calls[1] == {"id": "call_x", "name": "bash", "arguments": "{}"}
    assert fragments[0] >= 2
    assert fragments[1] >= 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_usage_chunk_is_last_when_include_usage(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Text("hi")], usage=(120, 7)))

    chunks = stream_chunks(client, include_usage=True)

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (120, 7)
    assert chunks[-1].usage.total_tokens == 127
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_non_streaming_reply_carries_content_tool_calls_and_usage(
    llm: ScriptedLLM, client: openai.OpenAI
) -> None:
    llm.enqueue(Turn([Reasoning("hmm"), Text("Calling it."), ToolCall("glob", {"pattern": "*"})]))

    completion = client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    message = completion.choices[0].message
    assert message.content == "Calling it."
    assert (message.model_extra or {}).get("reasoning_content") == "hmm"
    assert message.tool_calls is not None
    [call] = message.tool_calls
    assert call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == ("glob", {"pattern": "*"})
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 5)


def test_scripted_finish_reason_wins(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Text("trunc")], finish_reason="length", usage=None))

    chunks = stream_chunks(client, include_usage=True)

    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "error_type"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_fail_before_content_is_an_http_error(
    llm: ScriptedLLM,
    client: openai.OpenAI,
    status: int,
    error_type: type[openai.APIStatusError],
    stream: bool,
) -> None:
    llm.enqueue(Turn([Delay(0.01), Fail(status, "slow down")]))

    with pytest.raises(error_type) as raised:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=stream)

    assert raised.value.status_code == status
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["message"] == "slow down"


def test_fail_mid_stream_sends_an_error_frame(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Text("partial", chunk_chars=100), Fail(503, "overloaded")]))
    received: list[str] = []

    with (
        pytest.raises(openai.APIError, match="overloaded") as raised,
        client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True) as stream,
    ):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert received == ["partial"]
    assert not isinstance(raised.value, openai.APIStatusError)  # the HTTP status was 200
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["type"] == "server_error"


def test_drop_mid_stream_is_a_connection_error(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Text("abc", chunk_chars=100), Drop()]))
    received: list[str] = []

    with (
        pytest.raises(openai.APIConnectionError),
        client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True) as stream,
    ):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert received == ["abc"]


def test_drop_before_response_is_a_connection_error(
    llm: ScriptedLLM, client: openai.OpenAI
) -> None:
    llm.enqueue(Turn([Drop()]))

    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)


def test_delay_holds_back_the_next_step(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Text("a"), Delay(0.3), Text("b")]))
    arrivals: list[float] = []

    with client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True) as stream:
        for chunk in stream:
            if chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())

    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.25


def test_leading_delay_holds_back_the_headers(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    llm.enqueue(Turn([Delay(0.3), Text("late")]))
    started = time.monotonic()

    with client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True) as stream:
        headers_after_s = time.monotonic() - started
        assert content_of(list(stream)) == ["late"]

    assert headers_after_s >= 0.25


def test_hang_times_the_client_out_and_stop_still_returns(llm: ScriptedLLM) -> None:
    llm.enqueue(Turn([Text("stuck"), Hang()]), Turn([Hang()]))
    impatient = openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0, timeout=0.5)

    with (
        impatient,
        pytest.raises(openai.APITimeoutError),
        impatient.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True) as s,
    ):
        list(s)
    # A second hang whose client stays connected: stop() must not wait for it.
    with socket.create_connection(("127.0.0.1", llm.port)) as raw:
        body = json.dumps({"model": "m", "messages": []}).encode()
        raw.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        llm.wait_for_requests(2)
        started = time.monotonic()
        llm.stop()
        assert time.monotonic() - started < 2
        raw.settimeout(5)
        assert raw.recv(1024) == b""  # closed without a response


def test_requests_are_recorded_in_order_as_copies(llm: ScriptedLLM, client: openai.OpenAI) -> None:
    for word in ("one", "two"):
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": word}]
        )

    requests = llm.wait_for_requests(2)

    assert [r["messages"][0]["content"] for r in requests] == ["one", "two"]
    assert requests[0]["model"] == "gpt-test"
    requests[0]["model"] = "mutated"
    assert llm.requests[0]["model"] == "gpt-test"


def test_wait_for_requests_times_out(llm: ScriptedLLM) -> None:
    with pytest.raises(TimeoutError):
        llm.wait_for_requests(1, timeout_s=0.1)


def test_queue_is_fifo_then_falls_back_to_the_default(client: openai.OpenAI) -> None:
    with ScriptedLLM(default=tool_turn("noop", {})) as llm:
        sdk = client.with_options(base_url=llm.base_url)
        llm.enqueue(text_turn("first"), text_turn("second"))

        replies = [sdk.chat.completions.create(model="m", messages=MESSAGES) for _ in range(3)]

    assert [r.choices[0].message.content for r in replies[:2]] == ["first", "second"]
    assert replies[2].choices[0].finish_reason == "tool_calls"


def test_default_reply_is_ok(client: openai.OpenAI) -> None:
    assert content_of(stream_chunks(client)) == ["ok"]


def test_models_lists_the_scripted_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["scripted-model"]


def test_chat_completions_also_served_without_v1_prefix(llm: ScriptedLLM) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{llm.port}/chat/completions",
        json={"model": "m", "messages": []},
    )

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "ok"
    assert len(llm.requests) == 1
