"""``Prepared``: Core statements compiled once, run on the driver connection."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql

from roost.store.database import Database
from roost.store.prepared import Prepared, _Compiled
from roost.store.schema import session_head

pytestmark = pytest.mark.anyio

_INSERT = Prepared(insert(session_head), keys=("session_id", "last_seq"))
_BUMP = Prepared(
    update(session_head)
    .where(session_head.c.session_id == bindparam("sid"))
    .values(last_seq=session_head.c.last_seq + 1)
    .returning(session_head.c.last_seq)
)
_GET = Prepared(
    select(session_head.c.last_seq).where(session_head.c.session_id == bindparam("sid"))
)


async def test_runs_inside_the_callers_transaction_with_literals_filled_in(db: Database) -> None:
    def write(tx: object) -> tuple[int, int]:
        conn = tx.conn  # type: ignore[attr-defined]
        _INSERT.execute(conn, {"session_id": "ses_a", "last_seq": 5})
        bumped = _BUMP.scalar(conn, {"sid": "ses_a"})  # ``last_seq + 1``: the 1 is a literal
        seen_by_core = conn.execute(text("SELECT last_seq FROM session_head")).scalar_one()
        return bumped, seen_by_core

    assert await db.write(write) == (6, 6)
    assert await db.read(lambda c: _GET.scalar(c, {"sid": "ses_a"})) == 6
    assert await db.read(lambda c: _GET.scalar(c, {"sid": "ses_none"})) is None


async def test_a_failed_transaction_rolls_prepared_writes_back(db: Database) -> None:
    def write(tx: object) -> None:
        _INSERT.execute(tx.conn, {"session_id": "ses_b", "last_seq": 1})  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.write(write)
    assert await db.read(lambda c: _GET.scalar(c, {"sid": "ses_b"})) is None


async def test_a_missing_parameter_is_a_key_error(db: Database) -> None:
    with pytest.raises(KeyError, match="sid"):
        await db.read(lambda c: _GET.scalar(c, {}))


def test_named_paramstyle_dialects_get_a_dict() -> None:
    stmt = (
        update(session_head)
        .where(session_head.c.session_id == bindparam("sid"))
        .values(last_seq=session_head.c.last_seq + 1)
    )
    compiled = _Compiled(stmt, postgresql.dialect(), None)  # type: ignore[no-untyped-call]
    assert not compiled.positional
    args = compiled.args({"sid": "ses_a"})
    assert isinstance(args, dict)
    assert args["sid"] == "ses_a"
    assert sorted(args.values(), key=str) == [1, "ses_a"]
