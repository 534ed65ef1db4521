"""Models as the TUI's ``/models`` list and context meter see them: names, limits, prices and
capabilities from ``opencode.json``, in OpenCode's ``Model`` shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.openapi import validate
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import RoostServer, project_config

pytestmark = pytest.mark.e2e


def test_model_names_limits_costs_and_capabilities_come_from_config(
    project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    config = project_config(llm.base_url)
    config["provider"]["scripted"]["models"] = {
        "scripted-model": {
            "name": "Scripted Large",
            "limit": {"context": 200_000, "output": 8_192},
            "cost": {"input": 3, "output": 15, "cache_read": 0.3},
            "attachment": True,
            "reasoning": True,
        },
        "other-model": {},
    }
    (project / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(project, tmp_path / "models.db").start()
    try:
        [provider] = srv.get("/config/providers").json()["providers"]
        listed = srv.get("/provider").json()["all"][0]["models"]
    finally:
        srv.close()

    model = provider["models"]["scripted-model"]
    validate(model, "Model")
    assert listed["scripted-model"] == model
    assert model["name"] == "Scripted Large"
    assert model["limit"] == {"context": 200_000, "output": 8_192}
    assert model["cost"] == {"input": 3, "output": 15, "cache": {"read": 0.3, "write": 0}}
    assert model["capabilities"]["attachment"] is True
    assert model["capabilities"]["reasoning"] is True
    assert model["capabilities"]["input"]["image"] is True
    other = provider["models"]["other-model"]
    validate(other, "Model")
    assert other["name"] == "other-model"
    assert other["capabilities"]["attachment"] is False
    assert other["limit"] == {"context": 0, "output": 0}  # unknown, as OpenCode reports it
    assert other["capabilities"]["input"] == {
        "text": True,
        "audio": False,
        "image": False,
        "video": False,
        "pdf": False,
    }
