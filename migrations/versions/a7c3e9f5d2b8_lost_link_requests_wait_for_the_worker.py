"""lost-link requests wait for the worker

Revision ID: a7c3e9f5d2b8
Revises: f6a2b8d4c1e7
Create Date: 2026-11-30 13:00:00

The page only writes a row (the same work for a known and an unknown address); the worker looks
the address up and queues the email.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7c3e9f5d2b8"
down_revision = "f6a2b8d4c1e7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "link_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sealed_email", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("link_requests")
