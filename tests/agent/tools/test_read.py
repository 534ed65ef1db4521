"""read against real files and folders in a temporary project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from roost.agent.tools.base import PermissionRejected, ToolError, ToolResult, truncate_output
from roost.agent.tools.read import ReadTool
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


async def read(ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    tool = ReadTool()
    return await tool.run(tool.parse(arguments), ctx)


def numbered(path: Path, count: int) -> Path:
    path.write_text("".join(f"line {i}\n" for i in range(1, count + 1)))
    return path


async def test_read_numbers_lines_in_opencodes_format(ctx: LocalToolContext) -> None:
    target = ctx.directory / "app.py"
    target.write_text("import os\n\nprint(os.sep)\n")
    result = await read(ctx, filePath="app.py")
    assert result.output == (
        f"<path>{target}</path>\n<type>file</type>\n<content>\n"
        "1: import os\n2: \n3: print(os.sep)\n\n(End of file - total 3 lines)\n</content>"
    )
    assert result.title == "app.py"
    assert result.metadata == {
        "preview": "import os\n\nprint(os.sep)",
        "truncated": False,
        "loaded": [],
    }


async def test_read_asks_read_permission_for_the_project_relative_path(
    ctx: LocalToolContext,
) -> None:
    (ctx.directory / "src").mkdir()
    (ctx.directory / "src" / "a.txt").write_text("a\n")
    await read(ctx, filePath=str(ctx.directory / "src" / "a.txt"))
    assert [(p, patterns) for p, patterns, _ in ctx.asked] == [("read", ["src/a.txt"])]
    ctx.rules["read"] = "deny"
    with pytest.raises(PermissionRejected):
        await read(ctx, filePath="src/a.txt")


async def test_offset_and_limit_window_the_file_and_the_trailer_says_how_to_go_on(
    ctx: LocalToolContext,
) -> None:
    numbered(ctx.directory / "a.txt", 10)
    window = await read(ctx, filePath="a.txt", offset=3, limit=3)
    assert "\n3: line 3\n4: line 4\n5: line 5\n\n" in window.output
    assert "2: line 2" not in window.output and "6: line 6" not in window.output
    assert "(Showing lines 3-5 of 10. Use offset=6 to continue.)" in window.output
    assert window.metadata["truncated"] is True
    assert window.metadata["preview"] == "line 3\nline 4\nline 5"
    rest = await read(ctx, filePath="a.txt", offset=6)
    assert "6: line 6" in rest.output and "10: line 10" in rest.output
    assert "(End of file - total 10 lines)" in rest.output
    assert rest.metadata["truncated"] is False


async def test_offset_zero_means_the_first_line(ctx: LocalToolContext) -> None:
    numbered(ctx.directory / "a.txt", 2)
    result = await read(ctx, filePath="a.txt", offset=0)
    assert "<content>\n1: line 1\n2: line 2\n" in result.output


async def test_offset_past_the_end_is_an_error(ctx: LocalToolContext) -> None:
    numbered(ctx.directory / "a.txt", 10)
    with pytest.raises(ToolError) as err:
        await read(ctx, filePath="a.txt", offset=11)
    assert err.value.message == "Offset 11 is out of range for this file (10 lines)"


async def test_an_empty_file_reads_as_zero_lines(ctx: LocalToolContext) -> None:
    (ctx.directory / "empty.txt").write_text("")
    result = await read(ctx, filePath="empty.txt")
    assert "(End of file - total 0 lines)" in result.output


async def test_long_lines_are_cut_at_2000_characters(ctx: LocalToolContext) -> None:
    (ctx.directory / "min.js").write_text("x" * 2500 + "\nshort\n")
    result = await read(ctx, filePath="min.js")
    assert f"1: {'x' * 2000}... (line truncated to 2000 chars)\n2: short\n" in result.output


async def test_crlf_and_a_bom_do_not_leak_into_lines(ctx: LocalToolContext) -> None:
    (ctx.directory / "win.txt").write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n")
    result = await read(ctx, filePath="win.txt")
    assert "<content>\n1: one\n2: two\n\n(End of file - total 2 lines)" in result.output


async def test_the_default_window_fits_the_engines_output_limit(ctx: LocalToolContext) -> None:
    numbered(ctx.directory / "big.txt", 5000)
    result = await read(ctx, filePath="big.txt")
    _, cut = truncate_output(result.output, save_to=None)
    assert not cut, "the engine would cut the trailer that says how to read on"
    last = int(result.output.split("\n\n(Showing lines 1-")[1].split(" ")[0])
    assert f"(Showing lines 1-{last} of 5000. Use offset={last + 1} to continue.)" in result.output
    follow = await read(ctx, filePath="big.txt", offset=last + 1, limit=1)
    assert f"\n{last + 1}: line {last + 1}\n" in follow.output


async def test_wide_files_are_capped_by_bytes_and_the_next_offset_is_exact(
    ctx: LocalToolContext,
) -> None:
    (ctx.directory / "wide.txt").write_text("".join(f"{i:04d}{'-' * 200}\n" for i in range(1000)))
    result = await read(ctx, filePath="wide.txt")
    _, cut = truncate_output(result.output, save_to=None)
    assert not cut
    assert "(Output capped at 50 KB. Showing lines 1-" in result.output
    assert result.metadata["truncated"] is True
    next_offset = int(result.output.rsplit("Use offset=", 1)[1].split(" ")[0])
    follow = await read(ctx, filePath="wide.txt", offset=next_offset, limit=1)
    assert f"\n{next_offset}: {next_offset - 1:04d}---" in follow.output


async def test_binary_files_are_refused(ctx: LocalToolContext) -> None:
    (ctx.directory / "blob").write_bytes(b"PK\x03\x04\x00\x00data")
    (ctx.directory / "mod.pyc").write_text("looks like text")
    (ctx.directory / "noise").write_bytes(bytes(range(1, 9)) * 100)
    for name in ("blob", "mod.pyc", "noise"):
        with pytest.raises(ToolError) as err:
            await read(ctx, filePath=name)
        assert err.value.message == f"Cannot read binary file: {ctx.directory / name}"


async def test_missing_file_is_not_found_with_opencodes_message(ctx: LocalToolContext) -> None:
    with pytest.raises(ToolError) as err:
        await read(ctx, filePath="nope.txt")
    assert err.value.message == f"File not found: {ctx.directory / 'nope.txt'}"


async def test_missing_file_suggests_similar_names_in_its_folder(ctx: LocalToolContext) -> None:
    (ctx.directory / "config.yaml").write_text("x")
    (ctx.directory / "settings.toml").write_text("x")
    with pytest.raises(ToolError) as err:
        await read(ctx, filePath="config")
    assert err.value.message == (
        f"File not found: {ctx.directory / 'config'}\n\n"
        f"Did you mean one of these?\n{ctx.directory / 'config.yaml'}"
    )
    with pytest.raises(ToolError, match="Did you mean") as typo:
        await read(ctx, filePath="setings.toml")
    assert str(ctx.directory / "settings.toml") in typo.value.message


async def test_a_directory_lists_sorted_entries_with_folders_marked(
    ctx: LocalToolContext,
) -> None:
    (ctx.directory / "src").mkdir()
    (ctx.directory / "README.md").write_text("x")
    (ctx.directory / "b.txt").write_text("x")
    (ctx.directory / "a-link").symlink_to(ctx.directory / "src")
    result = await read(ctx, filePath=".")
    assert result.output == (
        f"<path>{ctx.directory}</path>\n<type>directory</type>\n<entries>\n"
        "a-link/\nb.txt\nREADME.md\nsrc/\n\n(4 entries)\n</entries>"
    )
    assert result.title == "."
    assert result.metadata["truncated"] is False


async def test_offset_and_limit_page_through_a_directory(ctx: LocalToolContext) -> None:
    for i in range(5):
        (ctx.directory / f"f{i}.txt").write_text("x")
    page = await read(ctx, filePath=".", offset=2, limit=2)
    assert "<entries>\nf1.txt\nf2.txt\n\n" in page.output
    assert "(Showing 2 of 5 entries. Use offset=4 to continue.)" in page.output
    assert page.metadata == {"preview": "f1.txt\nf2.txt", "truncated": True, "loaded": []}


async def test_special_files_are_refused_instead_of_blocking(ctx: LocalToolContext) -> None:
    os.mkfifo(ctx.directory / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        await read(ctx, filePath="pipe")


async def test_reading_outside_the_project_needs_external_directory(
    ctx: LocalToolContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("s3cret\n")
    ctx.rules["external_directory"] = "deny"
    with pytest.raises(PermissionRejected):
        await read(ctx, filePath=str(outside / "secret.txt"))
    assert [(p, patterns) for p, patterns, _ in ctx.asked] == [
        ("external_directory", [f"{outside}/*"])
    ]
    ctx.rules["external_directory"] = "allow"
    result = await read(ctx, filePath="../elsewhere/secret.txt")
    assert "1: s3cret" in result.output
    assert result.title == str(outside / "secret.txt")
    listing_asked = len(ctx.asked)
    await read(ctx, filePath=str(outside))
    assert ctx.asked[listing_asked][1] == [f"{outside}/*"]
