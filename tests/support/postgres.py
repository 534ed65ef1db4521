"""A private, throwaway PostgreSQL cluster on loopback for the tests.

``initdb`` makes a cluster in a temporary directory, and ``pg_ctl`` runs it on a free loopback
port with its socket in that directory: nothing of the machine's own PostgreSQL is used or
changed. PostgreSQL refuses to run as root, so when the tests run as root (CI does) every
server command runs as the ``postgres`` user (``runuser``), which Debian's package creates.
Each test gets a database of its own (``CREATE DATABASE``), so tests never see each other's
rows.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

INSTALL_HINT = "install PostgreSQL (Debian: apt-get install postgresql; `make test` does as root)"


def server_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL's server is not
    installed (Debian keeps them out of PATH, under ``/usr/lib/postgresql/<major>/bin``)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """One running cluster; ``url(db)`` names a database in it for psycopg/SQLAlchemy.

    Args:
        bin_dir: Where ``initdb``/``pg_ctl`` are (``server_bin_dir()``).
        durable: Keep PostgreSQL's fsync on (benchmarks compare it with SQLite's FULL); the
            tests turn it off, since their data never outlives an OS crash.
    """

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="roost-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
        self.root.chmod(0o755)

    def _run(self, *cmd: str, timeout_s: float = 60) -> None:
        argv = [*(["runuser", "-u", "postgres", "--"] if self._as_postgres else []), *cmd]
        subprocess.run(argv, check=True, capture_output=True, timeout=timeout_s)

    def start(self) -> PostgresCluster:
        """initdb (first time) and start the server; returns self.

        Raises:
            subprocess.CalledProcessError: initdb or pg_ctl failed (its output is attached).
        """
        if not self.data.exists():
            self._run(
                str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "roost"
            )
        settings = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1"]
        settings.append("-c max_connections=300")
        if not self.durable:  # throwaway data: a test never outlives an OS crash
            settings.append("-c fsync=off -c full_page_writes=off")
        options = " ".join(settings)
        self._run(
            str(self.bin_dir / "pg_ctl"),
            *("-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start"),
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``)."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop (fast: connections are cut) and start again on the same port and data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """``postgresql://roost@127.0.0.1:PORT/database``."""
        return f"postgresql://roost@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
