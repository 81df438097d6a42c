"""wall displays: a device signed in to one site's dashboard by a token

Revision ID: 0008_displays
Revises: 0007_opening_hours
Create Date: 2026-12-08 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_displays'
down_revision = '0007_opening_hours'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('display',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], name=op.f('fk_display_created_by_staff'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_display_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_display')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_display_token_hash'))
    )
    with op.batch_alter_table('display', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_display_site_id'), ['site_id'], unique=False)


def downgrade():
    with op.batch_alter_table('display', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_display_site_id'))

    op.drop_table('display')
