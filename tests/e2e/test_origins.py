"""Origin and ``Host`` checks over real HTTP: another origin gets 403 whatever the request looks
like, loopback and same-origin pages pass, and names from ``--cors`` / ``--allow-host`` too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roost.api.origins import OriginPolicy
from roost.cli.serve import warn_if_exposed
from roost.config import Settings
from tests.support.server import RoostServer

pytestmark = pytest.mark.e2e

EVIL = "https://evil.example"


def _sessions(server: RoostServer) -> int:
    return len(server.get("/session").json())


@pytest.mark.parametrize(
    ("method", "headers", "content"),
    [
        ("GET", {}, None),
        ("POST", {"Content-Type": "application/json"}, b"{}"),
        ("POST", {"Content-Type": "text/plain"}, b"{}"),  # a "simple" request: no pre-flight
        ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, b"title=x"),
        ("OPTIONS", {"Access-Control-Request-Method": "POST"}, None),
    ],
)
def test_another_origin_is_refused_before_any_route(
    server: RoostServer, method: str, headers: dict[str, str], content: bytes | None
) -> None:
    response = server.request(
        method, "/session", headers={"Origin": EVIL, **headers}, content=content
    )
    assert response.status_code == 403
    assert response.json()["name"] == "ForbiddenError"
    assert "access-control-allow-origin" not in response.headers
    assert _sessions(server) == 0


@pytest.mark.parametrize("origin", ["null", "http://localhost.evil.example:4096", "file://"])
def test_lookalike_and_opaque_origins_are_refused(server: RoostServer, origin: str) -> None:
    assert server.post("/session", json={}, headers={"Origin": origin}).status_code == 403


def test_a_cross_site_request_without_origin_is_refused(server: RoostServer) -> None:
    # A no-cors GET (<img>, <script>) carries no Origin, but Fetch Metadata says cross-site.
    assert server.get("/session", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert server.get("/session", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


@pytest.mark.parametrize(
    "origin", ["http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080"]
)
def test_loopback_origins_are_allowed_with_cors_headers(server: RoostServer, origin: str) -> None:
    response = server.post("/session", json={}, headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    preflight = server.request(
        "OPTIONS",
        "/session",
        headers={"Origin": origin, "Access-Control-Request-Method": "DELETE"},
    )
    assert preflight.status_code == 200
    assert "DELETE" in preflight.headers["access-control-allow-methods"]


def test_same_origin_requests_pass(server: RoostServer) -> None:
    assert server.post("/session", json={}, headers={"Origin": server.url}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4096", "localhost.evil.example"])
def test_a_foreign_host_header_is_refused(server: RoostServer, host: str) -> None:
    # DNS rebinding: the page's own name, now pointing at 127.0.0.1.
    response = server.post("/session", json={}, headers={"Host": host})
    assert response.status_code == 403
    assert "Host" in response.json()["data"]["message"]
    assert _sessions(server) == 0


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "10.1.2.3:4096", "[::1]:4096"])
def test_loopback_names_and_ip_literals_are_accepted_hosts(server: RoostServer, host: str) -> None:
    assert server.get("/session", headers={"Host": host}).status_code == 200


@pytest.fixture
def configured(project: Path, tmp_path: Path) -> Iterator[RoostServer]:
    (project / "roost.json").write_text('{"server": {"allowedHosts": ["roost.internal"]}}')
    srv = RoostServer(
        project,
        tmp_path / "roost.db",
        args=["--cors", "https://app.example", "--allow-host", "box"],
    ).start()
    try:
        yield srv
    finally:
        srv.close()


def test_operator_named_origins_and_hosts_are_allowed(configured: RoostServer) -> None:
    allowed = configured.post("/session", json={}, headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert configured.get("/session", headers={"Host": "box:4096"}).status_code == 200
    assert configured.get("/session", headers={"Host": "roost.internal"}).status_code == 200
    assert configured.get("/session", headers={"Origin": EVIL}).status_code == 403


def test_with_a_password_another_origin_is_still_refused_first(
    project: Path, tmp_path: Path
) -> None:
    srv = RoostServer(
        project, tmp_path / "roost.db", env={"ROOST_SERVER_PASSWORD": "secret"}
    ).start()
    try:
        auth = httpx.BasicAuth("opencode", "secret")
        assert srv.get("/session", headers={"Origin": EVIL}, auth=auth).status_code == 403
        assert srv.get("/session", auth=auth).status_code == 200
        assert srv.get("/session").status_code == 401
    finally:
        srv.close()


def test_a_malformed_cors_origin_stops_the_server_with_a_clear_error(
    project: Path, tmp_path: Path
) -> None:
    srv = RoostServer(project, tmp_path / "roost.db", args=["--cors", "app.example/path"])
    with pytest.raises(RuntimeError, match="not an origin"):
        srv.start()


def test_listening_beyond_loopback_without_a_password_warns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for hostname in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        warn_if_exposed(Settings(db_path=Path("x"), hostname=hostname))
    warn_if_exposed(Settings(db_path=Path("x"), hostname="0.0.0.0", password="pw"))
    assert capsys.readouterr().err == ""
    warn_if_exposed(Settings(db_path=Path("x"), hostname="0.0.0.0"))
    assert "without a password" in capsys.readouterr().err


def test_the_bound_hostname_is_an_allowed_host() -> None:
    policy = OriginPolicy.build(hostname="devbox.lan")
    assert policy.host_allowed("devbox.lan")
    assert not policy.host_allowed("evil.example")
    assert not OriginPolicy.build(hostname="0.0.0.0").host_allowed("evil.example")
