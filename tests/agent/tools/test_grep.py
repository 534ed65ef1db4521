"""grep through the real ripgrep, in a temporary git repository.

ripgrep applies ``.gitignore`` only inside a git repository (see ``roost.agent.tools.ripgrep``),
so the project fixture is a real ``git init``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from roost.agent.tools.base import PermissionRejected, ToolError, ToolResult
from roost.agent.tools.grep import GrepTool
from roost.agent.tools.ripgrep import run_rg
from tests.support.tool_context import LocalToolContext

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def touch(path: Path, text: str, *, age_s: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


@pytest.fixture
def ctx(tmp_path: Path) -> LocalToolContext:
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    touch(project / "src" / "old.py", "needle = 'old'\n", age_s=100)
    touch(project / "src" / "new.py", "hay = 0\nneedle = 'new'\nneedle2 = 'new'\n", age_s=10)
    touch(project / "notes.txt", "needle in the notes\n", age_s=50)
    touch(project / "build" / "gen.py", "needle = 'ignored'\n")
    touch(project / ".gitignore", "build/\n")
    (tmp_path / "out").mkdir()
    return LocalToolContext(directory=project, output_dir=tmp_path / "out")


def processes_mentioning(text: str) -> list[str]:
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(proc.name)
    return found


async def grep(ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    tool = GrepTool()
    return await tool.run(tool.parse(arguments), ctx)


async def test_grep_groups_matches_by_file_newest_file_first(ctx: LocalToolContext) -> None:
    result = await grep(ctx, pattern=r"needle\d? = '\w+'")
    root = ctx.directory
    assert result.output == (
        "Found 3 matches\n"
        f"{root}/src/new.py:\n"
        "  Line 2: needle = 'new'\n"
        "  Line 3: needle2 = 'new'\n"
        "\n"
        f"{root}/src/old.py:\n"
        "  Line 1: needle = 'old'"
    )
    assert result.title == r"needle\d? = '\w+'"
    assert result.metadata == {"matches": 3, "truncated": False}
    assert ctx.asked[-1][:2] == ("grep", [r"needle\d? = '\w+'"])


async def test_gitignored_files_are_not_searched(ctx: LocalToolContext) -> None:
    result = await grep(ctx, pattern="needle")
    assert "'ignored'" not in result.output and "gen.py" not in result.output
    assert result.metadata["matches"] == 4


async def test_include_limits_the_files_searched(ctx: LocalToolContext) -> None:
    result = await grep(ctx, pattern="needle", include="*.txt")
    notes = ctx.directory / "notes.txt"
    assert result.output == f"Found 1 matches\n{notes}:\n  Line 1: needle in the notes"


async def test_path_may_be_a_folder_or_one_file(ctx: LocalToolContext) -> None:
    in_src = await grep(ctx, pattern="needle", path="src")
    assert in_src.metadata["matches"] == 3 and "notes.txt" not in in_src.output
    one = await grep(ctx, pattern="needle", path="src/old.py")
    assert one.output == f"Found 1 matches\n{ctx.directory}/src/old.py:\n  Line 1: needle = 'old'"


async def test_no_match_is_an_answer_not_an_error(ctx: LocalToolContext) -> None:
    result = await grep(ctx, pattern="absent-token")
    assert result.output == "No files found"
    assert result.metadata == {"matches": 0, "truncated": False}


async def test_an_invalid_regex_is_an_error_with_ripgreps_message(ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError) as err:
        await grep(ctx, pattern="(unclosed")
    assert err.value.message.startswith("grep failed: ")
    assert "regex parse error" in err.value.message


async def test_a_missing_path_is_an_error(ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError) as err:
        await grep(ctx, pattern="needle", path="nowhere")
    assert err.value.message == f"Path not found: {ctx.directory / 'nowhere'}"


async def test_at_most_100_matches_are_shown_with_a_note(ctx: LocalToolContext) -> None:
    touch(ctx.directory / "many.txt", "hit\n" * 150)
    result = await grep(ctx, pattern="^hit$")
    lines = result.output.splitlines()
    assert lines[0] == "Found 150 matches"
    assert lines[-3:] == [
        "  Line 100: hit",
        "",
        "(Results truncated: showing 100 of 150 matches. "
        "Use a more specific pattern, path or include to see others.)",
    ]
    assert result.metadata == {"matches": 150, "truncated": True}


async def test_long_matching_lines_are_cut(ctx: LocalToolContext) -> None:
    touch(ctx.directory / "min.js", "x" * 5000 + "needle" + "y" * 5000 + "\n")
    result = await grep(ctx, pattern="needle", include="*.js")
    line = result.output.splitlines()[2]
    assert line.startswith("  Line 1: xxxx") and len(line) < 2100
    assert "omitted end of long line" in line


async def test_searching_outside_the_project_needs_external_directory(
    ctx: LocalToolContext, tmp_path: Path
) -> None:
    outside = touch(tmp_path / "elsewhere" / "x.py", "needle\n")
    ctx.rules["external_directory"] = "deny"
    with pytest.raises(PermissionRejected):
        await grep(ctx, pattern="needle", path=str(outside.parent))
    with pytest.raises(PermissionRejected):
        await grep(ctx, pattern="needle", path=str(outside))
    assert [(p, patterns) for p, patterns, _ in ctx.asked] == [
        ("external_directory", [f"{outside.parent}/*"]),
        ("external_directory", [f"{outside.parent}/*"]),
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
async def test_unreadable_paths_give_a_partial_result_with_a_note(ctx: LocalToolContext) -> None:
    locked = ctx.directory / "locked"
    touch(locked / "a.py", "needle\n")
    locked.chmod(0)
    try:
        result = await grep(ctx, pattern="needle")
    finally:
        locked.chmod(0o755)
    assert result.metadata["matches"] == 4
    assert "(Some paths could not be searched: " in result.output


async def test_cancelling_a_search_kills_ripgrep(ctx: LocalToolContext) -> None:
    fifo = ctx.directory / "pipe"
    os.mkfifo(fifo)  # opening a FIFO with no writer blocks rg until it is killed
    with anyio.move_on_after(0.5) as scope:
        await run_rg(["needle", str(fifo)], ctx.directory)
    assert scope.cancelled_caught
    assert processes_mentioning(str(fifo)) == [], "rg is still running"
