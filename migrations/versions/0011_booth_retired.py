"""booths are retired, not deleted: a retired booth leaves the board and keeps its history

Revision ID: 0011_booth_retired
Revises: 0010_site_clients
Create Date: 2026-12-10 10:00:00.000000

Every booth in place before this revision is in use (``retired_at`` empty). Downgrading
drops the column: a retired booth comes back onto the board.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_booth_retired'
down_revision = '0010_site_clients'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('booth', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('booth', schema=None) as batch_op:
        batch_op.drop_column('retired_at')
