"""Large bodies against a probe: does admitting a huge prompt stall other requests?

Starts a real ``roost serve``, then for each case sends one large ``prompt_async`` (``noReply``,
so no turn runs) while a second thread sends ``GET /global/health`` every 10 ms on its own
connection. Prints, per case, the admission's status and time, and the probes' p50 / p99 / max
latency from the admission's start until 200 ms after its answer (client side). Issue #9 asks
for no probe slower than 100 ms. With ``--sse N``, N processes follow ``GET /event`` all along
(reconnecting with ``Last-Event-ID`` when cut off), so the events are also fanned out and
replayed. Run: ``.venv/bin/python bench/big_body.py [--rounds 3] [--sse 1]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scripted_llm import ScriptedLLM  # noqa: E402
from tests.support.server import RoostServer, project_config  # noqa: E402

PROBE_EVERY_S = 0.010
AFTER_S = 0.200
MIB = 2**20


def pct(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _text(size: int) -> str:
    """Prose-like text of ``size`` characters: words, newlines (escaped in JSON), some UTF-8."""
    line = "The quick brown fox jumps over the lazy dog — naïve café, 20 °C.\n"
    return (line * (size // len(line) + 1))[:size]


def one_big_part(size: int) -> bytes:
    """A prompt of about ``size`` bytes whose single text part is UTF-8 prose."""
    line = _text(1000)
    ratio = len(json.dumps(line, ensure_ascii=False).encode()) / len(line)
    text = _text(int(size / ratio))
    return json.dumps(
        {"noReply": True, "parts": [{"type": "text", "text": text}]}, ensure_ascii=False
    ).encode()


def many_parts(count: int) -> bytes:
    """A prompt of ``count`` short text parts."""
    parts = [{"type": "text", "text": f"part {i}: {_text(20)}"} for i in range(count)]
    return json.dumps({"noReply": True, "parts": parts}).encode()


def lone_surrogate_at_end(size: int) -> bytes:
    """One big part whose text ends in a lone surrogate escape: refused (400) after parsing."""
    body = one_big_part(size)
    return body.replace(b'"}]}', b'\\ud800"}]}')


def bad_last_part(count: int) -> bytes:
    """``count`` parts, the last without ``text``: refused (400) after validating the rest."""
    body = json.loads(many_parts(count))
    body["parts"][-1] = {"type": "text"}
    return json.dumps(body).encode()


class Probe:
    """``GET /global/health`` every ``PROBE_EVERY_S`` on its own connection, in a thread."""

    def __init__(self, url: str) -> None:
        self._url = url + "/global/health"
        self.samples: list[tuple[float, float]] = []
        """(start, latency in ms) per probe, ``time.perf_counter`` clock."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            client.get(self._url)  # connect before measuring
            while not self._stop.is_set():
                started = time.perf_counter()
                response = client.get(self._url)
                latency_ms = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                self.samples.append((started, latency_ms))
                time.sleep(max(0.0, PROBE_EVERY_S - latency_ms / 1000))

    def __enter__(self) -> Probe:
        self._thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def between(self, start: float, end: float) -> list[float]:
        """Latencies (ms) of the probes sent in ``[start, end]``, or still running at ``start``."""
        return [ms for t, ms in self.samples if t + ms / 1000 >= start and t <= end]


def follow_events(url: str) -> None:
    """Read ``GET /event`` until killed, reconnecting after the last id seen (in its own
    process, so reading a 30 MiB frame never holds the probe's GIL)."""
    last = b""
    with httpx.Client(timeout=httpx.Timeout(30, read=None)) as client:
        while True:
            headers = {"last-event-id": last.decode()} if last else {}
            with client.stream("GET", url + "/event", headers=headers) as response:
                for chunk in response.iter_raw():
                    # An id split across chunks is read short: the replay then repeats a few.
                    at = chunk.rfind(b"id: ")
                    if at >= 0:
                        end = chunk.find(b"\n", at)
                        if end > at + 4:
                            last = chunk[at + 4 : end]


def run_case(server: RoostServer, body: bytes) -> tuple[int, float, list[float]]:
    """Admit ``body`` on a new session under the probe: (status, admission ms, probe ms)."""
    sid = server.create_session()["id"]
    with Probe(server.url) as probe, httpx.Client(timeout=120) as client:
        started = time.perf_counter()
        response = client.post(
            f"{server.url}/session/{sid}/prompt_async",
            content=body,
            headers={"content-type": "application/json"},
        )
        ended = time.perf_counter()
        time.sleep(AFTER_S)
    return response.status_code, (ended - started) * 1000, probe.between(started, ended + AFTER_S)


def idle(server: RoostServer, seconds: float) -> list[float]:
    """Probe latencies with nothing else going on."""
    with Probe(server.url) as probe:
        started = time.perf_counter()
        time.sleep(seconds)
    return probe.between(started, time.perf_counter())


def main() -> None:
    """Run every case ``--rounds`` times and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=30, help="size of the one-part body, MiB")
    parser.add_argument("--parts", type=int, default=100_000, help="parts of the many-part body")
    parser.add_argument("--sse", type=int, default=0, help="processes following GET /event")
    args = parser.parse_args()
    cases: list[tuple[str, Callable[[], bytes]]] = [
        (f"{args.mb} MiB, one text part", lambda: one_big_part(args.mb * MIB)),
        (f"{args.parts:,} text parts", lambda: many_parts(args.parts)),
        (
            f"{args.mb} MiB, lone surrogate at the end (400)",
            lambda: lone_surrogate_at_end(args.mb * MIB),
        ),
        (f"{args.parts:,} parts, the last invalid (400)", lambda: bad_last_part(args.parts)),
    ]
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM() as llm:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
        server = RoostServer(project, Path(tmp) / "big.db").start()
        spawn = multiprocessing.get_context("spawn")
        followers = [
            spawn.Process(target=follow_events, args=(server.url,), daemon=True)
            for _ in range(args.sse)
        ]
        try:
            for follower in followers:
                follower.start()
            quiet = idle(server, 2.0)
            rows.append(
                f"| nothing (2 s) | - | - | - | {len(quiet)} | {pct(quiet, 50):.1f} | "
                f"{pct(quiet, 99):.1f} | {max(quiet):.1f} |"
            )
            for name, build in cases:
                body = build()
                for n in range(args.rounds):
                    print(f"{name}: round {n + 1}", file=sys.stderr)
                    status, admit_ms, probes = run_case(server, body)
                    rows.append(
                        f"| {name} | {len(body) / MIB:.1f} | {status} | {admit_ms:.0f} | "
                        f"{len(probes)} | {pct(probes, 50):.1f} | {pct(probes, 99):.1f} | "
                        f"{max(probes):.1f} |"
                    )
        finally:
            for follower in followers:
                follower.kill()
                follower.join(timeout=10)
            server.close()
    if args.sse:
        print(f"{args.sse} process(es) following GET /event throughout.\n")
    print("| case | body MiB | status | admission ms | probes | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
