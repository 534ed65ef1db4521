"""What a web page can do to Roost, in a real headless Chromium (Debian's ``chromium``).

A page on another origin, and a DNS-rebinding page (its own name re-pointed at 127.0.0.1),
try everything a hostile page has: CORS fetches (JSON and ``text/plain``), no-cors fetches, a
form POST and an ``EventSource``, to create a session and make the agent run a command. With
and without a password, none of it reads, creates or runs anything. The same page served from
a loopback origin is the control: it does create a session and run the command, so the test
would see an attack that worked.

The attacker's pages come from a real HTTP server on loopback, reached under names that
Chromium resolves to 127.0.0.1 (``--host-resolver-rules``): the browser treats them as other
origins, and its own Local Network Access checks (which other browsers lack) do not apply, so
only Roost's checks stand between the page and the agent.
"""

from __future__ import annotations

import base64
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():  # `make test` installs it (Debian's package) when run as root
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

PASSWORD = "browser-secret"
MARKER = "pwned.txt"
_ATTACK = """
async ([base, auth]) => {
  const headers = auth ? {Authorization: auth} : {};
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const out = {};
  try {
    const created = await fetch(base + "/session", {
      method: "POST", headers: {...headers, "Content-Type": "application/json"}, body: "{}",
    });
    out.createStatus = created.status;
    const session = await created.json();
    out.sessionID = session.id;
    const prompt = await fetch(base + `/session/${session.id}/prompt_async`, {
      method: "POST", headers: {...headers, "Content-Type": "application/json"},
      body: JSON.stringify({parts: [{type: "text", text: "run it"}]}),
    });
    out.promptStatus = prompt.status;
    for (let i = 0; i < 100 && out.output === undefined; i++) {
      const listed = await fetch(base + `/session/${session.id}/message`, {headers});
      const messages = await listed.json();
      const tool = messages.flatMap((m) => m.parts).find(
        (p) => p.type === "tool" && p.state.status === "completed");
      if (tool) out.output = tool.state.output;
      await sleep(100);
    }
  } catch (e) { out.fetchError = String(e); }
  for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
    try {
      await fetch(base + "/session", {method: "POST", mode: "no-cors",
        headers: {"Content-Type": type}, body: '{"title": "no-cors"}'});
      const r = await fetch(base + "/session", {method: "POST",
        headers: {"Content-Type": type}, body: '{"title": "simple"}'});
      out[type] = r.status;
    } catch (e) { out[type + " error"] = String(e); }
  }
  try {
    out.list = (await (await fetch(base + "/session", {headers})).json()).length;
  } catch (e) { out.listError = String(e); }
  out.events = await new Promise((resolve) => {
    const source = new EventSource(base + "/event");
    const got = [];
    source.onmessage = (e) => got.push(e.data);
    source.onerror = () => { source.close(); resolve({error: true, got}); };
    setTimeout(() => { source.close(); resolve({error: false, got}); }, 3000);
  });
  const frame = document.createElement("iframe");
  frame.name = "sink";
  document.body.appendChild(frame);
  const form = document.createElement("form");
  form.method = "POST"; form.action = base + "/session"; form.target = "sink";
  form.enctype = "text/plain";
  const field = document.createElement("input");
  field.name = '{"title":"form","x":"'; field.value = '"}';
  form.appendChild(field);
  document.body.appendChild(form);
  form.submit();
  await sleep(1000);
  return out;
}
"""


class _BlankPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>attacker</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pages() -> Iterator[int]:
    """A server of blank pages on loopback; returns its port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BlankPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--host-resolver-rules=MAP evil.test 127.0.0.1, MAP rebind.test 127.0.0.1",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


def _attack(browser: Any, page_url: str, base: str, auth: str | None) -> dict[str, Any]:
    """Open ``page_url`` and run the attack in it against ``base`` (absolute, or "" for the
    page's own origin)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_url)
        result: dict[str, Any] = page.evaluate(_ATTACK, [base, auth])
        return result
    finally:
        context.close()


def _untouched(server: RoostServer, llm: ScriptedLLM, auth: Any = None) -> None:
    assert server.get("/session", auth=auth).json() == []
    assert llm.requests == []
    assert not (server.directory / MARKER).exists()


@pytest.fixture
def armed(llm: ScriptedLLM) -> ScriptedLLM:
    """The scripted model runs a command that leaves a marker file, if anyone gets a turn."""
    llm.enqueue(tool_turn("bash", {"command": f"echo ran > {MARKER}; cat {MARKER}"}))
    llm.enqueue(text_turn("done"))
    return llm


def test_a_page_on_another_origin_can_do_nothing(
    browser: Any, pages: int, server: RoostServer, armed: ScriptedLLM
) -> None:
    result = _attack(browser, f"http://evil.test:{pages}/attack.html", server.url, None)

    assert "sessionID" not in result and "output" not in result, result
    assert "fetchError" in result
    assert "list" not in result
    assert result["events"] == {"error": True, "got": []}
    _untouched(server, armed)


def test_a_dns_rebinding_page_can_do_nothing(
    browser: Any, server: RoostServer, armed: ScriptedLLM
) -> None:
    # The page's own origin is Roost's address under the attacker's name: every request is
    # same-origin to the browser, and only the Host check stands in the way. (The page itself
    # is Roost's 403 answer, which is still a document of that origin to run script in.)
    page = f"http://rebind.test:{server.port}/attack.html"
    result = _attack(browser, page, "", None)

    assert result.get("createStatus") == 403 and "output" not in result, result
    assert result["events"]["got"] == []
    _untouched(server, armed)


def test_with_a_password_another_origin_can_do_nothing(
    browser: Any, pages: int, project: Path, tmp_path: Path, armed: ScriptedLLM
) -> None:
    auth = "Basic " + base64.b64encode(f"opencode:{PASSWORD}".encode()).decode()
    srv = RoostServer(project, tmp_path / "roost.db", env={"ROOST_SERVER_PASSWORD": PASSWORD})
    srv.start()
    try:
        # Even a page that somehow knows the password gets nothing from another origin.
        for header in (None, auth):
            result = _attack(browser, f"http://evil.test:{pages}/attack.html", srv.url, header)
            assert "sessionID" not in result and "output" not in result, result
            assert result["events"] == {"error": True, "got": []}
        _untouched(srv, armed, auth=httpx.BasicAuth("opencode", PASSWORD))
    finally:
        srv.close()


def test_control_a_loopback_page_does_drive_roost(
    browser: Any, pages: int, server: RoostServer, armed: ScriptedLLM
) -> None:
    # The same attack from an allowed origin works: the checks above would see a success.
    result = _attack(browser, f"http://localhost:{pages}/attack.html", server.url, None)

    assert result["createStatus"] == 200 and result["promptStatus"] == 204, result
    assert result["output"] == "ran\n"
    assert (server.directory / MARKER).read_text() == "ran\n"
    assert result["events"]["got"], "a loopback page may read the event stream"
