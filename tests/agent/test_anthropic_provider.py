"""``AnthropicProvider`` against the scripted LLM's Anthropic Messages endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from roost.agent.catalog import ANTHROPIC_NPM, Catalog, ProviderConfig
from roost.agent.providers.anthropic import (
    AnthropicProvider,
    max_tokens_for,
    to_anthropic_messages,
)
from roost.agent.providers.base import (
    ModelRequest,
    ProviderEvent,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    ToolCallRequest,
    Usage,
)
from roost.agent.providers.registry import ProviderRegistry
from roost.errors import ProviderError
from tests.support.scripted_llm import (
    Drop,
    Fail,
    Reasoning,
    ScriptedLLM,
    Text,
    ToolCall,
    Turn,
    text_turn,
)

pytestmark = pytest.mark.anyio

HI = ModelRequest("claude-test", [{"role": "user", "content": "hi"}])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
async def provider(llm: ScriptedLLM) -> AsyncIterator[AnthropicProvider]:
    client = AnthropicProvider(base_url=llm.base_url, api_key="k")
    yield client
    await client.close()


async def collect(provider: AnthropicProvider, request: ModelRequest = HI) -> list[ProviderEvent]:
    return [event async for event in provider.stream(request)]


async def test_text_streams_as_deltas_and_ends_with_stop(
    llm: ScriptedLLM, provider: AnthropicProvider
) -> None:
    llm.enqueue(Turn([Text("Hello, world!", chunk_chars=4)]))

    events = await collect(provider)

    assert events[:-1] == [TextDelta("Hell"), TextDelta("o, w"), TextDelta("orld"), TextDelta("!")]
    assert events[-1] == StreamEnd("stop", Usage(input_tokens=10, output_tokens=5))


async def test_thinking_streams_as_reasoning_before_the_text(
    llm: ScriptedLLM, provider: AnthropicProvider
) -> None:
    llm.enqueue(Turn([Reasoning("let me think", chunk_chars=100), Text("42", chunk_chars=100)]))

    events = await collect(provider)

    assert events[:-1] == [ReasoningDelta("let me think"), TextDelta("42")]


async def test_tool_calls_are_assembled_from_json_fragments_after_the_text(
    llm: ScriptedLLM, provider: AnthropicProvider
) -> None:
    arguments = {"path": "src/roost/agent/loop.py", "offset": 10, "limit": 200}
    llm.enqueue(
        Turn(
            [
                Text("Let me look.", chunk_chars=100),
                ToolCall("read", arguments, "toolu_read"),
                ToolCall("glob", {}),
            ]
        )
    )

    events = await collect(provider)

    text, read, glob, end = events
    assert text == TextDelta("Let me look.")
    assert read == ToolCallRequest("toolu_read", "read", arguments)
    assert isinstance(glob, ToolCallRequest)
    assert (glob.name, glob.arguments) == ("glob", {})
    assert glob.call_id.startswith("toolu_")
    assert end == StreamEnd("tool_calls", Usage(input_tokens=10, output_tokens=5))


async def test_usage_reports_input_and_output_tokens(
    llm: ScriptedLLM, provider: AnthropicProvider
) -> None:
    llm.enqueue(Turn([Text("hi")], usage=(1234, 56)))

    end = (await collect(provider))[-1]

    assert end == StreamEnd("stop", Usage(input_tokens=1234, output_tokens=56))


@pytest.mark.parametrize(
    ("scripted", "finish_reason"),
    # The script speaks OpenAI's words; the server sends them as Anthropic stop reasons
    # (length → max_tokens, …), which the provider maps back.
    [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("refusal", "refusal")],
)
async def test_stop_reason_maps_to_the_finish_reason(
    llm: ScriptedLLM, provider: AnthropicProvider, scripted: str, finish_reason: str
) -> None:
    llm.enqueue(Turn([Text("x")], finish_reason=scripted))

    end = (await collect(provider))[-1]

    assert isinstance(end, StreamEnd)
    assert end.finish_reason == finish_reason


@pytest.mark.parametrize("status", [429, 500, 529])
async def test_rate_limits_and_server_errors_are_retryable(
    llm: ScriptedLLM, provider: AnthropicProvider, status: int
) -> None:
    llm.enqueue(Turn([Fail(status, "slow down")]))

    with pytest.raises(ProviderError) as raised:
        await collect(provider)

    error = raised.value
    assert (error.status_code, error.retryable) == (status, True)
    assert str(error) == "slow down"
    assert error.response_body is not None
    assert json.loads(error.response_body)["type"] == "error"
    assert error.url == f"{llm.base_url}/messages"


async def test_bad_request_is_not_retryable(llm: ScriptedLLM, provider: AnthropicProvider) -> None:
    llm.enqueue(Turn([Fail(400, "messages: roles must alternate")]))

    with pytest.raises(ProviderError) as raised:
        await collect(provider)

    assert (raised.value.status_code, raised.value.retryable) == (400, False)
    assert "roles must alternate" in str(raised.value)


async def test_overloaded_mid_stream_is_retryable_after_the_text_so_far(
    llm: ScriptedLLM, provider: AnthropicProvider
) -> None:
    llm.enqueue(Turn([Text("partial", chunk_chars=100), Fail(529, "Overloaded")]))
    received: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as raised:
        async for event in provider.stream(HI):
            received.append(event)

    assert received == [TextDelta("partial")]
    assert (raised.value.status_code, raised.value.retryable) == (529, True)


async def test_dropped_stream_is_a_retryable_transport_failure(
    llm: ScriptedLLM, provider: AnthropicProvider
) -> None:
    llm.enqueue(Turn([Text("abc", chunk_chars=100), Drop()]))

    with pytest.raises(ProviderError) as raised:
        await collect(provider)

    assert (raised.value.status_code, raised.value.retryable) == (None, True)


async def test_conversation_with_tool_calls_is_sent_in_anthropic_shape(
    llm: ScriptedLLM, provider: AnthropicProvider
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Run a command.",
                "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
            },
        }
    ]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are Roost."},
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            "content": "Listing.",
            "tool_calls": [
                {
                    "id": "functions.bash:0",  # another provider's id: not valid for Anthropic
                    "type": "function",
                    "function": {"name": "bash", "arguments": json.dumps({"command": "ls"})},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "bash", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "functions.bash:0", "content": "a.py\nb.py"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": ""},
        {"role": "user", "content": "and now?"},
        {"role": "assistant", "content": ""},  # produced nothing: left out
        {"role": "user", "content": "hello?"},
    ]
    request = ModelRequest("claude-test", messages, tools, temperature=0.2)

    await collect(provider, request)

    [body] = llm.requests
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 8192
    assert body["stream"] is True
    assert body["temperature"] == 0.2
    assert body["system"] == "You are Roost."
    assert body["tools"] == [
        {
            "name": "bash",
            "description": "Run a command.",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
        }
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "list files"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Listing."},
                {
                    "type": "tool_use",
                    "id": "functions_bash_0",
                    "name": "bash",
                    "input": {"command": "ls"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "bash", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "functions_bash_0", "content": "a.py\nb.py"},
                {"type": "tool_result", "tool_use_id": "toolu_2"},
                {"type": "text", "text": "and now?"},
                {"type": "text", "text": "hello?"},
            ],
        },
    ]


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "", "/"])
async def test_base_url_works_with_or_without_v1(llm: ScriptedLLM, suffix: str) -> None:
    llm.enqueue(text_turn("reached"))
    base_url = llm.base_url.removesuffix("/v1") + suffix
    client = AnthropicProvider(base_url=base_url, api_key="k")
    try:
        events = await collect(client)
    finally:
        await client.close()

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "reached"


@pytest.mark.parametrize(
    ("model_id", "max_tokens"),
    [
        ("claude-3-haiku-20240307", 4096),
        ("claude-3-5-sonnet-20241022", 8192),
        ("claude-3-7-sonnet-latest", 32_000),
        ("claude-sonnet-4-5", 32_000),
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", 32_000),
        ("claude-test", 8192),
    ],
)
def test_max_tokens_follows_the_model_family(model_id: str, max_tokens: int) -> None:
    assert max_tokens_for(model_id) == max_tokens


async def test_registry_serves_anthropic_providers_with_this_client() -> None:
    registry = ProviderRegistry()
    config = ProviderConfig("claude", ANTHROPIC_NPM, "http://127.0.0.1:1/v1", "k", None)
    try:
        assert isinstance(registry.get(config), AnthropicProvider)
    finally:
        await registry.close()


def test_anthropic_api_key_adds_an_anthropic_provider_for_any_model() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-ant", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}
    catalog = Catalog({"model": "anthropic/claude-sonnet-4-5"}, env)

    resolved = catalog.resolve_model(None, None, catalog.agent(None))

    assert resolved.model_id == "claude-sonnet-4-5"
    assert resolved.provider == ProviderConfig(
        "anthropic", ANTHROPIC_NPM, "http://127.0.0.1:1", "sk-ant", None, "Anthropic"
    )


def test_images_and_pdfs_become_image_and_document_blocks() -> None:
    content = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,BBBB"},
        },
    ]
    _, messages = to_anthropic_messages([{"role": "user", "content": content}])
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                },
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "BBBB"},
                },
            ],
        }
    ]
