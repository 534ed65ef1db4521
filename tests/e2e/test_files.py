"""Files, search and version control through a real server, in a real git repository: what the
TUI's ``@`` picker, ``/diff``, file tree and footer read; nothing outside the project."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.openapi import validate
from tests.support.server import RoostServer

pytestmark = pytest.mark.e2e


def _git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(server: RoostServer) -> RoostServer:
    project = server.directory
    (project / "src").mkdir()
    (project / "src" / "app.py").write_text("print('one')\nprint('two')\n")
    (project / "README.md").write_text("# demo\n")
    (project / "gone.txt").write_text("bye\n")
    (project / ".gitignore").write_text("build/\n.xdg-*\n")
    _git(project, "init", "-q", "-b", "trunk")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "first")
    (project / "src" / "app.py").write_text("print('one')\nprint('TWO')\nprint('three')\n")
    (project / "gone.txt").unlink()
    (project / "new_module.py").write_text("x = 1\n")
    (project / "build").mkdir()
    (project / "build" / "out.bin").write_bytes(b"\0\1\2")
    return server


def test_vcs_reports_the_branch_and_a_diff_of_the_working_tree(repo: RoostServer) -> None:
    assert repo.get("/vcs").json() == {"branch": "trunk"}
    diffs = {d["file"]: d for d in repo.get("/vcs/diff", params={"mode": "git"}).json()}
    for diff in diffs.values():
        validate(diff, "VcsFileDiff")
    assert set(diffs) == {"src/app.py", "gone.txt", "new_module.py"}
    assert (diffs["src/app.py"]["status"], diffs["src/app.py"]["additions"]) == ("modified", 2)
    assert diffs["src/app.py"]["deletions"] == 1
    assert "+print('three')" in diffs["src/app.py"]["patch"]
    assert diffs["gone.txt"]["status"] == "deleted"
    assert diffs["new_module.py"]["status"] == "added"
    assert "+x = 1" in diffs["new_module.py"]["patch"]
    status = {f["path"]: f for f in repo.get("/file/status").json()}
    for item in status.values():
        validate(item, "File")
    assert status["src/app.py"] == {
        "path": "src/app.py",
        "added": 2,
        "removed": 1,
        "status": "modified",
    }


def test_the_at_picker_finds_files_fuzzily(repo: RoostServer) -> None:
    found = repo.get("/api/fs/find", params={"query": "app"}).json()
    assert found["location"]["directory"] == str(repo.directory)
    assert {"path": "src/app.py", "type": "file"} in found["data"]
    assert all(e["path"] != "build/out.bin" for e in found["data"]), "ignored files are left out"
    assert repo.get("/find/file", params={"query": "nmod"}).json()[0] == "new_module.py"
    dirs = repo.get("/find/file", params={"query": "sr", "type": "directory"}).json()
    assert dirs == ["src/"]


def test_text_search_and_listing_and_content(repo: RoostServer) -> None:
    [match] = repo.get("/find", params={"pattern": "TWO"}).json()
    assert match["path"]["text"] == "src/app.py" and match["line_number"] == 2
    assert match["submatches"][0]["match"]["text"] == "TWO"
    nodes = {n["name"]: n for n in repo.get("/file", params={"path": "."}).json()}
    for node in nodes.values():
        validate(node, "FileNode")
    assert nodes["src"]["type"] == "directory" and nodes["build"]["ignored"] is True
    assert nodes["README.md"]["ignored"] is False
    text = repo.get("/file/content", params={"path": "src/app.py"}).json()
    assert text == {"type": "text", "content": "print('one')\nprint('TWO')\nprint('three')\n"}
    binary = repo.get("/file/content", params={"path": "build/out.bin"}).json()
    validate(binary, "FileContent")
    assert binary["type"] == "binary" and base64.b64decode(binary["content"]) == b"\0\1\2"


def test_paths_outside_the_project_are_refused(repo: RoostServer, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", repo.directory / "link.txt")
    for path in ("../secret.txt", str(tmp_path / "secret.txt"), "link.txt"):
        response = repo.get("/file/content", params={"path": path})
        assert response.status_code == 400, path
        assert "outside the project" in response.json()["data"]["message"]
    assert repo.get("/file", params={"path": ".."}).status_code == 400


def test_routes_the_tui_calls_at_start_answer_with_opencodes_shapes(server: RoostServer) -> None:
    skill = server.directory / ".opencode" / "skill" / "greet"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: greet\ndescription: Greets\n---\nSay hello.\n")
    assert server.get("/skill").json() == [
        {
            "name": "greet",
            "description": "Greets",
            "location": str(skill / "SKILL.md"),
            "content": "Say hello.",
        }
    ]
    assert server.get("/lsp").json() == [] and server.get("/formatter").json() == []
    assert server.get("/provider/auth").json() == {}
    validate(server.get("/experimental/capabilities").json(), "ExperimentalCapabilities")
    project = server.get("/project/current").json()["id"]
    directories = server.get(f"/project/{project}/directories").json()
    validate(directories, "ProjectDirectories")
    # A no-op the TUI's /move dialog calls before listing directories.
    assert server.post(f"/experimental/project/{project}/copy/refresh").status_code == 204
    assert server.get("/vcs").json() == {}  # not a git repository
    assert server.get("/vcs/diff", params={"mode": "git"}).json() == []


def test_a_file_name_that_is_not_utf8_is_listed_not_a_500(server: RoostServer) -> None:
    os.close(os.open(bytes(server.directory) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY))
    names = [n["name"] for n in server.get("/file", params={"path": ""}).json()]
    assert "caf\ufffd.txt" in names
