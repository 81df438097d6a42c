"""a shorter check after a drowsy one; a response may end with the client leaving against advice

Revision ID: 0009_drowsy_and_outcomes
Revises: 0008_displays
Create Date: 2026-12-07 03:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_drowsy_and_outcomes'
down_revision = '0008_displays'
branch_labels = None
depends_on = None

_OUTCOMES = ('recovered_on_site', 'recovered_declined_ems', 'treated_by_ems_on_site',
             'transferred_to_hospital', 'death', 'other')


def _outcome_check(outcomes):
    listed = ", ".join(f"'{o}'" for o in outcomes)
    return f"outcome IS NULL OR outcome IN ({listed})"


def upgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drowsy_check_interval_seconds', sa.Integer(),
                                      server_default='60', nullable=False))
        batch_op.create_check_constraint('drowsy_check_interval_seconds_range',
                                         'drowsy_check_interval_seconds BETWEEN 10 AND 600')
    with op.batch_alter_table('overdose_response', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_overdose_response_outcome_known'), type_='check')
        batch_op.create_check_constraint(
            'outcome_known', _outcome_check(_OUTCOMES[:4] + ('left_against_advice',)
                                            + _OUTCOMES[4:]))


def downgrade():
    with op.batch_alter_table('overdose_response', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_overdose_response_outcome_known'), type_='check')
        batch_op.create_check_constraint('outcome_known', _outcome_check(_OUTCOMES))
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_site_drowsy_check_interval_seconds_range'), type_='check')
        batch_op.drop_column('drowsy_check_interval_seconds')
