import pytest

from roost.agent.catalog import ModelLimit
from roost.agent.context_window import (
    CompactionSettings,
    ContextWindow,
    is_context_overflow,
    message_tokens,
)
from roost.errors import ProviderError

DEFAULTS = CompactionSettings()


def test_the_usable_window_is_the_context_less_the_answer_reserve() -> None:
    window = ContextWindow(ModelLimit(context=2000, output=500), DEFAULTS)
    assert window.usable == 1500
    assert not window.is_full(1499)
    assert window.is_full(1500)


def test_an_unknown_or_large_output_limit_reserves_32000_tokens() -> None:
    assert ContextWindow(ModelLimit(context=200_000), DEFAULTS).usable == 168_000
    assert ContextWindow(ModelLimit(context=200_000, output=64_000), DEFAULTS).usable == 168_000


def test_an_input_limit_keeps_the_compaction_buffer_or_the_configured_reserve_free() -> None:
    limit = ModelLimit(context=400_000, output=128_000, input=272_000)
    assert ContextWindow(limit, DEFAULTS).usable == 252_000
    assert ContextWindow(limit, CompactionSettings(reserved=10_000)).usable == 262_000


def test_an_unknown_context_limit_or_auto_off_never_fills() -> None:
    assert not ContextWindow(ModelLimit(), DEFAULTS).is_full(10**9)
    off = CompactionSettings.from_config({"compaction": {"auto": False}})
    assert not ContextWindow(ModelLimit(context=2000, output=500), off).is_full(10**9)


def test_settings_follow_opencode_defaults() -> None:
    assert CompactionSettings.from_config({}) == CompactionSettings(True, False, None)
    configured = {"compaction": {"auto": True, "prune": True, "reserved": 5000}}
    assert CompactionSettings.from_config(configured) == CompactionSettings(True, True, 5000)


def test_stored_tokens_count_the_total_else_every_kind() -> None:
    assert message_tokens({"total": 70, "input": 50, "output": 20}) == 70
    tokens = {"input": 50, "output": 20, "reasoning": 5, "cache": {"read": 30, "write": 1}}
    assert message_tokens(tokens) == 101


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            400,
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 130000 tokens. Please reduce the length of the messages.",
        ),
        (400, "prompt is too long: 210000 tokens > 200000 maximum"),
        (413, "request_too_large: Request exceeds the maximum allowed number of bytes."),
        (400, "The input (9000 tokens) is longer than the model's context length (8192 tokens)."),
        (400, "the request exceeds the available context size, try increasing it"),
        (None, "Input is too long for requested model."),
    ],
)
def test_context_length_refusals_are_recognised(status: int | None, message: str) -> None:
    assert is_context_overflow(ProviderError(message, status_code=status))


def test_the_openai_error_code_alone_is_enough() -> None:
    body = '{"error": {"message": "too big", "code": "context_length_exceeded"}}'
    assert is_context_overflow(ProviderError("too big", status_code=400, response_body=body))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (429, "Request too large for gpt-4o on tokens per min (TPM): Limit 30000"),
        (400, "Invalid value for 'tool_choice'"),
        (500, "maximum context length exceeded while batching"),
        (401, "Incorrect API key provided"),
    ],
)
def test_other_failures_are_not_refusals_for_length(status: int, message: str) -> None:
    assert not is_context_overflow(ProviderError(message, status_code=status))
