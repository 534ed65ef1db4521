import pytest

from roost.agent.catalog import Catalog, ModelLimit
from roost.errors import UnknownAgent, UnknownModel

CONFIG = {
    "model": "mock/mock-model",
    "provider": {
        "mock": {
            "npm": "@ai-sdk/openai-compatible",
            "options": {"baseURL": "http://127.0.0.1:1/v1", "apiKey": "k"},
            "models": {"mock-model": {}, "mock-small": {}},
        }
    },
    "agent": {
        "reviewer": {"mode": "subagent", "description": "Reviews", "model": "mock/mock-small"},
        "plan": {"temperature": 0.1},
    },
}


def test_builtin_and_configured_agents_are_listed() -> None:
    catalog = Catalog(CONFIG, {})
    assert {"build", "plan", "general", "explore", "reviewer"} <= set(catalog.agents)
    assert catalog.agents["reviewer"].mode == "subagent"
    assert catalog.agents["plan"].temperature == 0.1
    assert catalog.agents["plan"].native is True


def test_model_resolution_prefers_request_then_agent_then_default() -> None:
    catalog = Catalog(CONFIG, {})
    build, reviewer = catalog.agent("build"), catalog.agent("reviewer")
    assert catalog.resolve_model(None, None, build).model_id == "mock-model"
    assert catalog.resolve_model(None, None, reviewer).model_id == "mock-small"
    assert catalog.resolve_model("mock", "mock-small", build).model_id == "mock-small"


def test_unknown_agent_provider_and_model_are_refused_with_a_reason() -> None:
    catalog = Catalog(CONFIG, {})
    with pytest.raises(UnknownAgent, match="nope"):
        catalog.agent("nope")
    with pytest.raises(UnknownModel, match="provider not configured"):
        catalog.resolve_model("other", "x", catalog.agent("build"))
    with pytest.raises(UnknownModel, match="no such model"):
        catalog.resolve_model("mock", "gpt-9", catalog.agent("build"))


def test_openai_env_adds_a_provider_that_accepts_any_model() -> None:
    catalog = Catalog({}, {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})
    resolved = catalog.resolve_model("openai", "gpt-anything", catalog.agent(None))
    assert resolved.provider.base_url == "http://127.0.0.1:1/v1"
    assert resolved.provider.api_key == "sk"


def test_without_any_model_prompts_are_refused() -> None:
    with pytest.raises(UnknownModel, match="no default model"):
        Catalog({}, {}).resolve_model(None, None, Catalog({}, {}).agent(None))


def test_model_limits_come_from_config_and_default_to_unknown() -> None:
    config = {
        "provider": {
            "mock": {
                "options": {"baseURL": "http://127.0.0.1:1/v1"},
                "models": {"small": {"limit": {"context": 2000, "output": 500}}, "plain": {}},
            }
        }
    }
    catalog = Catalog(config, {})
    assert catalog.model_limit("mock", "small") == ModelLimit(context=2000, output=500)
    assert catalog.model_limit("mock", "plain") == ModelLimit()
    assert catalog.model_limit("nope", "small") == ModelLimit()
