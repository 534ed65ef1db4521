"""Permission rules as they enter: every OpenCode form flattens in order; anything else is named."""

from __future__ import annotations

from typing import Any

import pytest

from roost.errors import InvalidPermissionRule
from roost.model.permission import from_config, ruleset


def test_every_config_form_flattens_in_written_order() -> None:
    assert from_config("ask") == [{"permission": "*", "pattern": "*", "action": "ask"}]
    assert from_config({"edit": "deny", "bash": {"*": "ask", "git status": "allow"}}) == [
        {"permission": "edit", "pattern": "*", "action": "deny"},
        {"permission": "bash", "pattern": "*", "action": "ask"},
        {"permission": "bash", "pattern": "git status", "action": "allow"},
    ]
    listed = [{"permission": "read", "pattern": "*.env", "action": "deny"}]
    assert from_config(listed) == listed
    assert from_config(None) == [] and from_config({}) == []


def test_a_ruleset_keeps_its_rules_and_drops_unknown_keys() -> None:
    rules = [
        {"permission": "bash", "pattern": "rm *", "action": "deny", "note": "x"},
        {"permission": "*", "pattern": "*", "action": "allow"},
    ]
    assert ruleset(rules) == [
        {"permission": "bash", "pattern": "rm *", "action": "deny"},
        {"permission": "*", "pattern": "*", "action": "allow"},
    ]
    assert ruleset(None) == []


@pytest.mark.parametrize(
    ("value", "where", "problem"),
    [
        ("Allow", "permission", 'unknown action "Allow"'),
        ({"bash": "Deny"}, "permission.bash", 'unknown action "Deny"'),
        ({"bash": {"rm *": "DENY"}}, 'permission.bash["rm *"]', 'unknown action "DENY"'),
        ({"bash": {"rm *": None}}, 'permission.bash["rm *"]', "unknown action null"),
        ({"my tool": "nope"}, 'permission["my tool"]', 'unknown action "nope"'),
        ({"bash": 1}, "permission.bash", "expected an action or a {pattern: action} object"),
        (7, "permission", "expected an action or an object of permissions"),
        ([{"permission": "bash", "action": "deny"}], "permission[0].pattern", "missing pattern"),
    ],
)
def test_a_malformed_config_value_names_the_rule(value: Any, where: str, problem: str) -> None:
    with pytest.raises(InvalidPermissionRule) as caught:
        from_config(value)
    assert caught.value.where == where
    assert problem in caught.value.problem
    assert where in caught.value.message


def test_an_agent_rule_is_named_under_its_agent() -> None:
    with pytest.raises(InvalidPermissionRule, match=r"agent\.plan\.permission\.edit"):
        from_config({"edit": "Deny"}, where="agent.plan.permission")


@pytest.mark.parametrize(
    ("rules", "where", "problem"),
    [
        ([{"permission": "bash", "pattern": "*", "action": "Deny"}], "[0].action", "Deny"),
        ([{"permission": "bash", "action": "deny"}], "[0].pattern", "missing pattern"),
        ([{"pattern": "*", "action": "deny"}], "[0].permission", "missing permission"),
        ([{"permission": "bash", "pattern": "*"}], "[0].action", "missing action"),
        ([{"permission": "bash", "pattern": ["*"], "action": "ask"}], "[0].pattern", "string"),
        (["bash"], "[0]", "expected an object"),
        ({"permission": "bash"}, "", "expected a list"),
    ],
)
def test_a_malformed_ruleset_names_the_rule(rules: Any, where: str, problem: str) -> None:
    with pytest.raises(InvalidPermissionRule) as caught:
        ruleset(rules, where="session permission")
    assert caught.value.where == f"session permission{where}"
    assert problem in caught.value.problem
