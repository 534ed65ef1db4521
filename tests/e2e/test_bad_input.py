"""Issue #9: every bad input is a 4xx in OpenCode's error shape, and the server keeps serving.

Against a real ``roost serve``: numbers Roost cannot store, lone surrogates, out-of-range query
numbers, an unusable ``Last-Event-ID``, oversized bodies (Content-Length and chunked), 405s, and
large prompts whose bodies are parsed and validated off the event loop.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support.openapi import spec, validate
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import RoostServer, prompt_body

pytestmark = pytest.mark.e2e

JSON = {"content-type": "application/json"}


def _bad_request(response: httpx.Response, kind: str = "Payload") -> str:
    """Assert a 400 ``BadRequest`` of ``kind``; return its message."""
    assert response.status_code == 400, response.text
    body = response.json()
    validate(body, "BadRequestError")
    assert body["name"] == "BadRequest" and body["data"]["kind"] == kind, body
    message: str = body["data"]["message"]
    return message


def _assert_serving(server: RoostServer) -> None:
    assert server.get("/global/health").json()["healthy"] is True
    assert server.post("/session", json={"title": "still here"}).status_code == 200


def _raw_exchange(url: str, head: bytes, chunks: list[bytes], timeout_s: float = 10) -> bytes:
    """Send ``head`` then ``chunks`` on a fresh connection without finishing the body, and
    return what the server answers (up to the end of its first response's headers and body).

    The server may answer and close before every chunk is sent; the kernel then resets the
    connection and a send fails. As an HTTP client does, stop sending and read the answer,
    which arrived before the reset and stays readable in the receive queue."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout_s) as sock:
        try:
            sock.sendall(head)
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        while b"\r\n\r\n" not in received:
            data = _recv(sock)
            if not data:
                break
            received += data
        header, _, rest = received.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in header.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(rest) < length:
            data = _recv(sock)
            if not data:
                break
            rest += data
        return header + b"\r\n\r\n" + rest


def _recv(sock: socket.socket) -> bytes:
    """One ``recv``; a reset after the queued data reads as the end of the stream."""
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _status_and_body(raw: bytes) -> tuple[int, dict[str, Any], str]:
    header, _, body = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, json.loads(body), header.decode("latin-1").lower()


# -- numbers ------------------------------------------------------------------------------

OUT_OF_RANGE = ("18446744073709551616", "9223372036854775808", "-9223372036854775809", "1e19")
NON_FINITE = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity")


def test_numbers_outside_int64_in_any_body_field_are_400_and_store_nothing(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    for number in OUT_OF_RANGE + NON_FINITE:
        bodies = [
            ("POST", "/session", f'{{"metadata":{{"a":{number}}}}}'),
            ("POST", "/session", f'{{"metadata":{{"deep":[1,{{"b":[{number}]}}]}}}}'),
            ("PATCH", f"/session/{sid}", f'{{"metadata":{{"a":{number}}}}}'),
            ("PATCH", f"/session/{sid}", f'{{"time":{{"archived":{number}}}}}'),
            (
                "POST",
                f"/session/{sid}/prompt_async",
                f'{{"parts":[{{"type":"text","text":"x","time":{{"start":{number}}}}}]}}',
            ),
            (
                "POST",
                f"/session/{sid}/message",
                f'{{"parts":[{{"type":"text","text":"x","metadata":{{"n":{number}}}}}]}}',
            ),
            ("POST", "/permission/per_x/reply", f'{{"reply":"once","extra":{number}}}'),
        ]
        for method, path, body in bodies:
            response = server.request(method, path, content=body.encode(), headers=JSON)
            message = _bad_request(response)
            assert "JSON" in message, (method, path, body, message)
    assert [s["id"] for s in server.get("/session").json()] == [sid]
    assert "metadata" not in server.get(f"/session/{sid}").json()
    assert server.messages(sid) == []
    assert llm.requests == []
    _assert_serving(server)


def test_the_message_names_where_the_number_is(server: RoostServer) -> None:
    body = b'{"metadata":{"list":[0,{"a":18446744073709551616}]}}'
    message = _bad_request(server.post("/session", content=body, headers=JSON))
    assert "metadata.list[1].a" in message and "int64" in message, message


def test_int64_bounds_are_accepted_and_stored_exactly(server: RoostServer) -> None:
    body = b'{"metadata":{"max":9223372036854775807,"min":-9223372036854775808,"f":-1.5e18}}'
    response = server.post("/session", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    stored = server.get(f"/session/{response.json()['id']}").json()["metadata"]
    assert stored == {"max": 2**63 - 1, "min": -(2**63), "f": -1.5e18}


# -- lone surrogates ----------------------------------------------------------------------


def test_lone_surrogates_in_any_string_are_400_and_store_nothing(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    for lone in ("\\ud800", "\\udfff", "x\\ud83d", "\\ude00y"):
        bodies = [
            ("POST", "/session", f'{{"title":"{lone}"}}'),
            ("POST", "/session", f'{{"metadata":{{"k":{{"{lone}":1}}}}}}'),
            ("PATCH", f"/session/{sid}", f'{{"title":"{lone}"}}'),
            (
                "POST",
                f"/session/{sid}/prompt_async",
                f'{{"parts":[{{"type":"text","text":"{lone}"}}]}}',
            ),
            (
                "POST",
                f"/session/{sid}/prompt_async",
                f'{{"parts":[{{"type":"file","mime":"text/plain","url":"x","source":{{"a":["{lone}"]}}}}]}}',
            ),
            (
                "POST",
                f"/session/{sid}/message",
                f'{{"parts":[{{"type":"text","text":"ok"}}],"system":"{lone}"}}',
            ),
            (
                "PATCH",
                f"/session/{sid}/message/msg_x/part/prt_x",
                f'{{"type":"tool","state":{{"status":"completed","output":"{lone}"}}}}',
            ),
            ("POST", "/question/que_x/reply", f'{{"answers":[["{lone}"]]}}'),
        ]
        for method, path, body in bodies:
            response = server.request(method, path, content=body.encode(), headers=JSON)
            message = _bad_request(response)
            assert "surrogate" in message, (method, path, body, message)
    # The same code point written as raw (CESU-style) UTF-8 bytes is malformed UTF-8.
    raw = server.post("/session", content=b'{"title":"\xed\xa0\x80"}', headers=JSON)
    assert "UTF-8" in _bad_request(raw)
    assert [s["id"] for s in server.get("/session").json()] == [sid]
    assert server.messages(sid) == []
    assert llm.requests == []
    _assert_serving(server)


def test_a_surrogate_pair_is_one_character_and_round_trips(server: RoostServer) -> None:
    response = server.post("/session", content=b'{"title":"\\ud83d\\ude00"}', headers=JSON)
    assert response.status_code == 200, response.text
    assert server.get(f"/session/{response.json()['id']}").json()["title"] == "\U0001f600"


# -- query parameters ---------------------------------------------------------------------


def test_out_of_range_and_non_finite_query_numbers_are_400(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    for query in (
        "start=1e19",
        "start=-1e19",
        "start=9223372036854775808",
        "start=nan",
        "start=inf",
        "start=-Infinity",
        "limit=9223372036854775808",
        "limit=-1",
        "limit=1e3",
    ):
        message = _bad_request(server.get(f"/session?{query}"), kind="Query")
        assert query.split("=")[0] in message, (query, message)
    for query in ("limit=9223372036854775808", "limit=nan"):
        _bad_request(server.get(f"/session/{sid}/message?{query}"), kind="Query")
    ok = server.get("/session?limit=9223372036854775807&start=9000000000000000000")
    assert ok.status_code == 200 and ok.json() == []
    assert [s["id"] for s in server.get("/session?start=0").json()] == [sid]
    _assert_serving(server)


# -- Last-Event-ID ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_event_id", [b"9223372036854775808", b"99999999999999999999999", b"\xb2", b"abc"]
)
def test_an_unusable_last_event_id_is_ignored_and_the_stream_goes_on(
    server: RoostServer, last_event_id: bytes
) -> None:
    headers = {"Last-Event-ID": last_event_id}
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(client, "GET", server.url + "/event", headers=headers) as source,
    ):
        frames = source.iter_sse()
        assert json.loads(next(frames).data)["type"] == "server.connected"
        created = server.create_session(title="after connect")
        for sse in frames:
            frame = json.loads(sse.data)
            if frame["type"] == "session.created":
                assert frame["properties"]["info"]["id"] == created["id"]
                break


# -- body size ----------------------------------------------------------------------------


def test_a_content_length_over_the_limit_is_413_before_the_body_is_sent(
    project: Path, tmp_path: Path
) -> None:
    limited = RoostServer(project, tmp_path / "small.db", args=["--max-body-mb", "1"]).start()
    try:
        # Only the head is sent: the 413 must not wait for (or read) the 100 MiB body.
        head = (
            b"POST /session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        status, body, header = _status_and_body(_raw_exchange(limited.url, head, []))
        assert status == 413
        validate(body, "BadRequestError")
        assert body["data"]["kind"] == "Payload" and "1048576 bytes" in body["data"]["message"]
        assert "connection: close" in header
        # A route that reads no body does not run either: the session is not deleted.
        sid = limited.create_session()["id"]
        delete = (
            f"DELETE /session/{sid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000000\r\n\r\n"
        )
        status, _, _ = _status_and_body(_raw_exchange(limited.url, delete.encode(), []))
        assert status == 413
        assert [s["id"] for s in limited.get("/session").json()] == [sid]
        # Just under the limit is fine.
        title = "t" * (2**20 - 100)
        assert limited.post("/session", json={"title": title}).status_code == 200
        _assert_serving(limited)
    finally:
        limited.close()


def test_a_chunked_body_is_cut_off_at_the_limit_while_it_is_read(
    project: Path, tmp_path: Path
) -> None:
    limited = RoostServer(project, tmp_path / "env.db", env={"ROOST_MAX_BODY_MB": "1"}).start()
    try:
        sid = limited.create_session()["id"]
        head = (
            f"POST /session/{sid}/prompt_async HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        piece = b"x" * 65536
        # 16 MiB of chunks and no terminating chunk: the answer cannot come from a full read, and
        # the server closes while the client still sends (the reset path of _raw_exchange).
        chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(256)]
        status, body, _ = _status_and_body(_raw_exchange(limited.url, head, chunks))
        assert status == 413
        validate(body, "BadRequestError")
        assert "1048576 bytes" in body["data"]["message"]
        assert limited.messages(sid) == []
        # Not JSON: still 413, never FastAPI's "error parsing the body" 400.
        status, _, _ = _status_and_body(
            _raw_exchange(limited.url, head.replace(b"application/json", b"text/plain"), chunks)
        )
        assert status == 413
        _assert_serving(limited)
    finally:
        limited.close()


def test_the_default_limit_is_32_mib(server: RoostServer) -> None:
    over = 32 * 2**20 + 1
    head = f"POST /session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {over}\r\n\r\n".encode()
    status, body, _ = _status_and_body(_raw_exchange(server.url, head, []))
    assert status == 413 and "33554432 bytes" in body["data"]["message"]


# -- large prompts ------------------------------------------------------------------------

_MANY = 20_000
"""Parts in a "large" prompt: its body is past the size parsed off the event loop."""


def test_a_prompt_with_many_parts_is_admitted_whole(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    parts = [{"type": "text", "text": f"part {i}"} for i in range(_MANY)]
    response = server.post(
        f"/session/{sid}/prompt_async",
        json={"noReply": True, "messageID": "msg_many", "parts": parts},
    )
    assert response.status_code == 204, response.text
    stored = server.get(f"/session/{sid}/message/msg_many").json()["parts"]
    assert [p["text"] for p in stored] == [p["text"] for p in parts]


def test_errors_deep_inside_a_large_prompt_name_their_place(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    parts: list[dict[str, Any]] = [{"type": "text", "text": f"part {i}"} for i in range(_MANY)]
    parts[17_345] = {"type": "text"}
    message = _bad_request(
        server.post(f"/session/{sid}/prompt_async", json=prompt_body("x") | {"parts": parts})
    )
    assert "parts.17345" in message, message
    parts[17_345] = {"type": "text", "text": "x", "metadata": {"n": 2**64}}
    message = _bad_request(server.post(f"/session/{sid}/prompt_async", json={"parts": parts}))
    assert "parts[17345].metadata.n" in message, message
    big = {"parts": [{"type": "text", "text": "y" * 2_000_000 + "\\ud800"}]}
    raw = json.dumps(big).replace("\\\\ud800", "\\ud800").encode()
    assert "surrogate" in _bad_request(
        server.post(f"/session/{sid}/prompt_async", content=raw, headers=JSON)
    )
    assert server.messages(sid) == []
    assert llm.requests == []


# -- 405 ----------------------------------------------------------------------------------


def test_405_names_every_method_of_the_path_in_allow(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    for method, path, allowed in (
        ("PUT", "/session", "GET, POST"),
        ("POST", f"/session/{sid}", "DELETE, GET, PATCH"),
        ("DELETE", "/global/health", "GET"),
        ("GET", f"/session/{sid}/prompt_async", "POST"),
    ):
        response = server.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        validate(response.json(), "BadRequestError")


# -- /doc ---------------------------------------------------------------------------------


def test_doc_declares_the_errors_roost_sends_with_opencodes_schemas(server: RoostServer) -> None:
    doc = server.get("/doc").json()
    assert "422" not in json.dumps(doc["paths"])
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for name in ("BadRequestError", "NotFoundError", "SessionBusyError"):
        assert schemas[name] == spec()["components"]["schemas"][name], name

    def refs(path: str, method: str) -> dict[str, str]:
        responses = doc["paths"][path][method]["responses"]
        return {
            status: r["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            for status, r in responses.items()
            if "content" in r and "$ref" in r["content"]["application/json"]["schema"]
        }

    assert refs("/session/{sessionID}/prompt_async", "post") == {
        "400": "BadRequestError",
        "404": "NotFoundError",
        "413": "BadRequestError",
    }
    assert set(doc["paths"]["/session/{sessionID}/prompt_async"]["post"]["responses"]) == {
        "204",
        "400",
        "404",
        "413",
    }
    assert refs("/session", "get") == {"400": "BadRequestError"}
    part = refs("/session/{sessionID}/message/{messageID}/part/{partID}", "delete")
    assert part == {"400": "BadRequestError", "404": "NotFoundError", "409": "SessionBusyError"}
    limit = doc["paths"]["/session"]["get"]["parameters"]
    assert {p["name"]: p["schema"] for p in limit}["limit"]["anyOf"][0]["maximum"] == 2**63 - 1
