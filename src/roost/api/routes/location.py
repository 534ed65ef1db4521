"""OpenCode's v2 location surface (``/api/…``) that the TUI loads at start-up: the location, its
agents, models, providers, integrations, references, commands and skills.

Each answer is ``{"location": LocationInfo, "data": […]}`` for the server's one project; the
``location[directory]`` / ``location[workspace]`` parameters are accepted and ignored. The data
is the same as the v1 routes serve (``/agent``, ``/provider``, ``/command``, ``/skill``), in the
v2 shapes (``AgentV2Info``, ``ModelV2Info``, ``ProviderV2Info``, ``SkillV2Info``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from roost.api.boundary import BoundaryRoute
from roost.api.responses import JSONBytes
from roost.engine import project
from roost.engine.sessions import SessionService

router = APIRouter(tags=["location"], route_class=BoundaryRoute)

_NO_REQUEST_CHANGES: dict[str, Any] = {"headers": {}, "body": {}}
"""``ProviderRequest`` adding no headers or body fields (Roost has no such settings)."""


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


def _answer(request: Request, data: list[Any]) -> Response:
    options = _service(request).options
    return JSONBytes(
        {"location": project.location(options.directory, options.project_id), "data": data}
    )


@router.get("/api/location")
async def get_location(request: Request) -> Response:
    """``LocationInfo`` of the project directory."""
    options = _service(request).options
    return JSONBytes(project.location(options.directory, options.project_id))


@router.get("/api/agent")
async def list_agents(request: Request) -> Response:
    """Every agent as ``AgentV2Info``; permission rules become ``{action, resource, effect}``."""
    agents = []
    for agent in _service(request).catalog.agents.values():
        info: dict[str, Any] = {
            "id": agent.name,
            "request": _NO_REQUEST_CHANGES,
            "mode": agent.mode,
            "hidden": agent.hidden,
            "permissions": [
                {"action": r["permission"], "resource": r["pattern"], "effect": r["action"]}
                for r in [*agent.defaults, *agent.permission]
            ],
        }
        if agent.model is not None:
            info["model"] = {"providerID": agent.model[0], "id": agent.model[1]}
        if agent.prompt is not None:
            info["system"] = agent.prompt
        if agent.description:
            info["description"] = agent.description
        if agent.steps is not None:
            info["steps"] = agent.steps
        agents.append(info)
    return _answer(request, agents)


@router.get("/api/model")
async def list_models(request: Request) -> Response:
    """Every configured model as ``ModelV2Info`` (a provider configured only through the
    environment accepts any model id and lists none, as in ``/provider``)."""
    models = []
    catalog = _service(request).catalog
    for provider in catalog.providers.values():
        for model_id in sorted(provider.models or ()):
            info = catalog.model_info(provider, model_id)
            models.append(
                {
                    "id": model_id,
                    "providerID": provider.id,
                    "name": info["name"],
                    "api": {"id": info["api"]["id"], **_api(provider.npm, provider.base_url)},
                    "capabilities": {"tools": True, "input": ["text"], "output": ["text"]},
                    "request": _NO_REQUEST_CHANGES,
                    "variants": [],
                    "time": {"released": 0},
                    "cost": [],
                    "status": "active",
                    "enabled": True,
                    "limit": info["limit"],
                }
            )
    return _answer(request, models)


@router.get("/api/provider")
async def list_providers(request: Request) -> Response:
    """Every configured provider as ``ProviderV2Info`` (API keys are never shown)."""
    providers = [
        {
            "id": p.id,
            "name": p.name or p.id,
            "api": _api(p.npm, p.base_url),
            "request": _NO_REQUEST_CHANGES,
        }
        for p in _service(request).catalog.providers.values()
    ]
    return _answer(request, providers)


def _api(package: str, url: str | None) -> dict[str, Any]:
    """``ProviderAISDK``: the AI SDK package the config names, and its base URL if set."""
    api: dict[str, Any] = {"type": "aisdk", "package": package}
    if url:
        api["url"] = url
    return api


@router.get("/api/integration")
async def list_integrations(request: Request) -> Response:
    """Integrations (login flows for providers): none, keys come from config and environment."""
    return _answer(request, [])


@router.get("/api/reference")
async def list_references(request: Request) -> Response:
    """References (extra folders or repositories to ``@``-mention): none are configured."""
    return _answer(request, [])


@router.get("/api/command")
async def list_commands(request: Request) -> Response:
    """Slash commands as ``CommandV2Info`` (the same as ``/command``)."""
    commands = []
    for command in _service(request).list_commands():
        keys = ("name", "template", "description", "agent", "subtask")
        item: dict[str, Any] = {k: command[k] for k in keys if k in command}
        model = command.get("model")
        if isinstance(model, str) and "/" in model:
            item["model"] = dict(zip(("providerID", "id"), model.split("/", 1), strict=True))
        commands.append(item)
    return _answer(request, commands)


@router.get("/api/skill")
async def list_skills(request: Request) -> Response:
    """Skills as ``SkillV2Info`` (the same as ``/skill``)."""
    directory = Path(_service(request).options.directory)
    found = await project.skills(directory, request.app.state.config_dir)
    return _answer(request, [project.skill_to_wire(s) for s in found])
