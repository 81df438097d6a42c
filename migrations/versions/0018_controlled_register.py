"""controlled-drug register: a line per drug and strength with its balance (never below
zero), the append-only ledger of its movements, and the shifts' two-person counts

Revision ID: 0018_controlled_register
Revises: 0017_hat
Create Date: 2026-12-07 10:20:27.159428

The ledger is append-only, enforced by the database as the audit trail is (a frozen copy of
what srs.extensions.append_only makes for controlled_entry).
"""
from alembic import op
import sqlalchemy as sa

import srs.common

TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER controlled_entry_no_update BEFORE UPDATE ON controlled_entry "
        "BEGIN SELECT RAISE(ABORT, 'controlled_entry is append-only'); END",
        "CREATE TRIGGER controlled_entry_no_delete BEFORE DELETE ON controlled_entry "
        "BEGIN SELECT RAISE(ABORT, 'controlled_entry is append-only'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION controlled_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'controlled_entry is append-only'; END $$",
        "CREATE TRIGGER controlled_entry_no_change BEFORE UPDATE OR DELETE ON controlled_entry "
        "FOR EACH ROW EXECUTE FUNCTION controlled_entry_append_only()",
    ],
}
TRIGGER_DROPS = {
    "sqlite": ["DROP TRIGGER IF EXISTS controlled_entry_no_update",
               "DROP TRIGGER IF EXISTS controlled_entry_no_delete"],
    "postgresql": ["DROP TRIGGER IF EXISTS controlled_entry_no_change ON controlled_entry",
                   "DROP FUNCTION IF EXISTS controlled_entry_append_only()"],
}


# revision identifiers, used by Alembic.
revision = '0018_controlled_register'
down_revision = '0017_hat'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('controlled_drug',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('strength', sa.String(length=40), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=False),
    sa.Column('balance', sa.Integer(), nullable=False),
    sa.Column('created_at', srs.common.UTCDateTime(), nullable=False),
    sa.CheckConstraint("unit IN ('mg', 'mL', 'vial', 'ampoule', 'tablet')", name=op.f('ck_controlled_drug_unit_known')),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_controlled_drug_balance_not_negative')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_controlled_drug_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_controlled_drug')),
    sa.UniqueConstraint('site_id', 'name', 'strength', name=op.f('uq_controlled_drug_site_id_name_strength'))
    )
    op.create_table('controlled_count',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('drug_id', sa.Integer(), nullable=False),
    sa.Column('counted_at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('expected', sa.Integer(), nullable=False),
    sa.Column('counted', sa.Integer(), nullable=False),
    sa.Column('difference', sa.Integer(), nullable=False),
    sa.Column('first_by', sa.Integer(), nullable=False),
    sa.Column('second_by', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('loss_reported_at', srs.common.UTCDateTime(), nullable=True),
    sa.Column('loss_reported_by', sa.Integer(), nullable=True),
    sa.Column('loss_reference', sa.String(length=80), nullable=True),
    sa.CheckConstraint('counted >= 0', name=op.f('ck_controlled_count_counted_not_negative')),
    sa.CheckConstraint('first_by <> second_by', name=op.f('ck_controlled_count_two_people')),
    sa.ForeignKeyConstraint(['drug_id'], ['controlled_drug.id'], name=op.f('fk_controlled_count_drug_id_controlled_drug')),
    sa.ForeignKeyConstraint(['first_by'], ['staff.id'], name=op.f('fk_controlled_count_first_by_staff')),
    sa.ForeignKeyConstraint(['loss_reported_by'], ['staff.id'], name=op.f('fk_controlled_count_loss_reported_by_staff')),
    sa.ForeignKeyConstraint(['second_by'], ['staff.id'], name=op.f('fk_controlled_count_second_by_staff')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_controlled_count_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_controlled_count'))
    )
    with op.batch_alter_table('controlled_count', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_controlled_count_drug_id'), ['drug_id'], unique=False)
        batch_op.create_index('ix_controlled_count_open_loss', ['site_id'], unique=False, sqlite_where=sa.text('difference <> 0 AND loss_reported_at IS NULL'), postgresql_where=sa.text('difference <> 0 AND loss_reported_at IS NULL'))

    op.create_table('controlled_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('drug_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('balance_after', sa.Integer(), nullable=False),
    sa.Column('at', srs.common.UTCDateTime(), nullable=False),
    sa.Column('by', sa.Integer(), nullable=True),
    sa.Column('supplier', sa.String(length=120), nullable=True),
    sa.Column('invoice', sa.String(length=60), nullable=True),
    sa.Column('lot_number', sa.String(length=40), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('dose_mg', sa.Integer(), nullable=True),
    sa.Column('dose_id', sa.Integer(), nullable=True),
    sa.Column('identity_checked', sa.Boolean(), nullable=True),
    sa.Column('witness_id', sa.Integer(), nullable=True),
    sa.Column('witness_name', sa.String(length=120), nullable=True),
    sa.Column('witness_role', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('count_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind <> 'adjusted' OR count_id IS NOT NULL", name=op.f('ck_controlled_entry_adjusted_by_count')),
    sa.CheckConstraint("kind <> 'drawn' OR client_id IS NOT NULL", name=op.f('ck_controlled_entry_drawn_names_client')),
    sa.CheckConstraint("kind IN ('received', 'drawn', 'wasted', 'destroyed', 'returned', 'adjusted')", name=op.f('ck_controlled_entry_kind_known')),
    sa.CheckConstraint("kind NOT IN ('wasted', 'destroyed') OR witness_id IS NOT NULL", name=op.f('ck_controlled_entry_waste_witnessed')),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_controlled_entry_balance_not_negative')),
    sa.CheckConstraint('delta <> 0', name=op.f('ck_controlled_entry_delta_not_zero')),
    sa.ForeignKeyConstraint(['by'], ['staff.id'], name=op.f('fk_controlled_entry_by_staff')),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_controlled_entry_client_id_client')),
    sa.ForeignKeyConstraint(['count_id'], ['controlled_count.id'], name=op.f('fk_controlled_entry_count_id_controlled_count')),
    sa.ForeignKeyConstraint(['drug_id'], ['controlled_drug.id'], name=op.f('fk_controlled_entry_drug_id_controlled_drug')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_controlled_entry_site_id_site'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['witness_id'], ['staff.id'], name=op.f('fk_controlled_entry_witness_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_controlled_entry'))
    )
    with op.batch_alter_table('controlled_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_controlled_entry_client_id'), ['client_id'], unique=False)
        batch_op.create_index('ix_controlled_entry_drug_at', ['drug_id', 'at'], unique=False)

    for statement in TRIGGERS.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade():
    for statement in TRIGGER_DROPS.get(op.get_bind().dialect.name, []):
        if "FUNCTION" not in statement:
            op.execute(statement)
    with op.batch_alter_table('controlled_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_controlled_entry_drug_at')
        batch_op.drop_index(batch_op.f('ix_controlled_entry_client_id'))

    op.drop_table('controlled_entry')
    with op.batch_alter_table('controlled_count', schema=None) as batch_op:
        batch_op.drop_index('ix_controlled_count_open_loss', sqlite_where=sa.text('difference <> 0 AND loss_reported_at IS NULL'), postgresql_where=sa.text('difference <> 0 AND loss_reported_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_controlled_count_drug_id'))

    op.drop_table('controlled_count')
    op.drop_table('controlled_drug')
    for statement in TRIGGER_DROPS.get(op.get_bind().dialect.name, []):
        if "FUNCTION" in statement:
            op.execute(statement)
