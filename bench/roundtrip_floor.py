"""What the shared harness's ``roundtrip`` reports for a server that does no work at all.

Run from the checkout: ``.venv/bin/python bench/roundtrip_floor.py [--rounds 3]``. With
``OPENCODE_BIN`` set, OpenCode is measured in the same rounds. It prints a Markdown table on
stdout (progress goes to stderr); each round runs ``../shared/bench/ocbench.py roundtrip`` once
per server, the servers taking turns so that a noisy moment hits all of them.

Issue #13 asks for a concurrent admission (``conc_admit_ms_p50``: 16 sessions, each sending its
next prompt when ``session.idle`` for the last one arrives) at half OpenCode's. This measures the
part of that number no server can remove: the harness's own client. The floor servers answer
every request at once and keep nothing durable. A prompt's turn is a timer: after
``--turn-ms`` the server sends 14 events of about 300 bytes, in 4 groups over the turn (a
one-word turn is 15 events in Roost), then ``session.idle``. They differ in when turns end:

- ``floor independent``: each turn ends on its own timer, so the 16 sessions drift apart;
- ``floor lockstep``: a finished turn's ``session.idle`` waits for a shared tick every
  ``--tick-ms``, so the sessions that finished meanwhile are told together, as when one group
  commit ends several turns. The harness then sends their next prompts together, one client
  on one event loop, and each admission is timed from its own send.

Every server binds 127.0.0.1 only; each harness run has ocbench's own timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT.parent / "shared" / "bench" / "ocbench.py"
EVENT_PAD = "x" * 300
"""Filler that makes a floor event about as long as a Roost part event."""
EVENTS_PER_TURN = 14
"""Events before ``session.idle`` (Roost sends 15 in all for a one-word turn)."""
GROUPS = 4
"""Commits a floor turn's events come in (a one-word turn in Roost)."""

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class FloorServer:
    """The ASGI app: ``POST /session``, ``GET /session``, ``POST …/prompt_async`` (204 at
    once, then the turn's events), ``GET …/message`` (``[{info, parts}]`` with ``ok`` replies)
    and ``GET /event``. Nothing is stored beyond memory.

    Args:
        turn_ms: How long a turn lasts, ms.
        tick_ms: 0 for independent turns; else ``session.idle`` waits for the next tick.
    """

    def __init__(self, turn_ms: float, tick_ms: float) -> None:
        self.turn_ms = turn_ms
        self.tick_ms = tick_ms
        self.ids = itertools.count(1)
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.subscribers: list[asyncio.Queue[bytes]] = []
        self.tick: asyncio.Event | None = None

    def publish(self, event: dict[str, Any]) -> None:
        frame = b"data: " + json.dumps(event).encode() + b"\n\n"
        for queue in self.subscribers:
            queue.put_nowait(frame)

    async def ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000)
            done, self.tick = self.tick, asyncio.Event()
            if done is not None:
                done.set()

    async def turn(self, sid: str) -> None:
        for _ in range(GROUPS):
            await asyncio.sleep(self.turn_ms / 1000 / GROUPS)
            for _ in range(EVENTS_PER_TURN // GROUPS + 1):
                self.publish(
                    {
                        "type": "message.part.updated",
                        "properties": {"sessionID": sid, "pad": EVENT_PAD},
                    }
                )
        if self.tick is not None:
            await self.tick.wait()
        reply = {"role": "assistant", "id": f"msg_{next(self.ids)}"}
        self.messages[sid].append({"info": reply, "parts": [{"type": "text", "text": "ok"}]})
        self.publish({"type": "session.idle", "properties": {"sessionID": sid}})

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                if self.tick_ms:
                    self.tick = asyncio.Event()
                    asyncio.get_running_loop().create_task(self.ticker())
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return

        async def reply(status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data})

        path, method = scope["path"], scope["method"]
        if path == "/event":
            await self.stream(send)
            return
        while (await receive()).get("more_body"):
            pass
        parts = path.split("/")
        if path == "/session":
            if method == "GET":
                await reply(200, [])
                return
            sid = f"ses_{next(self.ids)}"
            self.messages[sid] = []
            await reply(200, {"id": sid})
        elif len(parts) == 4 and parts[3] == "prompt_async":
            self.messages[parts[2]].append({"info": {"role": "user"}, "parts": []})
            asyncio.get_running_loop().create_task(self.turn(parts[2]))
            await reply(204)
        elif len(parts) == 4 and parts[3] == "message":
            await reply(200, self.messages[parts[2]])
        else:
            await reply(404, {})

    async def stream(self, send: Send) -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.subscribers.append(queue)
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        hello = b'data: {"type":"server.connected","properties":{}}\n\n'
        try:
            await send({"type": "http.response.body", "body": hello, "more_body": True})
            while True:
                await send(
                    {"type": "http.response.body", "body": await queue.get(), "more_body": True}
                )
        finally:
            self.subscribers.remove(queue)


def serve(port: int, turn_ms: float, tick_ms: float) -> None:
    """Run a floor server on 127.0.0.1:``port`` until SIGTERM."""
    import uvicorn

    uvicorn.run(
        FloorServer(turn_ms, tick_ms),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        lifespan="on",
    )


def harness(label: str, start: str, results: Path, scale: float) -> dict[str, Any]:
    """One ``ocbench.py roundtrip`` run; its metrics.

    Raises:
        RuntimeError: The run failed or stored no metrics.
    """
    cmd = [sys.executable, str(HARNESS), "roundtrip", "--reps", "1", "--scale", str(scale)]
    cmd += ["--label", label, "--results", str(results), "--start", start]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    rows = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    mine = [r for r in rows if r.get("label") == label]
    if done.returncode != 0 or not mine or not mine[-1].get("metrics"):
        raise RuntimeError(f"{label}: ocbench failed: {done.stdout[-800:]} {done.stderr[-800:]}")
    metrics: dict[str, Any] = mine[-1]["metrics"]
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Run every server ``--rounds`` times in turn and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="ocbench's --scale")
    parser.add_argument("--turn-ms", type=float, default=60.0, help="a floor turn's length")
    parser.add_argument("--tick-ms", type=float, default=25.0, help="the lockstep tick")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--tick", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.turn_ms, args.tick)
        return 0
    me = f"{sys.executable} {Path(__file__).resolve()} --turn-ms {args.turn_ms}"
    starts = {
        "floor independent": f"exec {me} --serve {{port}}",
        "floor lockstep": f"exec {me} --serve {{port}} --tick {args.tick_ms}",
        "roost": f"cd {{work}} && exec {ROOT / '.venv/bin/roost'} serve --port {{port}} "
        "--db {data}/roost.db",
    }
    if os.environ.get("OPENCODE_BIN"):
        starts["opencode"] = "{bench}/servers/opencode-serve.sh {data} {work} {port}"
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in starts}
    with tempfile.TemporaryDirectory(prefix="roost-rt-floor-") as tmp:
        results = Path(tmp) / "results.jsonl"
        for r in range(args.rounds):
            for name, start in starts.items():
                metrics = harness(name, start, results, args.scale)
                found[name].append(metrics)
                print(
                    f"round {r + 1} {name}: conc_admit_ms_p50 {metrics['conc_admit_ms_p50']}",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        "| server | conc_admit_ms_p50 per run | median | conc_admit_ms_p99 median "
        "| conc prompts/s median |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, runs in found.items():
        p50 = [m["conc_admit_ms_p50"] for m in runs]
        p99 = [m["conc_admit_ms_p99"] for m in runs]
        rate = [m["conc_prompts_per_s"] for m in runs]
        print(
            f"| {name} | {', '.join(f'{x:.1f}' for x in p50)} | {statistics.median(p50):.1f} "
            f"| {statistics.median(p99):.1f} | {statistics.median(rate):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
