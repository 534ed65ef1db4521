"""glob through the real ripgrep, in temporary git repositories and plain folders.

ripgrep applies ``.gitignore`` only inside a git repository (see ``roost.agent.tools.ripgrep``),
so the project fixture is a real ``git init``; ``plain`` is a folder outside any repository.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from roost.agent.tools.base import PermissionRejected, ToolError, ToolResult
from roost.agent.tools.glob import GlobTool
from tests.support.tool_context import LocalToolContext

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def touch(path: Path, text: str = "x\n", *, age_s: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


def tree(root: Path) -> None:
    touch(root / "src" / "old.py", age_s=100)
    touch(root / "src" / "new.py", age_s=10)
    touch(root / "build" / "gen.py")
    touch(root / ".github" / "ci.yml")
    touch(root / ".gitignore", "build/\n")


@pytest.fixture
def ctx(tmp_path: Path) -> LocalToolContext:
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (tmp_path / "out").mkdir()
    return LocalToolContext(directory=project, output_dir=tmp_path / "out")


@pytest.fixture
def plain(tmp_path: Path) -> LocalToolContext:
    project = tmp_path / "plain"
    project.mkdir()
    return LocalToolContext(directory=project, output_dir=tmp_path)


async def glob(ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    tool = GlobTool()
    return await tool.run(tool.parse(arguments), ctx)


async def test_glob_lists_absolute_paths_newest_first(ctx: LocalToolContext) -> None:
    tree(ctx.directory)
    result = await glob(ctx, pattern="**/*.py")
    assert result.output == f"{ctx.directory}/src/new.py\n{ctx.directory}/src/old.py"
    assert result.metadata == {"count": 2, "truncated": False}
    assert ctx.asked[-1][:2] == ("glob", ["**/*.py"])


async def test_a_pattern_without_a_slash_matches_at_any_depth(ctx: LocalToolContext) -> None:
    tree(ctx.directory)
    result = await glob(ctx, pattern="*.py")
    assert result.output.splitlines() == [
        f"{ctx.directory}/src/new.py",
        f"{ctx.directory}/src/old.py",
    ]


async def test_gitignored_files_are_left_out_and_dotfiles_are_listed(
    ctx: LocalToolContext,
) -> None:
    tree(ctx.directory)
    result = await glob(ctx, pattern="**/*.{py,yml}")
    names = {str(Path(line).relative_to(ctx.directory)) for line in result.output.splitlines()}
    assert names == {"src/old.py", "src/new.py", ".github/ci.yml"}


async def test_the_git_folder_is_never_listed(ctx: LocalToolContext) -> None:
    tree(ctx.directory)
    assert (ctx.directory / ".git" / "HEAD").exists()
    result = await glob(ctx, pattern="**/*")
    assert "/.git/" not in result.output
    assert f"{ctx.directory}/.gitignore" in result.output.splitlines()


async def test_outside_a_git_repository_gitignore_does_not_apply_but_ignore_does(
    plain: LocalToolContext,
) -> None:
    tree(plain.directory)
    touch(plain.directory / "dist" / "bundle.py")
    touch(plain.directory / ".ignore", "dist/\n")
    result = await glob(plain, pattern="**/*.py")
    names = {str(Path(line).relative_to(plain.directory)) for line in result.output.splitlines()}
    assert names == {"src/old.py", "src/new.py", "build/gen.py"}


async def test_no_match_says_no_files_found(ctx: LocalToolContext) -> None:
    tree(ctx.directory)
    result = await glob(ctx, pattern="**/*.rs")
    assert result.output == "No files found"
    assert result.metadata == {"count": 0, "truncated": False}


async def test_more_than_100_matches_keeps_the_newest_and_says_so(ctx: LocalToolContext) -> None:
    for i in range(105):
        touch(ctx.directory / f"f{i:03d}.txt", age_s=1000 - i)
    result = await glob(ctx, pattern="*.txt")
    lines = result.output.splitlines()
    assert lines[:2] == [f"{ctx.directory}/f104.txt", f"{ctx.directory}/f103.txt"]
    assert lines[99] == f"{ctx.directory}/f005.txt"
    assert lines[100:] == [
        "",
        "(Showing the 100 most recently modified of 105 files. "
        "Use a more specific path or pattern to see others.)",
    ]
    assert result.metadata == {"count": 105, "truncated": True}


async def test_path_narrows_the_search_to_a_folder(ctx: LocalToolContext) -> None:
    tree(ctx.directory)
    touch(ctx.directory / "top.py")
    result = await glob(ctx, pattern="*.py", path="src")
    assert result.output.splitlines() == [
        f"{ctx.directory}/src/new.py",
        f"{ctx.directory}/src/old.py",
    ]
    assert result.title == "src"


async def test_path_must_be_an_existing_directory(ctx: LocalToolContext) -> None:
    touch(ctx.directory / "file.txt")
    with pytest.raises(ToolError) as err:
        await glob(ctx, pattern="*", path="file.txt")
    assert err.value.message == f"glob path must be a directory: {ctx.directory / 'file.txt'}"
    with pytest.raises(ToolError) as missing:
        await glob(ctx, pattern="*", path="nowhere")
    assert missing.value.message == f"Directory not found: {ctx.directory / 'nowhere'}"


async def test_an_invalid_pattern_reports_ripgreps_error(ctx: LocalToolContext) -> None:
    touch(ctx.directory / "a.txt")
    with pytest.raises(ToolError) as err:
        await glob(ctx, pattern="src/{a,b")
    assert err.value.message.startswith("glob failed: ")
    assert "error parsing glob" in err.value.message


async def test_searching_outside_the_project_needs_external_directory(
    ctx: LocalToolContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    touch(outside / "x.py")
    ctx.rules["external_directory"] = "deny"
    with pytest.raises(PermissionRejected):
        await glob(ctx, pattern="*.py", path=str(outside))
    assert [(p, patterns) for p, patterns, _ in ctx.asked] == [
        ("external_directory", [f"{outside}/*"])
    ]
