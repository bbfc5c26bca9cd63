"""Debian's headless Chromium for the browser tests (Playwright drives it, never a browser
download of its own)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def chromium() -> str:
    """The browser binary's path; the test fails, saying how to install it, when missing."""
    # Debian's /usr/bin/chromium is a shell wrapper; Playwright starts the binary itself.
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "no chromium: install Debian's chromium package (`scripts/browser`; make test does)",
        pytrace=False,
    )
