"""site opening hours, for Ontario's monthly report

Revision ID: 0007_opening_hours
Revises: 0006_incidents
Create Date: 2026-11-24 23:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_opening_hours'
down_revision = '0006_incidents'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opening_hours', sa.String(length=120), nullable=True))


def downgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_column('opening_hours')
