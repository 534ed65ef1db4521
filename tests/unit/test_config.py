import json
from pathlib import Path

import pytest

from roost.config import ConfigError, load_config


def test_project_config_overrides_global_and_roost_json_overrides_both(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "opencode").mkdir(parents=True)
    (xdg / "opencode" / "opencode.json").write_text(
        json.dumps({"model": "a/global", "provider": {"a": {"options": {"apiKey": "g"}}}})
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "opencode.jsonc").write_text(
        '{\n // a comment\n "model": "a/project", "provider": {"a": {"models": {"x": {}}}},}\n'
    )
    (project / "roost.json").write_text(json.dumps({"retry": {"maxAttempts": 2}}))
    config = load_config(project, {"XDG_CONFIG_HOME": str(xdg)})
    assert config["model"] == "a/project"
    assert config["provider"]["a"] == {"options": {"apiKey": "g"}, "models": {"x": {}}}
    assert config["retry"] == {"maxAttempts": 2}


def test_a_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "opencode.json").write_text("{ not json")
    with pytest.raises(ConfigError, match=r"opencode\.json"):
        load_config(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "none")})


def test_a_malformed_permission_names_its_file_and_rule(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "opencode").mkdir(parents=True)
    (xdg / "opencode" / "opencode.json").write_text(json.dumps({"permission": {"edit": "ask"}}))
    project = tmp_path / "project"
    project.mkdir()
    (project / "roost.json").write_text(
        json.dumps({"agent": {"plan": {"permission": {"bash": {"git *": "Allow"}}}}})
    )
    with pytest.raises(ConfigError) as caught:
        load_config(project, {"XDG_CONFIG_HOME": str(xdg)})
    message = str(caught.value)
    assert str(project / "roost.json") in message
    assert 'agent.plan.permission.bash["git *"]' in message
    assert '"Allow"' in message


def test_valid_permission_forms_merge_across_files(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "opencode").mkdir(parents=True)
    (xdg / "opencode" / "opencode.json").write_text(
        json.dumps({"permission": {"bash": {"*": "ask"}, "edit": "deny"}})
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "opencode.json").write_text(
        json.dumps(
            {"permission": {"bash": {"git *": "allow"}}, "agent": {"x": {"permission": "ask"}}}
        )
    )
    config = load_config(project, {"XDG_CONFIG_HOME": str(xdg)})
    assert config["permission"] == {"bash": {"*": "ask", "git *": "allow"}, "edit": "deny"}
    assert config["agent"]["x"]["permission"] == "ask"


def test_env_and_file_substitution_apply_to_the_whole_config(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "secrets").mkdir(parents=True)
    (project / "secrets" / "token").write_text('  se"cret\nline2 \n')
    (project / "opencode.jsonc").write_text(
        "{\n"
        "  // a comment naming {file:missing} is left alone\n"
        '  "model": "{env:ROOST_TEST_MODEL}",\n'
        '  "mcp": {"docs": {"type": "remote", "url": "https://x.test/mcp",\n'
        '    "headers": {"Authorization": "Bearer {file:secrets/token}",'
        ' "X-Unset": "{env:ROOST_TEST_UNSET}"}}}\n'
        "}\n"
    )
    config = load_config(
        project, {"XDG_CONFIG_HOME": str(tmp_path / "none"), "ROOST_TEST_MODEL": "p/m"}
    )
    assert config["model"] == "p/m"
    headers = config["mcp"]["docs"]["headers"]
    assert headers == {"Authorization": 'Bearer se"cret\nline2', "X-Unset": ""}


def test_a_missing_file_reference_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "opencode.json").write_text('{"model": "{file:nope.txt}"}')
    with pytest.raises(ConfigError, match=r"bad file reference.*nope\.txt"):
        load_config(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "none")})
