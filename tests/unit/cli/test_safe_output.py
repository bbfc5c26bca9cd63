"""Upstream strings are printed as plain text: no rich markup, escape
sequences shown escaped, CSV cells that a spreadsheet would run neutralised."""

from __future__ import annotations

import csv
import io

import pytest

from cli.output import OutputFormat, render
from cli.safe_text import csv_cell, escape_controls

HOSTILE = ["[/]", "[link=https://evil.example]click[/link]", "[bold red]x", "\x1b[2J\x1b]0;t\x07",
           "a\u202eb", "nul\x00byte"]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE)
def test_a_table_shows_hostile_ids_as_plain_text(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    render([{"payment_id": value}], ["payment_id"], OutputFormat.table, title=value)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out
    assert escape_controls(value)[:8] in out.replace("\n", "")


def test_a_markup_link_is_shown_not_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    render([{"id": HOSTILE[1]}], ["id"], OutputFormat.table)
    assert "[link=https://evil.example]" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                   "\t=1", "\r=1"])  # fmt: skip
def test_csv_neutralises_formula_cells(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    render([{"id": value, "amount": -5}], ["id", "amount"], OutputFormat.csv)
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[1] == ["'" + value, "-5"]
    assert csv_cell(12) == 12
