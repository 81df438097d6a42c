"""clients belong to one site: the same code at another site is another record

Revision ID: 0010_site_clients
Revises: 0009_drowsy_and_outcomes
Create Date: 2026-12-09 10:00:00.000000

Until now one client row served every site, so a site saw a handle, a flag or a care profile
that another site kept. Each client is split by the sites whose rows point at it: the first
site it visited keeps the row and its id, every other site gets a copy (handle, flags and
care profile as they were, since that site saw them already) and its own rows re-pointed to
it. A client no visit names goes to the site of whatever else names it, or to the first
site. Downgrading merges the copies back into the oldest row of each code (the copies'
handles and flags are lost; a care profile survives only if the oldest row had none).

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_site_clients'
down_revision = '0009_drowsy_and_outcomes'
branch_labels = None
depends_on = None

# Every table pointing at a client that carries its own site, and the time of its row (to
# order the sites of a client no visit names). ``incident_client`` reads both from its
# incident; ``care_profile`` has neither and follows its client.
_SITE_ROWS = {
    'visit': 'arrived_at',
    'take_home_kit': 'given_at',
    'overdose_response': 'started_at',
    'referral_offer': 'offered_at',
    'referral': 'referred_at',
}
_POINTING = {*_SITE_ROWS, 'incident_client', 'care_profile'}


def _table(name, *columns):
    return sa.table(name, *(sa.column(c, sa.DateTime(timezone=True) if c.endswith('_at')
                                      else sa.Integer()) for c in columns))


def _check_every_reference_is_known(bind):
    """Stop rather than leave a table this migration does not know pointing across sites."""
    inspector = sa.inspect(bind)
    unknown = sorted(
        table for table in inspector.get_table_names()
        for fk in inspector.get_foreign_keys(table)
        if fk['referred_table'] == 'client' and table not in _POINTING)
    if unknown:
        raise RuntimeError(f"0010_site_clients does not know how to split: {', '.join(unknown)}")


def _sites_of_clients(bind):
    """{client id: [site id, ...]}, the site it first visited first, then the sites only other
    rows name (by their first row), each site once."""
    firsts = {}  # (client, site) -> (no visit there, first time)
    for name, at in _SITE_ROWS.items():
        t = _table(name, 'client_id', 'site_id', at)
        rows = bind.execute(
            sa.select(t.c.client_id, t.c.site_id, sa.func.min(t.c[at]))
            .where(t.c.client_id.is_not(None)).group_by(t.c.client_id, t.c.site_id))
        for client_id, site_id, first in rows:
            key = (name != 'visit', first)
            firsts[client_id, site_id] = min(firsts.get((client_id, site_id), key), key)
    links, incidents = _table('incident_client', 'incident_id', 'client_id'), \
        _table('incident', 'id', 'site_id', 'occurred_at')
    for client_id, site_id, first in bind.execute(
            sa.select(links.c.client_id, incidents.c.site_id, sa.func.min(incidents.c.occurred_at))
            .join(incidents, incidents.c.id == links.c.incident_id)
            .group_by(links.c.client_id, incidents.c.site_id)):
        key = (True, first)
        firsts[client_id, site_id] = min(firsts.get((client_id, site_id), key), key)
    sites = {}
    for (client_id, site_id), key in sorted(firsts.items(), key=lambda item: (item[1], item[0][1])):
        sites.setdefault(client_id, []).append(site_id)
    return sites


def _repoint(bind, old_id, new_id, site_id):
    """Point ``site_id``'s rows of client ``old_id`` at ``new_id``."""
    for name in _SITE_ROWS:
        t = _table(name, 'client_id', 'site_id')
        bind.execute(t.update().where(t.c.client_id == old_id, t.c.site_id == site_id)
                     .values(client_id=new_id))
    links, incidents = _table('incident_client', 'incident_id', 'client_id'), \
        _table('incident', 'id', 'site_id')
    bind.execute(links.update().where(
        links.c.client_id == old_id,
        links.c.incident_id.in_(sa.select(incidents.c.id).where(incidents.c.site_id == site_id)))
        .values(client_id=new_id))


def _split_clients(bind):
    client = sa.Table('client', sa.MetaData(), autoload_with=bind)
    profile = sa.Table('care_profile', sa.MetaData(), autoload_with=bind)
    copied = [c.name for c in client.columns if c.name not in ('id', 'site_id')]
    first_site = []
    for client_id, site_ids in _sites_of_clients(bind).items():
        first_site.append({'cid': client_id, 'sid': site_ids[0]})
        if len(site_ids) == 1:
            continue
        row = bind.execute(sa.select(*(client.c[c] for c in copied))
                           .where(client.c.id == client_id)).mappings().one()
        kept = bind.execute(sa.select(profile).where(profile.c.client_id == client_id)) \
            .mappings().one_or_none()
        for site_id in site_ids[1:]:
            new_id = bind.execute(client.insert().values(**row, site_id=site_id)) \
                .inserted_primary_key[0]
            _repoint(bind, client_id, new_id, site_id)
            if kept is not None:
                bind.execute(profile.insert().values(**{**kept, 'client_id': new_id}))
    if first_site:
        bind.execute(client.update().where(client.c.id == sa.bindparam('cid'))
                     .values(site_id=sa.bindparam('sid')), first_site)
    site = _table('site', 'id')
    first = bind.execute(sa.select(sa.func.min(site.c.id))).scalar()
    if first is None:
        if bind.execute(sa.select(sa.func.count()).select_from(client)).scalar():
            raise RuntimeError("Clients exist but no site does: create a site to hold them.")
        return
    bind.execute(client.update().where(client.c.site_id.is_(None)).values(site_id=first))


def upgrade():
    bind = op.get_bind()
    _check_every_reference_is_known(bind)
    # The old unique code goes first: the copies repeat their code, at another site.
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_client_code'), type_='unique')

    _split_clients(bind)

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.alter_column('site_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_client_site_id_code'), ['site_id', 'code'])
        batch_op.create_foreign_key(batch_op.f('fk_client_site_id_site'), 'site', ['site_id'], ['id'], ondelete='CASCADE')


def _merge_clients(bind):
    """Each code's rows into its oldest: every row pointing at a copy re-pointed."""
    client = sa.table('client', sa.column('id', sa.Integer()), sa.column('code', sa.String()))
    profile = _table('care_profile', 'client_id')
    links = _table('incident_client', 'incident_id', 'client_id')
    oldest = {}
    for client_id, code in bind.execute(sa.select(client.c.id, client.c.code)
                                        .order_by(client.c.id)):
        keep = oldest.setdefault(code, client_id)
        if keep == client_id:
            continue
        for name in _SITE_ROWS:
            t = _table(name, 'client_id')
            bind.execute(t.update().where(t.c.client_id == client_id).values(client_id=keep))
        # One incident names a client once.
        bind.execute(links.delete().where(links.c.client_id == client_id, links.c.incident_id.in_(
            sa.select(links.c.incident_id).where(links.c.client_id == keep).scalar_subquery())))
        bind.execute(links.update().where(links.c.client_id == client_id)
                     .values(client_id=keep))
        if bind.execute(sa.select(profile.c.client_id)
                        .where(profile.c.client_id == keep)).first() is None:
            bind.execute(profile.update().where(profile.c.client_id == client_id)
                         .values(client_id=keep))
        else:
            bind.execute(profile.delete().where(profile.c.client_id == client_id))
        bind.execute(client.delete().where(client.c.id == client_id))


def downgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_client_site_id_site'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_client_site_id_code'), type_='unique')

    _merge_clients(op.get_bind())

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_client_code'), ['code'])
        batch_op.drop_column('site_id')
