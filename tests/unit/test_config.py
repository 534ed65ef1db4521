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
