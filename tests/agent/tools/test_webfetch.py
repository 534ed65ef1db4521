from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from roost.agent.tools.base import PermissionRejected, ToolError, ToolResult
from roost.agent.tools.webfetch import MAX_RESPONSE_BYTES, WebFetchTool
from tests.support.tool_context import LocalToolContext

pytestmark = pytest.mark.anyio

PAGE = """<!doctype html>
<html><head><title>Roost docs</title>
<style>body { color: red; }</style>
<script>var secret = "do not show";</script>
</head><body>
<h1>Getting started</h1>
<p>Roost is <b>crash-safe</b>. See <a href="/plain.txt">the notes</a>.</p>
<ul><li>first</li><li>second</li></ul>
<noscript>enable javascript</noscript>
</body></html>"""


@dataclass
class Site:
    """A loopback HTTP server with a few fixed routes; ``requests`` logs the paths asked for."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    release_slow: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def make_handler(
    site_requests: list[str], release_slow: threading.Event
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site_requests.append(self.path)
            if self.path == "/page.html":
                self.reply(200, "text/html; charset=utf-8", PAGE.encode())
            elif self.path == "/plain.txt":
                self.reply(200, "text/plain; charset=utf-8", b"just text\n")
            elif self.path == "/latin1.txt":
                self.reply(200, "text/plain; charset=iso-8859-1", "café\n".encode("latin-1"))
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/plain.txt")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/image.png":
                self.reply(200, "image/png", b"\x89PNG\r\n\x1a\n")
            elif self.path == "/big-declared":
                self.reply(200, "text/plain", b"x" * (MAX_RESPONSE_BYTES + 1))
            elif self.path == "/big-undeclared":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()  # HTTP/1.0 without a length: the body ends when we close
                chunk = b"x" * 65536
                for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 2):
                    self.write(chunk)
            elif self.path == "/slow":
                release_slow.wait(10)
                self.reply(200, "text/plain", b"late\n")
            else:
                self.reply(404, "text/plain", b"not found\n")

        def reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.write(body)

        def write(self, data: bytes) -> None:
            # The client may stop reading (size cap, timeout): expected in these tests.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def site() -> Iterator[Site]:
    requests: list[str] = []
    release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(requests, release))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield Site(base_url=f"http://{host!s}:{port}", requests=requests, release_slow=release)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def ctx(tmp_path: Path) -> LocalToolContext:
    return LocalToolContext(directory=tmp_path, output_dir=tmp_path / "outputs")


async def fetch(ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    tool = WebFetchTool()
    return await tool.run(tool.parse(arguments), ctx)


async def test_html_becomes_markdown_by_default(site: Site, ctx: LocalToolContext) -> None:
    url = site.url("/page.html")
    result = await fetch(ctx, url=url)

    assert "# Getting started" in result.output
    assert "Roost is **crash-safe**. See [the notes](/plain.txt)." in result.output
    assert "- first\n- second" in result.output
    assert "secret" not in result.output
    assert "color" not in result.output
    assert result.title == f"{url} (text/html; charset=utf-8)"
    assert ctx.asked == [
        ("webfetch", [url], {"url": url, "format": "markdown", "timeout": 30.0}),
    ]


async def test_html_becomes_text(site: Site, ctx: LocalToolContext) -> None:
    result = await fetch(ctx, url=site.url("/page.html"), format="text")

    assert result.output == (
        "Roost docs\nGetting started\nRoost is crash-safe. See the notes.\nfirst\nsecond"
    )


async def test_html_format_returns_the_page_unchanged(site: Site, ctx: LocalToolContext) -> None:
    result = await fetch(ctx, url=site.url("/page.html"), format="html")

    assert result.output == PAGE


async def test_plain_text_is_returned_as_is(site: Site, ctx: LocalToolContext) -> None:
    result = await fetch(ctx, url=site.url("/plain.txt"))

    assert result.output == "just text\n"


async def test_declared_charset_is_used(site: Site, ctx: LocalToolContext) -> None:
    result = await fetch(ctx, url=site.url("/latin1.txt"), format="text")

    assert result.output == "café\n"


async def test_redirect_is_followed(site: Site, ctx: LocalToolContext) -> None:
    result = await fetch(ctx, url=site.url("/redirect"))

    assert result.output == "just text\n"
    assert site.requests == ["/redirect", "/plain.txt"]


async def test_http_error_status_is_a_tool_error(site: Site, ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError, match="404"):
        await fetch(ctx, url=site.url("/missing"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "example.com"])
async def test_only_http_urls_are_fetched(url: str, ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError, match="http"):
        await fetch(ctx, url=url)
    assert ctx.asked == []


async def test_rejected_permission_sends_no_request(site: Site, ctx: LocalToolContext) -> None:
    ctx.rules["webfetch"] = "deny"

    with pytest.raises(PermissionRejected):
        await fetch(ctx, url=site.url("/plain.txt"))
    assert site.requests == []


async def test_slow_server_times_out(site: Site, ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError, match="timed out"):
        await fetch(ctx, url=site.url("/slow"), timeout=0.3)


@pytest.mark.parametrize("path", ["/big-declared", "/big-undeclared"])
async def test_response_over_the_cap_is_refused(
    path: str, site: Site, ctx: LocalToolContext
) -> None:
    with pytest.raises(ToolError, match="too large"):
        await fetch(ctx, url=site.url(path))


async def test_image_is_refused(site: Site, ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError, match="image"):
        await fetch(ctx, url=site.url("/image.png"))


async def test_unreachable_host_is_a_tool_error(ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError, match="Request failed"):
        await fetch(ctx, url="http://127.0.0.1:9/")
