"""The generated TLS material: what is made on first start, what is kept, what is
replaced (``disksnap.api.grpc.tls``), with time moved by hand."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from disksnap.api.grpc.tls import TlsFiles, ensure_certificates, server_names

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NAMES = ["127.0.0.1", "localhost"]


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(files: TlsFiles) -> list[str]:
    ext = _cert(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return [str(name.value) for name in ext.value]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_makes_a_ca_and_a_server_certificate_it_signed(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls", [*NAMES, "0.0.0.0", "disks.example.test"], NOW)
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == [
        "ca-key.pem",
        "ca.pem",
        "server-key.pem",
        "server.pem",
    ]
    assert _mode(tmp_path / "tls") == 0o700
    assert _mode(tmp_path / "tls" / "ca-key.pem") == 0o600
    assert _mode(files.key) == 0o600
    ca, server = _cert(files.ca), _cert(files.cert)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _sans(files) == ["127.0.0.1", "localhost", "disks.example.test"]  # no 0.0.0.0
    assert server.not_valid_after_utc - NOW == dt.timedelta(days=365)


def test_restarts_keep_what_is_good_and_replace_what_is_not(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    files = ensure_certificates(directory, NAMES, NOW)
    ca, server = files.ca.read_bytes(), files.cert.read_bytes()

    ensure_certificates(directory, list(reversed(NAMES)), NOW + dt.timedelta(days=300))
    assert (files.ca.read_bytes(), files.cert.read_bytes()) == (ca, server), "all still good"

    ensure_certificates(directory, [*NAMES, "10.0.0.7"], NOW + dt.timedelta(days=300))
    assert files.ca.read_bytes() == ca
    assert files.cert.read_bytes() != server, "SANs changed"
    assert _sans(files) == [*NAMES, "10.0.0.7"]

    renewed = files.cert.read_bytes()
    ensure_certificates(directory, [*NAMES, "10.0.0.7"], NOW + dt.timedelta(days=640))
    assert files.ca.read_bytes() == ca
    assert files.cert.read_bytes() != renewed, "within 30 days of expiry"

    later = NOW + dt.timedelta(days=3700)  # the CA itself has expired
    ensure_certificates(directory, NAMES, later)
    assert files.ca.read_bytes() != ca
    _cert(files.cert).verify_directly_issued_by(_cert(files.ca))
    assert _cert(files.cert).not_valid_before_utc <= later


def test_a_server_certificate_from_another_ca_is_replaced(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls", NAMES, NOW)
    (tmp_path / "tls" / "ca-key.pem").unlink()  # lost: a new CA is made
    ensure_certificates(tmp_path / "tls", NAMES, NOW)
    _cert(files.cert).verify_directly_issued_by(_cert(files.ca))


def test_names_are_host_names_or_addresses() -> None:
    names = server_names(["::1", "[::1]", "LocalHost", "a-b.example.test.", "::"])
    assert [n.value for n in names] == [
        ipaddress.ip_address("::1"),
        "localhost",
        "a-b.example.test",
    ]
    for bad in ("../etc", "a b", "-lead.example", "x" * 64):
        with pytest.raises(ValueError, match="not a host name or IP address"):
            server_names([bad])


def test_a_kept_key_that_others_may_read_is_made_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    files = ensure_certificates(directory, NAMES, NOW)
    key, ca_key = files.key.read_bytes(), (directory / "ca-key.pem").read_bytes()
    files.key.chmod(0o644)  # as a careless copy or restore might leave them
    (directory / "ca-key.pem").chmod(0o640)
    ensure_certificates(directory, NAMES, NOW)
    for path, content in ((files.key, key), (directory / "ca-key.pem", ca_key)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes() == content  # kept, not replaced
