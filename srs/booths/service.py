"""The floor's operations. Callers: booths and API views, the CLI."""

from srs.auth.service import Actor, record
from srs.booths.models import Booth, BoothKind
from srs.common import utcnow
from srs.errors import Invalid
from srs.extensions import db
from srs.sites.models import Site


def site_board(site: Site) -> dict:
    """What every screen of a site shows: its booths in floor order, with their state."""
    booths = list(db.session.execute(
        db.select(Booth).filter_by(site_id=site.id).order_by(Booth.position, Booth.label)
    ).scalars())
    return {"site": site, "booths": booths, "generated_at": utcnow()}


def create_booth(site: Site, *, label: str, kind: str, position: int, actor: Actor) -> Booth:
    if kind not in set(BoothKind):
        raise Invalid("Unknown booth kind.", {"kind": ["Choose injection or inhalation."]})
    booth = Booth(site_id=site.id, label=label, kind=kind, position=position)
    db.session.add(booth)
    db.session.flush()
    record(actor, "booth_created", "booth", booth.id, site_id=site.id)
    db.session.commit()
    return booth
