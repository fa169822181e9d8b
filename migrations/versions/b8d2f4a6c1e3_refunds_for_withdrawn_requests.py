"""refunds for withdrawn requests: a patient who withdraws a paid request before any reply is refunded

Revision ID: b8d2f4a6c1e3
Revises: e7c4a9f2b1d3
Create Date: 2026-11-30 07:00:00
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "b8d2f4a6c1e3"
down_revision = "e7c4a9f2b1d3"
branch_labels = None
depends_on = None

REASONS_BEFORE = ("late", "manual", "duplicate", "unqueued")
REASONS_AFTER = (*REASONS_BEFORE, "withdrawn")


def _reason_check(reasons: tuple[str, ...]) -> str:
    return "reason IN (" + ", ".join(f"'{reason}'" for reason in reasons) + ")"


def upgrade():
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint("ck_refunds_reason", type_="check")
        batch_op.create_check_constraint("ck_refunds_reason", _reason_check(REASONS_AFTER))


def downgrade():
    op.execute("UPDATE refunds SET reason = 'manual' WHERE reason = 'withdrawn'")  # kept: money was paid back
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint("ck_refunds_reason", type_="check")
        batch_op.create_check_constraint("ck_refunds_reason", _reason_check(REASONS_BEFORE))
