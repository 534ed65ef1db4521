"""``file`` parts of a prompt → what the model receives, as OpenCode 1.18.34 resolves them.

A ``FilePartInput`` carries ``mime``, ``filename`` and a ``url``: a ``data:`` URL, or a
``file://`` path that must lie inside the project. At admission (``resolve``):

- a text file or a directory is read now, the way the ``read`` tool reads it, and two synthetic
  text parts follow the file part: "Called the Read tool with the following input: {…}" and the
  tool's output. The model sees them as text; the file part itself stays for clients.
- an image or a PDF becomes a ``data:`` URL stored on the part (so the model sees the bytes of
  the prompt's time, not of later), and is refused with ``InvalidInput`` when the model's
  capabilities (``Model.capabilities.input``) do not take that kind.

In history (``content_blocks``) image and PDF parts become OpenAI Chat Completions content
parts (``image_url``; ``file`` with ``file_data``); the Anthropic provider maps them to
``image`` / ``document`` blocks.

Blocking (reads files): call ``resolve`` off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from roost.agent.tools.base import ToolError
from roost.agent.tools.read import DEFAULT_LIMIT, read_path
from roost.errors import InvalidInput

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
"""Largest image or PDF sent to a model (most providers refuse more)."""


def media_kind(mime: str) -> str:
    """``"image"``, ``"pdf"`` or ``"text"`` (everything else is read as text)."""
    mime = mime.lower()
    if mime.startswith("image/") and mime != "image/svg+xml":
        return "image"
    if mime == "application/pdf":
        return "pdf"
    return "text"


def _decode_data_url(url: str) -> tuple[str, bytes]:
    """``(mime, bytes)`` of a ``data:`` URL (RFC 2397).

    Raises:
        InvalidInput: Not a well-formed data URL.
    """
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise InvalidInput("file part: a data: URL needs a ',' before its data", field="parts")
    mime = header.split(";")[0] or "text/plain"
    try:
        data = (
            base64.b64decode(payload, validate=True)
            if header.endswith(";base64")
            else unquote(payload).encode()
        )
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"file part: bad base64 in data: URL ({exc})", field="parts") from exc
    return mime, data


def _local_path(url: str, project: Path) -> Path:
    """The project file a ``file://`` URL names.

    Raises:
        InvalidInput: It is outside the project, or does not exist.
    """
    path = Path(unquote(urlsplit(url).path)).resolve()
    root = project.resolve()
    if path != root and root not in path.parents:
        raise InvalidInput(f"file part: {path} is outside the project directory", field="parts")
    if not path.exists():
        raise InvalidInput(f"file part: {path} does not exist", field="parts")
    return path


def resolve(
    part: dict[str, Any], project: Path, accepts: dict[str, bool]
) -> tuple[dict[str, Any], list[str]]:
    """Resolve one ``file`` part (see the module docstring).

    Args:
        part: The ``FilePartInput`` (``mime``, ``url``, optional ``filename``).
        project: The project directory (``file://`` URLs must lie inside it).
        accepts: The model's ``capabilities.input`` (``{"image": bool, "pdf": bool, …}``).

    Returns:
        ``(the part to store, texts of synthetic text parts to store after it)``.

    Raises:
        InvalidInput: A bad URL, a path outside the project or missing, an attachment too
            large, or a kind the model cannot take.
    """
    url = str(part.get("url") or "")
    mime = str(part.get("mime") or "")
    if url.startswith("data:"):
        data_mime, data = _decode_data_url(url)
        mime = mime or data_mime
        kind = media_kind(mime)
        if kind == "text":
            name = part.get("filename") or "attachment"
            return part, [f"Contents of {name}:\n{data.decode('utf-8', errors='replace')}"]
        return _checked_media(part, mime, kind, data, accepts), []
    if not url.startswith("file://"):
        raise InvalidInput("file part: the url must be a data: or file:// URL", field="parts")
    path = _local_path(url, project)
    mime = mime or mimetypes.guess_type(path.name)[0] or "text/plain"
    kind = "text" if path.is_dir() else media_kind(mime)
    if kind != "text":
        data = path.read_bytes()
        return _checked_media(part, mime, kind, data, accepts), []
    try:
        output, _ = read_path(path, 1, DEFAULT_LIMIT)
    except ToolError as exc:
        raise InvalidInput(f"file part: {exc.message}", field="parts") from exc
    called = json.dumps({"filePath": str(path)})
    return part, [f"Called the Read tool with the following input: {called}", output]


def _checked_media(
    part: dict[str, Any], mime: str, kind: str, data: bytes, accepts: dict[str, bool]
) -> dict[str, Any]:
    if not accepts.get(kind):
        raise InvalidInput(
            f"file part: this model does not accept {kind} input ({mime}); set the model's "
            f"modalities or attachment in opencode.json, or choose another model",
            field="parts",
        )
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise InvalidInput(
            f"file part: {len(data)} bytes is more than the {MAX_ATTACHMENT_BYTES} an "
            "attachment may have",
            field="parts",
        )
    encoded = base64.b64encode(data).decode()
    return {**part, "mime": mime, "url": f"data:{mime};base64,{encoded}"}


def content_blocks(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The image and PDF parts of a user message as OpenAI chat content parts."""
    blocks: list[dict[str, Any]] = []
    for part in parts:
        url = str(part.get("url") or "")
        if part.get("type") != "file" or not url.startswith("data:"):
            continue
        kind = media_kind(str(part.get("mime") or ""))
        if kind == "image":
            blocks.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "pdf":
            name = str(part.get("filename") or "document.pdf")
            blocks.append({"type": "file", "file": {"filename": name, "file_data": url}})
    return blocks
