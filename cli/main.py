"""The `evledger` command line: parse, call the core, print. Settings come from the environment."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli import audit, ocpi, pipeline
from cli import replay as replay_commands
from cli.context import current_root, current_settings
from cli.demo import demo
from cli.doctor import run_checks
from cli.output import OutputFormat, render
from cli.queries import register as register_queries
from cli.serve import register as register_serve

app = typer.Typer(
    name="evledger",
    help="Event-sourced billing ledger for EV charging operators.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output as a table, JSON or CSV.")
]


app.command()(demo)
register_queries(app)
app.command()(pipeline.publish)
app.command()(pipeline.ingest)
app.command()(pipeline.run)
app.add_typer(replay_commands.app, name="replay")
register_serve(app)

app.add_typer(audit.app, name="audit")
app.add_typer(ocpi.app, name="ocpi")

contract_app = typer.Typer(help="The upstream message contract.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")


@contract_app.command("schema")
def contract_schema() -> None:
    """Print the JSON Schema of the upstream message contract (version 1)."""
    from consumers.contract import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@app.command("settings")
def show_settings(output_format: FormatOption = OutputFormat.table) -> None:
    """Show the effective settings read from the EVLEDGER_* environment."""
    settings = current_settings()
    rows = [
        {"setting": f"EVLEDGER_{name.upper()}", "value": value}
        for name, value in settings.redacted().items()
    ]
    rows.append({"setting": "(mode)", "value": "embedded" if settings.embedded else "kafka"})
    render(rows, ["setting", "value"], output_format)


@app.command()
def doctor(output_format: FormatOption = OutputFormat.table) -> None:
    """Check that the configured Kafka, PostgreSQL and DuckDB are reachable."""
    checks = run_checks(current_root())
    rows = [
        {"service": c.service, "where": c.where, "ok": "yes" if c.ok else "NO", "detail": c.detail}
        for c in checks
    ]
    render(rows, ["service", "where", "ok", "detail"], output_format)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def main() -> None:
    """The `evledger` command: the typer app, with a refused Kafka login as one line."""
    try:
        app()
    except Exception as error:
        # Imported here: `evledger --help` loads no Kafka client.
        from store.kafka_login import KafkaLoginRefused

        if not isinstance(error, KafkaLoginRefused):
            raise
        typer.echo(f"evledger: {error}", err=True)
        raise SystemExit(2) from None
