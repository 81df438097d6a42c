"""drug checks: samples and their findings, the sites' substance and watch lists, drug
alerts, who heard an urgent one and which clients were told; the role drug_checker; the
sites' cluster and alert-expiry settings; the SMS outbox (subscribers, queued texts, the
gateway's token)

Revision ID: 0016_drug_checks
Revises: 0015_naloxone_kits
Create Date: 2026-12-07 10:05:00.000000

Every site gets the defaults: an advisory at 3 overdoses within 24 hours or a day above twice
the trailing 28-day median, and alerts published for 14 days. The lists are seeded for a site
the first time it opens its drug-check page or records a check.

"""
from alembic import op
import sqlalchemy as sa

import srs.common

ROLES_BEFORE = "role IN ('nurse', 'supervisor', 'reviewer', 'admin')"
ROLES = "role IN ('nurse', 'supervisor', 'reviewer', 'admin', 'drug_checker')"


# revision identifiers, used by Alembic.
revision = '0016_drug_checks'
down_revision = '0015_naloxone_kits'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('drug_substance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('family', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint("family IN ('opioid', 'stimulant', 'benzodiazepine', 'other')", name=op.f('ck_drug_substance_family_known')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_drug_substance_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drug_substance')),
    sa.UniqueConstraint('site_id', 'name', name=op.f('uq_drug_substance_site_id_name'))
    )
    op.create_table('drug_watch_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=30), nullable=False),
    sa.Column('substance', sa.String(length=80), nullable=True),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint("(rule = 'found') = (substance IS NOT NULL)", name=op.f('ck_drug_watch_item_found_names_one')),
    sa.CheckConstraint("rule IN ('found', 'benzo_in_opioid', 'fentanyl_in_stimulant')", name=op.f('ck_drug_watch_item_rule_known')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_drug_watch_item_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drug_watch_item')),
    sa.UniqueConstraint('site_id', 'rule', 'substance', name=op.f('uq_drug_watch_item_site_id_rule_substance'))
    )
    op.create_table('drug_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('sample_code', sa.String(length=40), nullable=False),
    sa.Column('checked_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('area', sa.String(length=120), nullable=True),
    sa.Column('sample_type', sa.String(length=20), nullable=False),
    sa.Column('expected', sa.String(length=80), nullable=True),
    sa.Column('colour', sa.String(length=40), nullable=True),
    sa.Column('form', sa.String(length=20), nullable=True),
    sa.Column('methods', sa.JSON(), nullable=False),
    sa.Column('fentanyl_strip', sa.String(length=10), nullable=True),
    sa.Column('benzodiazepine_strip', sa.String(length=10), nullable=True),
    sa.Column('nitazene_strip', sa.String(length=10), nullable=True),
    sa.Column('xylazine_strip', sa.String(length=10), nullable=True),
    sa.Column('reagent_result', sa.String(length=200), nullable=True),
    sa.Column('lab_status', sa.String(length=10), nullable=False),
    sa.Column('lab_result', sa.String(length=300), nullable=True),
    sa.Column('linked_overdose', sa.Boolean(), nullable=False),
    sa.Column('overdose_response_id', sa.Integer(), nullable=True),
    sa.Column('used_before', sa.Boolean(), nullable=True),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.CheckConstraint("benzodiazepine_strip IS NULL OR benzodiazepine_strip IN ('positive', 'negative', 'invalid', 'not_done')", name=op.f('ck_drug_check_benzodiazepine_strip_known')),
    sa.CheckConstraint("fentanyl_strip IS NULL OR fentanyl_strip IN ('positive', 'negative', 'invalid', 'not_done')", name=op.f('ck_drug_check_fentanyl_strip_known')),
    sa.CheckConstraint("form IS NULL OR form IN ('powder', 'crystal', 'rock', 'tablet', 'liquid', 'paper', 'other')", name=op.f('ck_drug_check_form_known')),
    sa.CheckConstraint("lab_status IN ('none', 'pending', 'received')", name=op.f('ck_drug_check_lab_status_known')),
    sa.CheckConstraint("nitazene_strip IS NULL OR nitazene_strip IN ('positive', 'negative', 'invalid', 'not_done')", name=op.f('ck_drug_check_nitazene_strip_known')),
    sa.CheckConstraint("sample_type IN ('substance', 'used_equipment')", name=op.f('ck_drug_check_sample_type_known')),
    sa.CheckConstraint("xylazine_strip IS NULL OR xylazine_strip IN ('positive', 'negative', 'invalid', 'not_done')", name=op.f('ck_drug_check_xylazine_strip_known')),
    sa.ForeignKeyConstraint(['overdose_response_id'], ['overdose_response.id'], name=op.f('fk_drug_check_overdose_response_id_overdose_response'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recorded_by'], ['staff.id'], name=op.f('fk_drug_check_recorded_by_staff')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_drug_check_site_id_site'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_drug_check_visit_id_visit'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drug_check')),
    sa.UniqueConstraint('site_id', 'sample_code', name=op.f('uq_drug_check_site_id_sample_code'))
    )
    with op.batch_alter_table('drug_check', schema=None) as batch_op:
        batch_op.create_index('ix_drug_check_site_checked', ['site_id', 'checked_at'], unique=False)

    op.create_table('drug_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('site_ids', sa.JSON(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=240), nullable=False),
    sa.Column('area', sa.String(length=120), nullable=True),
    sa.Column('expected', sa.String(length=120), nullable=True),
    sa.Column('found', sa.Text(), nullable=True),
    sa.Column('appearance', sa.String(length=200), nullable=True),
    sa.Column('packaging', sa.String(length=200), nullable=True),
    sa.Column('effects', sa.Text(), nullable=True),
    sa.Column('advice', sa.JSON(), nullable=False),
    sa.Column('advice_text', sa.Text(), nullable=True),
    sa.Column('evidence', sa.String(length=20), nullable=False),
    sa.Column('audience', sa.String(length=20), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('valid_for_days', sa.Integer(), nullable=False),
    sa.Column('valid_until', srs.common.UTCDateTime(), nullable=True),
    sa.Column('drug_check_id', sa.Integer(), nullable=True),
    sa.Column('cluster_key', sa.String(length=120), nullable=True),
    sa.Column('cluster_count', sa.Integer(), nullable=True),
    sa.Column('first_overdose_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('last_overdose_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('drafted_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('drafted_by', sa.Integer(), nullable=True),
    sa.Column('edited_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('edited_by', sa.Integer(), nullable=True),
    sa.Column('validated_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('validated_by', sa.Integer(), nullable=True),
    sa.Column('published_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.Column('ended_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('ended_by', sa.Integer(), nullable=True),
    sa.Column('retract_reason', sa.String(length=300), nullable=True),
    sa.CheckConstraint("audience IN ('staff', 'public')", name=op.f('ck_drug_alert_audience_known')),
    sa.CheckConstraint("evidence IN ('reported', 'strip', 'ftir', 'lab')", name=op.f('ck_drug_alert_evidence_known')),
    sa.CheckConstraint("kind IN ('drug_alert', 'overdose_advisory')", name=op.f('ck_drug_alert_kind_known')),
    sa.CheckConstraint("scope IN ('site', 'organisation')", name=op.f('ck_drug_alert_scope_known')),
    sa.CheckConstraint("status IN ('draft', 'validated', 'published', 'retracted', 'expired')", name=op.f('ck_drug_alert_status_known')),
    sa.CheckConstraint('valid_for_days BETWEEN 1 AND 365', name=op.f('ck_drug_alert_valid_for_days_range')),
    sa.ForeignKeyConstraint(['drafted_by'], ['staff.id'], name=op.f('fk_drug_alert_drafted_by_staff')),
    sa.ForeignKeyConstraint(['drug_check_id'], ['drug_check.id'], name=op.f('fk_drug_alert_drug_check_id_drug_check'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['edited_by'], ['staff.id'], name=op.f('fk_drug_alert_edited_by_staff')),
    sa.ForeignKeyConstraint(['ended_by'], ['staff.id'], name=op.f('fk_drug_alert_ended_by_staff')),
    sa.ForeignKeyConstraint(['published_by'], ['staff.id'], name=op.f('fk_drug_alert_published_by_staff')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_drug_alert_site_id_site'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['validated_by'], ['staff.id'], name=op.f('fk_drug_alert_validated_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drug_alert')),
    sa.UniqueConstraint('cluster_key', name=op.f('uq_drug_alert_cluster_key')),
    sa.UniqueConstraint('drug_check_id', name=op.f('uq_drug_alert_drug_check_id'))
    )
    with op.batch_alter_table('drug_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drug_alert_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_drug_alert_status_valid', ['status', 'valid_until'], unique=False)

    op.create_table('drug_check_component',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.Integer(), nullable=False),
    sa.Column('substance', sa.String(length=80), nullable=False),
    sa.Column('uncertain', sa.Boolean(), nullable=False),
    sa.Column('percent', sa.Integer(), nullable=True),
    sa.CheckConstraint('percent IS NULL OR percent BETWEEN 0 AND 100', name=op.f('ck_drug_check_component_percent_range')),
    sa.ForeignKeyConstraint(['check_id'], ['drug_check.id'], name=op.f('fk_drug_check_component_check_id_drug_check'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drug_check_component'))
    )
    with op.batch_alter_table('drug_check_component', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drug_check_component_check_id'), ['check_id'], unique=False)

    op.create_table('drug_alert_heard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('drug_alert_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('heard_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('heard_by', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['drug_alert_id'], ['drug_alert.id'], name=op.f('fk_drug_alert_heard_drug_alert_id_drug_alert'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['heard_by'], ['staff.id'], name=op.f('fk_drug_alert_heard_heard_by_staff')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_drug_alert_heard_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drug_alert_heard')),
    sa.UniqueConstraint('drug_alert_id', 'site_id', name=op.f('uq_drug_alert_heard_drug_alert_id_site_id'))
    )
    op.create_table('drug_alert_told',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('drug_alert_id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('told_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('told_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['drug_alert_id'], ['drug_alert.id'], name=op.f('fk_drug_alert_told_drug_alert_id_drug_alert'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_drug_alert_told_site_id_site'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['told_by'], ['staff.id'], name=op.f('fk_drug_alert_told_told_by_staff')),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_drug_alert_told_visit_id_visit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drug_alert_told')),
    sa.UniqueConstraint('drug_alert_id', 'visit_id', name=op.f('uq_drug_alert_told_drug_alert_id_visit_id'))
    )
    with op.batch_alter_table('drug_alert_told', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drug_alert_told_visit_id'), ['visit_id'], unique=False)

    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cluster_overdoses', sa.Integer(), server_default='3', nullable=False))
        batch_op.add_column(sa.Column('cluster_window_seconds', sa.Integer(), server_default='86400', nullable=False))
        batch_op.add_column(sa.Column('cluster_trend_factor', sa.Float(), server_default='2.0', nullable=False))
        batch_op.add_column(sa.Column('alert_valid_for_days', sa.Integer(), server_default='14', nullable=False))
        batch_op.create_check_constraint(op.f('ck_site_cluster_overdoses_range'),
                                         'cluster_overdoses BETWEEN 2 AND 100')
        batch_op.create_check_constraint(op.f('ck_site_cluster_window_seconds_range'),
                                         'cluster_window_seconds BETWEEN 600 AND 604800')
        batch_op.create_check_constraint(op.f('ck_site_cluster_trend_factor_range'),
                                         'cluster_trend_factor BETWEEN 1.0 AND 10.0')
        batch_op.create_check_constraint(op.f('ck_site_alert_valid_for_days_range'),
                                         'alert_valid_for_days BETWEEN 1 AND 365')

    with op.batch_alter_table('staff_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_role_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_staff_role_role_known'), ROLES)

    # The SMS outbox: subscribers (a number's HMAC and the number encrypted), the texts
    # queued for them, and the gateway's token (its SHA-256).
    op.create_table('sms_subscriber',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number_hash', sa.String(length=64), nullable=False),
    sa.Column('number_encrypted', sa.Text(), nullable=True),
    sa.Column('all_sites', sa.Boolean(), nullable=False),
    sa.Column('site_ids', sa.JSON(), nullable=False),
    sa.Column('joined_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('stopped_at', srs.common.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_subscriber')),
    sa.UniqueConstraint('number_hash', name=op.f('uq_sms_subscriber_number_hash'))
    )
    op.create_table('sms_outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('drug_alert_id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.String(length=160), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('queued_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('sent_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('cancelled_at', srs.common.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'sent', 'cancelled')", name=op.f('ck_sms_outbox_message_status_known')),
    sa.ForeignKeyConstraint(['drug_alert_id'], ['drug_alert.id'], name=op.f('fk_sms_outbox_message_drug_alert_id_drug_alert'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['sms_subscriber.id'], name=op.f('fk_sms_outbox_message_subscriber_id_sms_subscriber'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_outbox_message')),
    sa.UniqueConstraint('drug_alert_id', 'subscriber_id', name=op.f('uq_sms_outbox_message_drug_alert_id_subscriber_id'))
    )
    with op.batch_alter_table('sms_outbox_message', schema=None) as batch_op:
        batch_op.create_index('ix_sms_outbox_message_status', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_outbox_message_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('sms_gateway_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', srs.common.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_gateway_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_sms_gateway_token_token_hash'))
    )


def downgrade():
    op.drop_table('sms_gateway_token')
    with op.batch_alter_table('sms_outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_outbox_message_subscriber_id'))
        batch_op.drop_index('ix_sms_outbox_message_status')

    op.drop_table('sms_outbox_message')
    op.drop_table('sms_subscriber')
    op.execute("DELETE FROM staff_role WHERE role = 'drug_checker'")
    with op.batch_alter_table('staff_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_role_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_staff_role_role_known'), ROLES_BEFORE)

    with op.batch_alter_table('site', schema=None) as batch_op:
        for name in ('alert_valid_for_days', 'cluster_trend_factor', 'cluster_window_seconds',
                     'cluster_overdoses'):
            batch_op.drop_constraint(op.f(f'ck_site_{name}_range'), type_='check')
        batch_op.drop_column('alert_valid_for_days')
        batch_op.drop_column('cluster_trend_factor')
        batch_op.drop_column('cluster_window_seconds')
        batch_op.drop_column('cluster_overdoses')

    with op.batch_alter_table('drug_check_component', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drug_check_component_check_id'))

    op.drop_table('drug_check_component')
    with op.batch_alter_table('drug_alert_told', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drug_alert_told_visit_id'))

    op.drop_table('drug_alert_told')
    op.drop_table('drug_alert_heard')
    with op.batch_alter_table('drug_alert', schema=None) as batch_op:
        batch_op.drop_index('ix_drug_alert_status_valid')
        batch_op.drop_index(batch_op.f('ix_drug_alert_site_id'))

    op.drop_table('drug_alert')
    with op.batch_alter_table('drug_check', schema=None) as batch_op:
        batch_op.drop_index('ix_drug_check_site_checked')

    op.drop_table('drug_check')
    op.drop_table('drug_watch_item')
    op.drop_table('drug_substance')
