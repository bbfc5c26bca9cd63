"""The secure tests' fixtures: the SASL_SSL broker started through scripts/services --secure
(stopped at the end if this session started it; a broker that will not start fails the
tests, never skips them), and a topic prefix of the test's own with its ACLs."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.secure.broker import SecureBroker, acls_for, services


@pytest.fixture(scope="session")
def secure_broker() -> Iterator[SecureBroker]:
    was_running = json.loads(services("status"))["running"]
    services("up")
    try:
        yield SecureBroker.running()
    finally:
        if not was_running:
            services("down")


@pytest.fixture
def secure_prefix(secure_broker: SecureBroker) -> Iterator[str]:
    """A topic prefix with the writer's and the other principal's ACLs, removed after."""
    prefix = f"it-secure-{uuid.uuid4().hex[:8]}"
    admin = secure_broker.connection("admin").admin()
    acls = acls_for(prefix)
    try:
        result = admin.create_acls(acls)
        assert not result["failed"], result["failed"]
        await_acls(admin, acls)
        yield prefix
    finally:
        # An ACL is its own exact filter.
        admin.delete_acls(acls)
        topics = [t for t in admin.list_topics() if t.startswith(prefix)]
        if topics:
            admin.delete_topics(topics)
        admin.close()


def await_acls(admin: Any, acls: list[Any], timeout_s: float = 30.0) -> None:
    """Wait until the broker's authorizer holds every one of ``acls``: the controller
    answers CreateAcls once it has recorded them, and the broker applies them a moment
    later (a busy machine's first request in that moment was refused)."""
    deadline = time.monotonic() + timeout_s
    waiting = list(acls)
    while waiting:
        waiting = [acl for acl in waiting if not admin.describe_acls(acl)[0]]
        if waiting and time.monotonic() > deadline:
            raise AssertionError(f"the broker never applied these ACLs: {waiting}")
        if waiting:
            time.sleep(0.1)
