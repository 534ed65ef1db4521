"""The ``roost`` command: ``serve`` and ``run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from roost import __version__
from roost.config import (
    DEFAULT_MAX_BODY_MB,
    DEFAULT_PORT,
    SYNCHRONOUS_MODES,
    ConfigError,
    Settings,
    environment,
)

app = typer.Typer(
    name="roost",
    help="A crash-safe agent server that speaks OpenCode's HTTP API.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = (
        DEFAULT_PORT
    ),
    hostname: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    db: Annotated[
        str | None,
        typer.Option(
            help="SQLite file, or postgresql://user:password@host:port/database "
            "(default: $ROOST_DB or a file in the user data directory)."
        ),
    ] = None,
    replica: Annotated[
        str | None,
        typer.Option(help="This process's name among the replicas of one store (for health)."),
    ] = None,
    pool_size: Annotated[
        int, typer.Option(help="Reader connections to the store.", min=1, max=64)
    ] = 4,
    lease_ttl_ms: Annotated[
        int | None,
        typer.Option(
            help="Run lease lifetime in ms (default: $ROOST_LEASE_TTL_MS or 15000); renewed "
            "every third of it. A replica recovers a dead one's runs after it expires.",
            min=1_000,
            max=3_600_000,
        ),
    ] = None,
    lease_renew_ms: Annotated[
        int | None,
        typer.Option(
            help="Renew held run leases this often, in ms (default: a third of the TTL); "
            "must be shorter than the TTL.",
            min=100,
        ),
    ] = None,
    sync: Annotated[str, typer.Option(help="SQLite synchronous mode: FULL or NORMAL.")] = "FULL",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
    cors: Annotated[
        list[str] | None,
        typer.Option(help="Also accept requests from web pages of this origin (repeatable)."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Also accept this Host name, e.g. behind a proxy (repeatable)."),
    ] = None,
    max_body_mb: Annotated[
        float | None,
        typer.Option(
            help=f"Largest request body in MiB (default: $ROOST_MAX_BODY_MB or "
            f"{DEFAULT_MAX_BODY_MB}); larger ones get a 413.",
            min=0,
        ),
    ] = None,
) -> None:
    """Start the HTTP server in the current directory (the project).

    Web pages may call it only from loopback origins, its own origin and ``--cors`` origins.
    """
    from roost.cli.serve import resolve_db, run_server
    from roost.store.location import InvalidLocation

    env = environment()
    mode = sync.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise typer.BadParameter(f"--sync must be one of {', '.join(SYNCHRONOUS_MODES)}")
    if max_body_mb is None:
        try:
            max_body_mb = float(env.get("ROOST_MAX_BODY_MB") or DEFAULT_MAX_BODY_MB)
        except ValueError as exc:
            raise typer.BadParameter("ROOST_MAX_BODY_MB must be a number of MiB") from exc
    if not 0 <= max_body_mb < 2**40:  # also refuses NaN
        raise typer.BadParameter("the body limit must be a number of MiB from 0 to 2^40")
    if lease_ttl_ms is None:
        try:
            lease_ttl_ms = int(env.get("ROOST_LEASE_TTL_MS") or 15_000)
        except ValueError as exc:
            raise typer.BadParameter("ROOST_LEASE_TTL_MS must be a number of ms") from exc
        if not 1_000 <= lease_ttl_ms <= 3_600_000:
            raise typer.BadParameter("ROOST_LEASE_TTL_MS must be from 1000 to 3600000 ms")
    if lease_renew_ms is not None and lease_renew_ms >= lease_ttl_ms:
        raise typer.BadParameter(
            f"must be shorter than the lease TTL ({lease_ttl_ms} ms)", param_hint="--lease-renew-ms"
        )
    try:
        db_path = resolve_db(db, env)
    except InvalidLocation as exc:
        raise typer.BadParameter(str(exc), param_hint="--db") from exc
    settings = Settings(
        db_path=db_path,
        replica=replica,
        pool_size=pool_size,
        lease_ttl_ms=lease_ttl_ms,
        lease_renew_ms=lease_renew_ms,
        hostname=hostname,
        port=port,
        directory=Path.cwd(),
        password=env.get("ROOST_SERVER_PASSWORD") or None,
        username=env.get("ROOST_SERVER_USERNAME") or "opencode",
        synchronous=mode,
        log_level=log_level.lower(),
        cors=tuple(cors or ()),
        allowed_hosts=tuple(allow_host or ()),
        heartbeat_s=float(env.get("ROOST_HEARTBEAT_MS") or 10_000) / 1000,
        max_body_bytes=int(max_body_mb * 2**20),
    )
    chaos_cut = env.get("ROOST_CHAOS_CUT")
    if chaos_cut:
        from roost.engine import chaos

        point, _, skip = chaos_cut.partition(":")
        chaos.arm(point, int(skip or 0))
    try:
        run_server(settings)
    except ConfigError as exc:
        typer.echo(f"roost: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def run(
    message: Annotated[list[str], typer.Argument(help="The prompt.")],
    attach: Annotated[
        str | None, typer.Option(help="URL of a running server; without it a server is started.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="provider/model")] = None,
    agent: Annotated[str | None, typer.Option(help="Agent name.")] = None,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Continue this session.")
    ] = None,
    db: Annotated[Path | None, typer.Option(help="SQLite file for a started server.")] = None,
) -> None:
    """Send a prompt and print the streamed answer."""
    from roost.cli.run import run_prompt

    code = run_prompt(
        " ".join(message), attach=attach, model=model, agent=agent, session_id=session, db=db
    )
    raise typer.Exit(code)


@app.command()
def doctor(
    db: Annotated[
        str | None,
        typer.Option(help="SQLite file or postgresql:// URL (default: as roost serve)."),
    ] = None,
    repair: Annotated[bool, typer.Option(help="Repair what can be repaired.")] = False,
) -> None:
    """Check the store's invariants offline (and repair them with --repair)."""
    from roost.cli.doctor import run_doctor
    from roost.cli.serve import resolve_db
    from roost.store.location import InvalidLocation

    try:
        target = resolve_db(db, environment())
    except InvalidLocation as exc:
        raise typer.BadParameter(str(exc), param_hint="--db") from exc
    raise typer.Exit(run_doctor(target, repair=repair))


@app.command()
def chaos(
    db: Annotated[
        str | None,
        typer.Option(
            help="Scratch SQLite file (default: a temp dir), or a PostgreSQL URL: each worker "
            "then gets a fresh database <name>_chaos_<n> on that server."
        ),
    ] = None,
    kills: Annotated[int, typer.Option(help="How many SIGKILLs to aim for.")] = 60,
    workers: Annotated[int, typer.Option(help="Servers killed in parallel.")] = 1,
) -> None:
    """Crash harness: SIGKILL a real roost serve at named cut points, restart, check."""
    from roost.cli.chaos import run_chaos

    raise typer.Exit(run_chaos(db, kills=kills, workers=workers))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
