"""The layer table, checked on the source: which package may import which.

domain        imports nothing of the project (the billing rules stand alone)
store         the Kafka persistence module: never projections, domain or anything above
projections   read models and the projector: domain only, never consumers
consumers     the contract, ingest, the producer: domain, store, projections
replay, audit rebuild, point in time, verify, export: projections, store, domain
demo          the traffic generator and the demo: anything below the entry points
bootstrap     the composition root: everything below the entry points
api, cli      the entry points (HTTP and the command line): nothing imports them but cli,
              which starts the HTTP server
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("domain", "store", "projections", "consumers", "replay", "audit", "demo", "bootstrap")
ENTRY_POINTS = ("api", "cli")
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "store": set(),
    "projections": {"domain"},
    "consumers": {"domain", "store", "projections"},
    "replay": {"domain", "store", "projections", "audit"},
    "audit": {"domain", "store", "projections"},
    "demo": {"domain", "store", "projections", "consumers", "replay", "audit", "bootstrap"},
    "bootstrap": {"domain", "store", "projections", "consumers", "replay", "audit"},
    "api": {"domain", "store", "projections", "consumers", "replay", "audit", "bootstrap"},
    "cli": {
        "domain",
        "store",
        "projections",
        "consumers",
        "replay",
        "audit",
        "demo",
        "bootstrap",
        "api",
    },
}
PROJECT = set(ALLOWED)


def project_imports(path: Path) -> set[str]:
    """The top-level project packages a module imports, at any depth of the module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & PROJECT
    return found


def modules() -> list[tuple[str, Path]]:
    return [
        (package, path)
        for package in (*PACKAGES, *ENTRY_POINTS)
        for path in sorted((REPO / package).rglob("*.py"))
    ]


@pytest.mark.parametrize(
    ("package", "path"), modules(), ids=lambda value: str(value).removeprefix(str(REPO) + "/")
)
def test_a_module_imports_only_the_layers_below_it(package: str, path: Path) -> None:
    wrong = project_imports(path) - ALLOWED[package] - {package}
    assert not wrong, f"{path.relative_to(REPO)} ({package}) must not import {sorted(wrong)}"


def test_every_project_package_is_in_the_table() -> None:
    on_disk = {
        path.parent.name
        for path in REPO.glob("*/__init__.py")
        if path.parent.name not in {"tests", "bench"}
    }
    assert on_disk == PROJECT
