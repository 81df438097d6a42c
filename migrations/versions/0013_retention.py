"""retention: a site's period, and placeholders that keep the reports' counts

Revision ID: 0013_retention
Revises: 0012_org_admin
Create Date: 2026-12-07 09:00:00.000000

``site.retention_days`` is empty at every site (records are kept until an admin sets a
period). ``client.placeholder`` marks the anonymous stand-ins retention makes, and
``client.earlier_visits_retired`` the clients some of whose visits went to one; every client
in place before this revision is neither. Downgrading drops the columns: placeholders stay
as clients with codes no one can type.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_retention'
down_revision = '0012_org_admin'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_site_retention_days_range'),
            'retention_days IS NULL OR retention_days BETWEEN 730 AND 36500')

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('placeholder', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('earlier_visits_retired', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('earlier_visits_retired')
        batch_op.drop_column('placeholder')

    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_site_retention_days_range'), type_='check')
        batch_op.drop_column('retention_days')
