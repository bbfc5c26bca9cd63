"""Fixtures of the ingest tests on the real broker: a unique topic prefix, the
environment an `evledger` process runs with, and a bootstrapped root in this process."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.root import Root
from bootstrap.settings import Settings


@pytest.fixture
def prefix() -> str:
    return f"it-ingest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def env(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EVLEDGER_TOPIC_PREFIX": prefix,
        "EVLEDGER_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def root(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> Iterator[Root]:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, data_dir=tmp_path)
    root = bootstrap(settings)
    try:
        yield root
    finally:
        root.close()
