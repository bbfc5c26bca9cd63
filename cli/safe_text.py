"""Upstream strings made safe to show: plain text for the terminal (no rich markup, control
characters escaped) and CSV cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when something is shown, not when a command starts
    from rich.text import Text

# Cells starting with these are formulas (or become one) in Excel, LibreOffice and Sheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_controls(value: str) -> str:
    """Control, format and separator characters (escape sequences, bidi overrides, NUL)
    shown as \\x1b-style escapes; everything else as is."""
    if value.isprintable():
        return value
    return "".join(
        char
        if char.isprintable() or char == " "
        else char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) != "Cs"
        else f"\\u{ord(char):04x}"
        for char in value
    )


def plain(value: Any) -> Text:
    """A terminal cell: never parsed as markup, control characters escaped."""
    from rich.text import Text

    return Text("" if value is None else escape_controls(str(value)))


def csv_cell(value: Any) -> Any:
    """A CSV value; a string a spreadsheet would evaluate gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
