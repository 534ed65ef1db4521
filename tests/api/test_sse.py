"""SSE frames built as bytes: what sse-starlette would send, and the stored JSON unchanged."""

from __future__ import annotations

import orjson
import pytest
from sse_starlette import ServerSentEvent

from roost.api.sse import FrameEncoder, event_json, frame
from roost.model.event import StoredEvent


@pytest.mark.parametrize("event_id", [None, 1, 2**63 - 1])
def test_a_frame_is_sse_starlettes_encoding_with_lf_endings(event_id: int | None) -> None:
    properties = {"part": {"text": 'naïve "café"\n\r\u2028 — 😀' * 3}, "sessionID": "ses_a"}
    data = orjson.dumps(properties)
    event = StoredEvent(7, "ses_a", 1, "message.part.updated", None, data, 0)
    pieces = event_json(event)
    expected = ServerSentEvent(
        data=b"".join(pieces).decode(), id=None if event_id is None else str(event_id), sep="\n"
    ).encode()
    assert frame(pieces, event_id) == expected
    framed = orjson.loads(b"".join(pieces))
    assert framed == {"type": "message.part.updated", "properties": properties}
    assert event.properties == properties  # parsed from ``data`` when asked


@pytest.mark.parametrize(
    ("prefix", "suffix"), [(b"", b""), (b'{"directory":"/p","project":"x","payload":', b"}")]
)
def test_a_batch_encodes_to_the_frames_of_its_events_in_order(prefix: bytes, suffix: bytes) -> None:
    events = [
        StoredEvent(n, "ses_a", n, "message.part.delta", None, orjson.dumps({"d": "é\n" * n}), 0)
        for n in (3, 4, 10)
    ]
    encoder = FrameEncoder(prefix, suffix)
    expected = b"".join(frame([prefix, *event_json(e), suffix], e.id) for e in events)
    assert encoder(events) == expected
    assert encoder.unlogged("server.connected") == frame(
        [prefix, b'{"type":"server.connected","properties":{}}', suffix]
    )
