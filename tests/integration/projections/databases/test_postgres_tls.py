"""PostgreSQL over TLS through the DSN alone: `sslmode`/`sslrootcert` in EVLEDGER_PG_DSN
reach every connection evledger derives from it (read models, their schemas, the API's
pool, point-in-time settings, test and bench databases), and a server certificate that
does not verify is refused with one clear line that shows no password."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bootstrap import Settings, bootstrap
from projections.databases.postgres import PostgresDatabase, drop_database

pytestmark = [pytest.mark.postgres]

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
ON_TLS = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def tls_dsn(pg_dsn: str) -> str:
    """The shared server's DSN with sslmode=require; a server without TLS fails the tests
    (scripts/services' Debian cluster has it on, with the system's snakeoil certificate)."""
    with psycopg.connect(pg_dsn) as connection:
        ssl = connection.execute("SHOW ssl").fetchone()
    assert ssl == ("on",), f"the test PostgreSQL runs without TLS (ssl = {ssl})"
    return make_conninfo(pg_dsn, sslmode="require")


def on_tls(database: PostgresDatabase) -> bool:
    return bool(database.execute(ON_TLS)[0]["ssl"])


def test_every_connection_derived_from_the_dsn_keeps_its_tls_settings(
    tls_dsn: str, tmp_path: Path
) -> None:
    root = bootstrap(Settings(pg_dsn=tls_dsn, data_dir=tmp_path / "data"))
    views = root.views
    live = views.live()
    try:
        assert on_tls(live)
    finally:
        live.close()

    place = views.rebuild_place(f"tls{uuid.uuid4().hex[:8]}")
    try:
        assert isinstance(place.db, PostgresDatabase)
        assert on_tls(place.db)
    finally:
        place.discard()

    lender = views.lender(2)
    lender.open()
    try:
        with lender.lend() as pooled:
            assert isinstance(pooled, PostgresDatabase)
            assert on_tls(pooled)
    finally:
        lender.close()

    settings = views.query_settings(tmp_path, "tls")
    assert conninfo_to_dict(settings["EVLEDGER_PG_DSN"])["sslmode"] == "require"

    # A database of its own, as the tests' and benches' fixtures derive it, then dropped.
    name = f"it_tls_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(tls_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        own = PostgresDatabase(make_conninfo("", **{**conninfo_to_dict(tls_dsn), "dbname": name}))
        try:
            assert on_tls(own)
        finally:
            own.close()
    finally:
        drop_database(tls_dsn, name)


def a_foreign_ca(path: Path) -> Path:
    """A CA certificate that did not sign the server's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the server's CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_a_server_certificate_that_does_not_verify_is_one_clear_line(
    pg_dsn: str, tmp_path: Path
) -> None:
    # TLS fails before any login, so the password is one of the test's own, to look for.
    password = f"pw-{uuid.uuid4().hex}"
    dsn = make_conninfo(
        pg_dsn,
        password=password,
        sslmode="verify-full",
        sslrootcert=str(a_foreign_ca(tmp_path / "foreign-ca.pem")),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env |= {"EVLEDGER_PG_DSN": dsn, "EVLEDGER_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [EVLEDGER, "refunds"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert "certificate verify failed" in lines[0]
    assert "Traceback" not in output
    assert password not in output
