"""The command line starts with only what `--help` needs; each command imports its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

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


def test_each_command_group_adds_the_commands_it_names_and_all_make_the_full_app() -> None:
    from typer.main import get_command

    from cli.main import COMMAND_GROUPS, build_app

    def names(app: typer.Typer) -> list[str]:
        return list(getattr(get_command(app), "commands", {}))

    every = names(build_app())
    for _, group in COMMAND_GROUPS:
        assert sorted(names(build_app(group[0]))) == sorted(group)
    assert sorted(every) == sorted(name for _, group in COMMAND_GROUPS for name in group)


def test_a_command_line_naming_a_command_imports_no_other_command_module() -> None:
    probe = (
        "import sys\nfrom cli.main import build_app\nbuild_app('history')\n"
        "print(' '.join(m for m in sys.modules if m.startswith('cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    others = {"cli.audit", "cli.ocpi", "cli.pipeline", "cli.replay", "cli.serve", "cli.demo"}
    assert others & set(done.stdout.split()) == set()
    assert "cli.queries" in done.stdout.split()


def test_replay_s_help_needs_no_read_model_database(tmp_path: Path) -> None:
    """`--help` works with PostgreSQL and Kafka unreachable: nothing is swept or opened
    before a replay command runs (a rebuild sweeps its own groups' leftovers)."""
    unreachable = {
        "EVLEDGER_PG_DSN": "postgresql://nobody:none@127.0.0.1:9/nothing?connect_timeout=2",
        "EVLEDGER_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "EVLEDGER_DATA_DIR": str(tmp_path),
    }
    for command in (["replay", "--help"], ["replay", "rebuild", "--help"]):
        done = subprocess.run(
            [str(Path(sys.executable).with_name("evledger")), *command],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, **unreachable},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Usage: evledger {' '.join(command[:-1])} ")
        assert done.stderr == ""
