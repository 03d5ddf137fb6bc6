"""First start of an empty deployment: a default folder and an admin token."""

from __future__ import annotations

from dataclasses import dataclass

from disksnap.domain.errors import NotFound
from disksnap.domain.ids import PREFIX_FOLDER, PREFIX_SUBJECT
from disksnap.meta import Folder, Subject, SubjectKind
from disksnap.service.auth import new_token
from disksnap.service.core import Env


@dataclass(frozen=True)
class Admin:
    folder_id: str
    subject_id: str
    token: str


def bootstrap(env: Env) -> Admin | None:
    """Create folder ``default``, subject ``admin`` with the admin role on it, and a
    token for it - only when the database has no folder yet. Returns the token once;
    only its hash is stored."""
    with env.meta.transaction() as tx:
        if tx.folders.list():
            return None
        now = env.clock.now()
        folder = Folder(env.ids.new(PREFIX_FOLDER), "default", now)
        subject = Subject(env.ids.new(PREFIX_SUBJECT), "admin", SubjectKind.USER, None, now)
        tx.folders.insert(folder)
        tx.subjects.insert(subject)
        tx.roles.grant(folder.id, subject.id, "admin")
        token = new_token()
        tx.tokens.insert(token, subject_id=subject.id, created_at=now)
    return Admin(folder.id, subject.id, token)


def reconcile(env: Env) -> list[str]:
    """Drop engine checkpoints that no snapshot being created owns (a crash between
    taking the checkpoint and committing the snapshot). Returns their ids."""
    dropped = []
    for info in env.engine.pending_checkpoints():
        with env.meta.transaction(readonly=True) as tx:
            try:
                owned = tx.snapshots.get(info.snapshot_id).status.value == "CREATING"
            except NotFound:
                owned = False
        if not owned:
            env.engine.abort_checkpoint(info.snapshot_id)
            dropped.append(info.snapshot_id)
    return dropped
