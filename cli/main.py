"""The `evledger` command line: parse, call the core, print. Settings come from the environment."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import typer

from cli.context import current_root, current_settings
from cli.options import FormatOption
from cli.output import OutputFormat, render

contract_app = typer.Typer(help="The upstream message contract.", no_args_is_help=True)


@contract_app.command("schema")
def contract_schema() -> None:
    """Print the JSON Schema of the upstream message contract (version 1)."""
    from consumers.contract import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


def show_settings(output_format: FormatOption = OutputFormat.table) -> None:
    """Show the effective settings read from the EVLEDGER_* environment."""
    settings = current_settings()
    rows = [
        {"setting": f"EVLEDGER_{name.upper()}", "value": value}
        for name, value in settings.redacted().items()
    ]
    rows.append({"setting": "(mode)", "value": "embedded" if settings.embedded else "kafka"})
    render(rows, ["setting", "value"], output_format)


def doctor(output_format: FormatOption = OutputFormat.table) -> None:
    """Check that the configured Kafka, PostgreSQL and DuckDB are reachable."""
    from cli.doctor import run_checks

    checks = run_checks(current_root())
    rows = [
        {"service": c.service, "where": c.where, "ok": "yes" if c.ok else "NO", "detail": c.detail}
        for c in checks
    ]
    render(rows, ["service", "where", "ok", "detail"], output_format)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def _add_demo(app: typer.Typer) -> None:
    from cli.demo import demo

    app.command()(demo)


def _add_history(app: typer.Typer) -> None:
    from cli.queries import history

    app.command("history")(history)


def _add_refunds(app: typer.Typer) -> None:
    from cli.queries import refunds

    app.command("refunds")(refunds)


def _add_refund(app: typer.Typer) -> None:
    from cli.queries import refund_app

    app.add_typer(refund_app, name="refund")


def _add_analytics(app: typer.Typer) -> None:
    from cli.queries import add_analytics

    add_analytics(app)


def _add_project(app: typer.Typer) -> None:
    from cli.queries import project

    app.command("project")(project)


def _add_pipeline(app: typer.Typer) -> None:
    from cli import pipeline

    app.command()(pipeline.publish)
    app.command()(pipeline.ingest)
    app.command()(pipeline.run)


def _add_replay(app: typer.Typer) -> None:
    from cli.replay import app as replay_app

    app.add_typer(replay_app, name="replay")


def _add_serve(app: typer.Typer) -> None:
    from cli.serve import register

    register(app)


def _add_audit(app: typer.Typer) -> None:
    from cli.audit import app as audit_app

    app.add_typer(audit_app, name="audit")


def _add_ocpi(app: typer.Typer) -> None:
    from cli.ocpi import app as ocpi_app

    app.add_typer(ocpi_app, name="ocpi")


def _add_own(app: typer.Typer) -> None:
    app.add_typer(contract_app, name="contract")
    app.command("settings")(show_settings)
    app.command()(doctor)


# The top-level commands each group adds, in the order `--help` lists them (a unit test
# keeps the names equal to what the groups add). A command line that names one of them
# builds the app from its group alone: importing every command module costs a query
# command's start-up a tenth of its time, and typer converting the options of every command
# a group registers (not only the one run) another twentieth, so the query commands come
# one a group. Anything else (--help, a typo) builds them all.
COMMAND_GROUPS: tuple[tuple[Callable[[typer.Typer], None], tuple[str, ...]], ...] = (
    (_add_demo, ("demo",)),
    (_add_history, ("history",)),
    (_add_refunds, ("refunds",)),
    (_add_refund, ("refund",)),
    (_add_analytics, ("analytics",)),
    (_add_project, ("project",)),
    (_add_pipeline, ("publish", "ingest", "run")),
    (_add_replay, ("replay",)),
    (_add_serve, ("serve", "apikey")),
    (_add_audit, ("audit",)),
    (_add_ocpi, ("ocpi",)),
    (_add_own, ("contract", "settings", "doctor")),
)


@cache
def build_app(command: str | None = None) -> typer.Typer:
    """The `evledger` app with every command, or (``command`` one of COMMAND_GROUPS' names)
    with that command's group only."""
    app = typer.Typer(
        name="evledger",
        help="Event-sourced billing ledger for EV charging operators.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
    )
    # A callback keeps `evledger NAME` a command name when a group adds only one command
    # (typer runs a lone command directly, without its name).
    app.callback()(lambda: None)
    groups = [add for add, names in COMMAND_GROUPS if command in names]
    for add in groups or [add for add, _ in COMMAND_GROUPS]:
        add(app)
    return app


def __getattr__(name: str) -> Any:
    """``cli.main.app``: the app with every command, built when first asked for."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return build_app()


def main() -> None:
    """The `evledger` command: the typer app, with a refused Kafka login as one line."""
    try:
        app = build_app(sys.argv[1] if len(sys.argv) > 1 else None)
        # What is loaded by now (typer, the command's modules, typer's tables) lives as long
        # as the process: frozen, the collector stops going over it (an eighth of a query's CPU).
        gc.freeze()
        app()
    except Exception as error:
        # Imported here: `evledger --help` loads no Kafka client.
        from store.kafka_login import KafkaLoginRefused

        if not isinstance(error, KafkaLoginRefused):
            raise
        typer.echo(f"evledger: {error}", err=True)
        raise SystemExit(2) from None
