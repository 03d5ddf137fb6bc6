"""Service accounts' authorized keys, and which key an IAM token was exchanged for.

Service accounts themselves are subjects of kind ``service_account`` (revision 0001
allows the kind already). A key keeps only its public half; deleting one sets
``revoked_at`` and revokes the tokens it got (``tokens.key_id``).

SQLite cannot add a foreign key to an existing table, so ``tokens`` gains its column
in batch mode (the table is copied, as Alembic's batch operations do); PostgreSQL
alters it in place.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from disksnap.meta.types import UtcDateTime, text_type

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "authorized_keys",
        sa.Column("id", text_type(), nullable=False),
        sa.Column("service_account_id", text_type(), nullable=False),
        sa.Column("description", text_type(), nullable=False),
        sa.Column("key_algorithm", text_type(), nullable=False),
        sa.Column("public_key", text_type(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_authorized_keys"),
        sa.ForeignKeyConstraint(
            ["service_account_id"],
            ["subjects.id"],
            name="fk_authorized_keys_service_account_id",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "key_algorithm IN ('RSA_2048', 'RSA_4096')", name="ck_authorized_keys_key_algorithm"
        ),
    )
    op.create_index(
        "ix_authorized_keys_service_account_id",
        "authorized_keys",
        ["service_account_id", "created_at", "id"],
    )
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("key_id", text_type(), nullable=True))
        batch.create_foreign_key(
            "fk_tokens_key_id", "authorized_keys", ["key_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_tokens_key_id", ["key_id"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_key_id")
        batch.drop_constraint("fk_tokens_key_id", type_="foreignkey")
        batch.drop_column("key_id")
    op.drop_index("ix_authorized_keys_service_account_id", table_name="authorized_keys")
    op.drop_table("authorized_keys")
