"""`evledger ocpi export-cdrs`: the operator's own priced sessions as OCPI 2.2.1 CDRs.

Sessions are read from the ledger (the terms sealed at each start, the stop, the price);
each CDR is built and priced by domain/ocpi/cdr_export.py and checked against the OCPI
2.2.1 contract before it is written, so what a partner receives is what its own
re-pricing gives.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.context import current_root
from cli.ocpi_ledger import party
from cli.queries import _fail, _parse_time

if TYPE_CHECKING:
    from bootstrap import Root
    from domain.ocpi.cdr_export import SealedSession

_BATCH = 2_000


def sealed_sessions(
    root: Root, period_from: datetime | None, period_to: datetime | None
) -> list[SealedSession]:
    """Every stopped and priced session of the ledger that started in [from, to)."""
    from domain.ocpi.cdr_export import SealedSession
    from domain.tariff import TariffTerms

    found: dict[Any, dict[str, Any]] = {}
    # A session lives on one shard: every shard is read, each as the log it is.
    with root.ledger_sources() as sources:
        for source in sources:
            position = 0
            while batch := source.read_after(position, _BATCH):
                position = batch[-1].notification_id
                for ledger_event in batch:
                    _collect(found, ledger_event.event)
    sessions = []
    for parts in found.values():
        started, stopped, priced = parts.get("started"), parts.get("stopped"), parts.get("priced")
        if started is None or stopped is None or priced is None:
            continue
        if period_from is not None and started.started_at < period_from:
            continue
        if period_to is not None and started.started_at >= period_to:
            continue
        sessions.append(
            SealedSession(
                session_id=started.session_id,
                station_id=started.station_id,
                connector_id=started.connector_id,
                customer_id=started.customer_id,
                tariff_id=started.tariff_id,
                tariff_version=started.tariff_version,
                terms=TariffTerms.from_primitive(started.tariff_terms),
                started_at=started.started_at,
                stopped_at=stopped.stopped_at,
                charging_ended_at=stopped.charging_ended_at,
                meter_start_wh=started.meter_start_wh,
                meter_stop_wh=stopped.meter_stop_wh,
                billed_total_minor=priced.total_minor,
            )
        )
    return sorted(sessions, key=lambda s: (s.started_at, s.session_id))


def _collect(found: dict[Any, dict[str, Any]], event: Any) -> None:
    """Keep a session's start, stop and price, by session."""
    from domain.session import ChargingSession

    if isinstance(event, ChargingSession.Started):
        found[event.originator_id] = {"started": event}
    elif isinstance(event, ChargingSession.Stopped | ChargingSession.Priced):
        name = "stopped" if isinstance(event, ChargingSession.Stopped) else "priced"
        found.setdefault(event.originator_id, {})[name] = event


def export_cdrs(
    period_from: Annotated[
        str | None, typer.Option("--from", help="Sessions started at or after (ISO 8601).")
    ] = None,
    period_to: Annotated[
        str | None, typer.Option("--to", help="Sessions started before (ISO 8601).")
    ] = None,
    party_option: Annotated[
        str | None,
        typer.Option(
            "--party",
            envvar="EVLEDGER_OCPI_PARTY",
            help="The operator's OCPI identity CC:PID the CDRs are issued under.",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON array here.")
    ] = None,
) -> None:
    """Write the operator's own priced sessions as OCPI 2.2.1 CDRs (a JSON array)."""
    from consumers.contract import ContractViolation
    from consumers.ocpi_contract import Cdr, validate
    from domain.errors import DomainError
    from domain.ocpi import codec
    from domain.ocpi.cdr_export import export_cdr

    country_code, party_id = party(party_option)
    if country_code is None or party_id is None:
        raise _fail("give --party CC:PID (or EVLEDGER_OCPI_PARTY): whose CDRs these are", 2)
    moment_from = _parse_time(period_from, "--from")
    moment_to = _parse_time(period_to, "--to")
    sessions = sealed_sessions(current_root(), moment_from, moment_to)
    documents: list[Any] = []
    skipped: list[str] = []
    differ: list[int] = []
    for number, session in enumerate(sessions, start=1):
        try:
            exported = export_cdr(session, country_code.upper(), party_id.upper())
            validate(Cdr, codec.loads(codec.dumps(exported.document)))
        except (DomainError, ContractViolation) as error:
            skipped.append(f"{session.session_id}: {error}")
            continue
        documents.append(exported.document)
        if not exported.agrees_with_ledger:
            differ.append(exported.pricing.total_incl_vat.minor - session.billed_total_minor)
        if number % 1000 == 0:
            typer.echo(f"{number} of {len(sessions)} sessions", err=True)
    text = "[" + ",\n".join(codec.dumps(d) for d in documents) + "]\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    summary = f"wrote {len(documents)} CDRs" + (f" to {output}" if output else "")
    if differ:
        summary += (
            f"; {len(differ)} totals differ from the ledger's (OCPI rounds once, the ledger per "
            f"component) by at most {max(abs(d) for d in differ)} minor units"
        )
    typer.echo(summary, err=True)
    for reason in skipped:
        typer.echo(f"skipped {reason}", err=True)
    if skipped:
        raise typer.Exit(1)
