"""`evledger serve` (the read side over HTTP) and `evledger apikey` (its keys and roles)."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer

from cli.context import current_root
from cli.output import OutputFormat, render
from projections.databases.port import Database

apikey_app = typer.Typer(
    help="API keys of `evledger serve`, each with a role.", no_args_is_help=True
)

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output as a table, JSON or CSV.")
]


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each with its own pool).")
    ] = 1,
) -> None:
    """Serve the payment history, refund status, audit trail and analytics over HTTP."""
    import uvicorn

    from api.observe import configure_logging

    root = current_root()
    configure_logging()
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        # Our own access log names routes by template; uvicorn's would log customer ids.
        "access_log": False,
        "log_level": "info",
        "server_header": False,
        # Named, not "auto": without them uvicorn would fall back to pure-Python HTTP
        # parsing and asyncio's own loop in silence, each costlier per request. The HTTP
        # protocol is uvicorn's httptools one, each response sent with one write (named by
        # its import path, which a worker process imports again).
        "http": "api.http_protocol:OneWriteProtocol",
        "loop": "asyncio" if sys.platform == "win32" else "uvloop",
    }
    if workers == 1:
        from api.app import create_app

        uvicorn.run(create_app(root), **common)
    else:
        _serve_workers(workers, common)


def _serve_workers(workers: int, common: dict[str, Any]) -> None:
    """Worker processes under uvicorn's supervisor (started, pinged, restarted by it), each
    listening on a socket of its own where the kernel balances them (cli/reuse_port.py)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from cli.reuse_port import BALANCES, WorkerSocket

    options = {
        "factory": True,
        "workers": workers,
        # A busy worker answers the supervisor's ping late; do not restart it for that.
        "timeout_worker_healthcheck": 60,
        **common,
    }
    if not BALANCES:
        uvicorn.run("api.app:app_from_environment", **options)
        return
    config = uvicorn.Config("api.app:app_from_environment", **options)
    log = logging.getLogger("uvicorn.error")
    try:
        sock = WorkerSocket.bound(config.host, config.port)
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, error.strerror)
        raise typer.Exit(STARTUP_FAILURE) from None
    log.info("Uvicorn running on http://%s:%d, a socket per worker", config.host, config.port)
    Multiprocess(config, sockets=[sock]).run()


def _views_database() -> Database:
    return current_root().views_database()


@apikey_app.command("create")
def apikey_create(
    role: Annotated[str, typer.Option(help="support, auditor or analyst.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key, for `apikey list`.")],
) -> None:
    """Create a key and print it once; only its SHA-256 hash is stored."""
    from api.keys import Role, create_key

    try:
        chosen = Role(role)
    except ValueError:
        typer.echo(f"evledger: --role must be support, auditor or analyst, got {role!r}", err=True)
        raise typer.Exit(2) from None
    if not name.strip() or len(name) > 200:
        typer.echo("evledger: --name must be 1 to 200 characters", err=True)
        raise typer.Exit(2)
    db = _views_database()
    try:
        secret, key = create_key(db, chosen, name.strip())
    finally:
        db.close()
    typer.echo(secret)
    typer.echo(
        f"key {key.key_id} ({key.role.value}, {key.name!r}) created; this is the only time "
        "it is shown: keep it secret",
        err=True,
    )


@apikey_app.command("list")
def apikey_list(output_format: FormatOption = OutputFormat.table) -> None:
    """Every key's id, name, role and dates (never the key itself)."""
    from api.keys import list_keys

    db = _views_database()
    try:
        keys = list_keys(db)
    finally:
        db.close()
    render(
        [key.row() for key in keys],
        ["key_id", "name", "role", "created_at", "revoked_at"],
        output_format,
        "API keys",
    )


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (or its name).")],
) -> None:
    """Revoke a key: it stops working within seconds."""
    from api.keys import UnknownKey, revoke_key

    db = _views_database()
    try:
        key = revoke_key(db, key_id)
    except UnknownKey as error:
        typer.echo(f"evledger: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()
    typer.echo(f"key {key.key_id} ({key.name!r}) revoked at {key.revoked_at}")


def register(app: typer.Typer) -> None:
    """Add `serve` and `apikey` to the ``evledger`` app."""
    app.command("serve")(serve)
    app.add_typer(apikey_app, name="apikey")
