"""club supply: the mg in each tablet of a batch received in tablets

Revision ID: 0023_club_supply
Revises: 0022_club_members
Create Date: 2026-12-07 12:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023_club_supply'
down_revision = '0022_club_members'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('compassion_batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_mg', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('compassion_batch', schema=None) as batch_op:
        batch_op.drop_column('unit_mg')
