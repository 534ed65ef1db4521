"""edit against real files in a temporary project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roost.agent.tools.base import PermissionRejected, ToolError, ToolResult
from roost.agent.tools.edit import EditTool
from tests.support.tool_context import LocalToolContext

pytestmark = pytest.mark.anyio

SOURCE = "def f():\n    return 1\n\n\ndef g():\n    return 1\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ctx(tmp_path: Path) -> LocalToolContext:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "out").mkdir()
    return LocalToolContext(directory=project, output_dir=tmp_path / "out")


@pytest.fixture
def module(ctx: LocalToolContext) -> Path:
    path = ctx.directory / "m.py"
    path.write_text(SOURCE)
    return path


def text_of(path: Path) -> str:
    return path.read_text()


async def edit(ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    tool = EditTool()
    return await tool.run(tool.parse(arguments), ctx)


async def test_edit_replaces_the_one_occurrence(ctx: LocalToolContext, module: Path) -> None:
    result = await edit(
        ctx,
        filePath="m.py",
        oldString="def g():\n    return 1",
        newString="def g():\n    return 2",
    )
    assert text_of(module) == "def f():\n    return 1\n\n\ndef g():\n    return 2\n"
    assert result.output == "Edit applied successfully."
    assert result.title == "m.py"
    diff = result.metadata["diff"]
    assert "-    return 1\n+    return 2\n" in diff
    assert result.metadata["filepath"] == str(module)
    assert result.metadata["diagnostics"] == {}
    assert (result.metadata["additions"], result.metadata["deletions"]) == (1, 1)
    permission, patterns, metadata = ctx.asked[-1]
    assert (permission, patterns) == ("edit", ["m.py"])
    assert metadata == {"filepath": str(module), "diff": diff}


async def test_identical_strings_are_refused_before_anything_is_asked(
    ctx: LocalToolContext, module: Path
) -> None:
    with pytest.raises(ToolError, match="oldString and newString are identical"):
        await edit(ctx, filePath="m.py", oldString="return 1", newString="return 1")
    assert ctx.asked == []


async def test_missing_old_string_says_to_copy_the_text_exactly(
    ctx: LocalToolContext, module: Path
) -> None:
    with pytest.raises(ToolError) as err:
        await edit(ctx, filePath="m.py", oldString="return  1", newString="return 2")
    assert err.value.message.startswith("oldString was not found in m.py.")
    assert "whitespace" in err.value.message
    assert text_of(module) == SOURCE


async def test_ambiguous_old_string_says_how_often_and_what_to_do(
    ctx: LocalToolContext, module: Path
) -> None:
    with pytest.raises(ToolError) as err:
        await edit(ctx, filePath="m.py", oldString="return 1", newString="return 2")
    assert "found 2 times in m.py" in err.value.message
    assert "surrounding lines" in err.value.message and "replaceAll" in err.value.message
    assert text_of(module) == SOURCE
    assert ctx.asked == []


async def test_replace_all_changes_every_occurrence(ctx: LocalToolContext, module: Path) -> None:
    result = await edit(
        ctx, filePath="m.py", oldString="return 1", newString="return 2", replaceAll=True
    )
    assert text_of(module) == SOURCE.replace("return 1", "return 2")
    assert result.output == "Edit applied successfully (2 occurrences replaced)."
    assert (result.metadata["additions"], result.metadata["deletions"]) == (2, 2)


async def test_missing_file_is_not_found(ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError) as err:
        await edit(ctx, filePath="none.py", oldString="a", newString="b")
    assert err.value.message == f"File not found: {ctx.directory / 'none.py'}"
    assert not (ctx.directory / "none.py").exists()


async def test_empty_old_string_creates_a_new_file(ctx: LocalToolContext) -> None:
    result = await edit(ctx, filePath="pkg/fresh.py", oldString="", newString="x = 1\n")
    target = ctx.directory / "pkg" / "fresh.py"
    assert target.read_text() == "x = 1\n"
    assert result.output == f"Created {target}."
    assert (result.metadata["additions"], result.metadata["deletions"]) == (1, 0)
    assert ctx.asked[-1][:2] == ("edit", ["pkg/fresh.py"])


async def test_empty_old_string_never_overwrites_an_existing_file(
    ctx: LocalToolContext, module: Path
) -> None:
    with pytest.raises(ToolError, match="already exists"):
        await edit(ctx, filePath="m.py", oldString="", newString="oops")
    assert text_of(module) == SOURCE


async def test_crlf_files_are_matched_and_kept_crlf(ctx: LocalToolContext) -> None:
    target = ctx.directory / "win.txt"
    target.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await edit(ctx, filePath="win.txt", oldString="one\ntwo\n", newString="1\n2\n")
    assert target.read_bytes() == b"1\r\n2\r\nthree\r\n"


async def test_files_that_are_not_utf8_are_left_alone(ctx: LocalToolContext) -> None:
    target = ctx.directory / "latin1.txt"
    target.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ToolError, match="not UTF-8"):
        await edit(ctx, filePath="latin1.txt", oldString="caf", newString="CAF")
    assert target.read_bytes() == "café\n".encode("latin-1")


async def test_a_directory_is_not_edited(ctx: LocalToolContext) -> None:
    (ctx.directory / "pkg").mkdir()
    with pytest.raises(ToolError, match="Path is a directory"):
        await edit(ctx, filePath="pkg", oldString="a", newString="b")


async def test_denied_edit_changes_nothing(ctx: LocalToolContext, module: Path) -> None:
    ctx.rules["edit"] = "deny"
    with pytest.raises(PermissionRejected):
        await edit(ctx, filePath="m.py", oldString="def f", newString="def h")
    assert text_of(module) == SOURCE


async def test_editing_outside_the_project_needs_external_directory(
    ctx: LocalToolContext, tmp_path: Path
) -> None:
    outside = tmp_path / "other.py"
    outside.write_text("a = 1\n")
    ctx.rules["external_directory"] = "deny"
    with pytest.raises(PermissionRejected):
        await edit(ctx, filePath=str(outside), oldString="a = 1", newString="a = 2")
    assert outside.read_text() == "a = 1\n"
    assert [(p, patterns) for p, patterns, _ in ctx.asked] == [
        ("external_directory", [f"{tmp_path}/*"])
    ]
