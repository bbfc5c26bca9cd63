"""domain/ stays pure: no Kafka, PostgreSQL or DuckDB imports, and no I/O calls."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[3] / "domain"
FORBIDDEN_MODULES = {
    "kafka",
    "psycopg",
    "psycopg_pool",
    "duckdb",
    "socket",
    "requests",
    "sqlite3",
    # Validation of wire formats belongs to consumers/; the domain takes checked values.
    "pydantic",
}
FORBIDDEN_CALLS = {"open", "print", "input"}


def modules() -> list[Path]:
    # Packages inside domain/ (domain/ocpi/) are held to the same rules.
    return sorted(DOMAIN.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(DOMAIN)))
def test_module_imports_nothing_from_infrastructure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_MODULES


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(DOMAIN)))
def test_module_does_no_io_and_says_what_it_is_for(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & FORBIDDEN_CALLS
    docstring = ast.get_docstring(tree)
    assert docstring, f"{path.name} needs a one-line module docstring"
