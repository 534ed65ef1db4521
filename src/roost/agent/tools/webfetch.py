"""``webfetch``: fetch a URL over HTTP(S) and return it as markdown, text or HTML.

HTML is converted with ``markdownify`` (markdown) or the stdlib ``html.parser`` (text);
other content types are returned as they are. Responses are capped at
``MAX_RESPONSE_BYTES``; redirects are followed; an HTTP error status is a ``ToolError``.
``httpx`` is imported on first use: importing it is about 5 % of the server's start-up.
"""

from __future__ import annotations

import asyncio
import codecs
from html.parser import HTMLParser
from typing import Any, Literal

from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult

DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 120.0
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
USER_AGENT = "Mozilla/5.0 (compatible; roost-webfetch/0.1)"

_ACCEPT_BY_FORMAT = {
    "markdown": "text/markdown;q=1.0, text/x-markdown;q=0.9, text/plain;q=0.8, "
    "text/html;q=0.7, */*;q=0.1",
    "text": "text/plain;q=1.0, text/markdown;q=0.9, text/html;q=0.8, */*;q=0.1",
    "html": "text/html;q=1.0, application/xhtml+xml;q=0.9, text/plain;q=0.8, "
    "text/markdown;q=0.7, */*;q=0.1",
}

Format = Literal["text", "markdown", "html"]


class WebFetchParams(Params):
    url: str = Field(description="The http:// or https:// URL to fetch")
    format: Format = Field(
        default="markdown", description="How to return the content: text, markdown or html"
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        description=f"Timeout in seconds (default {DEFAULT_TIMEOUT_S:g}, at most "
        f"{MAX_TIMEOUT_S:g})",
    )


class WebFetchTool(Tool):
    """Fetches one URL with ``httpx`` after asking the ``webfetch`` permission."""

    name = "webfetch"
    description = (
        "Fetch a web page or other resource by URL and return its content, converted from "
        "HTML to markdown (the default) or plain text, or as raw HTML. Only http and https "
        "URLs work; redirects are followed and responses over 5 MB are refused. Use it to "
        "read documentation or pages the user points to; it does not search the web."
    )
    Params = WebFetchParams
    read_only = True
    changes_files = False

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Return the converted body; the title is ``"<url> (<content type>)"``.

        Raises:
            PermissionRejected: Fetching was refused.
            ToolError: Not an http(s) URL, an HTTP error status, a network failure, a
                timeout, an image, or a body over ``MAX_RESPONSE_BYTES``.
        """
        import httpx

        url: str = params.url
        fmt: Format = params.format
        timeout_s = min(params.timeout or DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S)
        _check_url(url)
        await ctx.ask_permission(
            "webfetch",
            [url],
            always=["*"],
            metadata={"url": url, "format": fmt, "timeout": timeout_s},
        )
        try:
            async with asyncio.timeout(timeout_s):
                body, content_type, encoding = await _fetch(url, fmt, timeout_s)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ToolError(f"Request timed out after {timeout_s:g} s: {url}") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"Request failed: {url}: {exc}") from exc

        mime = content_type.split(";", 1)[0].strip().lower()
        if mime.startswith("image/"):
            raise ToolError(f"{url} is an image ({mime}); webfetch returns only text content")
        text = _decode(body, encoding)
        is_html = mime in ("text/html", "application/xhtml+xml")
        if is_html and fmt == "markdown":
            text = await asyncio.to_thread(_html_to_markdown, text)
        elif is_html and fmt == "text":
            text = await asyncio.to_thread(_html_to_text, text)
        return ToolResult(output=text, title=f"{url} ({content_type})", metadata={})


def _check_url(url: str) -> None:
    """Refuse anything but an absolute http(s) URL, before asking permission for it."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ToolError(f"Invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ToolError(f"URL must start with http:// or https://, got {url!r}")


async def _fetch(url: str, fmt: Format, timeout_s: float) -> tuple[bytes, str, str | None]:
    """``(body, content type, charset)`` of a successful GET, following redirects.

    Raises:
        ToolError: An error status, or a body over ``MAX_RESPONSE_BYTES``.
        httpx.HTTPError: The request itself failed.
    """
    import httpx

    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT_BY_FORMAT[fmt]}
    async with (
        httpx.AsyncClient(follow_redirects=True, timeout=timeout_s, headers=headers) as client,
        client.stream("GET", url) as response,
    ):
        if response.status_code >= 400:
            raise ToolError(f"Request failed with status code {response.status_code}: {url}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise ToolError(_too_large(url))
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise ToolError(_too_large(url))
        content_type = response.headers.get("content-type", "")
        return bytes(body), content_type, response.charset_encoding


def _too_large(url: str) -> str:
    return f"Response too large (over {MAX_RESPONSE_BYTES // (1024 * 1024)} MB): {url}"


def _decode(body: bytes, encoding: str | None) -> str:
    """``body`` in its declared charset (UTF-8 when none or unknown), bad bytes replaced."""
    try:
        codec = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        codec = "utf-8"
    return body.decode(codec, errors="replace")


def _html_to_markdown(html: str) -> str:
    # Imported here: markdownify (with BeautifulSoup) costs ~0.25 s of server start-up.
    from markdownify import markdownify

    # markdownify drops <script> and <style> contents itself.
    return markdownify(html, heading_style="ATX", bullets="-").strip()


def _html_to_text(html: str) -> str:
    """The visible text of an HTML document: one line per block, scripts and styles left out."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()


class _TextExtractor(HTMLParser):
    _HIDDEN = frozenset({"script", "style", "noscript", "iframe", "object", "template", "svg"})
    _BLOCKS = frozenset(
        {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figure"}
        | {"figcaption", "footer", "form", "header", "hr", "li", "main", "nav", "ol", "p"}
        | {"h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "table", "td", "th", "title"}
        | {"tr", "ul"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._pieces: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag in self._BLOCKS:
            self._pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in self._BLOCKS:
            self._pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self._pieces.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._pieces).splitlines())
        return "\n".join(line for line in lines if line)
