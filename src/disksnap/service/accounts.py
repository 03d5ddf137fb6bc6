"""Service accounts and their authorized keys, as the admin commands make them.

A key is an RSA pair made here with ``cryptography``: the public half is stored, the
private half is returned once, inside the JSON document ``yc iam key create --output``
writes (``KeyFile.as_json``), which the official SDKs accept as
``service_account_key``. The private key is PKCS#8 PEM (``BEGIN PRIVATE KEY``), the
form the Python SDK checks for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import timestamp_pb2

from disksnap.domain import errors as d
from disksnap.domain.ids import PREFIX_SUBJECT, IdGenerator
from disksnap.meta import AuthorizedKey, KeyAlgorithm, Subject, SubjectKind, Transaction
from disksnap.service.auth import ROLES

KEY_BITS = {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_4096: 4096}
# Authorized keys get ids like service accounts' (Yandex Cloud's are ``aje…`` too).
PREFIX_KEY = PREFIX_SUBJECT


class UnknownRole(d.InvalidArgument):
    reason = "UNKNOWN_ROLE"


def create_service_account(
    tx: Transaction,
    ids: IdGenerator,
    *,
    name: str,
    folder_id: str,
    roles: tuple[str, ...],
    now: dt.datetime,
) -> Subject:
    """A service account in ``folder_id`` holding ``roles`` on it. Raise ``UnknownRole``,
    ``FolderNotFound`` or ``NameTaken`` (subject names are unique, users' and service
    accounts' alike, so ``admin token create --subject`` names one subject)."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise UnknownRole(f"unknown role {unknown[0]!r}: one of {', '.join(sorted(ROLES))}")
    tx.folders.get(folder_id)
    account = Subject(ids.new(PREFIX_SUBJECT), name, SubjectKind.SERVICE_ACCOUNT, folder_id, now)
    tx.subjects.insert(account)
    for role in roles:
        tx.roles.grant(folder_id, account.id, role)
    return account


@dataclass(frozen=True)
class KeyFile:
    """A new key with its private half: what the caller gets, once."""

    key: AuthorizedKey
    private_key: str

    def as_json(self) -> dict[str, str]:
        """The document ``yc iam key create --output key.json`` writes, field for field."""
        created = timestamp_pb2.Timestamp()
        created.FromDatetime(self.key.created_at)
        return {
            "id": self.key.id,
            "service_account_id": self.key.service_account_id,
            "created_at": created.ToJsonString(),
            "key_algorithm": self.key.key_algorithm.value,
            "public_key": self.key.public_key,
            "private_key": self.private_key,
        }


def create_key(
    tx: Transaction,
    ids: IdGenerator,
    *,
    service_account_id: str,
    algorithm: KeyAlgorithm,
    now: dt.datetime,
    description: str = "",
) -> KeyFile:
    """Make an RSA pair, store its public half for the account; raise
    ``ServiceAccountNotFound``."""
    tx.service_accounts.get(service_account_id)
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS[algorithm])
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = AuthorizedKey(
        id=ids.new(PREFIX_KEY),
        service_account_id=service_account_id,
        created_at=now,
        key_algorithm=algorithm,
        public_key=public_pem.decode(),
        description=description,
    )
    tx.keys.insert(key)
    return KeyFile(key, private_pem.decode())
