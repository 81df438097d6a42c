"""club identity: a member's legal identity (encrypted), only where the site's rules need one

Revision ID: 0024_club_identity
Revises: 0023_club_supply
Create Date: 2026-12-07 12:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0024_club_identity'
down_revision = '0023_club_supply'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compassion_identity_required', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
    with op.batch_alter_table('compassion_member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_name_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('date_of_birth_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('health_number_enc', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('compassion_member', schema=None) as batch_op:
        batch_op.drop_column('health_number_enc')
        batch_op.drop_column('date_of_birth_enc')
        batch_op.drop_column('legal_name_enc')
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_column('compassion_identity_required')
