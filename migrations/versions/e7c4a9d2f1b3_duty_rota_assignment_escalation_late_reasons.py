"""duty rota, automatic assignment, the escalation ladder and reasons for late replies

Revision ID: e7c4a9d2f1b3
Revises: 384870c06286
Create Date: 2026-11-30 12:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e7c4a9d2f1b3"
down_revision = "384870c06286"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rota_weekly_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("starts_minute", sa.Integer(), nullable=False),
        sa.Column("ends_minute", sa.Integer(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_rota_weekday"),
        sa.CheckConstraint("starts_minute BETWEEN 0 AND 1439", name="ck_rota_starts"),
        sa.CheckConstraint("ends_minute BETWEEN 1 AND 1440", name="ck_rota_ends"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rota_weekly_user_day", "rota_weekly_shifts", ["user_id", "weekday"], unique=True)
    op.create_table(
        "rota_exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('off', 'extra')", name="ck_rota_exception_kind"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rota_exceptions_user_ends", "rota_exceptions", ["user_id", "ends_at"], unique=False)
    op.create_table(
        "escalation_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["consultation_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_escalation_request_round_step", "escalation_steps", ["request_id", "round", "step"], unique=True
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_medical_lead", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("declined_by_ids", sa.JSON(), nullable=True))
    with op.batch_alter_table("response_clocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("late_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("late_note", sa.String(length=500), nullable=True))
        batch_op.create_index("ix_clock_started", ["started_at"], unique=False)


def downgrade():
    with op.batch_alter_table("response_clocks", schema=None) as batch_op:
        batch_op.drop_index("ix_clock_started")
        batch_op.drop_column("late_note")
        batch_op.drop_column("late_reason")
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.drop_column("declined_by_ids")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("is_medical_lead")
    op.drop_index("ix_escalation_request_round_step", table_name="escalation_steps")
    op.drop_table("escalation_steps")
    op.drop_index("ix_rota_exceptions_user_ends", table_name="rota_exceptions")
    op.drop_table("rota_exceptions")
    op.drop_index("ix_rota_weekly_user_day", table_name="rota_weekly_shifts")
    op.drop_table("rota_weekly_shifts")
