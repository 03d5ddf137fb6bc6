"""Contract: folders, subjects, hashed tokens and role bindings."""

from __future__ import annotations

import hashlib

import pytest

from disksnap.meta import Folder, Meta, RoleBinding, Subject, SubjectKind, hash_token
from disksnap.meta.errors import (
    DuplicateId,
    FolderNotFound,
    NameTaken,
    SubjectNotFound,
    TokenNotFound,
)
from tests.meta.factories import FOLDER, OTHER_FOLDER, SUBJECT, T0, at, seed


def test_folders_insert_get_list_find(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.folders.insert(Folder("b1gunnamed1", "", T0))
        tx.folders.insert(Folder("b1gunnamed2", "", T0))
    with meta.transaction() as tx:
        tx.folders.lock(FOLDER)  # a role check found it: SQLite reads nothing
    with meta.transaction(readonly=True) as tx:
        assert tx.folders.get(FOLDER) == Folder(FOLDER, "main", T0)
        assert tx.folders.find_by_name("other") == Folder(OTHER_FOLDER, "other", T0)
        assert tx.folders.find_by_name("nope") is None
        assert tx.folders.find_by_name("") is None
        ids = [f.id for f in tx.folders.list()]
        assert ids == sorted([FOLDER, OTHER_FOLDER, "b1gunnamed1", "b1gunnamed2"])
        with pytest.raises(FolderNotFound) as info:
            tx.folders.get("b1gmissing")
        assert info.value.reason == "FOLDER_NOT_FOUND"


def test_folder_conflicts(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        with pytest.raises(DuplicateId) as dup:
            tx.folders.insert(Folder(FOLDER, "fresh", T0))
        assert dup.value.field == "id"
        with pytest.raises(NameTaken) as taken:
            tx.folders.insert(Folder("b1gnew", "main", T0))
        assert taken.value.field == "name"
        assert taken.value.reason == "NAME_ALREADY_EXISTS"


def test_subjects(meta: Meta) -> None:
    sa_subject = Subject("ajesa", "robot", SubjectKind.SERVICE_ACCOUNT, None, at(1))
    with meta.transaction() as tx:
        seed(tx)
        tx.subjects.insert(sa_subject)
        assert tx.subjects.get("ajesa") == sa_subject
        assert tx.subjects.get(SUBJECT).kind is SubjectKind.USER
        assert tx.subjects.find_by_name("robot") == sa_subject
        assert tx.subjects.find_by_name("ghost") is None
        with pytest.raises(SubjectNotFound):
            tx.subjects.get("ajemissing")
        with pytest.raises(NameTaken):
            tx.subjects.insert(Subject("ajeother", "robot", SubjectKind.USER, None, T0))
        with pytest.raises(DuplicateId):
            tx.subjects.insert(Subject("ajesa", "x", SubjectKind.USER, None, T0))
        with pytest.raises(FolderNotFound):
            tx.subjects.insert(Subject("ajey", "y", SubjectKind.USER, "b1gmissing", T0))


def test_tokens_are_stored_hashed(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        token = tx.tokens.insert("s3cret", subject_id=SUBJECT, created_at=T0)
    assert token.hash == hashlib.sha256(b"s3cret").hexdigest() == hash_token("s3cret")
    with meta.transaction(readonly=True) as tx:
        assert tx.tokens.get(token.hash) == token
        assert tx.tokens.find_valid("s3cret", now=at(10)) == token
        assert tx.tokens.find_valid("wrong", now=at(10)) is None
        assert tx.tokens.list_for_subject(SUBJECT) == (token,)
        with pytest.raises(TokenNotFound):
            tx.tokens.get(hash_token("s3cret "))


def test_token_expiry_and_revocation(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.tokens.insert("expiring", subject_id=SUBJECT, created_at=T0, expires_at=at(60))
        revocable = tx.tokens.insert("revocable", subject_id=SUBJECT, created_at=T0)
        with pytest.raises(SubjectNotFound):
            tx.tokens.insert("orphan", subject_id="ajemissing", created_at=T0)
        with pytest.raises(DuplicateId):
            tx.tokens.insert("expiring", subject_id=SUBJECT, created_at=T0)
    with meta.transaction() as tx:
        assert tx.tokens.find_valid("expiring", now=at(59.999)) is not None
        assert tx.tokens.find_valid("expiring", now=at(60)) is None
        revoked = tx.tokens.revoke(revocable.hash, at=at(30))
        assert revoked.revoked_at == at(30)
        # An earlier revocation stands.
        assert tx.tokens.revoke(revocable.hash, at=at(40)).revoked_at == at(30)
        assert tx.tokens.find_valid("revocable", now=at(29)) is not None
        assert tx.tokens.find_valid("revocable", now=at(30)) is None
        with pytest.raises(TokenNotFound):
            tx.tokens.revoke(hash_token("nope"), at=at(1))


def test_role_bindings(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        assert tx.roles.grant(FOLDER, SUBJECT, "compute.editor") is True
        assert tx.roles.grant(FOLDER, SUBJECT, "compute.editor") is False
        assert tx.roles.grant(FOLDER, SUBJECT, "viewer") is True
        assert tx.roles.grant(OTHER_FOLDER, SUBJECT, "admin") is True
        with pytest.raises(FolderNotFound):
            tx.roles.grant("b1gmissing", SUBJECT, "admin")
        with pytest.raises(SubjectNotFound):
            tx.roles.grant(FOLDER, "ajemissing", "admin")
    with meta.transaction() as tx:
        assert tx.roles.roles_of(SUBJECT, FOLDER) == {"compute.editor", "viewer"}
        assert tx.roles.roles_of(SUBJECT, OTHER_FOLDER) == {"admin"}
        assert tx.roles.roles_of("ajemissing", FOLDER) == frozenset()
        assert tx.roles.list_for_folder(FOLDER) == (
            RoleBinding(FOLDER, SUBJECT, "compute.editor"),
            RoleBinding(FOLDER, SUBJECT, "viewer"),
        )
        assert tx.roles.revoke(FOLDER, SUBJECT, "viewer") is True
        assert tx.roles.revoke(FOLDER, SUBJECT, "viewer") is False
        assert tx.roles.roles_of(SUBJECT, FOLDER) == {"compute.editor"}


def test_a_token_with_its_roles_on_one_folder(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        token = tx.tokens.insert("s3cret", subject_id=SUBJECT, created_at=T0, expires_at=at(60))
        tx.subjects.insert(Subject("ajeother", "other", SubjectKind.USER, None, T0))
        tx.roles.grant(FOLDER, SUBJECT, "compute.editor")
        tx.roles.grant(FOLDER, SUBJECT, "viewer")
        tx.roles.grant(OTHER_FOLDER, SUBJECT, "admin")
        tx.roles.grant(FOLDER, "ajeother", "admin")  # another subject's: not the token's
    with meta.transaction(readonly=True) as tx:
        found = tx.tokens.find_valid_with_roles("s3cret", now=at(10), folder_id=FOLDER)
        assert found == (token, frozenset({"compute.editor", "viewer"}))
        found = tx.tokens.find_valid_with_roles("s3cret", now=at(10), folder_id=OTHER_FOLDER)
        assert found == (token, frozenset({"admin"}))
        # No role on the folder: the token all the same.
        found = tx.tokens.find_valid_with_roles("s3cret", now=at(10), folder_id="b1gmissing")
        assert found == (token, frozenset())
        assert tx.tokens.find_valid_with_roles("wrong", now=at(10), folder_id=FOLDER) is None
        assert tx.tokens.find_valid_with_roles("s3cret", now=at(60), folder_id=FOLDER) is None
