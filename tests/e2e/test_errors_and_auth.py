"""Error bodies, the routes clients call before prompting, and basic auth, against a real server.

Error shapes follow ``opencode-1.18.34-samples/error-*.json``: ``BadRequest`` 400
``{"name", "data": {"message", "kind"}}`` and ``NotFoundError`` 404 ``{"name", "data":
{"message"}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.openapi import validate
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import RoostServer, prompt_body

pytestmark = pytest.mark.e2e

PROMPT_ROUTES = ("message", "prompt_async")
"""``POST /session/{id}/<route>``: the synchronous and the asynchronous prompt."""


def _bad_request(response: httpx.Response) -> dict[str, Any]:
    """The ``data`` of a 400 ``BadRequest`` body (exactly ``name`` and ``data``)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"name", "data"} and body["name"] == "BadRequest", body
    data: dict[str, Any] = body["data"]
    assert isinstance(data["message"], str) and data["message"]
    assert isinstance(data["kind"], str) and data["kind"]
    return data


def _assert_nothing_stored(server: RoostServer, llm: ScriptedLLM, sid: str) -> None:
    assert server.messages(sid) == []
    assert server.get("/session/status").json() == {}
    assert llm.requests == []


# -- errors ---------------------------------------------------------------------------------


def test_session_id_without_ses_prefix_is_a_400_bad_request_never_a_500(
    server: RoostServer,
) -> None:
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/session/nope", None),
        ("PATCH", "/session/nope", {"title": "x"}),
        ("DELETE", "/session/nope", None),
        ("GET", "/session/nope/children", None),
        ("GET", "/session/nope/message", None),
        ("GET", "/session/abc_123/message/msg_123", None),
        ("DELETE", "/session/abc_123/message/msg_123", None),
        ("POST", "/session/nope/message", prompt_body("hi")),
        ("POST", "/session/nope/prompt_async", prompt_body("hi")),
        ("POST", "/session/nope/abort", None),
    ]
    for method, path, body in calls:
        response = server.request(method, path, json=body)
        data = _bad_request(response)
        validate(response.json(), "BadRequestError")
        assert data["kind"] == "Params", (method, path, data)
        assert "sessionID" in data["message"], (method, path, data)


def test_malformed_prompt_bodies_are_400_and_store_nothing(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    bodies: list[dict[str, Any]] = [
        {},
        {"parts": "text"},
        {"parts": {"type": "text", "text": "x"}},
        {"messageID": "abc", "parts": [{"type": "text", "text": "x"}]},
    ]
    for route in PROMPT_ROUTES:
        for body in bodies:
            response = server.post(f"/session/{sid}/{route}", json=body)
            data = _bad_request(response)
            validate(response.json(), "BadRequestError")
            assert data["kind"] == "Payload", (route, body, data)
    bad_id = _bad_request(
        server.post(f"/session/{sid}/message", json={"messageID": "abc", **prompt_body("x")})
    )
    assert "messageID" in bad_id["message"]
    _assert_nothing_stored(server, llm, sid)


def test_unknown_route_is_a_404_not_found_error(server: RoostServer) -> None:
    for path in ("/no/such/route", "/session/ses_x/nothing-here"):
        response = server.get(path)
        assert response.status_code == 404, (path, response.text)
        body = response.json()
        validate(body, "NotFoundError")
        assert body["name"] == "NotFoundError"


def test_unknown_agent_is_a_400_naming_the_agent_and_stores_nothing(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    for route in PROMPT_ROUTES:
        response = server.post(f"/session/{sid}/{route}", json=prompt_body("x", agent="wizard"))
        data = _bad_request(response)
        validate(response.json(), "BadRequestError")
        assert "wizard" in data["message"], data
    _assert_nothing_stored(server, llm, sid)


def test_unknown_provider_or_model_is_a_400_and_stores_nothing(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    for model in (
        {"providerID": "nope", "modelID": "x"},
        {"providerID": "scripted", "modelID": "x"},
    ):
        for route in PROMPT_ROUTES:
            response = server.post(f"/session/{sid}/{route}", json=prompt_body("x", model=model))
            data = _bad_request(response)
            validate(response.json(), "BadRequestError")
            assert f"{model['providerID']}/{model['modelID']}" in data["message"], data
    _assert_nothing_stored(server, llm, sid)


# -- what clients read before prompting -----------------------------------------------------


def test_config_is_the_project_config_with_api_keys_redacted(server: RoostServer) -> None:
    response = server.get("/config")
    assert response.status_code == 200, response.text
    config = response.json()
    validate(config, "Config")
    assert config["model"] == "scripted/scripted-model"
    scripted = config["provider"]["scripted"]
    assert scripted["options"]["apiKey"] == "***"
    assert set(scripted["models"]) == {"scripted-model", "other-model", "title-model"}
    assert "test-key" not in response.text


def test_agent_list_has_the_builtin_agents_in_the_agent_schema(server: RoostServer) -> None:
    response = server.get("/agent")
    assert response.status_code == 200, response.text
    agents = response.json()
    for agent in agents:
        validate(agent, "Agent")
    modes = {a["name"]: a["mode"] for a in agents}
    assert {"build", "plan", "general", "explore"} <= set(modes)
    assert modes["build"] == "primary" and modes["plan"] == "primary"
    assert modes["general"] == "subagent" and modes["explore"] == "subagent"


def test_health_says_healthy_with_a_version(server: RoostServer) -> None:
    response = server.get("/global/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"healthy", "version"}
    assert body["healthy"] is True and isinstance(body["version"], str) and body["version"]


def test_doc_is_an_openapi_document_with_the_session_routes(server: RoostServer) -> None:
    response = server.get("/doc")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert {"title", "version"} <= set(doc["info"])
    for path in ("/session", "/session/{sessionID}", "/session/{sessionID}/message"):
        assert path in doc["paths"], path
    assert {"get", "post"} <= set(doc["paths"]["/session"])


# -- basic auth -----------------------------------------------------------------------------


def test_a_password_protected_server_lets_in_only_opencode_with_the_password(
    project: Path, tmp_path: Path
) -> None:
    guarded = RoostServer(project, tmp_path / "auth.db", env={"ROOST_SERVER_PASSWORD": "s3cret"})
    guarded.start()
    try:
        for path in ("/session", "/session/status", "/config", "/agent"):
            response = guarded.get(path)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"].lower().startswith("basic"), path
        assert guarded.post("/session", json={}).status_code == 401

        for credentials in (("opencode", "wrong"), ("opencode", ""), ("someone", "s3cret")):
            response = guarded.get("/session", auth=credentials)
            assert response.status_code == 401, credentials
            assert response.headers["www-authenticate"].lower().startswith("basic")
        garbled = guarded.get("/session", headers={"Authorization": "Basic !!not-base64!!"})
        assert garbled.status_code == 401

        auth = ("opencode", "s3cret")
        created = guarded.post("/session", json={}, auth=auth)
        assert created.status_code == 200, created.text
        validate(created.json(), "Session")
        listed = guarded.get("/session", auth=auth)
        assert listed.status_code == 200
        assert [s["id"] for s in listed.json()] == [created.json()["id"]]

        doc = guarded.get("/doc", auth=auth).json()
        assert doc["components"]["securitySchemes"]["basic"]["scheme"] == "basic"
        declared = doc["paths"]["/session"]["get"]["responses"]["401"]
        unauthorized = declared["content"]["application/json"]["schema"]["$ref"]
        assert unauthorized == "#/components/schemas/UnauthorizedError"
    finally:
        guarded.close()
