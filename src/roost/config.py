"""Settings and configuration files, read once by the CLI.

``Settings`` holds what flags and environment decide (where the database lives, where to listen,
the password). ``load_config`` merges OpenCode-format configuration files, later ones winning:
the global ``opencode.json``/``opencode.jsonc``/``config.json`` in ``$XDG_CONFIG_HOME/opencode``,
then ``$OPENCODE_CONFIG``, then the project's ``opencode.json``/``opencode.jsonc``, then
``roost.json`` (global ``$XDG_CONFIG_HOME/roost/roost.json``, then the project's). Each file's
permission rules are checked before the merge, so an error names the file it is in.

Each file's text goes through OpenCode's variable substitution before it is parsed, so any value
may use it: ``{env:VAR}`` becomes the variable's value (empty when unset), and ``{file:path}``
becomes the file's trimmed text, escaped for a JSON string (``~/`` is the home directory, a
relative path is relative to the configuration file; a ``{file:…}`` on a ``//`` comment line is
left alone). Source: OpenCode 1.18's ``config/variable.ts``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
import platformdirs

from roost.errors import InvalidPermissionRule
from roost.model import permission
from roost.model.mcp import McpLocalConfig, McpRemoteConfig, parse_servers

APP_NAME = "roost"
DEFAULT_PORT = 4096
DEFAULT_MAX_BODY_MB = 32
SYNCHRONOUS_MODES = ("FULL", "NORMAL")


class ConfigError(Exception):
    """A configuration file could not be read or parsed, or holds a malformed permission rule."""


@dataclass(frozen=True)
class Settings:
    """What one ``roost serve`` runs with.

    Attributes:
        db_path: The SQLite file (``--db``, ``ROOST_DB``, else the user data directory), or
            the PostgreSQL URL (``postgresql://…``) the store lives in.
        synchronous: SQLite ``synchronous`` for the store: ``FULL`` (the default) makes each
            commit durable against power loss; ``NORMAL`` against process crashes only.
        password: Basic-auth password (``ROOST_SERVER_PASSWORD``); None disables auth.
        cors: Extra origins web pages may call from (``--cors``), besides loopback ones.
        allowed_hosts: Extra ``Host`` names that reach this server (``--allow-host``).
    """

    db_path: Path | str
    hostname: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    directory: Path = Path()
    password: str | None = None
    username: str = "opencode"
    synchronous: str = "FULL"
    log_level: str = "warning"
    cors: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    heartbeat_s: float = 10.0
    """Longest silence on an SSE stream before a ``server.heartbeat`` (``ROOST_HEARTBEAT_MS``)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * 2**20
    """Longest request body accepted; longer ones get a 413 (``--max-body-mb``,
    ``ROOST_MAX_BODY_MB``, in MiB)."""
    replica: str | None = None
    """This process's name among the replicas of one store (``--replica``): shown in
    ``/global/health`` and in the owner of its leases. None: the host name and pid."""
    pool_size: int = 4
    """Reader connections to the store (``--pool-size``)."""
    lease_ttl_ms: int = 15_000
    """How long a run lease lives without renewal (``--lease-ttl-ms``, ``ROOST_LEASE_TTL_MS``);
    the holder renews every third of it, and another replica recovers a run whose lease
    expired."""
    lease_renew_ms: int | None = None
    """Between renewals of held leases (``--lease-renew-ms``); None: a third of the TTL."""

    @property
    def data_dir(self) -> Path:
        """Where tool output and file snapshots go: the SQLite file's directory, or with
        PostgreSQL the user data directory (``<XDG data dir>/roost``)."""
        if isinstance(self.db_path, Path):
            return self.db_path.parent
        return Path(platformdirs.user_data_dir(APP_NAME))

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


_ENV_TOKEN = re.compile(r"\{env:([^}]+)\}")
_FILE_TOKEN = re.compile(r"\{file:([^}]+)\}")


def substitute(text: str, *, source: Path, env: dict[str, str]) -> str:
    """Apply ``{env:VAR}`` and ``{file:path}`` to a configuration file's text (see the module
    docstring); ``source`` is the file the text came from.

    Raises:
        ConfigError: A ``{file:…}`` names a file that cannot be read.
    """
    text = _ENV_TOKEN.sub(lambda m: env.get(m.group(1), ""), text)

    def file_value(match: re.Match[str]) -> str:
        line_start = text.rfind("\n", 0, match.start()) + 1
        if text[line_start : match.start()].lstrip().startswith("//"):
            return match.group(0)
        raw = match.group(1)
        path = Path.home() / raw[2:] if raw.startswith("~/") else source.parent / raw
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"bad file reference in {source}: {match.group(0)} {path} does not exist"
            ) from exc
        return json.dumps(content.strip())[1:-1]

    return _FILE_TOKEN.sub(file_value, text)


def _read(path: Path, env: dict[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        parsed = json5.loads(substitute(text, source=path, env=env))
    except ValueError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ConfigError(f"config {path} is not a JSON object")
    try:
        _check_permissions(parsed)
    except InvalidPermissionRule as exc:
        raise ConfigError(f"config {path}: {exc.message}") from exc
    return parsed


def _check_permissions(config: dict[str, Any]) -> None:
    """Check ``permission`` at the top level and in each ``agent`` entry.

    Raises:
        InvalidPermissionRule: One of them is malformed (see ``roost.model.permission``).
    """
    permission.from_config(config.get("permission"))
    agents = config.get("agent")
    if not isinstance(agents, dict):
        return
    for name, entry in agents.items():
        if isinstance(entry, dict):
            permission.from_config(entry.get("permission"), where=f"agent.{name}.permission")


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
        ConfigError: A file exists but is not valid JSON/JSONC, names a missing ``{file:…}``,
            or one of its permission rules is malformed; the message names the file and rule.
    """
    merged: dict[str, Any] = {}
    for path in config_files(directory, env):
        merged = _merge(merged, _read(path, env))
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


def server_names(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The config's ``server.cors`` (OpenCode's ``ServerConfig``) and ``server.allowedHosts``
    (Roost's, in ``roost.json``), as (origins, host names).

    Raises:
        ConfigError: Either is not a list of strings.
    """
    server = config.get("server") or {}
    found: list[list[str]] = []
    for key in ("cors", "allowedHosts"):
        value = server.get(key) if isinstance(server, dict) else None
        if value is None:
            found.append([])
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            found.append(list(value))
        else:
            raise ConfigError(f"config server.{key} must be a list of strings, not {value!r}")
    return found[0], found[1]


def mcp_servers(config: dict[str, Any]) -> dict[str, McpLocalConfig | McpRemoteConfig | None]:
    """The config's ``mcp`` entries, validated (``model/mcp.py``).

    Raises:
        ConfigError: An entry fits neither ``McpLocalConfig`` nor ``McpRemoteConfig``.
    """
    try:
        return parse_servers(config.get("mcp"))
    except ValueError as exc:
        raise ConfigError(f"invalid config: {exc}") from exc


def mcp_timeout_ms(config: dict[str, Any]) -> int | None:
    """``experimental.mcp_timeout``: the default bound of an MCP tool call (ms).

    Raises:
        ConfigError: It is not a positive integer.
    """
    value = (config.get("experimental") or {}).get("mcp_timeout")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"config experimental.mcp_timeout must be a positive integer: {value!r}")
    return value
