"""The commands' shared output: amounts of money for people, and the progress bar."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import cli.output
from audit.verify import AuditSummary
from cli.audit import _summary_rows
from cli.output import format_amounts, progress


def test_amounts_are_major_units_of_known_currencies_and_labelled_minor_units_otherwise() -> None:
    assert format_amounts({}) == "none"
    assert format_amounts({"EUR": 3_068_338}) == "30,683.38 EUR"
    assert format_amounts({"JPY": 120_000, "BHD": 1_234_567, "EUR": 5}) == (
        "1,234.567 BHD, 0.05 EUR, 120,000 JPY"
    )
    assert format_amounts({"?": 1234, "XTS": 5}) == (
        "1,234 minor units of unknown currency '?', 5 minor units of unknown currency 'XTS'"
    )


def test_audit_summary_with_a_currency_outside_the_table_does_not_crash() -> None:
    summary = AuditSummary("test", captured_minor={"?": 700}, refunds_issued_minor={"EUR": 250})
    refunds = dict((row["check"], row["result"]) for row in _summary_rows(summary, None))["refunds"]
    assert "700 minor units of unknown currency '?'" in refunds
    assert "2.50 EUR" in refunds


def test_progress_is_silent_off_a_terminal_and_shows_counts_and_note_on_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with progress("ingesting", 10) as bar:
        bar.update(4, note="4 applied")
    assert capsys.readouterr().err == ""

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160)
    monkeypatch.setattr(cli.output, "Console", lambda stderr: terminal)
    with progress("ingesting", unit="messages") as bar:
        bar.update(4, total=10, note="4 applied, 0 dead-lettered")
    shown = screen.getvalue()
    assert "ingesting" in shown and "4/10" in shown and "4 applied, 0 dead-lettered" in shown
    assert "messages/s" in shown
    screen.truncate(0)
    with progress("rebuilding", 10, enabled=False) as bar:
        bar.update(10)
    assert screen.getvalue() == ""
