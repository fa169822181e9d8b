"""paid consultations: payments, checkout sessions, refunds, webhook events, and the awaiting_payment status

Revision ID: 384870c06286
Revises: e7c41a9b2d05
Create Date: 2026-11-30 09:00:00

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "384870c06286"
down_revision = "e7c41a9b2d05"
branch_labels = None
depends_on = None

# Written out, not imported: a migration must keep meaning what it meant when it was written.
STATUSES_BEFORE = ("submitted", "in_review", "awaiting_patient", "answered", "closed", "withdrawn")
STATUSES_AFTER = (*STATUSES_BEFORE, "awaiting_payment")


def _status_check(statuses: tuple[str, ...]) -> str:
    return "status IN ({})".format(", ".join(f"'{status}'" for status in statuses))


def upgrade():
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(length=12), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("target_hours", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("payment_intent", sa.String(length=255), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_cents", sa.Integer(), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name="ck_payments_amount"),
        sa.CheckConstraint("refunded_cents >= 0 AND refunded_cents <= amount_cents", name="ck_payments_refunded"),
        sa.CheckConstraint("status IN ('awaiting', 'paid', 'abandoned')", name="ck_payments_status"),
        sa.ForeignKeyConstraint(["request_id"], ["consultation_requests.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("payment_intent"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_payments_status_created", "payments", ["status", "created_at"], unique=False)
    op.create_table(
        "checkout_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'complete', 'expired')", name="ck_checkout_sessions_status"),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id"),
    )
    op.create_index("ix_checkout_sessions_payment_id", "checkout_sessions", ["payment_id"], unique=False)
    op.create_index(
        "ix_checkout_sessions_status_created", "checkout_sessions", ["status", "created_at"], unique=False
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=12), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("payment_intent", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_cents > 0", name="ck_refunds_amount"),
        sa.CheckConstraint("reason IN ('late', 'manual', 'duplicate', 'unqueued')", name="ck_refunds_reason"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_refunds_status"),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"], unique=False)
    op.create_index("ix_refunds_status_next", "refunds", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "payment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.drop_constraint("ck_requests_status", type_="check")
        batch_op.create_check_constraint("ck_requests_status", _status_check(STATUSES_AFTER))


def downgrade():
    # Requests still waiting for a payment cannot be expressed without the status: they go, as lapsed.
    op.execute("DELETE FROM consultation_requests WHERE status = 'awaiting_payment'")
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.drop_constraint("ck_requests_status", type_="check")
        batch_op.create_check_constraint("ck_requests_status", _status_check(STATUSES_BEFORE))
    op.drop_table("payment_events")
    op.drop_index("ix_refunds_status_next", table_name="refunds")
    op.drop_index("ix_refunds_payment_id", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ix_checkout_sessions_status_created", table_name="checkout_sessions")
    op.drop_index("ix_checkout_sessions_payment_id", table_name="checkout_sessions")
    op.drop_table("checkout_sessions")
    op.drop_index("ix_payments_status_created", table_name="payments")
    op.drop_table("payments")
