"""The generated TLS material after a crash between writing a key and its certificate:
a key that does not belong to its certificate is never kept (review finding)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from disksnap.api.grpc.tls import ensure_certificates

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NAMES = ["127.0.0.1", "localhost"]


def _other_key(path: Path) -> None:
    """What a crash leaves when a new key was written but its certificate was not."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _public(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _cert_public(path: Path) -> bytes:
    return (
        x509.load_pem_x509_certificate(path.read_bytes())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_a_server_key_that_is_not_the_certificates_is_replaced(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls", NAMES, NOW)
    _other_key(files.key)
    files = ensure_certificates(tmp_path / "tls", NAMES, NOW)
    assert _public(files.key.read_bytes()) == _cert_public(files.cert)


def test_a_ca_key_that_is_not_the_ca_certificates_makes_a_new_ca(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls", NAMES, NOW)
    ca_key = tmp_path / "tls" / "ca-key.pem"
    _other_key(ca_key)
    files = ensure_certificates(tmp_path / "tls", NAMES, NOW)
    assert _public(ca_key.read_bytes()) == _cert_public(files.ca)
    server = x509.load_pem_x509_certificate(files.cert.read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca.read_bytes()))
