"""Sites and their settings. Callers: sites and API views, the CLI."""

from datetime import datetime

from srs import live
from srs.auth.models import Role, Staff
from srs.auth.service import Actor, record
from srs.errors import Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site


def sites_for(staff: Staff) -> list[Site]:
    """The sites a staff member has any role at, by name."""
    if not staff.site_ids:
        return []
    return list(db.session.execute(
        db.select(Site).where(Site.id.in_(staff.site_ids)).order_by(Site.name)).scalars())


def get_site(site_id: int) -> Site:
    """:raises NotFound: ``no_such_site``."""
    site = db.session.get(Site, site_id)
    if site is None:
        raise no_such_site()
    return site


def no_such_site() -> NotFound:
    """The answer for an unknown site, and for a site the caller holds no role at: the
    same, so that nobody learns which site ids exist by asking."""
    return NotFound("No such site.")


def create_site(*, name: str, slug: str, timezone: str, actor: Actor) -> Site:
    site = Site(name=name, slug=slug, timezone=timezone)
    db.session.add(site)
    db.session.flush()
    record(actor, "site_created", "site", site.id, site_id=site.id)
    db.session.commit()
    return site


def update_settings(site: Site, changes: dict, *, actor: Actor, now: datetime) -> Site:
    """Apply validated setting changes, audit each old and new value, announce.

    Raises Invalid when the on-call person is not a supervisor at the site.
    """
    on_call = changes.get("on_call_staff_id")
    if on_call is not None:
        staff = db.session.get(Staff, on_call)
        if staff is None or not staff.active or not staff.has_role(site.id, Role.SUPERVISOR):
            raise Invalid("The on-call person must be a supervisor at this site.", {
                "on_call_staff_id": ["Choose an active supervisor of this site."]})
    changed = {}
    for name, value in changes.items():
        old = getattr(site, name)
        if old != value:
            setattr(site, name, value)
            changed[name] = {"from": old, "to": value}
    if changed:
        record(actor, "settings_updated", "site", site.id, site_id=site.id, detail=changed,
               now=now)
    if changed:
        live.announce(site.id, "settings")
    db.session.commit()
    return site
