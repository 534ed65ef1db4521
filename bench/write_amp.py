"""Write amplification of a streamed reply: bytes the server writes per byte the model streams.

For each reply size, starts a real ``roost serve`` on 127.0.0.1 on a fresh database, and in one
session sends three prompts: two answered ``ok`` (the first also writes the session's title; the
second is the baseline, a turn with next to no reply), then one that the scripted LLM answers
with a text reply of that many UTF-8 bytes, cut into many small deltas. For each turn it reads
the server process's ``write_bytes`` from ``/proc/PID/io`` (Linux: bytes the process caused to
be sent to the storage layer, page cache included, its reaped children's too) before the prompt
and once the session is idle again. Prints, per size: the reply's bytes, the bytes written
during its turn and their ratio, the baseline turn's bytes and the ratio net of them, the time
from the prompt to idle, and the database's size on disk (main file and WAL) at idle. Issue #13
asks for a ratio of at most 4 at 100 KB, 600 KB and 5 MB.

    .venv/bin/python bench/write_amp.py                       # 100 KB, 600 KB, 5 MB; ~1-2 min
    .venv/bin/python bench/write_amp.py --sizes-kb 100,600 --rounds 3 --chunk-chars 4
    .venv/bin/python bench/write_amp.py --sizes-kb 8 --pace-cps 400   # a model's pace; ~25 s

By default the scripted LLM streams the reply as fast as it can. ``--pace-cps`` paces it
instead, at that many characters per second (a pause after each delta), as a model does: then
the server's commits carry a few characters each, and the cost per commit dominates.

Every wait is bounded (``--timeout-s``, default ``IDLE_TIMEOUT_S``) and every server is
stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.scripted_llm import Delay, ScriptedLLM, Step, Text, Turn, text_turn
from tests.support.server import RoostServer, project_config, prompt_body

KB = 1000
IDLE_TIMEOUT_S = 600.0
"""Prompt → idle, at most, per turn (``--timeout-s``); a slower turn is a failure, not a
number. Before issue #13 a 5 MB reply took 3.5-5 minutes on a shared 2-core machine."""
POLL_S = 0.02
LINE = "Streaming replies grow one small delta at a time — naïve café, 20 °C.\n"
"""Prose with a newline (escaped in JSON) and some multi-byte UTF-8."""


def write_bytes(pid: int) -> int:
    """``write_bytes`` of one process (``/proc/PID/io``), in bytes."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes for pid {pid}")


def reply_text(size_bytes: int) -> str:
    """Prose of exactly ``size_bytes`` UTF-8 bytes (ASCII padding at the end)."""
    line_bytes = len(LINE.encode())
    text = LINE * (size_bytes // line_bytes)
    return text + "x" * (size_bytes - len(text.encode()))


def wait_idle(
    client: httpx.Client, url: str, session_id: str, answers: int, timeout_s: float
) -> None:
    """Poll ``GET /session/status`` until the session is busy and then no longer, or until
    it holds ``answers`` completed assistant messages (a turn can end between two polls)."""
    deadline = time.monotonic() + timeout_s
    seen_busy = False
    while time.monotonic() < deadline:
        busy = session_id in client.get(url + "/session/status").json()
        seen_busy = seen_busy or busy
        if seen_busy and not busy:
            return
        if not seen_busy and _answers(client, url, session_id) >= answers:
            return
        time.sleep(POLL_S)
    raise TimeoutError(f"session {session_id} was not idle within {timeout_s:.0f} s")


def _answers(client: httpx.Client, url: str, session_id: str) -> int:
    messages = client.get(f"{url}/session/{session_id}/message").json()
    return sum(
        1 for m in messages if m["info"]["role"] == "assistant" and "completed" in m["info"]["time"]
    )


def one_turn(
    client: httpx.Client, server: RoostServer, session_id: str, answers: int, timeout_s: float
) -> tuple[int, float]:
    """Send one prompt (its reply already queued) and wait until the session is idle with
    ``answers`` answers: (bytes written meanwhile, seconds)."""
    assert server.proc is not None
    before = write_bytes(server.proc.pid)
    started = time.perf_counter()
    response = client.post(
        f"{server.url}/session/{session_id}/prompt_async", json=prompt_body("go")
    )
    response.raise_for_status()
    wait_idle(client, server.url, session_id, answers, timeout_s)
    return write_bytes(server.proc.pid) - before, time.perf_counter() - started


def reply_turn(text: str, chunk_chars: int, pace_cps: float) -> Turn:
    """The scripted reply: ``text`` in deltas of ``chunk_chars`` characters, as fast as the
    LLM can send them, or at ``pace_cps`` characters per second when it is not 0."""
    if not pace_cps:
        return Turn([Text(text, chunk_chars)])
    steps: list[Step] = []
    for at in range(0, len(text), chunk_chars):
        piece = text[at : at + chunk_chars]
        steps += [Text(piece, chunk_chars), Delay(len(piece) / pace_cps)]
    return Turn(steps)


def measure(
    root: Path,
    llm: ScriptedLLM,
    size_bytes: int,
    chunk_chars: int,
    timeout_s: float,
    pace_cps: float = 0.0,
) -> dict[str, float]:
    """One reply of ``size_bytes`` on a fresh server and database; the row's numbers.

    The session first takes a turn answered ``ok`` (the first turn also writes the session's
    title), then a second one, whose bytes are the baseline of a turn with next to no reply;
    then the measured turn.
    """
    root.mkdir()
    project = root / "project"
    project.mkdir()
    (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
    db = root / "roost.db"
    text = reply_text(size_bytes)
    server = RoostServer(project, db)
    try:
        server.start()
        sid = server.create_session()["id"]
        with httpx.Client(timeout=60) as client:
            llm.enqueue(text_turn("ok"), text_turn("ok"), reply_turn(text, chunk_chars, pace_cps))
            one_turn(client, server, sid, 1, timeout_s)
            baseline, _ = one_turn(client, server, sid, 2, timeout_s)
            written, idle_s = one_turn(client, server, sid, 3, timeout_s)
            stored = client.get(f"{server.url}/session/{sid}/message").json()
        answer = "".join(p.get("text", "") for p in stored[-1]["parts"] if p["type"] == "text")
        if answer != text:
            raise RuntimeError(f"the stored reply differs ({len(answer)} of {len(text)} chars)")
        disk = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
        return {"written": written, "baseline": baseline, "idle_s": idle_s, "disk": disk}
    finally:
        server.close()


def main() -> None:
    """Measure each size ``--rounds`` times and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-kb", default="100,600,5000", help="reply sizes, KB (1000 B)")
    parser.add_argument("--chunk-chars", type=int, default=16, help="characters per delta")
    parser.add_argument("--rounds", type=int, default=1, help="servers per size")
    parser.add_argument("--timeout-s", type=float, default=IDLE_TIMEOUT_S, help="per turn")
    parser.add_argument(
        "--pace-cps", type=float, default=0.0, help="stream at this many chars/s (0: at once)"
    )
    args = parser.parse_args()
    sizes = [int(float(s) * KB) for s in args.sizes_kb.split(",")]
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM() as llm:
        for size in sizes:
            for n in range(args.rounds):
                print(f"reply of {size / KB:,.0f} KB, round {n + 1}", file=sys.stderr, flush=True)
                root = Path(tmp) / f"{size}-{n}"
                m = measure(root, llm, size, args.chunk_chars, args.timeout_s, args.pace_cps)
                beyond = m["written"] - m["baseline"]
                rows.append(
                    f"| {size / KB:,.0f} KB | {size:,} | {m['written']:,.0f} | "
                    f"**{m['written'] / size:.1f}** | {m['baseline']:,.0f} | "
                    f"{beyond / size:.1f} | {m['idle_s']:.2f} | {m['disk']:,.0f} |"
                )
    pace = f"at {args.pace_cps:,.0f} characters/s" if args.pace_cps else "as fast as it can"
    print(
        f"Deltas of {args.chunk_chars} characters, streamed {pace}; a fresh server and "
        "database per row. Baseline: the same session's previous turn, answered `ok`.\n"
    )
    print(
        "| reply | reply bytes | bytes written | written / reply | baseline turn bytes "
        "| (written - baseline) / reply | s to idle | db + wal bytes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
