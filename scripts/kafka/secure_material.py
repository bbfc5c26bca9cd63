"""Throwaway TLS and SASL material for the secure test broker (scripts/services --secure).

Writes into one directory, once (a second run keeps what is there): a CA (ca.pem), the
broker's certificate and key for 127.0.0.1/localhost signed by it (broker.p12, a PKCS#12
keystore), a client certificate and encrypted key (client.pem, client.key) for clients
that present one, and secrets.env with a random password for every principal. Nothing here
is fit for anything but a test on loopback.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The principals of the secure broker: the broker itself and its admin (a super user), the
# KRaft controller (PLAIN on its own listener), the ledger's writer, and another principal
# the ACLs keep away from the ledger.
PASSWORDS = ("ADMIN", "CONTROLLER", "WRITER", "OTHER", "KEYSTORE", "CLIENT_KEY")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.now(UTC)
    issuer_name = issuer[0].subject if issuer else _name(subject)
    signer = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make(directory: Path) -> None:
    if (directory / "secrets.env").exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    passwords = {name: secrets.token_urlsafe(18) for name in PASSWORDS}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("evledger test CA", ca_key, None, ca=True)
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker = _certificate("localhost", broker_key, (ca, ca_key), server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("evledger-client", client_key, (ca, ca_key))
    pem = serialization.Encoding.PEM
    _write(directory / "ca.pem", ca.public_bytes(pem))
    keystore_password = passwords["KEYSTORE"].encode()
    _write(
        directory / "broker.p12",
        pkcs12.serialize_key_and_certificates(
            b"broker",
            broker_key,
            broker,
            [ca],
            serialization.BestAvailableEncryption(keystore_password),
        ),
    )
    _write(directory / "client.pem", client.public_bytes(pem))
    _write(
        directory / "client.key",
        client_key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passwords["CLIENT_KEY"].encode()),
        ),
    )
    lines = [f"{name}_PASSWORD={value}\n" for name, value in passwords.items()]
    _write(directory / "secrets.env", "".join(lines).encode())


if __name__ == "__main__":
    make(Path(sys.argv[1]))
