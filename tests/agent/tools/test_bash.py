from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from roost.agent.tools.base import MAX_OUTPUT_LINES, PermissionRejected, ToolError, ToolResult
from roost.agent.tools.bash import BashTool, aborted_result
from tests.support.tool_context import LocalToolContext

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class RecordingContext(LocalToolContext):
    """Also keeps every process group ever recorded and the ``always`` patterns asked for."""

    recorded: list[int] = field(default_factory=list)
    always: list[list[str] | None] = field(default_factory=list)

    async def ask_permission(
        self,
        permission: str,
        patterns: list[str],
        *,
        always: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.always.append(always)
        await super().ask_permission(permission, patterns, always=always, metadata=metadata)

    async def record_process(self, pgid: int) -> None:
        self.recorded.append(pgid)
        await super().record_process(pgid)


@pytest.fixture
def ctx(tmp_path: Path) -> RecordingContext:
    project = tmp_path / "project"
    project.mkdir()
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    return RecordingContext(directory=project, output_dir=outputs)


async def run_bash(ctx: LocalToolContext, **arguments: Any) -> ToolResult:
    tool = BashTool()
    return await tool.run(tool.parse(arguments), ctx)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_until_gone(
    exists: Callable[[int], bool], ident: int, *, within_s: float = 3.0
) -> None:
    """Killed processes linger as zombies until init reaps them; give it a moment."""
    async with asyncio.timeout(within_s):
        while True:
            if not exists(ident):
                return
            await asyncio.sleep(0.05)


async def wait_for_output(ctx: LocalToolContext, text: str, *, within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if any(text in u["metadata"].get("output", "") for u in ctx.updates):
                return
            await asyncio.sleep(0.02)


async def test_returns_combined_output_and_exit_code(ctx: RecordingContext) -> None:
    command = "echo out; echo err >&2"
    result = await run_bash(ctx, command=command, description="Print two lines")

    assert result.output == "out\nerr\n"
    assert result.title == command
    assert result.metadata == {"output": "out\nerr\n", "exit": 0, "truncated": False}
    assert ctx.asked == [("bash", ["echo out", "echo err >&2"], {"command": command})]
    assert ctx.always == [["echo *"]]
    assert ctx.processes == set()


async def test_nonzero_exit_is_a_result_not_an_error(ctx: RecordingContext) -> None:
    result = await run_bash(ctx, command="echo oops; exit 3")

    assert result.output == "oops\n"
    assert result.metadata["exit"] == 3


async def test_silent_command_says_no_output(ctx: RecordingContext) -> None:
    result = await run_bash(ctx, command="true")

    assert result.output == "(no output)"
    assert result.metadata["exit"] == 0


async def test_shell_killed_by_a_signal_has_no_exit_code(ctx: RecordingContext) -> None:
    result = await run_bash(ctx, command="kill -9 $$")

    assert result.metadata["exit"] is None


async def test_runs_in_the_session_directory(ctx: RecordingContext) -> None:
    result = await run_bash(ctx, command="pwd -P")

    assert Path(result.output.strip()) == ctx.directory.resolve()


async def test_workdir_is_relative_to_the_session_directory(ctx: RecordingContext) -> None:
    (ctx.directory / "sub").mkdir()
    result = await run_bash(ctx, command="pwd -P", workdir="sub")

    assert Path(result.output.strip()) == (ctx.directory / "sub").resolve()


async def test_missing_workdir_is_an_error(ctx: RecordingContext) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        await run_bash(ctx, command="true", workdir="nowhere")
    assert ctx.recorded == []


async def test_workdir_outside_the_project_needs_permission(
    ctx: RecordingContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    ctx.rules["external_directory"] = "deny"

    with pytest.raises(PermissionRejected):
        await run_bash(ctx, command="touch made-here", workdir=str(outside))

    assert ctx.asked[0][0] == "external_directory"
    assert not (outside / "made-here").exists()


async def test_rejected_permission_runs_nothing(ctx: RecordingContext) -> None:
    ctx.rules["bash"] = "deny"

    with pytest.raises(PermissionRejected):
        await run_bash(ctx, command="touch marker")

    assert not (ctx.directory / "marker").exists()
    assert ctx.recorded == []


@dataclass
class GatedRecordContext(RecordingContext):
    """``record_process`` waits for ``release`` (a slow commit), or fails when ``fail`` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    recording: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False

    async def record_process(self, pgid: int) -> None:
        await super().record_process(pgid)
        self.recording.set()
        if self.fail:
            await asyncio.sleep(0.3)  # a slow commit that fails: time enough to run, ungated
            raise RuntimeError("the store is down")
        await self.release.wait()


async def test_command_starts_only_once_its_group_is_recorded(tmp_path: Path) -> None:
    ctx = GatedRecordContext(directory=tmp_path, output_dir=tmp_path)
    marker = tmp_path / "ran"
    call = asyncio.create_task(run_bash(ctx, command=f"touch {marker}; echo done"))
    await asyncio.wait_for(ctx.recording.wait(), 5)
    await asyncio.sleep(0.3)  # ample time for bash to have run the command, were it not gated
    assert not marker.exists()
    ctx.release.set()
    result = await asyncio.wait_for(call, 10)
    assert marker.exists()
    assert result.output == "done\n"
    assert result.metadata["exit"] == 0


async def test_command_never_runs_when_its_group_cannot_be_recorded(tmp_path: Path) -> None:
    ctx = GatedRecordContext(directory=tmp_path, output_dir=tmp_path, fail=True)
    marker = tmp_path / "ran"
    with pytest.raises(RuntimeError, match="store is down"):
        await run_bash(ctx, command=f"touch {marker}")
    await wait_until_gone(group_exists, ctx.recorded[0])
    assert not marker.exists()


async def test_output_streams_before_the_command_ends(ctx: RecordingContext) -> None:
    call = asyncio.create_task(run_bash(ctx, command="echo a; sleep 0.5; echo b"))

    await wait_for_output(ctx, "a\n")
    assert not call.done()
    result = await call

    assert result.output == "a\nb\n"
    outputs = [u["metadata"]["output"] for u in ctx.updates]
    assert outputs[0] == ""
    assert "a\n" in outputs
    assert ctx.updates[-1]["metadata"] == {"output": "a\nb\n"}


async def test_timeout_kills_the_group_and_says_so(ctx: RecordingContext) -> None:
    result = await run_bash(ctx, command="echo started; sleep 30", timeout=500)

    assert result.output.startswith("started\n")
    assert result.output.endswith(
        "\n\n<shell_metadata>\n"
        "bash tool terminated command after exceeding timeout 500 ms\n"
        "</shell_metadata>"
    )
    assert result.metadata["exit"] is None
    [pgid] = ctx.recorded
    await wait_until_gone(group_exists, pgid)
    assert ctx.processes == set()


async def test_abort_kills_a_group_that_ignores_sigterm(ctx: RecordingContext) -> None:
    call = asyncio.create_task(run_bash(ctx, command="trap '' TERM; echo ready; sleep 30"))
    await wait_for_output(ctx, "ready")
    [pgid] = ctx.recorded
    assert ctx.processes == {pgid}

    call.cancel()
    async with asyncio.timeout(3):
        with pytest.raises(asyncio.CancelledError):
            await call
        await wait_until_gone(group_exists, pgid)
    assert ctx.processes == set()


async def test_background_job_holding_the_pipe_does_not_hang_the_call(
    ctx: RecordingContext,
) -> None:
    # The call ends when the shell exits; jobs it left in its group are killed with it.
    async with asyncio.timeout(10):
        result = await run_bash(ctx, command="sleep 30 & echo $!")

    background_pid = int(result.output.strip())
    assert result.metadata["exit"] == 0
    [pgid] = ctx.recorded
    await wait_until_gone(process_exists, background_pid)
    await wait_until_gone(group_exists, pgid)
    assert ctx.processes == set()


async def test_process_that_left_the_group_keeps_running_without_hanging_the_call(
    ctx: RecordingContext,
) -> None:
    async with asyncio.timeout(10):
        result = await run_bash(ctx, command="setsid sleep 30 & echo $!")

    escaped_pid = int(result.output.strip())
    try:
        assert result.metadata["exit"] == 0
        assert process_exists(escaped_pid)
    finally:
        os.kill(escaped_pid, signal.SIGKILL)


async def test_huge_output_is_truncated_and_kept_in_full_on_disk(ctx: RecordingContext) -> None:
    result = await run_bash(ctx, command="seq 1 100000")

    full = "".join(f"{n}\n" for n in range(1, 100001))
    saved = ctx.output_dir / f"{ctx.call_id}.txt"
    assert saved.read_text() == full
    assert result.metadata["truncated"] is True
    assert str(saved) in result.output
    assert result.output.startswith("1\n2\n3\n")
    assert len(result.output.splitlines()) <= MAX_OUTPUT_LINES + 3
    assert len(result.metadata["output"]) <= 30_010
    assert len(ctx.updates[-1]["metadata"]["output"]) <= 30_010


def test_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ToolError, match="timeout"):
        BashTool().parse({"command": "true", "timeout": 0})


def test_aborted_result_matches_opencode() -> None:
    result = aborted_result("sleep 600", "")

    assert result.output == (
        "(no output)\n\n<shell_metadata>\nUser aborted the command\n</shell_metadata>"
    )
    assert result.metadata == {"output": result.output, "exit": None, "truncated": False}
    assert result.title == "sleep 600"


async def test_cp_outside_the_project_asks_external_directory_before_bash(
    ctx: RecordingContext,
) -> None:
    (ctx.directory / "x").write_text("data\n")
    outside = ctx.directory.parent.resolve()

    await run_bash(ctx, command="cp x ../y")

    assert [(p, patterns) for p, patterns, _ in ctx.asked] == [
        ("external_directory", [f"{outside}/*"]),
        ("bash", ["cp x ../y"]),
    ]
    assert ctx.always[0] == [f"{outside}/*"]
    assert (outside / "y").read_text() == "data\n"


@pytest.mark.parametrize(
    "command",
    [
        "cp x ../y",
        "mv x ../y",
        "touch ../y",
        "mkdir ../y",
        "ln -s x ../y",
        "echo hi > ../y",
        "echo hi >> '../y'",
        "echo hi | tee ../y",
        "cd .. && touch y",
        "(cd ..; touch y)",
        "true && echo $(touch ../y)",
    ],
)
async def test_a_refused_external_directory_runs_nothing(
    ctx: RecordingContext, command: str
) -> None:
    (ctx.directory / "x").write_text("data\n")
    ctx.rules["external_directory"] = "deny"

    with pytest.raises(PermissionRejected):
        await run_bash(ctx, command=command)

    assert ctx.asked[0][0] == "external_directory"
    assert not (ctx.directory.parent / "y").exists()
    assert (ctx.directory / "x").exists()
    assert ctx.recorded == []


async def test_rm_outside_the_project_is_refused_with_the_file_kept(
    ctx: RecordingContext,
) -> None:
    keep = ctx.directory.parent / "keep"
    keep.write_text("mine\n")
    ctx.rules["external_directory"] = "deny"

    with pytest.raises(PermissionRejected):
        await run_bash(ctx, command="rm -f ../keep")

    assert keep.read_text() == "mine\n"


async def test_a_symlink_out_of_the_project_is_followed(
    ctx: RecordingContext, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ctx.directory / "door").symlink_to(elsewhere)
    ctx.rules["external_directory"] = "deny"

    with pytest.raises(PermissionRejected):
        await run_bash(ctx, command="touch door/inside")

    assert ctx.asked[0][:2] == ("external_directory", [f"{elsewhere.resolve()}/*"])
    assert not (elsewhere / "inside").exists()


async def test_writes_inside_the_project_ask_only_bash(ctx: RecordingContext) -> None:
    await run_bash(ctx, command="mkdir -p a/b && touch a/b/c > /dev/null 2>&1; cd a && rm -r b")

    assert [p for p, _, _ in ctx.asked] == ["bash"]
    assert (ctx.directory / "a").is_dir() and not (ctx.directory / "a" / "b").exists()


async def test_a_command_that_does_not_parse_asks_for_any_directory(
    ctx: RecordingContext,
) -> None:
    command = "touch ran; : <> x"  # bash runs it; tree-sitter-bash cannot parse `<>`
    ctx.rules["external_directory"] = "deny"

    with pytest.raises(PermissionRejected):
        await run_bash(ctx, command=command)

    assert ctx.asked == [
        ("external_directory", ["*"], {"command": command, "unresolved": [command]})
    ]
    assert not (ctx.directory / "ran").exists()


async def test_a_path_known_only_at_run_time_asks_for_any_directory(
    ctx: RecordingContext,
) -> None:
    ctx.rules["external_directory"] = "deny"

    with pytest.raises(PermissionRejected):
        await run_bash(ctx, command='target=..; cp x "$target/y"')

    assert ctx.asked[0][:2] == ("external_directory", ["*"])
    assert ctx.asked[0][2]["unresolved"] == ['"$target/y"']
    assert not (ctx.directory.parent / "y").exists()


async def test_an_outside_workdir_and_the_paths_under_it_are_asked_once(
    ctx: RecordingContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    await run_bash(ctx, command="touch made-here > log", workdir=str(outside))

    external = [patterns for p, patterns, _ in ctx.asked if p == "external_directory"]
    assert external == [[f"{outside.resolve()}/*"]]
    assert (outside / "made-here").exists()
