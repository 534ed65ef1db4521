"""Permission rules as data: OpenCode's ``PermissionRule`` and the forms rules arrive in.

A rule is ``{"permission", "pattern", "action"}`` (OpenAPI ``PermissionRule``) whose ``action``
is exactly one of ``allow``, ``ask`` and ``deny`` (``PermissionAction``; lower case, as OpenCode
accepts them). Rules arrive in two forms:

- a ruleset, a list of rules (OpenAPI ``PermissionRuleset``): ``POST /session`` and
  ``PATCH /session/{id}`` bodies, and the rules stored on a session;
- configuration (OpenAPI ``PermissionConfig``), ``permission`` at the top of ``opencode.json`` /
  ``roost.json`` and per agent: an action for everything (``"ask"``), or an object whose values
  are an action (``{"edit": "deny"}``) or a ``{pattern: action}`` map
  (``{"bash": {"*": "ask", "git status": "allow"}}``). Roost also takes a ruleset there.

Invariant: every rule this module returns is well formed. Anything else raises
``InvalidPermissionRule`` naming where the rule is, so that no rule is ever misread: before,
``"Deny"`` fell through to allow and a rule without ``pattern`` crashed the turn that used it.
"""

from __future__ import annotations

import json
import re
from typing import Final, Literal, get_args

from typing_extensions import TypedDict  # pydantic validates only this TypedDict on 3.11

from roost.errors import InvalidPermissionRule

Action = Literal["allow", "ask", "deny"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)


class Rule(TypedDict):
    """OpenAPI ``PermissionRule``; also the wire model of rules in request bodies."""

    permission: str
    """The permission it governs (``bash``, ``edit``, ``external_directory``, …); ``*`` globs."""
    pattern: str
    """What it applies to (a command, a path glob, …); ``*`` matches anything."""
    action: Action


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def ruleset(value: object, *, where: str = "permission") -> list[Rule]:
    """Check a ruleset (a list of rule objects; None is no rules).

    Args:
        where: How error messages name the list (``permission``, ``session permission``).

    Raises:
        InvalidPermissionRule: It is not a list, or an item is not a rule object with string
            ``permission`` and ``pattern`` and a known ``action``.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPermissionRule(where, f"expected a list of rules, got {_show(value)}")
    rules: list[Rule] = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise InvalidPermissionRule(
                at, f"expected an object with permission, pattern and action, got {_show(item)}"
            )
        for key in ("permission", "pattern"):
            if key not in item:
                raise InvalidPermissionRule(f"{at}.{key}", f"missing {key}")
            if not isinstance(item[key], str):
                raise InvalidPermissionRule(
                    f"{at}.{key}", f"expected a string, got {_show(item[key])}"
                )
        if "action" not in item:
            raise InvalidPermissionRule(f"{at}.action", "missing action")
        action = _action(item["action"], f"{at}.action")
        rules.append(Rule(permission=item["permission"], pattern=item["pattern"], action=action))
    return rules


def from_config(value: object, *, where: str = "permission") -> list[Rule]:
    """Flatten a configuration ``permission`` value into rules, in their written order.

    ``"ask"`` becomes ``*``/``*``/ask; ``{"edit": "deny"}`` becomes edit/``*``/deny; a pattern
    map becomes one rule per pattern; a list is checked as a ruleset; None is no rules.

    Args:
        where: Where the value sits in its file, for error messages
            (``permission``, ``agent.build.permission``).

    Raises:
        InvalidPermissionRule: An action is not ``allow``, ``ask`` or ``deny``, or a value
            has another shape than the ones above.
    """
    if value is None:
        return []
    if isinstance(value, list):
        return ruleset(value, where=where)
    if isinstance(value, str):
        return [Rule(permission="*", pattern="*", action=_action(value, where))]
    if not isinstance(value, dict):
        raise InvalidPermissionRule(
            where, f"expected an action or an object of permissions, got {_show(value)}"
        )
    rules: list[Rule] = []
    for permission, setting in value.items():
        at = _member(where, permission)
        if isinstance(setting, str):
            rules.append(Rule(permission=permission, pattern="*", action=_action(setting, at)))
        elif isinstance(setting, dict):
            rules.extend(
                Rule(
                    permission=permission,
                    pattern=pattern,
                    action=_action(action, f"{at}[{json.dumps(pattern)}]"),
                )
                for pattern, action in setting.items()
            )
        else:
            raise InvalidPermissionRule(
                at, f"expected an action or a {{pattern: action}} object, got {_show(setting)}"
            )
    return rules


def _action(value: object, where: str) -> Action:
    for action in ACTIONS:
        if value == action:
            return action
    raise InvalidPermissionRule(
        where, f'unknown action {_show(value)} (expected "allow", "ask" or "deny")'
    )


def _member(where: str, key: str) -> str:
    """``where.key``, or ``where["key"]`` when the key is not a plain name."""
    return f"{where}.{key}" if _PLAIN_KEY.match(key) else f"{where}[{json.dumps(key)}]"


def _show(value: object) -> str:
    """``value`` as JSON, shortened, for an error message."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."
