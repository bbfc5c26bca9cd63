"""Settings from the environment (12-factor), validated in one place and passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from store.kafka_clients import KafkaConnection, KafkaSecurity, KafkaSecurityError

_BOOTSTRAP = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9._\-]{1,200}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Where the ledger and the read models live. Unset Kafka means the embedded default."""

    model_config = SettingsConfigDict(env_prefix="EVLEDGER_", env_ignore_empty=True, frozen=True)

    kafka_bootstrap: str | None = None
    pg_dsn: str | None = None
    duckdb_path: Path | None = None
    topic_prefix: str = "evledger"
    data_dir: Path = Path(".evledger")
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    # The Ed25519 private key (PEM) the Kafka ledger writer signs records and exports with.
    signing_key_file: Path | None = None
    # How long the ledger's writer and readers wait on Kafka before calling it unavailable
    # (ingest then backs off and reads the batch again); longer than a leader election.
    kafka_timeout_s: float = Field(default=30.0, gt=0)
    # Ledger records a process keeps by offset (Kafka ledger), so that loading an aggregate
    # rarely goes back to the topic; bounded, so memory stays flat however long the ledger.
    record_cache_size: int = Field(default=20_000, ge=0)
    # DuckDB's memory for the analytics projector and rebuild (its buffer otherwise grows
    # with the analytics file, up to most of the machine's memory).
    duckdb_memory_limit_mib: int = Field(default=128, ge=16)
    # How every Kafka client talks to the brokers (store/kafka_clients.py): TLS, SASL login.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM files: the CA that signed the brokers' certificates (else the system's CAs), and a
    # client certificate with its key (and the key's password) for brokers that ask for one.
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # How many minor units a roaming CDR's total_cost may differ from evledger's re-priced
    # total and still be reconciled as exact (0: to the cent).
    ocpi_tolerance_minor: int = Field(default=0, ge=0, le=1_000_000)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_servers(cls, value: str | None) -> str | None:
        if value is None:
            return None
        servers = [server.strip() for server in value.split(",")]
        for server in servers:
            if not _BOOTSTRAP.match(server):
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return ",".join(servers)

    @field_validator("pg_dsn")
    @classmethod
    def _postgres_dsn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(value)
        except Exception as error:
            from bootstrap.secrets import scrub

            reason = scrub(str(error), value)
            raise ValueError(f"not a PostgreSQL connection string: {reason}") from None
        return value

    @field_validator("signing_key_file")
    @classmethod
    def _signing_key_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no key file at {value} (make one with `evledger audit keygen`)")
        return value

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _tls_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not _TOPIC_PREFIX.match(value):
            raise ValueError(f"use letters, digits, '.', '_' or '-' only, got {value!r}")
        return value

    @model_validator(mode="after")
    def _replication(self) -> Settings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                "EVLEDGER_KAFKA_MIN_INSYNC_REPLICAS must not exceed "
                "EVLEDGER_KAFKA_REPLICATION_FACTOR"
            )
        try:
            _ = self.kafka_security
        except KafkaSecurityError as error:
            raise ValueError(str(error)) from None
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The Kafka clients' TLS and SASL settings (KafkaSecurityError if inconsistent)."""

        def secret(value: SecretStr | None) -> str | None:
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
        servers = bootstrap_servers or self.kafka_bootstrap
        if servers is None:
            raise SettingsError("EVLEDGER_KAFKA_BOOTSTRAP: not set")
        return KafkaConnection(servers, self.kafka_security)

    @classmethod
    def embedded_in(cls, data_dir: Path) -> Settings:
        """The embedded default in data_dir, whatever EVLEDGER_* the environment holds."""
        return cls(data_dir=data_dir, kafka_bootstrap=None, pg_dsn=None, duckdb_path=None)

    @property
    def embedded(self) -> bool:
        """No Kafka configured: the ledger and read models live in local files."""
        return self.kafka_bootstrap is None

    def redacted(self) -> dict[str, object]:
        """The settings for display, with any PostgreSQL or Kafka password masked."""
        from bootstrap.secrets import MASK

        values = self.model_dump()
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
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = "_".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ").strip().splitlines()[0]
        if field:
            message = f"EVLEDGER_{field.upper()}: {message}"
        raise SettingsError(message) from None
