"""Files, search and version control routes (``engine/files.py``), and the routes OpenCode's TUI
calls at start-up that Roost answers with OpenCode's shapes (skills, LSP, formatters, provider
auth, capabilities, project directories)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from roost.api.boundary import BoundaryRoute
from roost.api.errors import responses
from roost.api.responses import JSONBytes
from roost.engine import project
from roost.engine.sessions import SessionService
from roost.errors import InvalidInput

router = APIRouter(tags=["file"], route_class=BoundaryRoute)
_BAD = responses(InvalidInput)


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


@router.get("/find/file", responses=_BAD)
async def find_file(
    request: Request,
    query: Annotated[str, Query()],
    dirs: Annotated[Literal["true", "false"] | None, Query()] = None,
    type: Annotated[Literal["file", "directory"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Project paths matching ``query`` fuzzily; directories end in ``/``."""
    kind = type or (None if dirs != "false" else "file")
    return JSONBytes(await _service(request).files.find(query, kind=kind, limit=limit))


@router.get("/api/fs/find", responses=_BAD)
async def fs_find(
    request: Request,
    query: Annotated[str, Query()],
    type: Annotated[Literal["file", "directory"] | None, Query()] = None,
    limit: Annotated[str | None, Query(pattern=r"^\d{1,3}$")] = None,
) -> Response:
    """What the TUI's ``@`` picker calls: ``{location, data: [{path, type}]}``."""
    service = _service(request)
    count = min(max(int(limit or 50), 1), 200)
    found = await service.files.find(query, kind=type, limit=count)
    directory = service.options.directory
    return JSONBytes(
        {
            "location": {
                "directory": directory,
                "project": {"id": service.options.project_id, "directory": directory},
            },
            "data": [
                {"path": p.rstrip("/"), "type": "directory" if p.endswith("/") else "file"}
                for p in found
            ],
        }
    )


@router.get("/find", responses=_BAD)
async def find_text(request: Request, pattern: Annotated[str, Query(min_length=1)]) -> Response:
    """Lines of project files matching the regular expression ``pattern`` (ripgrep)."""
    return JSONBytes(await _service(request).files.search(pattern))


@router.get("/find/symbol", responses=_BAD)
async def find_symbol(query: Annotated[str, Query()]) -> Response:
    """Workspace symbols: Roost runs no language server, so there are none."""
    return JSONBytes([])


@router.get("/file", responses=_BAD)
async def list_files(request: Request, path: Annotated[str, Query()]) -> Response:
    """A project directory's entries (``FileNode``)."""
    return JSONBytes(await _service(request).files.list_dir(path))


@router.get("/file/content", responses=_BAD)
async def file_content(request: Request, path: Annotated[str, Query()]) -> Response:
    """A project file's content (``FileContent``)."""
    return JSONBytes(await _service(request).files.content(path))


@router.get("/file/status")
async def file_status(request: Request) -> Response:
    """Files changed against git ``HEAD`` (``File``)."""
    return JSONBytes(await _service(request).files.status())


@router.get("/vcs")
async def vcs(request: Request) -> Response:
    """The current branch (``VcsInfo``)."""
    return JSONBytes(await _service(request).files.vcs())


@router.get("/vcs/diff", responses=_BAD)
async def vcs_diff(
    request: Request,
    mode: Annotated[Literal["git", "branch"], Query()],
    context: Annotated[int, Query(ge=0, le=10_000)] = 3,
) -> Response:
    """The working tree's changes (``VcsFileDiff``), with ``context`` lines around each."""
    return JSONBytes(await _service(request).files.diff(mode, context))


@router.get("/skill")
async def skills(request: Request) -> Response:
    """The skills the ``skill`` tool can load: ``{name, description, location, content}``."""
    return JSONBytes(_service(request).list_skills())


@router.get("/lsp")
async def lsp() -> Response:
    """Language servers: Roost runs none."""
    return JSONBytes([])


@router.get("/formatter")
async def formatter() -> Response:
    """Formatters: Roost runs none."""
    return JSONBytes([])


@router.get("/provider/auth")
async def provider_auth() -> Response:
    """Login methods by provider: Roost takes keys from config and environment only."""
    return JSONBytes({})


@router.get("/experimental/capabilities")
async def capabilities() -> Response:
    """What experimental features this server has."""
    return JSONBytes({"backgroundSubagents": False})


@router.get("/project/{projectID}/directories")
async def project_directories(
    request: Request, project_id: Annotated[str, Path(alias="projectID")]
) -> Response:
    """The project's directories: the one Roost serves, for its own project; none for others."""
    options = _service(request).options
    return JSONBytes(project.directories(options.directory, options.project_id, project_id))


@router.post("/experimental/project/{projectID}/copy/refresh", status_code=204)
async def refresh_copies() -> Response:
    """Project copies (worktrees): Roost makes none, so there is nothing to refresh. A no-op,
    not an error: the TUI's ``/move`` dialog calls it before it lists the directories."""
    return Response(status_code=204)


@router.get("/experimental/console")
async def console_state() -> Response:
    """``ConsoleState``: no OpenCode Console org is signed in, so it manages no providers."""
    return JSONBytes({"consoleManagedProviders": [], "switchableOrgCount": 0})


@router.get("/experimental/resource")
async def mcp_resources() -> Response:
    """MCP resources by name (``McpResource``): Roost lists none."""
    return JSONBytes({})


@router.get("/experimental/workspace")
async def list_workspaces() -> Response:
    """Workspaces (``Workspace``): ``[]``, the server works in its one directory."""
    return JSONBytes([])


@router.get("/experimental/workspace/status")
async def workspace_status() -> Response:
    """Workspace connections (``WorkspaceEventConnectionStatus``): ``[]``, there are none."""
    return JSONBytes([])
