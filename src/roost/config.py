"""Settings and configuration files, read once by the CLI.

``Settings`` holds what flags and environment decide (where the database lives, where to listen,
the password). ``load_config`` merges OpenCode-format configuration files, later ones winning:
the global ``opencode.json``/``opencode.jsonc``/``config.json`` in ``$XDG_CONFIG_HOME/opencode``,
then ``$OPENCODE_CONFIG``, then the project's ``opencode.json``/``opencode.jsonc``, then
``roost.json`` (global ``$XDG_CONFIG_HOME/roost/roost.json``, then the project's).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
import platformdirs

APP_NAME = "roost"
DEFAULT_PORT = 4096
DEFAULT_MAX_BODY_MB = 32
SYNCHRONOUS_MODES = ("FULL", "NORMAL")


class ConfigError(Exception):
    """A configuration file could not be read or parsed."""


@dataclass(frozen=True)
class Settings:
    """What one ``roost serve`` runs with.

    Attributes:
        db_path: The SQLite file (``--db``, ``ROOST_DB``, else the user data directory).
        synchronous: SQLite ``synchronous`` for the store: ``FULL`` (the default) makes each
            commit durable against power loss; ``NORMAL`` against process crashes only.
        password: Basic-auth password (``ROOST_SERVER_PASSWORD``); None disables auth.
    """

    db_path: Path
    hostname: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    directory: Path = Path()
    password: str | None = None
    username: str = "opencode"
    synchronous: str = "FULL"
    log_level: str = "warning"
    heartbeat_s: float = 10.0
    """Longest silence on an SSE stream before a ``server.heartbeat`` (``ROOST_HEARTBEAT_MS``)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * 2**20
    """Longest request body accepted; longer ones get a 413 (``--max-body-mb``,
    ``ROOST_MAX_BODY_MB``, in MiB)."""

    @staticmethod
    def default_db_path(env: dict[str, str]) -> Path:
        """``ROOST_DB``, else ``<XDG data dir>/roost/roost.db``."""
        if env.get("ROOST_DB"):
            return Path(env["ROOST_DB"]).expanduser()
        return Path(platformdirs.user_data_dir(APP_NAME)) / "roost.db"


def global_config_dir(env: dict[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/opencode`` (``~/.config/opencode``)."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "opencode"


def _read(path: Path) -> dict[str, Any]:
    try:
        parsed = json5.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ConfigError(f"config {path} is not a JSON object")
    return parsed


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_files(directory: Path, env: dict[str, str]) -> list[Path]:
    """The configuration files that exist, lowest precedence first."""
    gdir = global_config_dir(env)
    candidates = [gdir / "config.json", gdir / "opencode.json", gdir / "opencode.jsonc"]
    if env.get("OPENCODE_CONFIG"):
        candidates.append(Path(env["OPENCODE_CONFIG"]))
    candidates += [directory / "opencode.json", directory / "opencode.jsonc"]
    candidates += [gdir.parent / APP_NAME / "roost.json", directory / "roost.json"]
    return [p for p in candidates if p.is_file()]


def load_config(directory: Path, env: dict[str, str]) -> dict[str, Any]:
    """The merged configuration (see the module docstring).

    Raises:
        ConfigError: A file exists but is not valid JSON/JSONC.
    """
    merged: dict[str, Any] = {}
    for path in config_files(directory, env):
        merged = _merge(merged, _read(path))
    return merged


def project_id(directory: Path) -> str:
    """OpenCode's project id: the repository's first commit hash, else ``global``."""
    try:
        out = subprocess.run(
            ["git", "rev-list", "--max-parents=0", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "global"
    roots = sorted(out.stdout.split())
    return roots[0] if out.returncode == 0 and roots else "global"


def environment() -> dict[str, str]:
    """A copy of the process environment."""
    return dict(os.environ)


def instructions(directory: Path, env: dict[str, str], config: dict[str, Any]) -> tuple[str, ...]:
    """System prompt sections from instruction files, as OpenCode gathers them.

    The project's ``AGENTS.md`` (``CLAUDE.md`` when there is none), the global
    ``~/.config/opencode/AGENTS.md``, then each file named in the config's ``instructions``
    (relative to the project). Each becomes ``"Instructions from: <path>\n<text>"``.
    """
    found: list[Path] = []
    for name in ("AGENTS.md", "CLAUDE.md"):
        if (directory / name).is_file():
            found.append(directory / name)
            break
    global_agents = global_config_dir(env) / "AGENTS.md"
    if global_agents.is_file():
        found.append(global_agents)
    for entry in config.get("instructions") or []:
        path = (directory / str(entry)).expanduser()
        if path.is_file():
            found.append(path)
    return tuple(
        f"Instructions from: {p}\n{p.read_text(encoding='utf-8', errors='replace')}" for p in found
    )


def wait_policy_values(config: dict[str, Any]) -> tuple[float | None, float | None, str]:
    """``roost.json`` ``wait``: ``{"permission": {"timeoutMs"}, "question": {"timeoutMs",
    "default": "first" | "reject"}}`` as (permission s, question s, question default)."""
    wait = config.get("wait") or {}
    perm = (wait.get("permission") or {}).get("timeoutMs")
    question = wait.get("question") or {}
    q_ms = question.get("timeoutMs")
    return (
        float(perm) / 1000 if perm else None,
        float(q_ms) / 1000 if q_ms else None,
        str(question.get("default") or "reject"),
    )
