"""write against real files in a temporary project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roost.agent.tools.base import PermissionRejected, ToolError, ToolResult
from roost.agent.tools.write import WriteTool, unified_diff
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


async def write(ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    tool = WriteTool()
    return await tool.run(tool.parse(arguments), ctx)


async def test_write_creates_the_file_and_its_folders(ctx: LocalToolContext) -> None:
    target = ctx.directory / "deep" / "er" / "new.py"
    result = await write(ctx, filePath="deep/er/new.py", content="x = 1\n")
    assert target.read_text() == "x = 1\n"
    assert result.output == f"Created {target} (6 bytes)."
    assert result.title == "deep/er/new.py"
    assert result.metadata == {"diagnostics": {}, "filepath": str(target), "exists": False}


async def test_write_asks_edit_permission_with_a_diff(ctx: LocalToolContext) -> None:
    await write(ctx, filePath="new.py", content="x = 1\n")
    permission, patterns, metadata = ctx.asked[-1]
    target = ctx.directory / "new.py"
    assert (permission, patterns) == ("edit", ["new.py"])
    assert metadata == {
        "filepath": str(target),
        "diff": f"--- {target}\n+++ {target}\n@@ -0,0 +1 @@\n+x = 1\n",
    }


async def test_write_overwrites_and_says_so(ctx: LocalToolContext) -> None:
    target = ctx.directory / "run.sh"
    target.write_text("echo old\n")
    target.chmod(0o750)
    result = await write(ctx, filePath=str(target), content="echo new\n")
    assert target.read_text() == "echo new\n"
    assert result.output.startswith(f"Overwrote {target}")
    assert result.metadata["exists"] is True
    assert "-echo old\n+echo new\n" in ctx.asked[-1][2]["diff"]
    assert target.stat().st_mode & 0o777 == 0o750, "the file keeps its mode"
    assert sorted(p.name for p in ctx.directory.iterdir()) == ["run.sh"], "no temporary left"


async def test_denied_edit_writes_nothing(ctx: LocalToolContext) -> None:
    existing = ctx.directory / "keep.txt"
    existing.write_text("original")
    ctx.rules["edit"] = "deny"
    with pytest.raises(PermissionRejected):
        await write(ctx, filePath="new.txt", content="x")
    with pytest.raises(PermissionRejected):
        await write(ctx, filePath="keep.txt", content="changed")
    assert not (ctx.directory / "new.txt").exists()
    assert existing.read_text() == "original"


async def test_writing_outside_the_project_needs_external_directory(
    ctx: LocalToolContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.txt"
    ctx.rules["external_directory"] = "deny"
    with pytest.raises(PermissionRejected):
        await write(ctx, filePath=str(outside), content="nope")
    assert not outside.exists()
    assert [(p, patterns) for p, patterns, _ in ctx.asked] == [
        ("external_directory", [f"{tmp_path}/*"])
    ]
    ctx.rules["external_directory"] = "allow"
    result = await write(ctx, filePath="../elsewhere.txt", content="yes")
    assert outside.read_text() == "yes"
    assert result.title == str(outside)
    assert ctx.asked[-1][:2] == ("edit", [str(outside)])


async def test_writing_over_a_directory_is_an_error(ctx: LocalToolContext) -> None:
    (ctx.directory / "pkg").mkdir()
    with pytest.raises(ToolError) as err:
        await write(ctx, filePath="pkg", content="x")
    assert err.value.message == f"Path is a directory, not a file: {ctx.directory / 'pkg'}"


async def test_content_is_written_byte_for_byte(ctx: LocalToolContext) -> None:
    await write(ctx, filePath="w.txt", content="crlf\r\nunicode ✓\nno newline")
    assert (ctx.directory / "w.txt").read_bytes() == "crlf\r\nunicode ✓\nno newline".encode()


def test_unified_diff_marks_a_missing_final_newline() -> None:
    assert unified_diff("f", "a\nb", "a\nc") == (
        "--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n"
        "-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
    )
