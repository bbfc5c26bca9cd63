"""The Kafka security settings: bad values and combinations are one line naming the
variables, passwords never show, and what the settings say reaches the client options and
the store's environment unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.ledgers import KafkaLedger, ledger_backend
from bootstrap.settings import SettingsError, load_settings
from store.kafka_clients import KafkaConnection, KafkaSecurity, connection_from

SECRET = "s3cret-Pa55"
SASL_SSL = {
    "EVLEDGER_KAFKA_BOOTSTRAP": "broker.example.com:9096",
    "EVLEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "EVLEDGER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "EVLEDGER_KAFKA_SASL_USERNAME": "writer",
    "EVLEDGER_KAFKA_SASL_PASSWORD": SECRET,
}


def settings_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    return str(raised.value)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"EVLEDGER_KAFKA_SECURITY_PROTOCOL": "TLS"}, "EVLEDGER_KAFKA_SECURITY_PROTOCOL"),
        ({"EVLEDGER_KAFKA_SASL_MECHANISM": "GSSAPI"}, "EVLEDGER_KAFKA_SASL_MECHANISM"),
        ({"EVLEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "EVLEDGER_KAFKA_SASL_MECHANISM"),
        (
            {
                "EVLEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "EVLEDGER_KAFKA_SASL_MECHANISM": "PLAIN",
            },
            "EVLEDGER_KAFKA_SASL_PASSWORD",
        ),
        ({"EVLEDGER_KAFKA_SASL_PASSWORD": SECRET}, "EVLEDGER_KAFKA_SECURITY_PROTOCOL"),
        ({"EVLEDGER_KAFKA_SSL_CAFILE": "/no/such/ca.pem"}, "EVLEDGER_KAFKA_SSL_CAFILE"),
    ],
)
def test_a_bad_security_setting_is_one_line_naming_it(
    env: dict[str, str], names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = settings_error(monkeypatch, **env)
    assert names in message
    assert "\n" not in message
    assert SECRET not in message


def test_tls_files_need_a_tls_protocol_and_a_certificate_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("not checked here: the client reads it")
    assert "EVLEDGER_KAFKA_SSL_" in settings_error(monkeypatch, EVLEDGER_KAFKA_SSL_CAFILE=str(pem))
    monkeypatch.setenv("EVLEDGER_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert "EVLEDGER_KAFKA_SSL_KEYFILE" in settings_error(
        monkeypatch, EVLEDGER_KAFKA_SSL_CERTFILE=str(pem)
    )


def test_the_settings_reach_the_clients_and_the_store_and_hide_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    for name, value in {**SASL_SSL, "EVLEDGER_KAFKA_SSL_CAFILE": str(ca)}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.redacted()["kafka_sasl_password"] == "***"
    assert SECRET not in repr(settings.kafka_security)

    backend = ledger_backend(settings)
    assert isinstance(backend, KafkaLedger)
    options = backend.site.connection.options(client_id="x")
    assert options == {
        "bootstrap_servers": "broker.example.com:9096",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "writer",
        "sasl_plain_password": SECRET,
        "ssl_cafile": str(ca),
        "client_id": "x",
    }
    # The store's factory rebuilds the same connection from the library's environment.
    environment = backend.environment()
    rebuilt = connection_from(environment, environment["KAFKA_BOOTSTRAP_SERVERS"])
    assert rebuilt == backend.site.connection


def test_a_caller_cannot_override_the_connections_own_options() -> None:
    connection = KafkaConnection("127.0.0.1:9092", KafkaSecurity("SSL"))
    with pytest.raises(TypeError, match="security_protocol"):
        connection.options(security_protocol="PLAINTEXT")
    with pytest.raises(TypeError, match="bootstrap_servers"):
        connection.options(bootstrap_servers="elsewhere:9092")
