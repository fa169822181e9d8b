"""a request's status is one of the known statuses (CHECK constraint)

Revision ID: c3a1f0d2b7e4
Revises: 109fc2ee7a80
Create Date: 2026-11-30 03:40:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c3a1f0d2b7e4"
down_revision = "109fc2ee7a80"
branch_labels = None
depends_on = None

# Written out, not imported: a migration must keep meaning what it meant when it was written.
STATUSES = ("submitted", "in_review", "awaiting_patient", "answered", "closed", "withdrawn")


def upgrade():
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "ck_requests_status", "status IN ({})".format(", ".join(f"'{status}'" for status in STATUSES))
        )


def downgrade():
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.drop_constraint("ck_requests_status", type_="check")
