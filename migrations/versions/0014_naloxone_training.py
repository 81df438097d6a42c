"""naloxone training: trainees, sessions and who took part; refresher and kit-expiry settings

Revision ID: 0014_naloxone_training
Revises: 0013_retention
Create Date: 2026-12-07 09:45:00.000000

Every site gets the defaults: refreshers due 12 months after a trainee's last session, and a
client's kit listed for replacement 60 days before it expires.

"""
from alembic import op
import sqlalchemy as sa

import srs.common


# revision identifiers, used by Alembic.
revision = '0014_naloxone_training'
down_revision = '0013_retention'
branch_labels = None
depends_on = None

KINDS = ("person_at_risk", "family_friend", "peer", "staff_volunteer", "police", "fire",
         "other_first_responder", "pharmacist", "other")
FORMATS = ("brief", "standard", "trainer_of_trainers", "online")


def _one_of(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refresher_months', sa.Integer(), server_default='12',
                                      nullable=False))
        batch_op.add_column(sa.Column('kit_expiry_warning_days', sa.Integer(),
                                      server_default='60', nullable=False))
        batch_op.create_check_constraint(op.f('ck_site_refresher_months_range'),
                                         'refresher_months BETWEEN 1 AND 60')
        batch_op.create_check_constraint(op.f('ck_site_kit_expiry_warning_days_range'),
                                         'kit_expiry_warning_days BETWEEN 0 AND 365')

    op.create_table(
        'naloxone_trainee',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=True),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('organisation', sa.String(length=120), nullable=True),
        sa.Column('named_consent', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('first_name', sa.String(length=60), nullable=True),
        sa.Column('last_name', sa.String(length=60), nullable=True),
        sa.Column('badge_number', sa.String(length=40), nullable=True),
        sa.Column('at_risk_consented', sa.Boolean(), nullable=True),
        sa.Column('created_at', srs.common.UTCDateTime(), nullable=False),
        sa.CheckConstraint(_one_of('kind', KINDS), name=op.f('ck_naloxone_trainee_kind_known')),
        sa.CheckConstraint(
            "(first_name IS NULL AND last_name IS NULL AND badge_number IS NULL) "
            f"OR (named_consent AND {_one_of('kind', ('staff_volunteer', 'police'))})",
            name=op.f('ck_naloxone_trainee_named_only_with_consent')),
        sa.ForeignKeyConstraint(['client_id'], ['client.id'],
                                name=op.f('fk_naloxone_trainee_client_id_client')),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE',
                                name=op.f('fk_naloxone_trainee_site_id_site')),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'],
                                name=op.f('fk_naloxone_trainee_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_naloxone_trainee')),
    )
    op.create_index(op.f('ix_naloxone_trainee_client_id'), 'naloxone_trainee', ['client_id'])
    op.create_index('ix_naloxone_trainee_site_kind', 'naloxone_trainee', ['site_id', 'kind'])

    op.create_table(
        'naloxone_training_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('held_on', sa.Date(), nullable=False),
        sa.Column('place', sa.String(length=120), nullable=True),
        sa.Column('trainer_id', sa.Integer(), nullable=False),
        sa.Column('curriculum', sa.String(length=120), nullable=False),
        sa.Column('curriculum_version', sa.String(length=40), nullable=True),
        sa.Column('format', sa.String(length=30), nullable=False),
        sa.Column('recorded_at', srs.common.UTCDateTime(), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.CheckConstraint(_one_of('format', FORMATS),
                           name=op.f('ck_naloxone_training_session_format_known')),
        sa.ForeignKeyConstraint(['recorded_by'], ['staff.id'],
                                name=op.f('fk_naloxone_training_session_recorded_by_staff')),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE',
                                name=op.f('fk_naloxone_training_session_site_id_site')),
        sa.ForeignKeyConstraint(['trainer_id'], ['staff.id'],
                                name=op.f('fk_naloxone_training_session_trainer_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_naloxone_training_session')),
    )
    op.create_index('ix_naloxone_training_session_site_held', 'naloxone_training_session',
                    ['site_id', 'held_on'])

    op.create_table(
        'naloxone_session_trainee',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('trainee_id', sa.Integer(), nullable=False),
        sa.Column('post_test_score', sa.Integer(), nullable=True),
        sa.CheckConstraint('post_test_score IS NULL OR post_test_score BETWEEN 0 AND 100',
                           name=op.f('ck_naloxone_session_trainee_score_range')),
        sa.ForeignKeyConstraint(
            ['session_id'], ['naloxone_training_session.id'], ondelete='CASCADE',
            name=op.f('fk_naloxone_session_trainee_session_id_naloxone_training_session')),
        sa.ForeignKeyConstraint(
            ['trainee_id'], ['naloxone_trainee.id'],
            name=op.f('fk_naloxone_session_trainee_trainee_id_naloxone_trainee')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_naloxone_session_trainee')),
        sa.UniqueConstraint('session_id', 'trainee_id',
                            name=op.f('uq_naloxone_session_trainee_session_id_trainee_id')),
    )
    op.create_index(op.f('ix_naloxone_session_trainee_trainee_id'), 'naloxone_session_trainee',
                    ['trainee_id'])


def downgrade():
    op.drop_index(op.f('ix_naloxone_session_trainee_trainee_id'),
                  table_name='naloxone_session_trainee')
    op.drop_table('naloxone_session_trainee')
    op.drop_index('ix_naloxone_training_session_site_held',
                  table_name='naloxone_training_session')
    op.drop_table('naloxone_training_session')
    op.drop_index('ix_naloxone_trainee_site_kind', table_name='naloxone_trainee')
    op.drop_index(op.f('ix_naloxone_trainee_client_id'), table_name='naloxone_trainee')
    op.drop_table('naloxone_trainee')
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_site_kit_expiry_warning_days_range'), type_='check')
        batch_op.drop_constraint(op.f('ck_site_refresher_months_range'), type_='check')
        batch_op.drop_column('kit_expiry_warning_days')
        batch_op.drop_column('refresher_months')
