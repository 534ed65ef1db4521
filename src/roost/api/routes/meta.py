"""Server, config and agent routes that clients call before prompting.

``opencode run --attach`` calls ``GET /config`` and ``GET /agent``; the TUI also reads
``/path``, ``/project/current``, ``/config/providers`` and ``/provider``.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from roost import __version__
from roost.api.boundary import BoundaryRoute
from roost.api.responses import JSONBytes
from roost.engine.sessions import SessionService

router = APIRouter(tags=["server"], route_class=BoundaryRoute)


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


def _redacted_config(config: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for entry in (out.get("provider") or {}).values():
        options = (entry or {}).get("options") or {}
        if "apiKey" in options:
            options["apiKey"] = "***"
    return out


def _providers(service: SessionService) -> list[dict[str, Any]]:
    out = []
    for p in service.catalog.providers.values():
        models = sorted(p.models) if p.models is not None else []
        out.append(
            {
                "id": p.id,
                "name": p.name or p.id,
                "source": "config",
                "env": [],
                "options": {},
                "models": {m: service.catalog.model_info(p, m) for m in models},
            }
        )
    return out


@router.get("/global/health")
async def health(request: Request, detail: bool = False) -> Response:
    """Liveness: OpenCode's ``{"healthy": true, "version"}``, exactly (its schema allows no
    other key). With ``?detail=true``, also what an operator of several replicas needs::

        {"healthy": true, "version": "…",
         "store": {"kind": "sqlite" | "postgresql", "location": "<file or URL, no password>"},
         "replica": "<--replica, or host:pid>", "owner": "<lease owner id>",
         "leases": ["ses_…", …]}    # sessions whose run lease this process holds

    It reads no table, so it answers while the store is unreachable and measures only the
    server's own responsiveness.
    """
    body: dict[str, Any] = {"healthy": True, "version": __version__}
    if detail:
        body.update(_service(request).replica_info())
    return JSONBytes(body)


@router.get("/config")
async def get_config(request: Request) -> Response:
    """The merged configuration (API keys redacted)."""
    return JSONBytes(_redacted_config(_service(request).catalog.config))


@router.get("/agent")
async def list_agents(request: Request) -> Response:
    """Every agent (``Agent`` schema)."""
    return JSONBytes([a.to_wire() for a in _service(request).catalog.agents.values()])


@router.get("/config/providers")
async def config_providers(request: Request) -> Response:
    """Configured providers and the default model of each."""
    service = _service(request)
    providers = _providers(service)
    default = {}
    for p in providers:
        if p["models"]:
            default[p["id"]] = next(iter(p["models"]))
    if service.catalog.default_model is not None:
        default[service.catalog.default_model[0]] = service.catalog.default_model[1]
    return JSONBytes({"providers": providers, "default": default})


@router.get("/provider")
async def list_providers(request: Request) -> Response:
    """Providers, with the connected ones named."""
    service = _service(request)
    providers = _providers(service)
    default = {p["id"]: next(iter(p["models"])) for p in providers if p["models"]}
    return JSONBytes(
        {"all": providers, "default": default, "connected": [p["id"] for p in providers]}
    )


@router.get("/path")
async def paths(request: Request) -> Response:
    """The server's directories."""
    directory = _service(request).options.directory
    return JSONBytes(
        {
            "home": str(request.app.state.home),
            "state": str(request.app.state.data),
            "config": str(request.app.state.config_dir),
            "worktree": directory,
            "directory": directory,
        }
    )


@router.get("/project/current")
async def current_project(request: Request) -> Response:
    """The project this server works in."""
    options = _service(request).options
    return JSONBytes(
        {
            "id": options.project_id,
            "worktree": options.directory,
            "time": {"created": 0},
            "sandboxes": [],
        }
    )


@router.get("/command")
async def list_commands(request: Request) -> Response:
    """Slash commands: the built-ins, config ``command`` entries and command files."""
    return JSONBytes(_service(request).list_commands())
