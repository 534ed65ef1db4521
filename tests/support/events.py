"""SSE frames collected in the background, for tests that watch events while they act.

``EventCollector`` opens ``GET /event`` (or ``/global/event``) on a daemon thread and appends
every frame as ``(sse id, frame)`` to ``frames``. Tests wait for what they expect with
``wait_until`` (a deadline, never a bare sleep) and ``close()`` ends the stream by shutting its
socket down, which wakes the blocked read at once (heartbeats come only every 10 s).

A ``paused`` collector connects but reads nothing until ``resume()``; with a small
``receive_buffer`` the server's writes then block once the socket buffers are full, which holds
a long ``Last-Event-ID`` replay in the middle while the test acts. Keep it at 32 KiB or more:
on loopback, a smaller one drops the server's large segments, which TCP then retransmits with
backoff, so reading after ``resume()`` crawls.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import connect_sse

Frame = tuple[str | None, dict[str, Any]]
"""``(sse id or None, decoded data)``."""


class EventCollector:
    """One SSE connection read on a background thread (see module docstring).

    Attributes:
        frames: Every frame received so far, in order (read under ``lock`` or via ``snapshot``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        path: str = "/event",
        last_event_id: str | None = None,
        paused: bool = False,
        receive_buffer: int | None = None,
    ) -> None:
        self._url = base_url + path
        self._headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        self._options = (
            [(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)] if receive_buffer else []
        )
        self._paused = paused
        self._resumed = threading.Event()
        self._connected = threading.Event()
        self.frames: list[Frame] = []
        self.lock = threading.Condition()
        self.error: BaseException | None = None
        self.ended = False
        self._socket: socket.socket | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._read, name=f"sse:{path}", daemon=True)

    def start(self, timeout_s: float = 10) -> EventCollector:
        """Connect and return once the first frame (``server.connected``) arrived, or, when
        ``paused``, once the response headers did."""
        self._thread.start()
        if self._paused:
            if not self._connected.wait(timeout_s) or self.ended:
                raise TimeoutError(f"no response headers from {self._url}: {self.error!r}")
            return self
        self.wait_until(lambda frames: frames, timeout_s=timeout_s, what="the first frame")
        return self

    def resume(self) -> None:
        """Start reading (a ``paused`` collector), with the default receive buffer again (a
        tiny TCP window makes reading slow)."""
        with self.lock:
            sock = self._socket
        if sock is not None and self._options:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._resumed.set()

    def _read(self) -> None:
        try:
            transport = httpx.HTTPTransport(socket_options=self._options)
            with (
                httpx.Client(transport=transport, timeout=httpx.Timeout(30.0, read=None)) as client,
                connect_sse(client, "GET", self._url, headers=self._headers) as source,
            ):
                stream = source.response.extensions.get("network_stream")
                with self.lock:
                    self._socket = stream.get_extra_info("socket") if stream else None
                    if self._closing:
                        return
                self._connected.set()
                if self._paused:
                    self._resumed.wait()
                for sse in source.iter_sse():
                    frame = (sse.id or None, json.loads(sse.data))
                    with self.lock:
                        self.frames.append(frame)
                        self.lock.notify_all()
        except BaseException as exc:
            if not self._closing:
                self.error = exc
        finally:
            with self.lock:
                self.ended = True
                self.lock.notify_all()
            self._connected.set()

    def snapshot(self) -> list[Frame]:
        """A copy of the frames received so far."""
        with self.lock:
            return list(self.frames)

    def wait_until(
        self,
        probe: Callable[[list[Frame]], Any],
        *,
        timeout_s: float = 10,
        what: str = "frames",
    ) -> Any:
        """Return ``probe(frames)`` once it is truthy; re-checked on every new frame.

        Raises:
            TimeoutError: ``timeout_s`` passed first, or the stream ended.
        """
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while True:
                found = probe(list(self.frames))
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    types = [f.get("type") for _, f in self.frames][-20:]
                    raise TimeoutError(
                        f"timed out waiting for {what} (ended={self.ended}, "
                        f"error={self.error!r}); last types: {types}"
                    )
                self.lock.wait(min(left, 0.5))

    def wait_ended(self, timeout_s: float = 10) -> list[Frame]:
        """The frames received, once the server has ended the stream.

        Raises:
            TimeoutError: ``timeout_s`` passed first.
        """
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while not self.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the stream of {self._url} did not end")
                self.lock.wait(min(left, 0.5))
            return list(self.frames)

    def close(self) -> None:
        """End the stream and join the reader thread."""
        with self.lock:
            self._closing = True
            sock = self._socket
        self._resumed.set()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> EventCollector:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def session_frames(frames: list[Frame], session_id: str) -> list[Frame]:
    """The frames about one session (``properties.sessionID``)."""
    return [(i, f) for i, f in frames if f.get("properties", {}).get("sessionID") == session_id]


def types_of(frames: list[Frame]) -> list[str]:
    """The ``type`` of each frame."""
    return [f["type"] for _, f in frames]


def until_idle(session_id: str, count: int = 1) -> Callable[[list[Frame]], list[Frame] | None]:
    """A ``wait_until`` probe: the session's frames once ``count`` ``session.idle`` arrived."""

    def probe(frames: list[Frame]) -> list[Frame] | None:
        mine = session_frames(frames, session_id)
        return mine if types_of(mine).count("session.idle") >= count else None

    return probe
