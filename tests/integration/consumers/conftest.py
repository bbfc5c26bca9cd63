"""Fixtures of the ingest tests on the real broker: a unique topic prefix and the
environment an `evledger` process runs with."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest


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
