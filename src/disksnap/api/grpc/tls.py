"""The gRPC listener's TLS material: a private CA and a server certificate it signs,
generated into ``DATA/tls/`` (see docs/grpc.md for the lifecycle).

Files: ``ca.pem`` and ``ca-key.pem`` (the CA, 10 years), ``server.pem`` and
``server-key.pem`` (the server, 1 year). Keys are written with mode 0600 (a kept key
that others may read is made 0600, with a warning), every file atomically (written
beside, then renamed). On each start :func:`ensure_certificates`
keeps what is still good and replaces only what is not:

- the CA is made when either of its files is missing, when the key is not the
  certificate's (a crash between the two writes), or when it has expired; a new
  CA forces a new server certificate (clients must then fetch the new ``ca.pem``);
- the server certificate is made again when it or its key is missing, the key is not
  the certificate's, it was not signed by the current CA, it names other SANs than
  asked for, or it expires within RENEW_BEFORE.

Keys are ECDSA P-256: fast to make, and every gRPC client accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = dt.timedelta(days=3650)
SERVER_LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
BACKDATE = dt.timedelta(minutes=5)  # tolerate clients whose clocks run a little behind

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")

Name = x509.DNSName | x509.IPAddress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsFiles:
    """Where the PEM files are: the CA certificate to give clients, the server's pair."""

    ca: Path
    cert: Path
    key: Path


def server_names(names: Iterable[str]) -> list[Name]:
    """SAN entries for ``names`` (host names or IP addresses), without duplicates, in
    order. Unspecified addresses (``0.0.0.0``, ``::``) name no host and are left out.
    ValueError for anything that is neither a host name nor an IP address."""
    found: list[Name] = []
    for name in names:
        entry: Name
        try:
            address = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            if not _DNS_NAME.fullmatch(name):
                raise ValueError(f"not a host name or IP address: {name!r}") from None
            entry = x509.DNSName(name.lower().rstrip("."))
        else:
            if address.is_unspecified:
                continue
            entry = x509.IPAddress(address)
        if entry not in found:
            found.append(entry)
    return found


def ensure_certificates(directory: Path, names: Iterable[str], now: dt.datetime) -> TlsFiles:
    """Make or keep the CA and the server certificate for ``names`` in ``directory``."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca_key_path = directory / "ca-key.pem"
    sans = server_names(names)
    ca = _load_ca(files.ca, ca_key_path, now)
    if ca is None:
        ca = _new_ca(now)
        _write(ca_key_path, _key_pem(ca[1]), 0o600)
        _write(files.ca, ca[0].public_bytes(serialization.Encoding.PEM), 0o644)
    if not _server_cert_good(files, ca[0], sans, now):
        cert, key = _new_server_cert(ca, sans, now)
        _write(files.key, _key_pem(key), 0o600)
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    for key_path in (ca_key_path, files.key):  # kept keys too: a copy may have loosened it
        _owner_only(key_path)
    return files


def _owner_only(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o): made 0600", path, mode)
        path.chmod(mode & 0o700 | 0o600)


def _load_ca(
    cert_path: Path, key_path: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if not (cert_path.exists() and key_path.exists()):
        return None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc <= now:
        return None
    if not _pair(cert, key):  # a crash between writing the key and the certificate
        return None
    return cert, key


def _pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    return bool(cert.public_key() == key.public_key())


def _server_cert_good(
    files: TlsFiles, ca: x509.Certificate, sans: list[Name], now: dt.datetime
) -> bool:
    if not (files.cert.exists() and files.key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _pair(cert, key):
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    try:
        current = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(current) == set(sans) and cert.not_valid_after_utc - RENEW_BEFORE > now


def _new_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "disksnap local CA")])
    cert = (
        _builder(name, name, key.public_key(), now, CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_server_cert(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], sans: list[Name], now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    common = sans[0].value if sans else "disksnap"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(common))])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, SERVER_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` beside ``path`` with ``mode`` from the start, then rename over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
