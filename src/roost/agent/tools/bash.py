"""``bash``: run a shell command in the session directory and stream its output.

Before it runs, the command is read with a bash parser (``bash_scan.scan_command``) and two
permissions are asked, as in OpenCode: ``external_directory`` once for every folder outside the
project that its file-changing commands, output redirections and ``cd`` reach (and the workdir,
when that is outside), with ``*`` among the patterns when some path is only known at run time or
the command does not parse; then ``bash`` with one pattern per simple command.

The command runs as ``/bin/bash -c`` in a process group of its own, recorded through
``ToolContext.record_process`` so that recovery can kill it after a crash. Invariant: when
``run`` returns or raises, that group has been killed (or had already exited) and forgotten.

- The call ends when the shell exits, as in OpenCode. Background jobs it left in the group
  (``server &``) get ``DRAIN_S`` to flush their output and are then killed with the group;
  to leave something running, take it out of the group (``setsid server >log 2>&1 &``).
- On timeout or abort the group gets SIGTERM, then SIGKILL if anything in it is still there
  after ``KILL_GRACE_S``, so a command that ignores SIGTERM dies too.
- Output (stdout and stderr merged) goes through a pipe this module owns and reads itself,
  not through ``Process.communicate()``: on Python 3.11, ``Process.wait()`` on a process
  with pipes returns only once the pipes close, so a grandchild holding stdout would hang it
  (cpython gh-119710). With our own pipe, ``wait()`` returns when the shell exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field

from roost.agent.tools.base import (
    PROCESS_OWNER_ENV,
    Params,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    truncate_output,
)
from roost.agent.tools.bash_scan import Scan, scan_command
from roost.agent.tools.paths import (
    ANY_DIRECTORY,
    ask_external_directories,
    external_folders,
    folder_pattern,
    locate,
)

SHELL = "/bin/bash"
DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
PUBLISH_INTERVAL_S = 0.1
"""Streamed output is published at most this often."""
MAX_METADATA_CHARS = 30_000
"""``metadata.output`` keeps the last this many characters (OpenCode's cap)."""
MAX_CAPTURE_BYTES = 32 * 1024 * 1024
"""Output past this is read and discarded, so a runaway command cannot exhaust memory."""
DRAIN_S = 0.25
"""After the shell exits, how long background jobs still holding the pipe may write."""
KILL_GRACE_S = 1.0
"""Between SIGTERM and SIGKILL."""
_EXIT_WAIT_S = 1.0
_POLL_S = 0.05


class BashParams(Params):
    command: str = Field(description="The shell command to run")
    timeout: int | None = Field(
        default=None,
        gt=0,
        description=f"Timeout in milliseconds (default {DEFAULT_TIMEOUT_MS}, at most "
        f"{MAX_TIMEOUT_MS})",
    )
    workdir: str | None = Field(
        default=None,
        description="Directory to run in, instead of the project directory; use it rather than cd",
    )
    description: str | None = Field(
        default=None, description="What the command does, in 5-10 words, for the user"
    )


class BashTool(Tool):
    """Runs a command under ``/bin/bash``; a non-zero exit is a result, not an error."""

    name = "bash"
    description = (
        "Run a shell command with bash in the project directory (or in workdir) and return "
        "its combined stdout and stderr and its exit code. Commands are not interactive: "
        "stdin is empty. The default timeout is 2 minutes, at most 10. Background jobs are "
        "stopped when the command ends. Prefer the dedicated tools for reading, searching and "
        "editing files; quote paths that contain spaces."
    )
    Params = BashParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Ask the permissions (see the module docstring), run the command, return output and
        ``metadata.exit``.

        ``metadata`` follows OpenCode: ``{"output", "exit", "truncated"}``, ``exit`` being
        ``None`` when the shell was killed by a signal. The title is the command.

        Raises:
            PermissionRejected: The command, or a folder outside the project it reaches (its
                workdir included), was refused.
            ToolError: The working directory does not exist or the shell could not start.
        """
        command: str = params.command
        cwd, scan, folders = await asyncio.to_thread(_plan, command, ctx.directory, params.workdir)
        if not await asyncio.to_thread(cwd.is_dir):
            raise ToolError(f"Working directory {cwd} does not exist or is not a directory")
        patterns = [folder_pattern(f) for f in folders]
        metadata: dict[str, Any] = {"command": command}
        if scan.unresolved:
            patterns.append(ANY_DIRECTORY)
            metadata["unresolved"] = scan.unresolved
        if patterns:
            await ask_external_directories(ctx, patterns, metadata=metadata)
        if scan.commands:
            await ctx.ask_permission(
                "bash", scan.commands, always=scan.always, metadata={"command": command}
            )
        timeout_ms = min(params.timeout or DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS)
        outcome = await _execute(command, cwd, timeout_ms / 1000, ctx)

        text = outcome.text or "(no output)"
        output, truncated = await asyncio.to_thread(truncate_output, text, save_to=ctx.output_path)
        if outcome.timed_out:
            output += (
                "\n\n<shell_metadata>\n"
                f"bash tool terminated command after exceeding timeout {timeout_ms} ms\n"
                "</shell_metadata>"
            )
        return ToolResult(
            output=output,
            title=command,
            metadata={
                "output": _preview(output),
                "exit": outcome.exit_code,
                "truncated": truncated,
            },
        )


def aborted_result(command: str, streamed_output: str) -> ToolResult:
    """The completed part OpenCode records for a command the user aborted.

    ``run`` re-raises ``CancelledError`` on abort; the engine can finalize the part with this,
    passing the last ``metadata.output`` the call published.
    """
    output = (
        f"{streamed_output or '(no output)'}\n\n<shell_metadata>\n"
        "User aborted the command\n</shell_metadata>"
    )
    return ToolResult(
        output=output,
        title=command,
        metadata={"output": _preview(output), "exit": None, "truncated": False},
    )


@dataclass(frozen=True)
class _Outcome:
    text: str
    exit_code: int | None
    timed_out: bool


class _Capture(asyncio.Protocol):
    """Collects what the command writes to the pipe, up to ``MAX_CAPTURE_BYTES``."""

    def __init__(self, closed: asyncio.Future[None]) -> None:
        self.data = bytearray()
        self.dropped_bytes = 0
        self.closed = closed
        """Done when every writer has closed the pipe (EOF)."""

    def data_received(self, data: bytes) -> None:
        room = MAX_CAPTURE_BYTES - len(self.data)
        self.data += data[:room]
        self.dropped_bytes += max(0, len(data) - room)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def received_bytes(self) -> int:
        return len(self.data) + self.dropped_bytes

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        if self.dropped_bytes:
            text += f"\n\n... {self.dropped_bytes} more bytes of output were discarded"
        return text

    def preview(self) -> str:
        """``_preview`` of the text so far, decoding only its end (UTF-8: <= 4 bytes a char)."""
        tail_bytes = 4 * MAX_METADATA_CHARS
        if len(self.data) <= tail_bytes and not self.dropped_bytes:
            return _preview(self.text())
        tail = self.data[-tail_bytes:].decode("utf-8", errors="ignore")
        return "...\n\n" + tail[-MAX_METADATA_CHARS:]


async def _execute(command: str, cwd: Path, timeout_s: float, ctx: ToolContext) -> _Outcome:
    """Run ``command`` in its own process group until it exits or ``timeout_s`` passes."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    gate_r, gate_w = os.pipe()
    proc: asyncio.subprocess.Process | None = None
    try:
        proc = await asyncio.create_subprocess_exec(
            SHELL,
            "-c",
            _gated(gate_r),
            SHELL,
            command,
            cwd=cwd,
            env={**os.environ, PROCESS_OWNER_ENV: ctx.process_owner},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
            pass_fds=(gate_r,),
        )
    except OSError as exc:
        os.close(gate_w)
        raise ToolError(f"Could not start {SHELL}: {exc}") from exc
    finally:
        os.close(write_fd)  # the children hold their copies; EOF comes when they all close
        os.close(gate_r)
        if proc is None:
            os.close(read_fd)
    pgid = proc.pid  # start_new_session: the shell leads a new session and process group

    capture = _Capture(loop.create_future())
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    transport: asyncio.BaseTransport | None = None
    shell_exit = asyncio.ensure_future(proc.wait())
    timed_out = False
    try:
        # Inside the try: an abort that lands while the group is being recorded must still
        # kill it (the finally below), or the command would outlive its turn.
        try:
            await ctx.record_process(pgid)
            os.write(gate_w, b"go\n")  # recorded durably: the command may start
        finally:
            os.close(gate_w)  # unopened, the gate tells the shell to exit without running it
        transport, _ = await loop.connect_read_pipe(lambda: capture, pipe)
        published = -1
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    if capture.received_bytes != published:
                        published = capture.received_bytes
                        await ctx.update(metadata={"output": capture.preview()})
                    if shell_exit.done():
                        break
                    await asyncio.wait({shell_exit}, timeout=PUBLISH_INTERVAL_S)
        except TimeoutError:
            timed_out = True
        else:
            # Background jobs may still hold the pipe; give them a moment, then kill them.
            await asyncio.wait({capture.closed}, timeout=DRAIN_S)
    finally:
        try:
            await _terminate_group(pgid)
            await asyncio.wait({shell_exit}, timeout=_EXIT_WAIT_S)
            await asyncio.wait({capture.closed}, timeout=DRAIN_S)
        finally:
            if transport is None:
                pipe.close()
            else:
                transport.close()
            shell_exit.cancel()
            await ctx.forget_process(pgid)

    returncode = proc.returncode
    exit_code = returncode if returncode is not None and returncode >= 0 else None
    return _Outcome(text=capture.text(), exit_code=exit_code, timed_out=timed_out)


def _gated(gate_fd: int) -> str:
    """The script of the group's first shell: wait at the gate, close every file descriptor
    but stdin, stdout and stderr, then become ``bash -c CMD``.

    The group is recorded (``ToolContext.record_process``) before its command runs: the shell
    waits for a line on ``gate_fd``, which the server writes only once the record committed.
    If the server dies before that, the pipe closes, ``read`` fails and nothing runs; so after
    a crash every process a command started belongs to a recorded group that recovery kills.
    ``exec`` keeps the pid (the group leader), and the command runs exactly as
    ``bash -c CMD`` would, with ``$0`` the shell.

    Closing the descriptors here does not depend on the event loop: uvloop's spawn does not
    honour ``close_fds``, so any descriptor of the server not marked close-on-exec (a
    listening socket, a database file) would otherwise reach the command and everything it
    starts, and could outlive the server.
    """
    return (
        f"IFS= read -r -u {gate_fd} _ || exit 125; "
        'for f in /proc/$$/fd/*; do f=${f##*/}; [ "$f" -gt 2 ] && exec {f}>&-; done; '
        'exec "$0" -c "$1"'
    )


async def _terminate_group(pgid: int) -> None:
    """SIGTERM the group, then SIGKILL it if it outlives the grace period.

    The SIGKILL is sent from ``finally``, so a second cancellation during the grace period
    still leaves nothing running. A group whose members are all gone is left alone.
    """
    if not _signal_group(pgid, signal.SIGTERM):
        return
    try:
        for _ in range(round(KILL_GRACE_S / _POLL_S)):
            if not _group_exists(pgid):
                return
            await asyncio.sleep(_POLL_S)
    finally:
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to the group; whether the group still existed."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _group_exists(pgid: int) -> bool:
    """Whether any process (a not-yet-reaped zombie included) is in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _plan(command: str, directory: Path, workdir: str | None) -> tuple[Path, Scan, list[Path]]:
    """The directory to run in, the command's scan, and the folders outside the project it
    reaches, the workdir first (blocking: resolves paths on disk)."""
    root = directory.resolve()
    cwd = locate(root, workdir) if workdir else root
    scan = scan_command(command, cwd=PurePosixPath(cwd), home=PurePosixPath(Path.home()))
    return cwd if workdir else directory, scan, external_folders(root, [cwd, *scan.paths])


def _preview(text: str) -> str:
    """The end of ``text``, at most ``MAX_METADATA_CHARS`` characters, for ``metadata.output``."""
    if len(text) <= MAX_METADATA_CHARS:
        return text
    return "...\n\n" + text[-MAX_METADATA_CHARS:]
