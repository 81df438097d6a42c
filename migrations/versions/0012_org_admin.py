"""staff carry an organisation admin flag: who creates sites and names their first admins

Revision ID: 0012_org_admin
Revises: 0011_booth_retired
Create Date: 2026-12-11 10:00:00.000000

Nobody holds the flag after this revision; ``flask --app app srs user create USERNAME
--org-admin`` makes the first organisation admin. Downgrading drops the flag.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_org_admin'
down_revision = '0011_booth_retired'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('org_admin', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('org_admin')
