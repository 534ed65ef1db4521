"""Permission rules: allow, ask or deny per tool, with patterns, per agent.

Rules come in OpenCode's configuration shape (``permission`` at the top level and per agent):
``{"edit": "deny", "bash": {"*": "ask", "git status": "allow"}}``, flattened into a ruleset
(OpenAPI ``PermissionRuleset``: ``{permission, pattern, action}`` items). Evaluation follows
OpenCode: the *last* rule whose ``permission`` and ``pattern`` both match wins (``*`` matches
anything, slashes and spaces included), so later sources override earlier ones. The order is:
built-in defaults, the configuration, the agent's own rules, then the session's rules (including
"always" approvals given while it ran). Every rule is well formed (``roost.model.permission``
checks them where they enter), and a permission no rule matches is asked: evaluation fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Final

from roost.model.permission import Action, Rule, from_config, ruleset

DEFAULT_RULES: Final[list[Rule]] = [
    {"permission": "*", "pattern": "*", "action": "allow"},
    {"permission": "external_directory", "pattern": "*", "action": "ask"},
]

TOOL_PERMISSION: Final = {"write": "edit", "edit": "edit"}
"""Tools checked under another permission's name (OpenCode groups file changes as ``edit``)."""


def evaluate_one(rules: Iterable[Rule], permission: str, pattern: str) -> Action:
    """The action of the last rule matching ``permission`` and ``pattern`` (default ask)."""
    found: Action = "ask"
    for rule in rules:
        if fnmatchcase(permission, rule["permission"]) and fnmatchcase(pattern, rule["pattern"]):
            found = rule["action"]
    return found


def evaluate(rules: list[Rule], permission: str, patterns: list[str]) -> Action:
    """The combined action for several patterns: any deny denies, else any ask asks."""
    actions = {evaluate_one(rules, permission, p) for p in (patterns or ["*"])}
    if "deny" in actions:
        return "deny"
    if "ask" in actions:
        return "ask"
    return "allow"


def tool_enabled(rules: list[Rule], tool_name: str) -> bool:
    """Whether a tool is offered at all: not when its permission is denied for ``*``."""
    permission = TOOL_PERMISSION.get(tool_name, tool_name)
    return evaluate_one(rules, permission, "*") != "deny"


__all__ = [
    "DEFAULT_RULES",
    "Action",
    "Rule",
    "evaluate",
    "evaluate_one",
    "from_config",
    "ruleset",
    "tool_enabled",
]
