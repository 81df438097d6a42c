"""The floor's operations. Callers: booths and API views, the CLI."""

from datetime import datetime

from srs import live
from srs.auth.service import Actor, record
from srs.booths.models import Booth, BoothKind, BoothState
from srs.common import utcnow
from srs.errors import Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site


def site_board(site: Site) -> dict:
    """What every screen of a site shows: its booths in floor order, with their state."""
    booths = list(db.session.execute(
        db.select(Booth).filter_by(site_id=site.id).order_by(Booth.position, Booth.label)
    ).scalars())
    counts = {state: sum(1 for b in booths if b.state == state) for state in BoothState}
    return {"site": site, "booths": booths, "counts": counts, "generated_at": utcnow()}


def create_booth(site: Site, *, label: str, kind: str, position: int, actor: Actor) -> Booth:
    if kind not in set(BoothKind):
        raise Invalid("Unknown booth kind.", {"kind": ["Choose injection or inhalation."]})
    booth = Booth(site_id=site.id, label=label, kind=kind, position=position)
    db.session.add(booth)
    db.session.flush()
    record(actor, "booth_created", "booth", booth.id, site_id=site.id)
    db.session.commit()
    return booth


def get_booth(site: Site, booth_id: int) -> Booth:
    booth = db.session.get(Booth, booth_id)
    if booth is None or booth.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no booth with id {booth_id}.")
    return booth


def set_booth_out_of_service(booth: Booth, *, reason: str | None, actor: Actor,
                             now: datetime) -> Booth:
    """Take a booth out of service with a reason, or back in (``reason=None``); announce."""
    if reason is not None:
        reason = reason.strip()
        if not reason:
            raise Invalid("A reason is required.", {"reason": [
                "Say why the booth is out of service."]})
        booth.out_of_service_reason = reason
        booth.out_of_service_since = now
        action = "booth_out_of_service"
    else:
        booth.out_of_service_reason = None
        booth.out_of_service_since = None
        action = "booth_back_in_service"
    record(actor, action, "booth", booth.id, site_id=booth.site_id, now=now)
    db.session.commit()
    live.announce(booth.site_id, "board")
    return booth
