"""Undo that restores files, through a real server: steps that run write, edit or bash record
snapshots (step-start/step-finish ``snapshot``, ``patch`` parts); revert puts the files back as
they were at the revert point, unrevert brings the agent's changes back, ``/diff`` reports them,
and the user's own ``.git`` is never touched."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.openapi import validate
from tests.support.scripted_llm import ScriptedLLM, ToolCall, Turn, text_turn, tool_turn
from tests.support.server import RoostServer

pytestmark = pytest.mark.e2e

ORIGINAL = {
    "a.txt": "alpha\nbeta\n",
    "b.txt": "to be deleted\n",
    "keep.txt": "untouched\n",
    "sub/c.txt": "nested\n",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` as a user would (a fixed identity, nothing from the test's env)."""
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout


def tree_digest(root: Path) -> str:
    """A hash of every path, mode and byte under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_mode}\0".encode())
        if path.is_symlink():
            digest.update(str(path.readlink()).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def project_files(project: Path) -> dict[str, str]:
    """The project's files (relative path → text), leaving out .git, .gitignore, opencode.json
    and the server's .xdg-* directories."""
    found = {}
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project).as_posix()
        if path.is_file() and not rel.startswith((".git", ".xdg-")) and rel != "opencode.json":
            found[rel] = path.read_text()
    return found


def write_files(project: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)


@pytest.fixture
def repo(project: Path) -> Path:
    """The project as a git repository with two commits and a .gitignore."""
    write_files(project, {k: v for k, v in ORIGINAL.items() if k != "sub/c.txt"})
    (project / ".gitignore").write_text(".xdg-*/\nopencode.json\nignored.log\n")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    write_files(project, {"sub/c.txt": ORIGINAL["sub/c.txt"]})
    git(project, "add", "-A")
    git(project, "commit", "-qm", "second")
    return project


@pytest.fixture
def repo_server(repo: Path, tmp_path: Path) -> Iterator[RoostServer]:
    srv = RoostServer(repo, tmp_path / "roost.db").start()
    try:
        yield srv
    finally:
        srv.close()


def agent_changes(llm: ScriptedLLM, *, bash_also: str = "true") -> None:
    """One turn: a step that writes a new file and edits one, a step whose bash deletes one
    and creates a nested one (then runs ``bash_also``), then an answer."""
    llm.enqueue(
        Turn(
            [
                ToolCall("write", {"filePath": "new.txt", "content": "brand new\n"}),
                ToolCall("edit", {"filePath": "a.txt", "oldString": "alpha", "newString": "ALPHA"}),
            ]
        ),
        tool_turn(
            "bash", {"command": f"rm b.txt && mkdir -p d/e && echo deep > d/e/f.txt && {bash_also}"}
        ),
        text_turn("done"),
    )


AFTER_AGENT = {
    "a.txt": "ALPHA\nbeta\n",
    "d/e/f.txt": "deep\n",
    "keep.txt": "untouched\n",
    "new.txt": "brand new\n",
    "sub/c.txt": "nested\n",
}


def parts_of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [p for m in messages for p in m["parts"] if p["type"] == kind]


def test_revert_restores_edits_new_files_and_deletions_and_unrevert_brings_them_back(
    repo_server: RoostServer, llm: ScriptedLLM, repo: Path
) -> None:
    dot_git = tree_digest(repo / ".git")
    sid = repo_server.create_session()["id"]
    agent_changes(llm, bash_also="echo log > ignored.log")  # .gitignore'd: never reverted
    msgs = repo_server.prompt(sid, "change things")
    assert project_files(repo) == {**AFTER_AGENT, "ignored.log": "log\n"}
    (repo / "keep.txt").write_text("the user's own edit\n")  # not the agent's: revert keeps it
    user_side = {"keep.txt": "the user's own edit\n", "ignored.log": "log\n"}

    patches = parts_of(msgs, "patch")
    assert [sorted(p["files"]) for p in patches] == [
        [str(repo / "a.txt"), str(repo / "new.txt")],
        [str(repo / "b.txt"), str(repo / "d/e/f.txt")],
    ]
    for part in [*patches, *parts_of(msgs, "step-start"), *parts_of(msgs, "step-finish")]:
        validate(part, "Part")
    tool_steps = [m for m in msgs if parts_of([m], "patch")]
    for step in tool_steps:  # the patch names the snapshot the step started from
        (start,) = parts_of([step], "step-start")
        (finish,) = parts_of([step], "step-finish")
        (patch,) = parts_of([step], "patch")
        assert patch["hash"] == start["snapshot"] != finish["snapshot"]
    assert "snapshot" not in parts_of([msgs[-1]], "step-start")[0]  # a step without tools

    user = msgs[0]["info"]["id"]
    reverted = repo_server.post(f"/session/{sid}/revert", json={"messageID": user})
    assert reverted.status_code == 200, reverted.text
    session = reverted.json()
    validate(session, "Session")
    assert session["revert"]["messageID"] == user
    assert "+++ b/a.txt" in session["revert"]["diff"]
    assert project_files(repo) == {**ORIGINAL, **user_side}
    assert not (repo / "d").exists()

    unreverted = repo_server.post(f"/session/{sid}/unrevert")
    assert unreverted.status_code == 200, unreverted.text
    assert "revert" not in unreverted.json()
    assert project_files(repo) == {**AFTER_AGENT, **user_side}
    assert tree_digest(repo / ".git") == dot_git


def test_diff_reports_what_a_turn_changed_from_its_snapshots(
    repo_server: RoostServer, llm: ScriptedLLM, repo: Path
) -> None:
    sid = repo_server.create_session()["id"]
    agent_changes(llm)
    user = repo_server.prompt(sid, "change things")[0]["info"]["id"]
    response = repo_server.get(f"/session/{sid}/diff", params={"messageID": user})
    assert response.status_code == 200, response.text
    diffs = response.json()
    for item in diffs:
        validate(item, "SnapshotFileDiff")
    summary = {d["file"]: (d["status"], d["additions"], d["deletions"]) for d in diffs}
    assert summary == {
        "a.txt": ("modified", 1, 1),
        "b.txt": ("deleted", 0, 1),
        "d/e/f.txt": ("added", 1, 0),
        "new.txt": ("added", 1, 0),
    }
    assert "-alpha\n+ALPHA\n" in next(d["patch"] for d in diffs if d["file"] == "a.txt")
    assert repo_server.get(f"/session/{sid}/diff").json() == diffs  # the whole session


def test_revert_to_a_later_turn_keeps_the_earlier_turns_files_and_a_new_prompt_keeps_them(
    repo_server: RoostServer, llm: ScriptedLLM, repo: Path
) -> None:
    sid = repo_server.create_session()["id"]
    llm.enqueue(
        tool_turn("write", {"filePath": "a.txt", "content": "first turn\n"}), text_turn("1")
    )
    repo_server.prompt(sid, "one")
    llm.enqueue(
        Turn(
            [
                ToolCall("write", {"filePath": "a.txt", "content": "second turn\n"}),
                ToolCall("write", {"filePath": "two.txt", "content": "2\n"}),
            ]
        ),
        text_turn("2"),
    )
    msgs = repo_server.prompt(sid, "two")
    second = next(
        m for m in msgs if m["info"]["role"] == "user" and m["info"]["id"] != msgs[0]["info"]["id"]
    )
    reverted = repo_server.post(f"/session/{sid}/revert", json={"messageID": second["info"]["id"]})
    assert reverted.status_code == 200, reverted.text
    assert (repo / "a.txt").read_text() == "first turn\n"
    assert not (repo / "two.txt").exists()

    llm.enqueue(text_turn("fresh"))
    msgs = repo_server.prompt(sid, "three")  # drops the reverted turn, leaves the files
    assert [m["info"]["role"] for m in msgs] == [
        "user",
        "assistant",
        "assistant",
        "user",
        "assistant",
    ]
    assert (repo / "a.txt").read_text() == "first turn\n"
    assert not (repo / "two.txt").exists()
    assert "revert" not in repo_server.get(f"/session/{sid}").json()


def test_a_directory_that_is_not_a_git_repository_is_restored_too(
    server: RoostServer, llm: ScriptedLLM, project: Path
) -> None:
    write_files(project, ORIGINAL)
    sid = server.create_session()["id"]
    agent_changes(llm)
    user = server.prompt(sid, "change things")[0]["info"]["id"]
    assert project_files(project) == AFTER_AGENT
    assert server.post(f"/session/{sid}/revert", json={"messageID": user}).status_code == 200
    assert project_files(project) == ORIGINAL
    assert server.post(f"/session/{sid}/unrevert").status_code == 200
    assert project_files(project) == AFTER_AGENT
    assert not (project / ".git").exists()
