"""``responses.json_array``: the bytes of ``[item,item,…]`` whether built in one piece or in
slices, with the slices' ``Content-Length``."""

from __future__ import annotations

import asyncio
import json

from hypothesis import example, given
from hypothesis import strategies as st
from starlette.responses import StreamingResponse

from roost.api.responses import json_array

_ITEMS = st.lists(
    st.text(max_size=12).map(json.dumps) | st.integers().map(str),
    max_size=12,
)


async def _body(items: list[str], slice_chars: int) -> tuple[bytes, str | None, bool]:
    response = await json_array(iter(items), slice_chars=slice_chars)
    if isinstance(response, StreamingResponse):
        chunks = [c async for c in response.body_iterator]
        assert all(isinstance(c, bytes) for c in chunks)
        body = b"".join(c for c in chunks if isinstance(c, bytes))
        return body, response.headers.get("content-length"), len(chunks) > 1
    return bytes(response.body), response.headers.get("content-length"), False


@given(items=_ITEMS, slice_chars=st.integers(1, 40))
@example(items=[], slice_chars=1)
@example(items=['"a"'], slice_chars=1)
@example(items=['"a"', '"b"'], slice_chars=3)
@example(items=['"é😀"', "1", "2"], slice_chars=2)
def test_the_body_is_the_array_of_the_items_and_its_length_is_its_bytes(
    items: list[str], slice_chars: int
) -> None:
    body, length, sliced = asyncio.run(_body(items, slice_chars))
    assert body == ("[" + ",".join(items) + "]").encode()
    assert length == str(len(body))
    assert json.loads(body) == [json.loads(i) for i in items]
    # Items of at least ``slice_chars`` characters each end a slice of their own.
    if sum(len(i) >= slice_chars for i in items) >= 2:
        assert sliced
