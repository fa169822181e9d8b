"""dermatologists' licence numbers (and the one each answer was signed with) and saved replies

Revision ID: e7c41a9b2d05
Revises: d4b2e1f3a5c6
Create Date: 2026-11-30 04:00:00

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "e7c41a9b2d05"
down_revision = "d4b2e1f3a5c6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("licence_number", sa.String(length=40), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_licence_number", sa.String(length=40), nullable=True))
    op.create_table(
        "saved_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("condition_slug", sa.String(length=80), nullable=True),
        sa.Column("assessment", sa.Text(), nullable=False),
        sa.Column("treatment", sa.Text(), nullable=False),
        sa.Column("prescription_note", sa.Text(), nullable=False),
        sa.Column("follow_up", sa.Text(), nullable=False),
        sa.Column("usage_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_saved_replies_owner", "saved_replies", ["owner_id"], unique=False)


def downgrade():
    op.drop_index("ix_saved_replies_owner", table_name="saved_replies")
    op.drop_table("saved_replies")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("signed_licence_number")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("licence_number")
