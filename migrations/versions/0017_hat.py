"""heroin-assisted treatment: enrolments (the legal identity encrypted) and versioned
prescriptions; the roles prescriber and pharmacist; the sites' sessions, interval and hard
dose caps

Revision ID: 0017_hat
Revises: 0016_drug_checks
Create Date: 2026-12-07 10:20:00.000000

Every site gets the defaults: 3 sessions a day at least 180 minutes apart, hard caps of
500 mg hydromorphone and 1,000 mg diacetylmorphine a day, a warning above 600 mg a day IV,
and no single-dose cap of its own (the daily cap divided by the sessions).

"""
from alembic import op
import sqlalchemy as sa

import srs.common

ROLES_BEFORE = "role IN ('nurse', 'supervisor', 'reviewer', 'admin', 'drug_checker')"
ROLES = ("role IN ('nurse', 'supervisor', 'reviewer', 'admin', 'drug_checker', "
         "'prescriber', 'pharmacist')")
SETTINGS = (  # name, default, minimum, maximum
    ("hat_max_sessions_per_day", 3, 1, 6),
    ("hat_min_interval_minutes", 180, 30, 720),
    ("hat_cap_hydromorphone_mg_day", 500, 1, 1000),
    ("hat_cap_diacetylmorphine_mg_day", 1000, 1, 2000),
    ("hat_warn_iv_mg_day", 600, 1, 2000),
)


# revision identifiers, used by Alembic.
revision = '0017_hat'
down_revision = '0016_drug_checks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('hat_enrolment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('enrolled_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('enrolled_by', sa.Integer(), nullable=True),
    sa.Column('ended_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('legal_name_enc', sa.Text(), nullable=True),
    sa.Column('date_of_birth_enc', sa.Text(), nullable=True),
    sa.Column('health_number_enc', sa.Text(), nullable=True),
    sa.Column('eligibility', sa.JSON(), nullable=False),
    sa.Column('eligibility_signed_by', sa.Integer(), nullable=False),
    sa.Column('eligibility_signed_at', srs.common.UTCDateTime(), nullable=False),
    sa.CheckConstraint("state IN ('enrolled', 'on_hold', 'ended')", name=op.f('ck_hat_enrolment_state_known')),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_hat_enrolment_client_id_client')),
    sa.ForeignKeyConstraint(['eligibility_signed_by'], ['staff.id'], name=op.f('fk_hat_enrolment_eligibility_signed_by_staff')),
    sa.ForeignKeyConstraint(['enrolled_by'], ['staff.id'], name=op.f('fk_hat_enrolment_enrolled_by_staff')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_hat_enrolment_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hat_enrolment'))
    )
    with op.batch_alter_table('hat_enrolment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hat_enrolment_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_hat_enrolment_site_id'), ['site_id'], unique=False)

    op.create_table('hat_prescription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('medication', sa.String(length=20), nullable=False),
    sa.Column('route', sa.String(length=5), nullable=False),
    sa.Column('dose_mg', sa.Float(), nullable=False),
    sa.Column('sessions_per_day', sa.Integer(), nullable=False),
    sa.Column('min_interval_minutes', sa.Integer(), nullable=False),
    sa.Column('titration', sa.String(length=10), nullable=False),
    sa.Column('titration_days', sa.JSON(), nullable=False),
    sa.Column('top_up_allowed', sa.Boolean(), nullable=False),
    sa.Column('top_up_max_mg', sa.Float(), nullable=True),
    sa.Column('oral_oat', sa.String(length=200), nullable=True),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('signed_by', sa.Integer(), nullable=False),
    sa.Column('signed_at', srs.common.UTCDateTime(), nullable=False),
    sa.CheckConstraint("medication IN ('diacetylmorphine', 'hydromorphone')", name=op.f('ck_hat_prescription_medication_known')),
    sa.CheckConstraint("route IN ('iv', 'im', 'sc', 'oral')", name=op.f('ck_hat_prescription_route_known')),
    sa.CheckConstraint("titration IN ('none', 'plan', 'step_up')", name=op.f('ck_hat_prescription_titration_known')),
    sa.CheckConstraint('dose_mg > 0', name=op.f('ck_hat_prescription_dose_positive')),
    sa.CheckConstraint('sessions_per_day BETWEEN 1 AND 6', name=op.f('ck_hat_prescription_sessions_range')),
    sa.CheckConstraint('ends_on IS NULL OR ends_on >= starts_on', name=op.f('ck_hat_prescription_ends_after_start')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['hat_enrolment.id'], name=op.f('fk_hat_prescription_enrolment_id_hat_enrolment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['signed_by'], ['staff.id'], name=op.f('fk_hat_prescription_signed_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hat_prescription')),
    sa.UniqueConstraint('enrolment_id', 'version', name=op.f('uq_hat_prescription_enrolment_id_version'))
    )
    with op.batch_alter_table('hat_prescription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hat_prescription_enrolment_id'), ['enrolment_id'], unique=False)

    with op.batch_alter_table('site', schema=None) as batch_op:
        for name, default, low, high in SETTINGS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default=str(default),
                                          nullable=False))
            batch_op.create_check_constraint(op.f(f'ck_site_{name}_range'),
                                             f'{name} BETWEEN {low} AND {high}')
        batch_op.add_column(sa.Column('hat_max_single_dose_mg', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_site_hat_max_single_dose_mg_range'),
            'hat_max_single_dose_mg IS NULL OR hat_max_single_dose_mg BETWEEN 1 AND 1000')

    with op.batch_alter_table('staff_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_role_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_staff_role_role_known'), ROLES)


def downgrade():
    # The two roles go with the treatment they served.
    op.execute("DELETE FROM staff_role WHERE role IN ('prescriber', 'pharmacist')")
    with op.batch_alter_table('staff_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_role_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_staff_role_role_known'), ROLES_BEFORE)

    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_site_hat_max_single_dose_mg_range'), type_='check')
        batch_op.drop_column('hat_max_single_dose_mg')
        for name, _default, _low, _high in reversed(SETTINGS):
            batch_op.drop_constraint(op.f(f'ck_site_{name}_range'), type_='check')
            batch_op.drop_column(name)

    with op.batch_alter_table('hat_prescription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hat_prescription_enrolment_id'))

    op.drop_table('hat_prescription')
    with op.batch_alter_table('hat_enrolment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hat_enrolment_site_id'))
        batch_op.drop_index(batch_op.f('ix_hat_enrolment_client_id'))

    op.drop_table('hat_enrolment')
