"""compassion club members: the role screener (a health provider who screens applicants)

Revision ID: 0022_club_members
Revises: 0021_compassion
Create Date: 2026-12-07 12:20:00.000000

"""
from alembic import op

ROLES_BEFORE = ("role IN ('nurse', 'supervisor', 'reviewer', 'admin', 'drug_checker', "
                "'prescriber', 'pharmacist')")
ROLES = ("role IN ('nurse', 'supervisor', 'reviewer', 'admin', 'drug_checker', "
         "'prescriber', 'pharmacist', 'screener')")


# revision identifiers, used by Alembic.
revision = '0022_club_members'
down_revision = '0021_compassion'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_role_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_staff_role_role_known'), ROLES)


def downgrade():
    # The role goes with the club's screening it served.
    op.execute("DELETE FROM staff_role WHERE role = 'screener'")
    with op.batch_alter_table('staff_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_role_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_staff_role_role_known'), ROLES_BEFORE)
