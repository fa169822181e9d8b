"""red-flag triage, guided photo views, check-ins and feedback

Revision ID: e7c4a9b2d1f0
Revises: a7c3e9f5d2b8
Create Date: 2026-11-30 09:00:00

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "e7c4a9b2d1f0"
down_revision = "a7c3e9f5d2b8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("triage_level", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("triage_flags", sa.JSON(), nullable=True))
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("body_site", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("view", sa.String(length=10), nullable=True))
    with op.batch_alter_table("response_clocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "check_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("answer_id", sa.Integer(), nullable=True),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("weeks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("progress", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(["answer_id"], ["messages.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reply_id"], ["messages.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["request_id"], ["consultation_requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["set_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.create_index("ix_check_ins_due", ["sent_at", "cancelled_at", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_ins_request_id"), ["request_id"], unique=False)
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("dermatologist_id", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_feedback_rating"),
        sa.ForeignKeyConstraint(["dermatologist_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["consultation_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", name="uq_feedback_request"),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_created", ["created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_created")
    op.drop_table("feedback")
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_ins_request_id"))
        batch_op.drop_index("ix_check_ins_due")
    op.drop_table("check_ins")
    with op.batch_alter_table("response_clocks", schema=None) as batch_op:
        batch_op.drop_column("urgent")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("view")
        batch_op.drop_column("area")
        batch_op.drop_column("body_site")
    with op.batch_alter_table("consultation_requests", schema=None) as batch_op:
        batch_op.drop_column("triage_flags")
        batch_op.drop_column("triage_level")
        batch_op.drop_column("urgent")
