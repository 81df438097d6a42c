"""naloxone kits by serial and lot, kit-use reports, lot recalls; a take-home kit names its
serial kit, a trainee as holder, and why it replaces an earlier one

Revision ID: 0015_naloxone_kits
Revises: 0014_naloxone_training
Create Date: 2026-12-07 10:00:00.000000

Every take-home kit given before keeps its client and its count; one that replaced a used
kit gets the reason ``used``.

"""
from alembic import op
import sqlalchemy as sa

import srs.common


# revision identifiers, used by Alembic.
revision = '0015_naloxone_kits'
down_revision = '0014_naloxone_training'
branch_labels = None
depends_on = None

KIT_KINDS = ("injectable", "nasal")
STATES = ("in_stock", "issued", "used", "withdrawn")
REASONS = ("used", "lost", "stolen", "confiscated", "expired", "recalled", "other")
ROUTES = ("im", "in")
OUTCOMES = ("recovered", "hospital", "died", "unknown")


def _one_of(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table(
        'naloxone_kit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('serial', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('lot_id', sa.Integer(), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('added_at', srs.common.UTCDateTime(), nullable=False),
        sa.Column('added_by', sa.Integer(), nullable=True),
        sa.Column('recalled_at', srs.common.UTCDateTime(), nullable=True),
        sa.Column('expiry_warned_at', srs.common.UTCDateTime(), nullable=True),
        sa.CheckConstraint(_one_of('kind', KIT_KINDS), name=op.f('ck_naloxone_kit_kind_known')),
        sa.CheckConstraint(_one_of('state', STATES), name=op.f('ck_naloxone_kit_state_known')),
        sa.ForeignKeyConstraint(['added_by'], ['staff.id'],
                                name=op.f('fk_naloxone_kit_added_by_staff')),
        sa.ForeignKeyConstraint(['lot_id'], ['naloxone_lot.id'],
                                name=op.f('fk_naloxone_kit_lot_id_naloxone_lot')),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE',
                                name=op.f('fk_naloxone_kit_site_id_site')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_naloxone_kit')),
        sa.UniqueConstraint('site_id', 'serial', name=op.f('uq_naloxone_kit_site_id_serial')),
    )
    op.create_index(op.f('ix_naloxone_kit_lot_id'), 'naloxone_kit', ['lot_id'])
    op.create_index('ix_naloxone_kit_site_state_expiry', 'naloxone_kit',
                    ['site_id', 'state', 'expires_on'])

    op.create_table(
        'naloxone_kit_use',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('kit_id', sa.Integer(), nullable=False),
        sa.Column('used_on', sa.Date(), nullable=False),
        sa.Column('area', sa.String(length=120), nullable=True),
        sa.Column('doses', sa.Integer(), nullable=False),
        sa.Column('route', sa.String(length=10), nullable=False),
        sa.Column('called_911', sa.Boolean(), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('reported_at', srs.common.UTCDateTime(), nullable=False),
        sa.Column('reported_by', sa.Integer(), nullable=True),
        sa.CheckConstraint(_one_of('route', ROUTES),
                           name=op.f('ck_naloxone_kit_use_route_known')),
        sa.CheckConstraint(_one_of('outcome', OUTCOMES),
                           name=op.f('ck_naloxone_kit_use_outcome_known')),
        sa.CheckConstraint('doses BETWEEN 1 AND 10', name=op.f('ck_naloxone_kit_use_doses_range')),
        sa.ForeignKeyConstraint(['kit_id'], ['naloxone_kit.id'],
                                name=op.f('fk_naloxone_kit_use_kit_id_naloxone_kit')),
        sa.ForeignKeyConstraint(['reported_by'], ['staff.id'],
                                name=op.f('fk_naloxone_kit_use_reported_by_staff')),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE',
                                name=op.f('fk_naloxone_kit_use_site_id_site')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_naloxone_kit_use')),
        sa.UniqueConstraint('kit_id', name=op.f('uq_naloxone_kit_use_kit_id')),
    )
    op.create_index('ix_naloxone_kit_use_site_used', 'naloxone_kit_use', ['site_id', 'used_on'])

    op.create_table(
        'naloxone_lot_recall',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('lot_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('recalled_at', srs.common.UTCDateTime(), nullable=False),
        sa.Column('recalled_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['lot_id'], ['naloxone_lot.id'],
                                name=op.f('fk_naloxone_lot_recall_lot_id_naloxone_lot')),
        sa.ForeignKeyConstraint(['recalled_by'], ['staff.id'],
                                name=op.f('fk_naloxone_lot_recall_recalled_by_staff')),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE',
                                name=op.f('fk_naloxone_lot_recall_site_id_site')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_naloxone_lot_recall')),
        sa.UniqueConstraint('lot_id', name=op.f('uq_naloxone_lot_recall_lot_id')),
    )

    with op.batch_alter_table('take_home_kit', schema=None) as batch_op:
        batch_op.alter_column('client_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('trainee_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('kit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('replacement_reason', sa.String(length=20),
                                      nullable=True))
        batch_op.add_column(sa.Column('replacement_note', sa.String(length=200),
                                      nullable=True))
        batch_op.create_foreign_key(op.f('fk_take_home_kit_trainee_id_naloxone_trainee'),
                                    'naloxone_trainee', ['trainee_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_take_home_kit_kit_id_naloxone_kit'),
                                    'naloxone_kit', ['kit_id'], ['id'])
        batch_op.create_index(op.f('ix_take_home_kit_trainee_id'), ['trainee_id'])
        batch_op.create_index(op.f('ix_take_home_kit_kit_id'), ['kit_id'])
        batch_op.create_check_constraint(op.f('ck_take_home_kit_has_holder'),
                                         'client_id IS NOT NULL OR trainee_id IS NOT NULL')
        batch_op.create_check_constraint(
            op.f('ck_take_home_kit_reason_known'),
            f"replacement_reason IS NULL OR {_one_of('replacement_reason', REASONS)}")
    op.execute("UPDATE take_home_kit SET replacement_reason = 'used' WHERE replaces_used")


def downgrade():
    # Kits given to a trainee alone have no client to keep: they go with the serials.
    op.execute("DELETE FROM stock_finding WHERE kit_id IN "
               "(SELECT id FROM take_home_kit WHERE client_id IS NULL)")
    op.execute("UPDATE stock_movement SET kit_id = NULL WHERE kit_id IN "
               "(SELECT id FROM take_home_kit WHERE client_id IS NULL)")
    op.execute("DELETE FROM take_home_kit WHERE client_id IS NULL")
    with op.batch_alter_table('take_home_kit', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_take_home_kit_reason_known'), type_='check')
        batch_op.drop_constraint(op.f('ck_take_home_kit_has_holder'), type_='check')
        batch_op.drop_index(op.f('ix_take_home_kit_kit_id'))
        batch_op.drop_index(op.f('ix_take_home_kit_trainee_id'))
        batch_op.drop_constraint(op.f('fk_take_home_kit_kit_id_naloxone_kit'),
                                 type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_take_home_kit_trainee_id_naloxone_trainee'),
                                 type_='foreignkey')
        batch_op.drop_column('replacement_note')
        batch_op.drop_column('replacement_reason')
        batch_op.drop_column('kit_id')
        batch_op.drop_column('trainee_id')
        batch_op.alter_column('client_id', existing_type=sa.Integer(), nullable=False)
    op.drop_table('naloxone_lot_recall')
    op.drop_index('ix_naloxone_kit_use_site_used', table_name='naloxone_kit_use')
    op.drop_table('naloxone_kit_use')
    op.drop_index('ix_naloxone_kit_site_state_expiry', table_name='naloxone_kit')
    op.drop_index(op.f('ix_naloxone_kit_lot_id'), table_name='naloxone_kit')
    op.drop_table('naloxone_kit')
