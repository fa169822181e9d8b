"""private links: one per email

Each email to a patient carries a private link of its own, so links move from one hash column
on the request to a table of their own; existing links keep working.

Revision ID: 2442519264e5
Revises: 8d06b6e7f0c8
Create Date: 2026-11-24 22:11:31.455939

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2442519264e5'
down_revision = '8d06b6e7f0c8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('patient_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['consultation_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('patient_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_links_request_id'), ['request_id'], unique=False)

    op.execute(
        "INSERT INTO patient_links (request_id, token_hash, created_at) "
        "SELECT id, access_token_hash, created_at FROM consultation_requests"
    )
    with op.batch_alter_table('consultation_requests', schema=None) as batch_op:
        batch_op.drop_column('access_token_hash')


def downgrade():
    # Back to one link per request: the oldest one (the confirmation email's) keeps working.
    with op.batch_alter_table('consultation_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_token_hash', sa.VARCHAR(length=64), nullable=True))
    op.execute(
        "UPDATE consultation_requests SET access_token_hash = (SELECT token_hash FROM patient_links "
        "WHERE patient_links.request_id = consultation_requests.id ORDER BY patient_links.id LIMIT 1)"
    )
    with op.batch_alter_table('consultation_requests', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_consultation_requests_access_token_hash', ['access_token_hash'])

    with op.batch_alter_table('patient_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_links_request_id'))

    op.drop_table('patient_links')
