"""The command line starts with only what `--help` needs; each command imports its own."""

from __future__ import annotations

import subprocess
import sys

from audit.export import ExportFormat
from cli.audit import FileFormat

# What registering the commands must not import: the adapters, the domain, the contract.
HEAVY = (
    "bootstrap.root",
    "eventsourcing",
    "pydantic",
    "psycopg",
    "duckdb",
    "kafka",
    "cryptography",
    "audit.export",
    "consumers.contract",
    "domain.ocpi.engine",
    "projections.analytics",
)


def test_the_command_line_registers_its_commands_without_the_heavy_modules() -> None:
    probe = f"import sys, cli.main\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_the_export_format_choices_are_the_exporters() -> None:
    assert [f.value for f in FileFormat] == [f.value for f in ExportFormat]
