"""a request's own response target (urgent requests, faster tiers)

Revision ID: d4b2e1f3a5c6
Revises: c3a1f0d2b7e4
Create Date: 2026-11-30 03:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4b2e1f3a5c6"
down_revision = "c3a1f0d2b7e4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_target_hours", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.drop_column("response_target_hours")
