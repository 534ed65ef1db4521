"""The routes OpenCode 1.18.34's TUI calls while it starts (besides sessions and config), each
answered in the shape its spec declares, with Roost's own data where it has some."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.openapi import validate_response
from tests.support.scripted_llm import AUX_MODEL
from tests.support.server import MODEL_ID, PROVIDER_ID, RoostServer

pytestmark = pytest.mark.e2e

SKILL = """---
name: release-notes
description: Write release notes from the changelog
---
Read CHANGELOG.md, then summarise it.
"""


def _ok(server: RoostServer, route: str, template: str | None = None) -> Any:
    response = server.get(route)
    assert response.status_code == 200, (route, response.text)
    body = response.json()
    validate_response(body, "GET", template or route)
    return body


@pytest.fixture
def project(project: Path) -> Path:
    """The shared project, with one skill in ``.opencode/skills/``."""
    folder = project / ".opencode" / "skills" / "release-notes"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(SKILL)
    return project


def test_skills_are_the_ones_the_skill_tool_finds(server: RoostServer) -> None:
    location = str(server.directory.resolve() / ".opencode/skills/release-notes/SKILL.md")
    expected = {
        "name": "release-notes",
        "description": "Write release notes from the changelog",
        "location": location,
        "content": "Read CHANGELOG.md, then summarise it.",
    }
    assert _ok(server, "/skill") == [expected]
    v2 = _ok(server, "/api/skill")
    assert v2["data"] == [expected]


def test_project_directories_name_the_project_directory(server: RoostServer) -> None:
    current = server.get("/project/current").json()
    route = "/project/{projectID}/directories"
    assert _ok(server, f"/project/{current['id']}/directories", route) == [
        {"directory": str(server.directory.resolve())}
    ]
    assert _ok(server, "/project/someone-else/directories", route) == []
    refresh = server.post(f"/experimental/project/{current['id']}/copy/refresh")
    assert refresh.status_code == 204


def test_services_roost_does_not_run_answer_empty(server: RoostServer) -> None:
    assert _ok(server, "/lsp") == []
    assert _ok(server, "/formatter") == []
    assert _ok(server, "/provider/auth") == {}
    assert _ok(server, "/experimental/capabilities") == {"backgroundSubagents": False}
    console = _ok(server, "/experimental/console")
    assert console == {"consoleManagedProviders": [], "switchableOrgCount": 0}
    assert _ok(server, "/mcp") == {}
    assert _ok(server, "/experimental/resource") == {}
    assert _ok(server, "/experimental/workspace") == []
    assert _ok(server, "/experimental/workspace/status") == []


def test_v2_location_routes_describe_the_project(server: RoostServer) -> None:
    directory = str(server.directory.resolve())
    project_id = server.get("/project/current").json()["id"]
    location = {"directory": directory, "project": {"id": project_id, "directory": directory}}
    assert _ok(server, "/api/location") == location
    agents = _ok(server, "/api/agent")
    assert agents["location"] == location
    plan = next(a for a in agents["data"] if a["id"] == "plan")
    assert plan["mode"] == "primary"
    assert {"action": "edit", "resource": "*", "effect": "deny"} in plan["permissions"]
    assert {a["id"] for a in agents["data"]} >= {"build", "plan", "general", "explore"}
    models = _ok(server, "/api/model")["data"]
    assert {(m["providerID"], m["id"]) for m in models} == {
        (PROVIDER_ID, MODEL_ID),
        (PROVIDER_ID, "other-model"),
        (PROVIDER_ID, AUX_MODEL),
    }
    providers = _ok(server, "/api/provider")["data"]
    assert [(p["id"], p["api"]["package"]) for p in providers] == [
        (PROVIDER_ID, "@ai-sdk/openai-compatible")
    ]
    assert "test-key" not in str(providers)
    for route in ("/api/integration", "/api/reference"):
        assert _ok(server, route) == {"location": location, "data": []}
    commands = {c["name"]: c for c in _ok(server, "/api/command")["data"]}
    assert set(commands) >= {"init", "review"} and commands["review"]["subtask"] is True
