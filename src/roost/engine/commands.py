"""Slash commands (``/init``, ``/review``, the user's own), as OpenCode 1.18.34 defines them.

Where they come from, later ones winning by name: the built-ins ``init`` and ``review``, then
each ``command`` entry of the config (``{template, description, agent, model, subtask}``), then
``command/*.md`` and ``commands/*.md`` under the global config folder and the project's
``.opencode/`` (YAML front matter: ``description``, ``agent``, ``model``, ``subtask``; the body
is the template; the file name, without ``.md``, is the command's name).

Expanding a template for ``POST /session/{id}/command`` (``expand``), as OpenCode does:
``$ARGUMENTS`` is the whole argument string; ``$1``, ``$2`` … are the arguments split like a
shell would (quotes group words), the highest one taking the rest; a template with no
placeholder gets the arguments appended. Then each ``!`cmd``` is replaced by the output of
``cmd`` run with bash in the project (30 s at most), and each ``@path`` naming a project file
adds a ``file`` part for it.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from roost.agent import prompts

SHELL_TIMEOUT_S = 30.0
"""Longest a template's ``!`cmd``` may run."""
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n?", re.S)
_NUMBERED = re.compile(r"\$(\d+)")
_SHELL = re.compile(r"!`([^`]+)`")
_FILE = re.compile(r"(?<![\w`])@(\.?[^\s`,.]*(?:\.[^\s`,.]+)*)")


@dataclass(frozen=True)
class Command:
    """One slash command (OpenAPI ``Command``)."""

    name: str
    template: str
    description: str | None = None
    agent: str | None = None
    model: str | None = None
    subtask: bool = False
    source: str = "command"

    def to_wire(self) -> dict[str, Any]:
        """The ``Command`` object served by ``GET /command``."""
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "template": self.template,
            "hints": hints(self.template),
        }
        for key in ("description", "agent", "model"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.subtask:
            out["subtask"] = True
        return out


def hints(template: str) -> list[str]:
    """The placeholders a template takes: ``$1`` … in order, then ``$ARGUMENTS``."""
    found = sorted(set(_NUMBERED.findall(template)), key=int)
    out = [f"${n}" for n in found]
    if "$ARGUMENTS" in template:
        out.append("$ARGUMENTS")
    return out


def _builtins(directory: Path) -> list[Command]:
    return [
        Command(
            "init",
            prompts.INIT_COMMAND.replace("${path}", str(directory)),
            description="create or update AGENTS.md for this project",
        ),
        Command(
            "review",
            prompts.REVIEW_COMMAND.replace("${path}", str(directory)),
            description="review changes [commit|branch|pr], defaults to uncommitted",
            subtask=True,
        ),
    ]


def _from_markdown(path: Path) -> Command | None:
    text = path.read_text(encoding="utf-8", errors="replace")
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            loaded = None
        meta = loaded if isinstance(loaded, dict) else {}
        text = text[match.end() :]
    template = text.strip()
    if not template:
        return None
    return Command(
        path.stem,
        template,
        description=str(meta["description"]) if meta.get("description") else None,
        agent=str(meta["agent"]) if meta.get("agent") else None,
        model=str(meta["model"]) if meta.get("model") else None,
        subtask=bool(meta.get("subtask", False)),
    )


def load_commands(config: dict[str, Any], directory: Path, config_dir: Path) -> dict[str, Command]:
    """Every command this server offers, by name (see the module docstring). Blocking."""
    found = {c.name: c for c in _builtins(directory)}
    for name, entry in (config.get("command") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("template"), str):
            found[name] = Command(
                name,
                entry["template"],
                description=entry.get("description"),
                agent=entry.get("agent"),
                model=entry.get("model"),
                subtask=bool(entry.get("subtask", False)),
            )
    for folder in (config_dir, directory / ".opencode"):
        for sub in ("command", "commands"):
            for path in sorted((folder / sub).glob("*.md")) if (folder / sub).is_dir() else []:
                command = _from_markdown(path)
                if command is not None:
                    found[command.name] = command
    return found


def _substitute(template: str, arguments: str) -> str:
    try:
        args = shlex.split(arguments)
    except ValueError:  # an unbalanced quote: take the words as they are
        args = arguments.split()
    numbers = sorted({int(n) for n in _NUMBERED.findall(template)})
    last = numbers[-1] if numbers else 0

    def positional(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n == last:
            return " ".join(args[n - 1 :])
        return args[n - 1] if 0 < n <= len(args) else ""

    text = _NUMBERED.sub(positional, template)
    uses_arguments = "$ARGUMENTS" in text
    text = text.replace("$ARGUMENTS", arguments)
    if not numbers and not uses_arguments and arguments.strip():
        text = f"{text}\n\n{arguments}"
    return text


async def _shell_output(command: str, directory: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "/bin/bash",
        "-c",
        command,
        cwd=directory,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(SHELL_TIMEOUT_S):
            out, _ = await proc.communicate()
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return out.decode(errors="replace").rstrip("\n")


async def expand(
    template: str, arguments: str, directory: Path
) -> tuple[str, list[dict[str, Any]]]:
    """The prompt text of a command and the ``file`` parts its ``@path`` references name.

    Raises:
        TimeoutError: A ``!`cmd``` ran longer than ``SHELL_TIMEOUT_S``.
    """
    text = _substitute(template, arguments)
    for command in dict.fromkeys(_SHELL.findall(text)):
        output = await _shell_output(command, directory)
        text = text.replace(f"!`{command}`", output)
    files = await asyncio.to_thread(_file_parts, text, directory)
    return text, files


def _file_parts(text: str, directory: Path) -> list[dict[str, Any]]:
    """``file`` parts for the ``@path`` references naming files inside the project."""
    files: list[dict[str, Any]] = []
    root = directory.resolve()
    for name in dict.fromkeys(_FILE.findall(text)):
        path = (directory / name).resolve()
        if (path == root or root in path.parents) and path.is_file():
            files.append(
                {"type": "file", "mime": "text/plain", "filename": name, "url": path.as_uri()}
            )
    return files
