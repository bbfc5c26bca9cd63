"""The secure test broker from outside: started and stopped through scripts/services
--secure, its principals' client settings, and the ACLs a test's topics need."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from store.kafka_clients import KafkaConnection, KafkaSecurity

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ROOT / "scripts" / "services"
MECHANISM = "SCRAM-SHA-512"


class SecureBrokerError(AssertionError):
    """scripts/services could not start or describe the secure broker."""


def services(*args: str, timeout: float = 300) -> str:
    """Run scripts/services ... --secure; its stdout, or a failure with all its output."""
    result = subprocess.run(
        [str(SERVICES), *args, "--secure"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise SecureBrokerError(
            f"scripts/services {' '.join(args)} --secure failed:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


@dataclass(frozen=True)
class SecureBroker:
    """The running secure broker: where it is, its CA, and each principal's password."""

    bootstrap: str
    tls_dir: Path
    passwords: dict[str, str]

    @classmethod
    def running(cls) -> SecureBroker:
        status = json.loads(services("status"))
        if not status["running"]:
            raise SecureBrokerError(f"the secure broker is not running: {status}")
        tls_dir = Path(status["dir"]) / "tls"
        lines = (tls_dir / "secrets.env").read_text().splitlines()
        passwords = dict(line.split("=", 1) for line in lines if "=" in line)
        return cls(status["bootstrap"], tls_dir, passwords)

    @property
    def ca_file(self) -> str:
        return str(self.tls_dir / "ca.pem")

    def password(self, user: str) -> str:
        return self.passwords[f"{user.upper()}_PASSWORD"]

    def security(self, user: str, password: str | None = None) -> KafkaSecurity:
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            username=user,
            password=password or self.password(user),
            ca_file=self.ca_file,
        )

    def connection(self, user: str) -> KafkaConnection:
        return KafkaConnection(self.bootstrap, self.security(user))

    def env(self, user: str, password: str | None = None) -> dict[str, str]:
        """The EVLEDGER_* settings of a process logged in as ``user``; the writer also
        presents a client certificate (the broker asks for one, SASL names the principal)."""
        env = {
            "EVLEDGER_KAFKA_BOOTSTRAP": self.bootstrap,
            "EVLEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "EVLEDGER_KAFKA_SASL_MECHANISM": MECHANISM,
            "EVLEDGER_KAFKA_SASL_USERNAME": user,
            "EVLEDGER_KAFKA_SASL_PASSWORD": password or self.password(user),
            "EVLEDGER_KAFKA_SSL_CAFILE": self.ca_file,
        }
        if user == "writer":
            env |= {
                "EVLEDGER_KAFKA_SSL_CERTFILE": str(self.tls_dir / "client.pem"),
                "EVLEDGER_KAFKA_SSL_KEYFILE": str(self.tls_dir / "client.key"),
                "EVLEDGER_KAFKA_SSL_KEY_PASSWORD": self.password("client_key"),
            }
        return env


def acls_for(prefix: str) -> list[object]:
    """The writer may do everything with the topics, groups and transactional ids of
    ``prefix``; the other principal may read and describe them, and publish upstream
    messages to the ingest topic, but never write the ledger."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    def allow(user: str, operation: object, kind: object, name: str, prefixed: bool) -> object:
        pattern_type = (
            ACLResourcePatternType.PREFIXED if prefixed else ACLResourcePatternType.LITERAL
        )
        return ACL(
            principal=f"User:{user}",
            host="*",
            operation=operation,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(kind, name, pattern_type),
        )

    writer = [
        allow("writer", ACLOperation.ALL, kind, prefix, True)
        for kind in (ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID)
    ]
    other = [
        allow("other", ACLOperation.READ, ResourceType.TOPIC, prefix, True),
        allow("other", ACLOperation.DESCRIBE, ResourceType.TOPIC, prefix, True),
        allow("other", ACLOperation.WRITE, ResourceType.TOPIC, f"{prefix}.ingest", False),
    ]
    return writer + other
