"""failed sign-ins counted per account and address

Revision ID: e5f1a7c9b3d2
Revises: e7c4a9d2f1b3
Create Date: 2026-11-30 12:00:00

A stranger's guesses used to lock the account itself; now they pause sign-in from the stranger's
address only. The account-wide columns (users.failed_logins, users.locked_until) are no longer
used but stay for this release, so that old processes still running during the upgrade work;
a later release drops them. Running account-wide locks end with the upgrade.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5f1a7c9b3d2"
down_revision = "e7c4a9d2f1b3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "source", name="uq_sign_in_failures_user_source"),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_failures_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_failures_user_id"))
    op.drop_table("sign_in_failures")
