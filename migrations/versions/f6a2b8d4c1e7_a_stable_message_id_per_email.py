"""a stable Message-ID for every queued email

Revision ID: f6a2b8d4c1e7
Revises: e5f1a7c9b3d2
Create Date: 2026-11-30 12:30:00

Rows already queued get theirs when they are next sent (app/outbox.py), and keep it from then on.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f6a2b8d4c1e7"
down_revision = "e5f1a7c9b3d2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint("uq_outbound_emails_message_id", ["message_id"])


def downgrade():
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint("uq_outbound_emails_message_id", type_="unique")
        batch_op.drop_column("message_id")
