"""Contract: service accounts, their authorized keys, and the tokens a key got."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from disksnap.domain.clock import FakeClock
from disksnap.meta import (
    AuthorizedKey,
    KeyAlgorithm,
    Meta,
    Subject,
    SubjectKind,
    Transaction,
    hash_token,
    migrate,
)
from disksnap.meta.db import create_engine
from disksnap.meta.errors import (
    DuplicateId,
    KeyNotFound,
    ReferenceMissing,
    ServiceAccountNotFound,
)
from tests.meta.factories import FOLDER, OTHER_FOLDER, SUBJECT, T0, at, seed
from tests.postgres import create_pg_database, drop_pg_database

ROBOT = "ajerobot000000000000"
PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"


def robot(account_id: str = ROBOT, name: str = "robot", folder: str = FOLDER) -> Subject:
    return Subject(account_id, name, SubjectKind.SERVICE_ACCOUNT, folder, T0)


def key(key_id: str, account_id: str = ROBOT, **fields: Any) -> AuthorizedKey:
    return replace(AuthorizedKey(key_id, account_id, T0, KeyAlgorithm.RSA_2048, PEM), **fields)


def test_service_accounts_are_subjects_of_a_folder(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.subjects.insert(robot())
        tx.subjects.insert(robot("ajerobot000000000001", "other-robot", OTHER_FOLDER))
        tx.roles.grant(FOLDER, ROBOT, "compute.editor")
    with meta.transaction(readonly=True) as tx:
        assert tx.service_accounts.get(ROBOT) == robot()
        assert tx.roles.roles_of(ROBOT, FOLDER) == {"compute.editor"}
        assert [a.id for a in tx.service_accounts.list()] == [ROBOT, "ajerobot000000000001"]
        assert tx.service_accounts.list(FOLDER) == (robot(),)
        assert tx.service_accounts.list("b1gmissing") == ()
        with pytest.raises(ServiceAccountNotFound) as info:
            tx.service_accounts.get(SUBJECT)  # a user is not a service account
        assert info.value.reason == "SERVICE_ACCOUNT_NOT_FOUND"


def test_deleting_a_service_account_takes_its_roles_tokens_and_keys(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.subjects.insert(robot())
        tx.roles.grant(FOLDER, ROBOT, "editor")
        tx.keys.insert(key("ajekey1"))
        tx.tokens.insert("t1.secret", subject_id=ROBOT, created_at=T0, key_id="ajekey1")
    with meta.transaction() as tx:
        assert tx.service_accounts.delete(ROBOT) == robot()
        with pytest.raises(ServiceAccountNotFound):
            tx.service_accounts.delete(ROBOT)
        with pytest.raises(ServiceAccountNotFound):
            tx.service_accounts.delete(SUBJECT)
    with meta.transaction(readonly=True) as tx:
        assert tx.roles.roles_of(ROBOT, FOLDER) == frozenset()
        assert tx.tokens.find_valid("t1.secret", now=at(1)) is None
        with pytest.raises(KeyNotFound):
            tx.keys.get("ajekey1")
        assert tx.subjects.get(SUBJECT).kind is SubjectKind.USER


def test_keys_insert_get_list(meta: Meta) -> None:
    first, second = key("ajekey1"), key("ajekey2", created_at=at(5), description="ci")
    with meta.transaction() as tx:
        seed(tx)
        tx.subjects.insert(robot())
        tx.keys.insert(second)
        tx.keys.insert(first)
        with pytest.raises(DuplicateId):
            tx.keys.insert(key("ajekey1"))
        with pytest.raises(ServiceAccountNotFound):
            tx.keys.insert(key("ajekey3", "ajemissing"))
        with pytest.raises(ServiceAccountNotFound):
            tx.keys.insert(key("ajekey3", SUBJECT))  # users have no keys
    with meta.transaction(readonly=True) as tx:
        assert tx.keys.get("ajekey1") == first
        assert tx.keys.get("ajekey2").key_algorithm is KeyAlgorithm.RSA_2048
        assert tx.keys.list_for_account(ROBOT) == (first, second)
        with pytest.raises(KeyNotFound) as info:
            tx.keys.get("ajemissing")
        assert info.value.reason == "KEY_NOT_FOUND"


def test_revoking_a_key_revokes_the_tokens_it_got(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.subjects.insert(robot())
        tx.keys.insert(key("ajekey1"))
        tx.keys.insert(key("ajekey2"))
        got = tx.tokens.insert(
            "t1.one", subject_id=ROBOT, created_at=T0, expires_at=at(3600), key_id="ajekey1"
        )
        tx.tokens.insert("t1.two", subject_id=ROBOT, created_at=T0, key_id="ajekey2")
        with pytest.raises(ReferenceMissing):
            tx.tokens.insert("t1.x", subject_id=ROBOT, created_at=T0, key_id="ajemissing")
    assert got.key_id == "ajekey1"
    with meta.transaction() as tx:
        revoked = tx.keys.revoke("ajekey1", at=at(10))
        assert revoked.revoked_at == at(10)
        assert tx.keys.revoke("ajekey1", at=at(20)).revoked_at == at(10)  # the first stands
        with pytest.raises(KeyNotFound):
            tx.keys.revoke("ajemissing", at=at(10))
    with meta.transaction(readonly=True) as tx:
        assert tx.tokens.find_valid("t1.one", now=at(9)) is not None
        assert tx.tokens.find_valid("t1.one", now=at(10)) is None
        assert tx.tokens.find_valid("t1.two", now=at(10)) is not None
        assert tx.keys.list_for_account(ROBOT) == (key("ajekey2"),)
        listed = tx.keys.list_for_account(ROBOT, include_revoked=True)
        assert [k.id for k in listed] == ["ajekey1", "ajekey2"]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_upgrade_from_0001_keeps_tokens(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), "0001")
            connection.execute(
                sa.text("INSERT INTO subjects VALUES ('ajeold', 'old', 'user', NULL, :t)"),
                {"t": "2026-01-01 00:00:00.000000"},
            )
            connection.execute(
                sa.text("INSERT INTO tokens VALUES ('h', 'ajeold', :t, NULL, NULL)"),
                {"t": "2026-01-01 00:00:00.000000"},
            )
    finally:
        engine.dispose()
    meta = Meta.open(fresh_url, FakeClock())
    try:
        assert meta.applied_migrations == ("0002", "0003", "0004")
        with meta.transaction(readonly=True) as tx:
            token = tx.tokens.get("h")
            assert (token.subject_id, token.key_id, token.revoked_at) == ("ajeold", None, None)
    finally:
        meta.close()


def test_a_token_read_again_after_a_change_in_the_same_transaction(meta: Meta) -> None:
    """A transaction reads a token and its roles once (``TokenReads``), until something
    in it changes tokens, roles or service accounts, or a savepoint is rolled back."""
    with meta.transaction() as tx:
        seed(tx)
        tx.subjects.insert(robot())
        tx.keys.insert(key("ajekey1"))
        tx.tokens.insert("t1.one", subject_id=ROBOT, created_at=T0, key_id="ajekey1")
        tx.tokens.insert("t1.two", subject_id=ROBOT, created_at=T0)

    def roles(tx: Transaction, secret: str = "t1.two") -> frozenset[str] | None:
        found = tx.tokens.find_valid_with_roles(secret, now=at(20), folder_id=FOLDER)
        return None if found is None else found[1]

    def granted_then_undone(tx: Transaction) -> None:
        with tx.savepoint():
            tx.roles.grant(FOLDER, ROBOT, "admin")
            assert roles(tx) == frozenset({"admin"})
            raise RuntimeError("undone")

    with meta.transaction() as tx:
        assert roles(tx) == frozenset()
        tx.roles.grant(FOLDER, ROBOT, "editor")
        assert roles(tx) == frozenset({"editor"})
        tx.roles.revoke(FOLDER, ROBOT, "editor")
        assert roles(tx) == frozenset()
        with pytest.raises(RuntimeError):
            granted_then_undone(tx)
        assert roles(tx) == frozenset()
        assert roles(tx, "t1.one") == frozenset()
        tx.keys.revoke("ajekey1", at=at(10))
        assert roles(tx, "t1.one") is None
        tx.tokens.revoke(hash_token("t1.two"), at=at(10))
        assert roles(tx) is None
    with meta.transaction() as tx:
        tx.tokens.insert("t1.three", subject_id=ROBOT, created_at=T0)
        assert roles(tx, "t1.three") == frozenset()
        tx.service_accounts.delete(ROBOT)
        assert roles(tx, "t1.three") is None
