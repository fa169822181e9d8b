"""indexes for a national history: photos by message, rounds by reply time, sent emails, reference prefixes

Revision ID: e7c4a9f2b1d3
Revises: e7c4a9b2d1f0
Create Date: 2026-11-30 04:00:00

With a million requests on file, erasing a request (the retention purge) looked through every photo
for each of its messages, the staff dashboard read every response round and every sent email, and a
search by the start of a reference read every request on PostgreSQL (LIKE uses an ordinary index only
under the C collation; varchar_pattern_ops compares bytes).
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "e7c4a9f2b1d3"
down_revision = "e7c4a9b2d1f0"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.create_index("ix_photos_message_id", ["message_id"], unique=False)
    with op.batch_alter_table("response_clocks", schema=None) as batch_op:
        batch_op.create_index("ix_response_clocks_stopped_at", ["stopped_at"], unique=False)
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_status_sent", ["status", "sent_at", "id"], unique=False)
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_requests_reference_pattern",
            ["reference"],
            unique=False,
            postgresql_ops={"reference": "varchar_pattern_ops"},
        )


def downgrade():
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_reference_pattern")
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_sent")
    with op.batch_alter_table("response_clocks", schema=None) as batch_op:
        batch_op.drop_index("ix_response_clocks_stopped_at")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index("ix_photos_message_id")
