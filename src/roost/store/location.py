"""Where the store lives: ``--db`` / ``ROOST_DB`` read as an SQLite file or a PostgreSQL URL.

Accepted:
- a file path (``./roost.db``, ``/var/lib/roost/roost.db``, ``~/roost.db``): SQLite;
- ``sqlite:///path`` (SQLAlchemy's form; ``sqlite:////abs/path`` for an absolute one): SQLite;
- ``postgresql://…``, ``postgres://…`` (libpq's forms) and ``postgresql+psycopg://…``:
  PostgreSQL through psycopg 3.

Anything else that looks like a URL (``mysql://…``, ``postgresql+asyncpg://…``, ``sqlite://``
with no path) is refused with ``InvalidLocation`` before anything is created: an operator who
typed a URL must never end up with an SQLite file named after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from roost.store.sqlite import sqlite_url

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}


class InvalidLocation(ValueError):
    """``--db`` names neither a file nor a supported database URL."""


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed store location.

    Attributes:
        kind: ``"sqlite"`` or ``"postgresql"``.
        path: The SQLite file (None for PostgreSQL).
        url: The SQLAlchemy URL to connect with (password included).
        display: The same without its password: for logs, errors and ``/global/health``.
    """

    kind: Literal["sqlite", "postgresql"]
    path: Path | None
    url: str
    display: str


def parse(target: Path | str) -> Location:
    """Read ``target`` (a path, or a string from ``--db``) as a store location.

    Raises:
        InvalidLocation: A URL of an unsupported kind, or a malformed one.
    """
    if isinstance(target, Path):
        return _sqlite(target)
    match = _SCHEME.match(target)
    if match is None:
        return _sqlite(Path(target).expanduser())
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        path = target[len("sqlite:///") :] if target.startswith("sqlite:///") else ""
        if not path or path.startswith(":memory:"):
            raise InvalidLocation(
                f"--db {target!r}: an SQLite URL must name a file (sqlite:///path/to/roost.db)"
            )
        return _sqlite(Path(path).expanduser())
    if scheme in _POSTGRES_SCHEMES:
        try:
            url: URL = make_url(target).set(drivername="postgresql+psycopg")
        except ArgumentError as exc:
            raise InvalidLocation(f"--db: not a valid PostgreSQL URL: {exc}") from exc
        return Location(
            "postgresql",
            None,
            url.render_as_string(hide_password=False),
            url.render_as_string(hide_password=True),
        )
    raise InvalidLocation(
        f"--db: unsupported database URL scheme {scheme!r}; use a file path for SQLite or "
        "postgresql://user:password@host:port/database"
    )


def _sqlite(path: Path) -> Location:
    return Location("sqlite", path, sqlite_url(path), str(path))
