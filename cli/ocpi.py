"""`evledger ocpi price`: re-price an OCPI 2.2.1 CDR from its tariff, beside the CDR's totals."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.output import LazyConsole

# The contract (pydantic) and the pricing engine are imported by the command that runs:
# `evledger --help` and the other commands start without them.
if TYPE_CHECKING:
    from consumers.ocpi_contract import Cdr, Tariff
    from domain.money import Money
    from domain.ocpi import model as ocpi
    from domain.ocpi.engine import CdrPricing

app = typer.Typer(help="OCPI 2.2.1 roaming: tariffs and CDRs.", no_args_is_help=True)
stderr = LazyConsole(stderr=True)


def _fail(reason: str) -> typer.Exit:
    stderr.print(f"evledger: {reason}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _read(path: Path) -> list[Any]:
    if not path.is_file():
        raise _fail(f"no such file: {path}")
    from consumers.contract import ContractViolation
    from consumers.ocpi_contract import decode, objects_in

    try:
        return objects_in(decode(path.read_bytes()))
    except ContractViolation as violation:
        raise _fail(f"{path}: {violation}") from None


def _one(model: type[Any], document: Any, source: str) -> Any:
    from consumers.contract import ContractViolation
    from consumers.ocpi_contract import validate

    try:
        return validate(model, document)
    except ContractViolation as violation:
        raise _fail(f"{source}: not a valid OCPI {_ocpi_name(model)}: {violation}") from None


def _ocpi_name(model: type[Any]) -> str:
    from consumers.ocpi_contract import Cdr, Location, Tariff

    names: dict[type[Any], str] = {Tariff: "Tariff", Cdr: "CDR", Location: "Location"}
    return names[model]


def _choose_tariff(candidates: list[Tariff], cdr: Cdr, source: str) -> Tariff:
    if len(candidates) == 1:
        return candidates[0]
    wanted = [p.tariff_id for p in cdr.charging_periods if p.tariff_id]
    for tariff_id in wanted:
        for tariff in candidates:
            if tariff.id == tariff_id:
                return tariff
    ids = ", ".join(t.id for t in candidates) or "none"
    raise _fail(
        f"{source} holds {len(candidates)} tariffs ({ids}) and the CDR's charging periods "
        "name none of them: pass the one tariff with --tariff"
    )


def _time_zone(time_zone: str | None, location: Path | None) -> str:
    if time_zone is not None:
        return time_zone
    if location is not None:
        documents = _read(location)
        if len(documents) != 1:
            raise _fail(f"{location}: expected one Location, found {len(documents)}")
        from consumers.ocpi_contract import Location

        found: Location = _one(Location, documents[0], str(location))
        return found.time_zone
    raise _fail(
        "a CDR carries no time zone and evledger does not guess one: pass --time-zone "
        "(the Location's time_zone, e.g. Europe/Amsterdam) or --location LOCATION.json"
    )


def _major(money: Money) -> str:
    return f"{money.to_major():f}"


def _reported(price: ocpi.OcpiPrice | None, incl: bool) -> str | None:
    if price is None:
        return None
    value = price.incl_vat if incl else price.excl_vat
    return None if value is None else f"{value:f}"


def _rows(pricing: CdrPricing, cdr: ocpi.Cdr) -> list[dict[str, Any]]:
    from domain.ocpi.engine import UNITS

    rows: list[dict[str, Any]] = []
    for dimension in pricing.dimensions:
        reported = cdr.reported_cost(dimension.dimension)
        rows.append(
            {
                "dimension": dimension.dimension,
                "volume": f"{dimension.volume.normalize():f}",
                "billed_volume": f"{dimension.billed_volume.normalize():f}",
                "unit": UNITS[dimension.dimension],
                "excl_vat": _major(dimension.excl_vat),
                "incl_vat": _major(dimension.incl_vat),
                "cdr_excl_vat": _reported(reported, incl=False),
                "cdr_incl_vat": _reported(reported, incl=True),
            }
        )
    rows.append(
        {
            "dimension": "TOTAL",
            "excl_vat": _major(pricing.total_excl_vat),
            "incl_vat": _major(pricing.total_incl_vat),
            "cdr_excl_vat": _reported(cdr.total_cost, incl=False),
            "cdr_incl_vat": _reported(cdr.total_cost, incl=True),
        }
    )
    return rows


def _agrees(pricing: CdrPricing, cdr: ocpi.Cdr) -> bool:
    from domain.money import Money

    excl = Money.from_major(cdr.total_cost.excl_vat, cdr.currency) == pricing.total_excl_vat
    incl = cdr.total_cost.incl_vat is None or (
        Money.from_major(cdr.total_cost.incl_vat, cdr.currency) == pricing.total_incl_vat
    )
    return excl and incl


def _periods(pricing: CdrPricing) -> list[dict[str, Any]]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else f"{value.normalize():f}"

    return [
        {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "lines": [
                {
                    "dimension": line.dimension,
                    "tariff_element": line.element_index,
                    "volume": text(line.volume),
                    "billed_volume": text(line.billed_volume),
                    "price": text(line.price),
                    "vat": text(line.vat),
                    "step_size": line.step_size,
                    "excl_vat": text(line.excl_vat),
                    "incl_vat": text(line.incl_vat),
                }
                for line in period.lines
            ],
        }
        for period in pricing.periods
    ]


COLUMNS = [
    "dimension",
    "volume",
    "billed_volume",
    "unit",
    "excl_vat",
    "incl_vat",
    "cdr_excl_vat",
    "cdr_incl_vat",
]

HEADERS = {
    "dimension": "dimension",
    "volume": "volume",
    "billed_volume": "billed",
    "unit": "unit",
    "excl_vat": "excl. VAT",
    "incl_vat": "incl. VAT",
    "cdr_excl_vat": "CDR excl.",
    "cdr_incl_vat": "CDR incl.",
}


@app.command("price")
def price(
    cdr_file: Annotated[Path, typer.Option("--cdr", help="The OCPI 2.2.1 CDR (JSON).")],
    tariff_file: Annotated[
        Path | None,
        typer.Option("--tariff", help="The OCPI 2.2.1 Tariff (JSON); default: the CDR's own."),
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option("--time-zone", help="IANA zone of the Location, e.g. Europe/Amsterdam."),
    ] = None,
    location: Annotated[
        Path | None,
        typer.Option("--location", help="The OCPI Location (JSON) whose time_zone to use."),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Re-price a CDR from its tariff: cost per dimension and totals beside the CDR's own."""
    from consumers.contract import ContractViolation
    from consumers.ocpi_contract import Cdr, Tariff, cdr_to_domain, tariff_to_domain
    from domain.errors import InvalidValueError
    from domain.ocpi.engine import price_cdr

    if output_format not in ("table", "json"):
        raise _fail(f"--format must be table or json, got {output_format!r}")
    cdr_documents = _read(cdr_file)
    if len(cdr_documents) != 1:
        raise _fail(f"{cdr_file}: expected one CDR, found {len(cdr_documents)}")
    cdr: Cdr = _one(Cdr, cdr_documents[0], str(cdr_file))
    if tariff_file is not None:
        candidates = [_one(Tariff, d, str(tariff_file)) for d in _read(tariff_file)]
        source = str(tariff_file)
    else:
        candidates, source = list(cdr.tariffs), f"{cdr_file} (its tariffs)"
    tariff = _choose_tariff(candidates, cdr, source)
    zone = _time_zone(time_zone, location)
    try:
        domain_cdr = cdr_to_domain(cdr)
        pricing = price_cdr(tariff_to_domain(tariff), domain_cdr, zone)
    except ContractViolation as violation:
        raise _fail(str(violation)) from None
    except InvalidValueError as error:
        raise _fail(error.reason) from None
    rows = _rows(pricing, domain_cdr)
    agrees = _agrees(pricing, domain_cdr)
    if output_format == "json":
        document = {
            "cdr_id": cdr.id,
            "tariff_id": tariff.id,
            "currency": pricing.currency,
            "time_zone": zone,
            "dimensions": rows[:-1],
            "total": rows[-1] | {"dimension": None},
            "agrees_with_cdr": agrees,
            "bounded_by": list(pricing.bounded_by),
            "notes": list(pricing.notes),
            "periods": _periods(pricing),
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"CDR {cdr.id} priced with tariff {tariff.id} ({pricing.currency}, {zone})")
    for column in COLUMNS:
        justify = "left" if column in ("dimension", "unit") else "right"
        table.add_column(HEADERS[column], justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in COLUMNS))
    console = Console()
    console.print(table)
    for bound in pricing.bounded_by:
        console.print(f"total bounded by the tariff's {bound}")
    for note in pricing.notes:
        console.print(f"note: {note}")
    console.print(
        "the CDR's total agrees with the re-priced total"
        if agrees
        else "the CDR's total DIFFERS from the re-priced total"
    )


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="OCPI JSON files: one object, an array, or an OCPI response."),
    ],
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone", help="IANA zone for every CDR (default: its Location's, if imported)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the messages here (JSON Lines) for ingest --file."),
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="Publish the messages to the ingest topic.")
    ] = False,
) -> None:
    """Wrap OCPI Tariffs, Locations and CDRs unchanged as ocpi.* upstream messages."""
    import tempfile

    from consumers.contract import ContractViolation
    from consumers.ocpi_import import ImportReport, wrap

    documents: list[Any] = []
    for path in files:
        documents.extend(_read(path))
    report = ImportReport()
    try:
        lines = wrap(documents, time_zone, report)
    except ContractViolation as violation:
        raise _fail(str(violation)) from None
    text = "".join(line + "\n" for line in lines)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.counts.items())) or "nothing"
    for cdr_id in report.cdrs_without_zone:
        stderr.print(
            f"evledger: CDR {cdr_id} has no time zone (no --time-zone, no Location imported "
            "with it): ingest will dead-letter it rather than guess",
            markup=False,
            soft_wrap=True,
        )
    if publish:
        from cli.context import current_root
        from cli.pipeline import ensure_topics, kafka_site
        from consumers.producer import publish_file

        site = kafka_site(current_root(), "ocpi import --publish")
        ensure_topics(site, site.ingest_topic)
        with tempfile.TemporaryDirectory() as scratch:
            staged = Path(scratch) / "ocpi.jsonl"
            staged.write_text(text, encoding="utf-8")
            sent = publish_file(
                staged, site.connection, site.ingest_topic, shards=site.ledger_shards
            )
        stderr.print(f"published {sent.published} messages ({counts}) to {site.ingest_topic}")
    if out is not None:
        out.write_text(text, encoding="utf-8")
        stderr.print(f"wrote {len(lines)} messages ({counts}) to {out}")
    if out is None and not publish:
        sys.stdout.write(text)


def _register_ledger_commands() -> None:
    from cli.ocpi_export import export_cdrs
    from cli.ocpi_ledger import cdrs

    app.command("cdrs")(cdrs)
    app.command("export-cdrs")(export_cdrs)


_register_ledger_commands()
