"""read, write, edit, glob and grep against real files in a temporary project."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from roost.agent.tools.base import PermissionRejected, Tool, ToolError, ToolResult
from roost.agent.tools.edit import EditTool
from roost.agent.tools.glob import GlobTool
from roost.agent.tools.grep import GrepTool
from roost.agent.tools.read import ReadTool
from roost.agent.tools.write import WriteTool
from tests.support.tool_context import LocalToolContext

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ctx(tmp_path: Path) -> LocalToolContext:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "out").mkdir()
    return LocalToolContext(directory=project, output_dir=tmp_path / "out")


async def call(tool: Tool, ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    return await tool.run(tool.parse(arguments), ctx)


async def test_read_numbers_lines_and_windows_with_offset_and_limit(ctx: LocalToolContext) -> None:
    (ctx.directory / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    result = await call(ReadTool(), ctx, filePath="a.txt", offset=2, limit=3)
    assert "00003| line 3" in result.output and "00005| line 5" in result.output
    assert "line 6" not in result.output and "line 2\n" not in result.output
    assert "Use 'offset'" in result.output and result.metadata["truncated"] is True
    full = await call(ReadTool(), ctx, filePath=str(ctx.directory / "a.txt"))
    assert "total 10 lines" in full.output
    assert ctx.asked[-1][0] == "read"


async def test_read_missing_file_says_so_and_suggests(ctx: LocalToolContext) -> None:
    (ctx.directory / "config.yaml").write_text("x")
    with pytest.raises(ToolError, match="File not found") as err:
        await call(ReadTool(), ctx, filePath="config")
    assert "config.yaml" in err.value.message


async def test_read_lists_directories_and_refuses_binary(ctx: LocalToolContext) -> None:
    (ctx.directory / "sub").mkdir()
    (ctx.directory / "b.bin").write_bytes(b"\x00\x01\x02")
    listing = await call(ReadTool(), ctx, filePath=".")
    assert listing.output.splitlines() == ["b.bin", "sub/"]
    with pytest.raises(ToolError, match="binary"):
        await call(ReadTool(), ctx, filePath="b.bin")


async def test_paths_outside_the_project_need_external_directory(
    ctx: LocalToolContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.txt"
    ctx.rules["external_directory"] = "deny"
    with pytest.raises(PermissionRejected):
        await call(WriteTool(), ctx, filePath=str(outside), content="nope")
    assert not outside.exists()
    assert ctx.asked[-1][0] == "external_directory"
    ctx.rules["external_directory"] = "allow"
    await call(WriteTool(), ctx, filePath=str(outside), content="yes")
    assert outside.read_text() == "yes"


async def test_write_creates_folders_and_asks_edit_with_a_diff(ctx: LocalToolContext) -> None:
    created = await call(WriteTool(), ctx, filePath="deep/new.py", content="x = 1\n")
    assert (ctx.directory / "deep/new.py").read_text() == "x = 1\n"
    assert created.output.startswith("Created") and created.metadata["exists"] is False
    permission, patterns, metadata = ctx.asked[-1]
    assert permission == "edit" and patterns == ["deep/new.py"]
    assert "+x = 1" in metadata["diff"]
    again = await call(WriteTool(), ctx, filePath="deep/new.py", content="x = 2\n")
    assert again.output.startswith("Overwrote")


async def test_denied_edit_writes_nothing(ctx: LocalToolContext) -> None:
    ctx.rules["edit"] = "deny"
    with pytest.raises(PermissionRejected):
        await call(WriteTool(), ctx, filePath="f.txt", content="x")
    assert not (ctx.directory / "f.txt").exists()


async def test_edit_replaces_exactly_once(ctx: LocalToolContext) -> None:
    target = ctx.directory / "m.py"
    target.write_text("def f():\n    return 1\n")
    result = await call(
        EditTool(), ctx, filePath="m.py", oldString="return 1", newString="return 2"
    )
    assert target.read_text() == "def f():\n    return 2\n"
    assert result.metadata["additions"] == 1 and result.metadata["deletions"] == 1


async def test_edit_errors_are_clear(ctx: LocalToolContext) -> None:
    target = ctx.directory / "m.py"
    target.write_text("a = 1\na = 1\n")
    with pytest.raises(ToolError, match="found 2 times"):
        await call(EditTool(), ctx, filePath="m.py", oldString="a = 1", newString="a = 2")
    with pytest.raises(ToolError, match="not found"):
        await call(EditTool(), ctx, filePath="m.py", oldString="b = 1", newString="b = 2")
    with pytest.raises(ToolError, match="the same"):
        await call(EditTool(), ctx, filePath="m.py", oldString="a", newString="a")
    with pytest.raises(ToolError, match="File not found"):
        await call(EditTool(), ctx, filePath="none.py", oldString="a", newString="b")
    assert target.read_text() == "a = 1\na = 1\n"


async def test_edit_replace_all_and_create_with_empty_old_string(ctx: LocalToolContext) -> None:
    target = ctx.directory / "m.py"
    target.write_text("a = 1\na = 1\n")
    await call(
        EditTool(), ctx, filePath="m.py", oldString="a = 1", newString="b = 2", replaceAll=True
    )
    assert target.read_text() == "b = 2\nb = 2\n"
    await call(EditTool(), ctx, filePath="fresh.txt", oldString="", newString="hello")
    assert (ctx.directory / "fresh.txt").read_text() == "hello"


def _tree(root: Path) -> None:
    (root / "src").mkdir()
    (root / "src" / "old.py").write_text("needle = 'old'\n")
    past = time.time() - 100
    os.utime(root / "src" / "old.py", (past, past))
    (root / "src" / "new.py").write_text("needle = 'new'\nhay = 1\n")
    (root / "build").mkdir()
    (root / "build" / "gen.py").write_text("needle = 'ignored'\n")
    (root / ".gitignore").write_text("build/\n")


async def test_glob_honours_gitignore_and_sorts_newest_first(ctx: LocalToolContext) -> None:
    _tree(ctx.directory)
    result = await call(GlobTool(), ctx, pattern="**/*.py")
    assert result.output.splitlines() == [
        str(ctx.directory / "src/new.py"),
        str(ctx.directory / "src/old.py"),
    ]
    none = await call(GlobTool(), ctx, pattern="*.rs")
    assert none.output == "No files found"


async def test_grep_finds_matches_by_file_and_honours_gitignore(ctx: LocalToolContext) -> None:
    _tree(ctx.directory)
    result = await call(GrepTool(), ctx, pattern=r"needle = '\w+'", include="*.py")
    assert result.metadata["matches"] == 2
    assert "ignored" not in result.output
    new_at, old_at = result.output.index("new.py"), result.output.index("old.py")
    assert new_at < old_at
    assert "Line 1: needle = 'new'" in result.output
    missing = await call(GrepTool(), ctx, pattern="absent-token")
    assert missing.output == "No files found"
    with pytest.raises(ToolError, match="grep failed"):
        await call(GrepTool(), ctx, pattern="(unclosed")
