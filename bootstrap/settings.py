"""Settings from the environment (12-factor), validated in one place and passed down.

Plain dataclass code, not a settings library: every command reads its settings first, and
pydantic-settings alone cost a query command more start-up time than the query itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.kafka_clients import KafkaConnection, KafkaSecurity

_BOOTSTRAP = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9._\-]{1,200}$")
ENV_PREFIX = "EVLEDGER_"


# Each shard is a topic with its own writer and an ingest partition: far beyond any one
# cluster's sensible count of parallel ledger tasks.
MAX_LEDGER_SHARDS = 256


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


class _FromEnvironment:
    def __repr__(self) -> str:
        return "<from the environment>"


# The default of every field: a value not given to Settings(...) is read from the
# environment, and only when the environment has none (or an empty one) is it the default.
_FROM_ENV: Any = _FromEnvironment()


def _setting(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    choices: tuple[str, ...] = (),
) -> Any:
    rules = {"minimum": minimum, "maximum": maximum, "above": above, "choices": choices}
    return field(default=_FROM_ENV, metadata={"default": default, **rules})


class Secret:
    """A password: its value only on request, never in repr() or str()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SECURITY_FIELDS = (
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "kafka_ssl_key_password",
)


@dataclass(frozen=True)
class Settings:
    """Where the ledger and the read models live. Unset Kafka means the embedded default."""

    # Every default is _setting(...): read from the environment unless given.
    kafka_bootstrap: str | None = _setting(None)
    pg_dsn: str | None = _setting(None)
    duckdb_path: Path | None = _setting(None)
    topic_prefix: str = _setting("evledger")
    data_dir: Path = _setting(Path(".evledger"))
    kafka_replication_factor: int = _setting(1, minimum=1)
    kafka_min_insync_replicas: int = _setting(1, minimum=1)
    # The Ed25519 private key (PEM) the Kafka ledger writer signs records and exports with.
    signing_key_file: Path | None = _setting(None)
    # How long the ledger's writer and readers wait on Kafka before calling it unavailable
    # (ingest then backs off and reads the batch again); longer than a leader election.
    kafka_timeout_s: float = _setting(30.0, above=0)
    # Ledger records a process keeps by offset (Kafka ledger), so that loading an aggregate
    # rarely goes back to the topic; bounded, so memory stays flat however long the ledger.
    record_cache_size: int = _setting(20_000, minimum=0)
    # SQLite's page cache for the aggregate index (Kafka ledger), per process: the index
    # file grows with the ledger, its resident part stays this size.
    index_cache_mib: int = _setting(8, minimum=1)
    # Aggregates the write application keeps from one ingest batch to the next (sessions,
    # payments, tariffs used again soon), so they are not replayed from the ledger each time.
    aggregate_cache_size: int = _setting(4096, minimum=0)
    # DuckDB's memory for the analytics projector and rebuild (its buffer otherwise grows
    # with the analytics file, up to most of the machine's memory). Key indexes live in it
    # and are evicted once checkpointed; the readers' copy no longer needs it. At 128 MiB
    # the buffer filled with a 2-million-event file: rebuild peaked at 405 MiB.
    duckdb_memory_limit_mib: int = _setting(64, minimum=16)
    # Aggregates whose audit state `audit verify` keeps in memory, per kind of state; the
    # rest wait in a temporary file, so verifying a long ledger does not fill memory.
    audit_state_cache_size: int = _setting(10_000, minimum=1)
    # Ledger shards: one ledger topic, fenced writer and ingest partition each (Kafka only).
    ledger_shards: int = _setting(1, minimum=1, maximum=MAX_LEDGER_SHARDS)

    # How every Kafka client talks to the brokers (store/kafka_clients.py): TLS, SASL login.
    kafka_security_protocol: str = _setting("PLAINTEXT", choices=_PROTOCOLS)
    kafka_sasl_mechanism: str | None = _setting(None, choices=_MECHANISMS)
    kafka_sasl_username: str | None = _setting(None)
    kafka_sasl_password: Secret | None = _setting(None)
    # PEM files: the CA that signed the brokers' certificates (else the system's CAs), and a
    # client certificate with its key (and the key's password) for brokers that ask for one.
    kafka_ssl_cafile: Path | None = _setting(None)
    kafka_ssl_certfile: Path | None = _setting(None)
    kafka_ssl_keyfile: Path | None = _setting(None)
    kafka_ssl_key_password: Secret | None = _setting(None)
    # How many minor units a roaming CDR's total_cost may differ from evledger's re-priced
    # total and still be reconciled as exact (0: to the cent).
    ocpi_tolerance_minor: int = _setting(0, minimum=0, maximum=1_000_000)

    def __post_init__(self) -> None:
        for spec in fields(self):
            variable = f"{ENV_PREFIX}{spec.name.upper()}"
            value = getattr(self, spec.name)
            if value is _FROM_ENV:
                value = os.environ.get(variable) or spec.metadata["default"]
            try:
                value = _checked(spec.name, _typed(str(spec.type), value), spec.metadata)
            except ValueError as error:
                raise SettingsError(f"{variable}: {error}") from None
            object.__setattr__(self, spec.name, value)
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise SettingsError(
                "EVLEDGER_KAFKA_MIN_INSYNC_REPLICAS must not exceed "
                "EVLEDGER_KAFKA_REPLICATION_FACTOR"
            )
        if self.kafka_security_protocol != "PLAINTEXT" or any(
            getattr(self, name) is not None for name in _SECURITY_FIELDS
        ):
            from store.kafka_clients import KafkaSecurityError

            try:
                _ = self.kafka_security
            except KafkaSecurityError as error:
                raise SettingsError(str(error)) from None
        if self.ledger_shards > 1 and self.kafka_bootstrap is None:
            raise SettingsError(
                "EVLEDGER_LEDGER_SHARDS: the embedded default has one shard; set "
                "EVLEDGER_KAFKA_BOOTSTRAP for more"
            )

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The Kafka clients' TLS and SASL settings (KafkaSecurityError if inconsistent)."""
        from store.kafka_clients import KafkaSecurity

        def secret(value: Secret | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        def path(value: Path | None) -> str | None:
            return str(value) if value is not None else None

        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=secret(self.kafka_sasl_password),
            ca_file=path(self.kafka_ssl_cafile),
            cert_file=path(self.kafka_ssl_certfile),
            key_file=path(self.kafka_ssl_keyfile),
            key_password=secret(self.kafka_ssl_key_password),
        )

    def kafka_connection(self, bootstrap_servers: str | None = None) -> KafkaConnection:
        """A connection with these security settings, to these brokers (default: the
        configured ones), for tools that reach Kafka outside the ledger's own wiring."""
        from store.kafka_clients import KafkaConnection

        servers = bootstrap_servers or self.kafka_bootstrap
        if servers is None:
            raise SettingsError("EVLEDGER_KAFKA_BOOTSTRAP: not set")
        return KafkaConnection(servers, self.kafka_security)

    @classmethod
    def embedded_in(cls, data_dir: Path) -> Settings:
        """The embedded default in data_dir, whatever EVLEDGER_* the environment holds."""
        return cls(
            data_dir=data_dir, kafka_bootstrap=None, pg_dsn=None, duckdb_path=None, ledger_shards=1
        )

    @property
    def embedded(self) -> bool:
        """No Kafka configured: the ledger and read models live in local files."""
        return self.kafka_bootstrap is None

    def redacted(self) -> dict[str, object]:
        """The settings for display, with any PostgreSQL or Kafka password masked."""
        from bootstrap.secrets import MASK

        values = asdict(self)
        for name in ("kafka_sasl_password", "kafka_ssl_key_password"):
            if values[name] is not None:
                values[name] = MASK
        if self.pg_dsn is not None:
            from bootstrap.secrets import mask_dsn, scrub

            values["pg_dsn"] = scrub(mask_dsn(self.pg_dsn), self.pg_dsn)
        return values

    @property
    def analytics_path(self) -> Path:
        return self.duckdb_path or self.data_dir / "analytics.duckdb"

    @property
    def ledger_topic(self) -> str:
        return f"{self.topic_prefix}.ledger"

    @property
    def ingest_topic(self) -> str:
        return f"{self.topic_prefix}.ingest"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.ingest.dlq"


def load_settings() -> Settings:
    """Read the environment; a bad value raises SettingsError with one readable line."""
    return Settings()


def _typed(kind: str, value: Any) -> Any:
    """value (text from the environment, or as given) as the field's type."""
    if value is None:
        if kind.endswith(" | None"):
            return None
        raise ValueError("must be set")
    base = kind.removesuffix(" | None")
    if base == "str":
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        return value
    if base == "Path":
        if not isinstance(value, str | Path):
            raise ValueError(f"expected a path, got {value!r}")
        return Path(value)
    if base == "int":
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ValueError(f"expected a whole number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        return value
    if base == "Secret":
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise ValueError("expected text")
        return Secret(value)
    if base == "float":
        try:
            return float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    raise AssertionError(f"no parser for a setting of type {kind}")


def _checked(name: str, value: Any, rules: Mapping[str, Any]) -> Any:
    if rules["minimum"] is not None and value < rules["minimum"]:
        raise ValueError(f"must be greater than or equal to {rules['minimum']}, got {value}")
    if rules["maximum"] is not None and value > rules["maximum"]:
        raise ValueError(f"must be less than or equal to {rules['maximum']}, got {value}")
    if rules["choices"] and value is not None and value not in rules["choices"]:
        raise ValueError(f"expected one of {', '.join(rules['choices'])}, got {value!r}")
    if rules["above"] is not None and value <= rules["above"]:
        raise ValueError(f"must be greater than {rules['above']}, got {value}")
    check = _CHECKS.get(name)
    return value if check is None or value is None else check(value)


def _bootstrap_servers(value: str) -> str:
    servers = [server.strip() for server in value.split(",")]
    for server in servers:
        if not _BOOTSTRAP.match(server):
            raise ValueError(f"expected host:port[,host:port...], got {value!r}")
    return ",".join(servers)


def _postgres_dsn(value: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(value)
    except Exception as error:
        from bootstrap.secrets import scrub

        reason = scrub(str(error), value)
        raise ValueError(f"not a PostgreSQL connection string: {reason}") from None
    return value


def _signing_key_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"no key file at {value} (make one with `evledger audit keygen`)")
    return value


def _tls_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"no such file: {value}")
    return value


def _topic_prefix(value: str) -> str:
    if not _TOPIC_PREFIX.match(value):
        raise ValueError(f"use letters, digits, '.', '_' or '-' only, got {value!r}")
    return value


# Checks beyond the type, by field (each gets the typed value, never None).
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "kafka_bootstrap": _bootstrap_servers,
    "pg_dsn": _postgres_dsn,
    "signing_key_file": _signing_key_file,
    "topic_prefix": _topic_prefix,
    "kafka_ssl_cafile": _tls_file,
    "kafka_ssl_certfile": _tls_file,
    "kafka_ssl_keyfile": _tls_file,
}
