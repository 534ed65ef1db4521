"""Agents and providers from OpenCode-format configuration.

The configuration is OpenCode's (``Config`` schema in ``opencode-1.18.34-openapi.json``):
``provider`` entries with ``npm``, ``options.baseURL``, ``options.apiKey`` and ``models``; a
default ``model`` as ``"providerID/modelID"``; and ``agent`` entries that refine the built-in
agents. ``OPENAI_API_KEY`` (with ``OPENAI_BASE_URL``) adds an ``openai`` provider that accepts any
model id, and ``ANTHROPIC_API_KEY`` (with ``ANTHROPIC_BASE_URL``) an ``anthropic`` one. Reading
the files is the CLI's job; this module only interprets the merged dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from roost.agent import prompts
from roost.errors import UnknownAgent, UnknownModel
from roost.model.permission import Rule, from_config

_AGENT_RULES: Final[dict[str, list[Rule]]] = {
    "plan": [
        {"permission": "edit", "pattern": "*", "action": "deny"},
        {"permission": "bash", "pattern": "*", "action": "ask"},
    ],
    "explore": [
        {"permission": "edit", "pattern": "*", "action": "deny"},
        {"permission": "task", "pattern": "*", "action": "deny"},
        {"permission": "todowrite", "pattern": "*", "action": "deny"},
    ],
    "general": [
        {"permission": "task", "pattern": "*", "action": "deny"},
        {"permission": "todowrite", "pattern": "*", "action": "deny"},
    ],
}
"""Built-in agents' own rules (OpenCode's: plan cannot edit and asks before bash; sub-agents do
not start further sub-agents or keep todo lists)."""


OPENAI_COMPATIBLE_NPM: Final = frozenset({"@ai-sdk/openai-compatible", "@ai-sdk/openai"})
ANTHROPIC_NPM: Final = "@ai-sdk/anthropic"
_NPM_BY_PROVIDER_ID: Final = {"openai": "@ai-sdk/openai", "anthropic": ANTHROPIC_NPM}
"""The package of providers whose config entry names none (OpenCode knows them by id)."""


@dataclass(frozen=True)
class ModelLimit:
    """A model's token limits (config ``provider.<id>.models.<id>.limit``).

    Zero means unknown, OpenCode's value for a model configured without a limit: with
    ``context`` 0 the context window is never considered full.
    """

    context: int = 0
    """Tokens the model reads and writes in one request."""
    output: int = 0
    """Most tokens one answer may have."""
    input: int = 0
    """Most prompt tokens, for providers that limit it apart from ``context``."""


@dataclass(frozen=True)
class ProviderConfig:
    """One LLM provider.

    Attributes:
        models: Known model ids; None accepts any id (a provider configured only by env).
        limits: Token limits of the models whose config gives them; others have none.
    """

    id: str
    npm: str
    base_url: str | None
    api_key: str | None
    models: frozenset[str] | None
    name: str = ""
    limits: dict[str, ModelLimit] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class AgentConfig:
    """One agent (OpenAPI ``Agent``)."""

    name: str
    mode: str
    description: str = ""
    prompt: str | None = None
    model: tuple[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    steps: int | None = None
    native: bool = True
    hidden: bool = False
    defaults: list[Rule] = field(default_factory=list)
    """The built-in agent's own rules (plan denies edits, …)."""
    permission: list[Rule] = field(default_factory=list)
    """The agent's config ``permission`` (``agent.<name>.permission``)."""

    def to_wire(self) -> dict[str, Any]:
        """The ``Agent`` object served by ``GET /agent``."""
        out: dict[str, Any] = {
            "name": self.name,
            "mode": self.mode,
            "native": self.native,
            "permission": [*self.defaults, *self.permission],
            "options": {},
        }
        if self.description:
            out["description"] = self.description
        if self.hidden:
            out["hidden"] = True
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.model is not None:
            out["model"] = {"providerID": self.model[0], "modelID": self.model[1]}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.top_p is not None:
            out["topP"] = self.top_p
        if self.steps is not None:
            out["steps"] = self.steps
        return out


_BUILTIN_AGENTS: Final = (
    AgentConfig(
        "build",
        "primary",
        "The default agent: works on the project with every tool.",
        prompt=prompts.BUILD,
    ),
    AgentConfig(
        "plan",
        "primary",
        "Plans without changing files: edits are denied.",
        prompt=prompts.PLAN,
        defaults=_AGENT_RULES["plan"],
    ),
    AgentConfig(
        "general",
        "subagent",
        "A general-purpose sub-agent for multi-step tasks.",
        prompt=prompts.GENERAL,
        defaults=_AGENT_RULES["general"],
    ),
    AgentConfig(
        "explore",
        "subagent",
        "A fast sub-agent that searches and reads the codebase.",
        prompt=prompts.EXPLORE,
        defaults=_AGENT_RULES["explore"],
    ),
)


@dataclass(frozen=True)
class ResolvedModel:
    """A provider and model checked against the catalog."""

    provider: ProviderConfig
    model_id: str


class Catalog:
    """The agents and providers a server knows, built once at start-up.

    Attributes:
        permission: The configuration's top-level rules (``permission``), flattened.

    Raises:
        InvalidPermissionRule: A ``permission`` value (top level or an agent's) is malformed.
    """

    def __init__(self, config: dict[str, Any], env: dict[str, str]) -> None:
        self.config = config
        self.permission = from_config(config.get("permission"))
        self.providers = _providers(config, env)
        self.agents = _agents(config)
        self.default_agent = str(config.get("default_agent") or "build")
        self.default_model = _default_model(config, self.providers)

    def agent(self, name: str | None) -> AgentConfig:
        """The named agent, or the default one.

        Raises:
            UnknownAgent: No agent has that name.
        """
        name = name or self.default_agent
        found = self.agents.get(name)
        if found is None:
            raise UnknownAgent(name, sorted(self.agents))
        return found

    def model_entry(self, provider_id: str, model_id: str) -> dict[str, Any]:
        """The config's ``provider.<id>.models.<id>`` entry (``{}`` when it has none)."""
        providers = self.config.get("provider") or {}
        models = (providers.get(provider_id) or {}).get("models") or {}
        entry = models.get(model_id) if isinstance(models, dict) else None
        return entry if isinstance(entry, dict) else {}

    def model_info(self, provider: ProviderConfig, model_id: str) -> dict[str, Any]:
        """The model in the shape of OpenAPI ``Model`` (``GET /provider``, ``/config/providers``),
        from its config entry: ``name``, ``limit``, ``cost`` (per million tokens), ``attachment``,
        ``reasoning``, ``temperature``, ``tool_call``, ``modalities`` and ``release_date``.

        What the entry leaves out takes OpenCode's defaults for a model it has no data on: text
        in and out, tool calls and temperature on, no attachments or reasoning, limits 0
        (unknown: the TUI shows no context meter, and compaction never starts; ``model_limit``),
        free.
        """
        entry = self.model_entry(provider.id, model_id)
        modalities = entry.get("modalities") or {}
        inputs = set(modalities.get("input") or ["text"])
        outputs = set(modalities.get("output") or ["text"])
        attachment = bool(entry.get("attachment", False))
        if attachment and not modalities.get("input"):
            inputs |= {"image", "pdf"}
        kinds = ("text", "audio", "image", "video", "pdf")
        limits = self.model_limit(provider.id, model_id)
        cost = entry.get("cost") or {}
        info: dict[str, Any] = {
            "id": model_id,
            "providerID": provider.id,
            "name": str(entry.get("name") or model_id),
            "api": {
                "id": str(entry.get("id") or model_id),
                "url": provider.base_url or "",
                "npm": provider.npm,
            },
            "capabilities": {
                "temperature": bool(entry.get("temperature", True)),
                "reasoning": bool(entry.get("reasoning", False)),
                "attachment": attachment,
                "toolcall": bool(entry.get("tool_call", True)),
                "input": {k: k in inputs for k in kinds},
                "output": {k: k in outputs for k in kinds},
                "interleaved": False,
            },
            "cost": {
                "input": float(cost.get("input") or 0),
                "output": float(cost.get("output") or 0),
                "cache": {
                    "read": float(cost.get("cache_read") or 0),
                    "write": float(cost.get("cache_write") or 0),
                },
            },
            "limit": {"context": limits.context, "output": limits.output},
            "status": str(entry.get("status") or "active"),
            "options": dict(entry.get("options") or {}),
            "headers": dict(entry.get("headers") or {}),
            "release_date": str(entry.get("release_date") or ""),
        }
        if entry.get("family"):
            info["family"] = str(entry["family"])
        if limits.input:
            info["limit"]["input"] = limits.input
        return info

    def step_cost(self, provider_id: str, model_id: str, tokens: dict[str, Any]) -> float:
        """A step's cost in USD from the model's config ``cost`` (USD per million tokens:
        ``input``, ``output``, ``cache_read``, ``cache_write``, as OpenCode's ``Model.cost``);
        0 when the config gives no prices."""
        price = self.model_entry(provider_id, model_id).get("cost") or {}
        cache = tokens.get("cache") or {}
        per_million = (
            float(price.get("input") or 0) * int(tokens.get("input") or 0)
            + float(price.get("output") or 0) * int(tokens.get("output") or 0)
            + float(price.get("cache_read") or 0) * int(cache.get("read") or 0)
            + float(price.get("cache_write") or 0) * int(cache.get("write") or 0)
        )
        return per_million / 1_000_000

    def resolve_model(
        self, provider_id: str | None, model_id: str | None, agent: AgentConfig
    ) -> ResolvedModel:
        """The model a prompt runs on: the request's, else the agent's, else the default.

        Raises:
            UnknownModel: The provider is not configured, or does not list the model.
        """
        if provider_id and model_id:
            pair = (provider_id, model_id)
        elif agent.model is not None:
            pair = agent.model
        elif self.default_model is not None:
            pair = self.default_model
        else:
            raise UnknownModel("", "", "no model given and no default model is configured")
        provider = self.providers.get(pair[0])
        if provider is None:
            known = ", ".join(sorted(self.providers)) or "none"
            raise UnknownModel(pair[0], pair[1], f"provider not configured (configured: {known})")
        if provider.models is not None and pair[1] not in provider.models:
            known = ", ".join(sorted(provider.models)) or "none"
            raise UnknownModel(pair[0], pair[1], f"the provider lists no such model ({known})")
        return ResolvedModel(provider, pair[1])

    def model_limit(self, provider_id: str, model_id: str) -> ModelLimit:
        """The model's token limits; all zero (unknown) when its config gives none."""
        provider = self.providers.get(provider_id)
        found = provider.limits.get(model_id) if provider is not None else None
        return found or ModelLimit()


def _providers(config: dict[str, Any], env: dict[str, str]) -> dict[str, ProviderConfig]:
    out: dict[str, ProviderConfig] = {}
    if env.get("OPENAI_API_KEY"):
        out["openai"] = ProviderConfig(
            "openai",
            "@ai-sdk/openai",
            env.get("OPENAI_BASE_URL"),
            env["OPENAI_API_KEY"],
            None,
            "OpenAI",
        )
    if env.get("ANTHROPIC_API_KEY"):
        out["anthropic"] = ProviderConfig(
            "anthropic",
            ANTHROPIC_NPM,
            env.get("ANTHROPIC_BASE_URL"),
            env["ANTHROPIC_API_KEY"],
            None,
            "Anthropic",
        )
    for pid, entry in (config.get("provider") or {}).items():
        entry = entry or {}
        options = entry.get("options") or {}
        npm = entry.get("npm") or _NPM_BY_PROVIDER_ID.get(pid, "")
        models = entry.get("models")
        base = out.get(pid)
        out[pid] = ProviderConfig(
            pid,
            npm or (base.npm if base else "@ai-sdk/openai-compatible"),
            options.get("baseURL") or (base.base_url if base else None),
            options.get("apiKey") or (base.api_key if base else None),
            frozenset(models) if models else (base.models if base else None),
            entry.get("name") or pid,
            _limits(models) if isinstance(models, dict) else (base.limits if base else {}),
        )
    enabled = config.get("enabled_providers")
    disabled = set(config.get("disabled_providers") or [])
    return {
        pid: p
        for pid, p in out.items()
        if (enabled is None or pid in enabled) and pid not in disabled
    }


def _limits(models: dict[str, Any]) -> dict[str, ModelLimit]:
    """``limit`` of each configured model that has one (OpenAPI ``ProviderConfig.models``)."""
    out: dict[str, ModelLimit] = {}
    for model_id, entry in models.items():
        limit = (entry or {}).get("limit") if isinstance(entry, dict) else None
        if isinstance(limit, dict):
            out[model_id] = ModelLimit(
                context=int(limit.get("context") or 0),
                output=int(limit.get("output") or 0),
                input=int(limit.get("input") or 0),
            )
    return out


def _split_model(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) and "/" in value:
        provider_id, model_id = value.split("/", 1)
        return provider_id, model_id
    return None


def _default_model(
    config: dict[str, Any], providers: dict[str, ProviderConfig]
) -> tuple[str, str] | None:
    explicit = _split_model(config.get("model"))
    if explicit is not None:
        return explicit
    for provider in providers.values():
        if provider.models:
            return provider.id, sorted(provider.models)[0]
    return None


def _agents(config: dict[str, Any]) -> dict[str, AgentConfig]:
    agents = {a.name: a for a in _BUILTIN_AGENTS}
    for name, entry in (config.get("agent") or {}).items():
        entry = entry or {}
        base = agents.get(name)
        if entry.get("disable"):
            agents.pop(name, None)
            continue
        agents[name] = AgentConfig(
            name=name,
            mode=entry.get("mode") or (base.mode if base else "all"),
            description=entry.get("description") or (base.description if base else ""),
            prompt=entry.get("prompt") or (base.prompt if base else None),
            model=_split_model(entry.get("model")) or (base.model if base else None),
            temperature=entry.get("temperature"),
            top_p=entry.get("top_p"),
            steps=entry.get("steps") or entry.get("maxSteps"),
            native=base is not None,
            hidden=bool(entry.get("hidden", False)),
            defaults=base.defaults if base else [],
            permission=[
                *(base.permission if base else []),
                *from_config(entry.get("permission"), where=f"agent.{name}.permission"),
            ],
        )
    return agents
