"""The one place kafka-python clients are built: every producer, consumer and admin client
of evledger comes from a KafkaConnection, so none can leave out the security settings.

A KafkaConnection is where the brokers are and how to talk to them (TLS, SASL). The
composition root builds it from the validated settings; the store's factory rebuilds it
from the eventsourcing environment (``environment()`` and ``from_environment()``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# Keys of the eventsourcing environment (store.factory) that carry the security settings.
ENV_KEYS = {
    "protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "username": "KAFKA_SASL_USERNAME",
    "password": "KAFKA_SASL_PASSWORD",
    "ca_file": "KAFKA_SSL_CAFILE",
    "cert_file": "KAFKA_SSL_CERTFILE",
    "key_file": "KAFKA_SSL_KEYFILE",
    "key_password": "KAFKA_SSL_KEY_PASSWORD",
}


class KafkaSecurityError(ValueError):
    """The security settings do not make sense together; one line saying why."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients prove who they are and check who the brokers are. Passwords never show
    in repr()."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise KafkaSecurityError(problem)

    def problem(self) -> str | None:
        """What is wrong with these settings together, or None (named as the EVLEDGER_*
        settings they come from)."""
        if self.protocol not in PROTOCOLS:
            return f"security protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
        sasl = self.protocol.startswith("SASL_")
        if sasl and self.sasl_mechanism not in SASL_MECHANISMS:
            return (
                f"EVLEDGER_KAFKA_SASL_MECHANISM: {self.protocol} needs one of "
                f"{', '.join(SASL_MECHANISMS)}"
            )
        if sasl and not (self.username and self.password):
            return (
                f"EVLEDGER_KAFKA_SASL_USERNAME and EVLEDGER_KAFKA_SASL_PASSWORD: {self.protocol} "
                "needs both"
            )
        if not sasl and (self.sasl_mechanism or self.username or self.password):
            return (
                "EVLEDGER_KAFKA_SASL_*: set, but EVLEDGER_KAFKA_SECURITY_PROTOCOL is "
                f"{self.protocol} (use SASL_SSL or SASL_PLAINTEXT)"
            )
        tls_files = (self.ca_file, self.cert_file, self.key_file, self.key_password)
        if not self.protocol.endswith("SSL") and any(tls_files):
            return (
                "EVLEDGER_KAFKA_SSL_*: set, but EVLEDGER_KAFKA_SECURITY_PROTOCOL is "
                f"{self.protocol} (use SSL or SASL_SSL)"
            )
        if bool(self.cert_file) != bool(self.key_file):
            return "EVLEDGER_KAFKA_SSL_CERTFILE and EVLEDGER_KAFKA_SSL_KEYFILE go together"
        return None

    def client_config(self) -> dict[str, Any]:
        """The kafka-python options for these settings."""
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL_"):
            config |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        tls = {
            "ssl_cafile": self.ca_file,
            "ssl_certfile": self.cert_file,
            "ssl_keyfile": self.key_file,
            "ssl_password": self.key_password,
        }
        return config | {key: value for key, value in tls.items() if value}

    def environment(self) -> dict[str, str]:
        """These settings as eventsourcing environment keys (unset ones left out)."""
        values = {name: getattr(self, name) for name in ENV_KEYS}
        return {ENV_KEYS[name]: str(value) for name, value in values.items() if value}

    @classmethod
    def from_environment(cls, get: Callable[[str], str | None]) -> KafkaSecurity:
        """The settings ``environment()`` wrote, read back with ``get`` (a key's value)."""
        values = {name: get(key) or None for name, key in ENV_KEYS.items()}
        protocol = values.pop("protocol") or "PLAINTEXT"
        return cls(protocol=protocol, **values)


PLAINTEXT = KafkaSecurity()


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to talk to them: every client is made here."""

    bootstrap_servers: str
    security: KafkaSecurity = PLAINTEXT

    def __str__(self) -> str:
        return self.bootstrap_servers

    def options(self, **options: Any) -> dict[str, Any]:
        """The keyword arguments of a kafka-python client: ``options`` and the connection's;
        a caller cannot override the connection's own."""
        clash = set(options) & ({"bootstrap_servers"} | set(self.security.client_config()))
        if clash:
            raise TypeError(f"set by the connection, not by a caller: {sorted(clash)}")
        return {
            "bootstrap_servers": self.bootstrap_servers,
            **self.security.client_config(),
            **options,
        }

    def producer(self, **options: Any) -> Any:
        from kafka import KafkaProducer

        self.check_login()
        return KafkaProducer(**self.options(**options))

    def consumer(self, *topics: str, **options: Any) -> Any:
        from kafka import KafkaConsumer

        self.check_login()
        return KafkaConsumer(*topics, **self.options(**options))

    def admin(self, **options: Any) -> Any:
        self.check_login()
        return self.admin_unchecked(**options)

    def admin_unchecked(self, **options: Any) -> Any:
        """An admin client without the login check (the check itself uses one)."""
        from kafka import KafkaAdminClient

        return KafkaAdminClient(**self.options(**options))

    def check_login(self) -> None:
        """Raise KafkaLoginRefused (store/kafka_login.py) if the brokers refuse this SASL
        login; checked once a process."""
        if self.security.protocol.startswith("SASL_"):
            from store.kafka_login import check_login

            check_login(self)


def connection_from(env: Mapping[str, str] | Any, bootstrap_servers: str) -> KafkaConnection:
    """The connection an eventsourcing environment describes (store.factory's keys)."""
    return KafkaConnection(bootstrap_servers, KafkaSecurity.from_environment(env.get))
