"""The analysts' report as one self-contained HTML page: Plotly charts (plotly.js inlined,
nothing fetched when it is viewed), each with a caption and its numbers beneath."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from projections.report import WEEKDAY_NAMES, Kind, Report, Section
from projections.report_formats import (
    header_text,
    headline_items,
    major,
    money_text,
    period_text,
    value_text,
)

# Tables longer than this fold away under a "show" line.
_FOLD_ROWS = 16
_BAND_COLOURS = {"under-used": "#e69f00", "normal": "#4c78a8", "over-used": "#d62728"}
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
 max-width:1100px;padding:1em 2em;color:#222}
h1{margin-bottom:.2em}.scope{color:#555;margin-top:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.8em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;background:#fafafa}
.card .label{font-size:.8em;color:#666;text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:1.25em;font-weight:600;margin-top:.2em}
section{margin-top:2.5em;border-top:1px solid #eee;padding-top:.5em}
.caption{color:#444;max-width:60em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
td,th{border-bottom:1px solid #e5e5e5;padding:3px 10px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.text,th.text{text-align:left}
tr.recurring td{color:#b00;font-weight:600}
.bad{color:#b00}.good{color:#080}
"""


def write_html(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_html(report), encoding="utf-8")


def report_html(report: Report) -> str:
    """The whole page."""
    from plotly.offline import get_plotlyjs

    title = "evledger analytics report"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{title}</title><style>{_STYLE}</style>",
        f"<script>{get_plotlyjs()}</script></head><body>",
        f"<h1>{title}</h1><p class='scope'>{html.escape(_scope(report))}</p>",
        _headline(report),
    ]
    if report.currency is None:
        parts.append("<p>No sessions for these filters: nothing to chart.</p>")
    for section in report.sections:
        parts.append(_section(report, section))
    parts.append("</body></html>")
    return "\n".join(parts)


def _scope(report: Report) -> str:
    parts = [period_text(report)]
    if report.currency:
        parts.append(f"amounts in {report.currency}")
    if report.filters.station:
        parts.append(f"station {report.filters.station}")
    return "; ".join(parts)


def _headline(report: Report) -> str:
    cards = []
    for label, value in headline_items(report):
        css = ""
        if label == "Books balanced":
            css = " good" if report.headline.books_balanced else " bad"
        cards.append(
            f"<div class='card'><div class='label'>{html.escape(label)}</div>"
            f"<div class='value{css}'>{html.escape(value)}</div></div>"
        )
    return f"<div class='cards' id='headline'>{''.join(cards)}</div>"


def _section(report: Report, section: Section) -> str:
    chart = _CHARTS.get(section.name)
    figure = chart(report, section) if chart is not None and section.rows else None
    body = [
        f"<section id='{section.name}'><h2>{html.escape(section.title)}</h2>",
        f"<p class='caption'>{html.escape(section.caption)}</p>",
    ]
    if figure is not None:
        body.append(_figure_html(figure, section.name))
    if section.name == "sessions_by_weekday_hour":
        body.append(_pivot_table(section))
    else:
        body.append(_table(report, section))
    body.append("</section>")
    return "\n".join(body)


def _figure_html(figure: Any, name: str) -> str:
    import plotly.io

    if figure.layout.height is None:
        figure.update_layout(height=420)
    figure.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 30, "t": 40, "b": 50},
        font={"family": "system-ui, sans-serif"},
    )
    html_text: str = plotly.io.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=f"chart-{name}",
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div class='chart' data-section='{name}'>{html_text}</div>"


def _table(report: Report, section: Section) -> str:
    head = "".join(
        f"<th class='{_css(section.column(c.name).kind)}'>"
        f"{html.escape(header_text(section, c.name, report.currency))}</th>"
        for c in section.columns
    )
    rows = []
    for row in section.rows:
        cells = "".join(
            f"<td class='{_css(c.kind)}'>"
            f"{html.escape(value_text(c.kind, row.get(c.name), report.currency, unit=True))}</td>"
            for c in section.columns
        )
        css = " class='recurring'" if row.get("recurring") else ""
        rows.append(f"<tr{css}>{cells}</tr>")
    if section.totals and len(section.rows) > 1:
        cells = "".join(
            f"<th class='{_css(c.kind)}'>"
            + (
                html.escape(value_text(c.kind, section.total(c.name), report.currency))
                if c.name in section.totals
                else ("total" if index == 0 else "")
            )
            + "</th>"
            for index, c in enumerate(section.columns)
        )
        rows.append(f"<tr class='total'>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if not section.rows:
        return "<p>No rows for this period.</p>"
    if len(section.rows) > _FOLD_ROWS:
        return f"<details><summary>Show all {len(section.rows)} rows</summary>{table}</details>"
    return table


def _css(kind: Kind) -> str:
    return "text" if kind in (Kind.text, Kind.day, Kind.flag, Kind.hour) else "number"


def _grid(section: Section) -> list[list[int]]:
    grid = [[0] * 24 for _ in WEEKDAY_NAMES]
    for row in section.rows:
        grid[int(row["weekday"]) - 1][int(row["local_hour"])] = int(row["sessions"])
    return grid


def _pivot_table(section: Section) -> str:
    head = "<th class='text'>weekday</th>" + "".join(f"<th>{h:02d}</th>" for h in range(24))
    body = "".join(
        f"<tr><td class='text'>{day}</td>" + "".join(f"<td>{n}</td>" for n in counts) + "</tr>"
        for day, counts in zip(WEEKDAY_NAMES, _grid(section), strict=True)
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<details><summary>Sessions per weekday and hour (local)</summary>{table}</details>"


# --- charts -------------------------------------------------------------------------------


def _major(values: Sequence[int | Decimal], currency: str | None) -> list[float]:
    # Plotly needs numbers; the exact figures are in the table beneath.
    return [float(major(v, currency)) if currency else float(v) for v in values]


def _revenue_by_day(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    currency = report.currency
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    by_station: dict[str, list[dict[str, Any]]] = {}
    for row in report.section("revenue_by_station_day").rows:
        by_station.setdefault(str(row["station_id"]), []).append(row)
    series = [("All stations", section.rows), *sorted(by_station.items())]
    for index, (_, rows) in enumerate(series):
        days = [str(row["local_day"]) for row in rows]
        figure.add_trace(
            go.Bar(
                x=days,
                y=_major([row["gross_minor"] for row in rows], currency),
                name=f"gross ({currency})",
                marker_color="#4c78a8",
                visible=index == 0,
                hovertemplate="%{x}<br>%{y:,.2f} " + str(currency) + "<extra></extra>",
            ),
            secondary_y=False,
        )
        figure.add_trace(
            go.Scatter(
                x=days,
                y=[float(row["energy_kwh"]) for row in rows],
                name="energy (kWh)",
                mode="lines+markers",
                marker_color="#f58518",
                visible=index == 0,
                hovertemplate="%{x}<br>%{y:,.1f} kWh<extra></extra>",
            ),
            secondary_y=True,
        )
    buttons = [
        {
            "label": name,
            "method": "update",
            "args": [
                {"visible": [i // 2 == index for i in range(2 * len(series))]},
                {"title": {"text": f"Gross revenue and energy per day: {name}"}},
            ],
        }
        for index, (name, _) in enumerate(series)
    ]
    figure.update_layout(
        title={"text": "Gross revenue and energy per day: All stations", "x": 0.5},
        # Top left, clear of Plotly's tool bar at the top right.
        updatemenus=[{"buttons": buttons, "x": 0.0, "xanchor": "left", "y": 1.18}],
        legend={"orientation": "h", "y": -0.15},
        bargap=0.2,
    )
    figure.update_yaxes(
        title_text=f"gross revenue ({currency})", secondary_y=False, rangemode="tozero"
    )
    figure.update_yaxes(
        title_text="energy (kWh)", secondary_y=True, showgrid=False, rangemode="tozero"
    )
    return figure


def _heatmap(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Heatmap(
            z=_grid(section),
            x=[f"{hour:02d}:00" for hour in range(24)],
            y=list(WEEKDAY_NAMES),
            colorscale="Blues",
            colorbar={"title": {"text": "sessions"}},
            hovertemplate="%{y} %{x}: %{z} sessions<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(title_text="local hour the session started")
    return figure


def _utilisation(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    rows = list(reversed(section.rows))
    figure = go.Figure()
    for band, colour in _BAND_COLOURS.items():
        part = [row for row in rows if row["band"] == band]
        figure.add_trace(
            go.Bar(
                y=[row["station_id"] for row in part],
                x=[float(row["utilisation"]) * 100 for row in part],
                orientation="h",
                name=band,
                marker_color=colour,
                hovertemplate="%{y}: %{x:.1f}% occupied<extra>" + band + "</extra>",
            )
        )
    rated = [row for row in section.rows if row["vs_fleet_average"]]
    if rated:
        # The fleet average is each station's utilisation over its ratio to the average.
        average = float(rated[0]["utilisation"] / rated[0]["vs_fleet_average"]) * 100
        for factor, label in ((0.5, "under-used below"), (1.0, "fleet average"), (1.5, "over")):
            figure.add_vline(
                x=average * factor,
                line_dash="dot" if factor != 1.0 else "dash",
                line_color="#555",
                annotation_text=f"{label} {average * factor:.0f}%",
                annotation_position="top",
            )
    figure.update_layout(barmode="overlay", legend={"orientation": "h", "y": -0.15})
    figure.update_xaxes(title_text="connector time occupied (%)")
    figure.update_yaxes(categoryorder="array", categoryarray=[row["station_id"] for row in rows])
    return figure


def _price_by_tariff(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    labels = [f"{row['tariff_id']} v{row['tariff_version']}" for row in section.rows]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=_major([row["net_minor_per_kwh"] or 0 for row in section.rows], report.currency),
            marker_color="#54a24b",
            text=[
                value_text(Kind.money_rate, row["net_minor_per_kwh"], report.currency)
                for row in section.rows
            ],
            textposition="outside",
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    figure.update_yaxes(title_text=f"net price per kWh ({report.currency})")
    return figure


def _price_by_component(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    parts: dict[str, dict[str, Decimal]] = {}
    for row in section.rows:
        part = str(row["component"]) + (f" ({row['window_name']})" if row["window_name"] else "")
        parts.setdefault(part, {})[str(row["tariff_id"])] = row["minor_per_kwh"] or Decimal(0)
    tariffs = sorted({str(row["tariff_id"]) for row in section.rows})
    for part, per_tariff in parts.items():
        figure.add_trace(
            go.Bar(
                x=tariffs,
                y=_major([per_tariff.get(t, Decimal(0)) for t in tariffs], report.currency),
                name=part,
                hovertemplate="%{x}: %{y:.4f} " + str(report.currency) + "/kWh<extra>"
                f"{part}</extra>",
            )
        )
    figure.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.15})
    figure.update_yaxes(title_text=f"net price per kWh ({report.currency})")
    return figure


def _refunds(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    stations = sorted({str(row["station_id"]) for row in section.rows})
    figure = go.Figure()
    for reason in sorted({str(row["reason"]) for row in section.rows}):
        counts = {str(r["station_id"]): r for r in section.rows if r["reason"] == reason}
        figure.add_trace(
            go.Bar(
                x=stations,
                y=[counts[s]["refunds"] if s in counts else 0 for s in stations],
                name=reason,
                # Recurring issues (a reason seen more than once at a station) are hatched
                # and outlined, so they stand out from one-off complaints.
                marker_pattern_shape=[
                    "/" if s in counts and counts[s]["recurring"] else "" for s in stations
                ],
                marker_line_width=[
                    2 if s in counts and counts[s]["recurring"] else 0 for s in stations
                ],
                marker_line_color="#222",
                hovertemplate="%{x} " + reason + ": %{y} refunds<extra></extra>",
            )
        )
    figure.update_layout(
        barmode="stack",
        legend={"orientation": "h", "y": -0.15},
        title={"text": "Refund requests per station (hatched: recurring)"},
    )
    figure.update_yaxes(title_text="refund requests")
    return figure


def _customer_visits(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Bar(
            x=[row["visits"] for row in section.rows],
            y=[row["customers"] for row in section.rows],
            marker_color=["#bab0ac" if row["visits"] == "1" else "#4c78a8" for row in section.rows],
            hovertemplate="%{x} sessions: %{y} customers<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="sessions per customer in the period", type="category")
    figure.update_yaxes(title_text="customers")
    return figure


def _spend_distribution(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    currency = report.currency

    def band(row: dict[str, Any]) -> str:
        low = money_text(row["from_minor"], currency, unit=False)
        if row["to_minor"] is None:
            return f"{low}+"
        return f"{low}-{money_text(row['to_minor'], currency, unit=False)}"

    figure = go.Figure(
        go.Bar(
            x=[band(row) for row in section.rows],
            y=[row["customers"] for row in section.rows],
            marker_color="#72b7b2",
            hovertemplate="%{x} " + str(currency) + ": %{y} customers<extra></extra>",
        )
    )
    figure.update_xaxes(title_text=f"spend in the period ({currency})", type="category")
    figure.update_yaxes(title_text="customers")
    return figure


def _payment_outcomes(report: Report, section: Section) -> Any:
    import plotly.graph_objects as go

    labels = [
        str(row["status"]) + (f": {row['reason']}" if row["reason"] else "") for row in section.rows
    ]
    figure = go.Figure(
        go.Bar(
            y=labels,
            x=[row["payments"] for row in section.rows],
            orientation="h",
            marker_color=[
                "#54a24b" if row["status"] == "captured" else "#e45756" for row in section.rows
            ],
            text=[f"{row['payments']:,}" for row in section.rows],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x} payments<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="payments")
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(height=max(260, 60 * len(section.rows) + 120))
    return figure


_CHARTS: dict[str, Callable[[Report, Section], Any]] = {
    "revenue_by_day": _revenue_by_day,
    "sessions_by_weekday_hour": _heatmap,
    "station_utilisation": _utilisation,
    "price_by_tariff": _price_by_tariff,
    "price_by_component": _price_by_component,
    "refunds_by_station_reason": _refunds,
    "customer_visits": _customer_visits,
    "spend_distribution": _spend_distribution,
    "payment_outcomes": _payment_outcomes,
}
