"""Every Kafka client is built by store/kafka_clients.py, so none can leave out the TLS and
SASL settings: no other module of the project, its benches, tests or scripts names
kafka-python's client classes (checked on the source, like the layer table)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THE_PLACE = REPO / "store" / "kafka_clients.py"
CLIENTS = {"KafkaProducer", "KafkaConsumer", "KafkaAdminClient"}
SKIP = {".venv", ".services", "build", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def python_files() -> list[Path]:
    return sorted(
        path
        for path in REPO.rglob("*.py")
        if not SKIP & set(path.relative_to(REPO).parts) and path != THE_PLACE
    )


def client_uses(path: Path) -> list[str]:
    """Where a module imports or names a kafka-python client class."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kafka"):
            found += [
                f"line {node.lineno}: imports {a.name}" for a in node.names if a.name in CLIENTS
            ]
        elif isinstance(node, ast.Name) and node.id in CLIENTS:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in CLIENTS:
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_builds_a_kafka_client_but_the_one_place(path: Path) -> None:
    uses = client_uses(path)
    assert not uses, (
        f"{path.relative_to(REPO)} builds a Kafka client itself ({'; '.join(uses)}); "
        "use KafkaConnection.producer/consumer/admin (store/kafka_clients.py) instead"
    )


def test_the_check_finds_a_client_built_directly(tmp_path: Path) -> None:
    module = tmp_path / "direct.py"
    module.write_text("import kafka\nproducer = kafka.KafkaProducer(bootstrap_servers='x:1')\n")
    assert client_uses(module) == ["line 2: .KafkaProducer"]
    assert client_uses(THE_PLACE), "the one place builds them"
