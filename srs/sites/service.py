"""Sites and their settings. Callers: sites and API views, the CLI."""

from dataclasses import dataclass
from datetime import datetime

from srs import live
from srs.auth import service as auth
from srs.auth.models import Role, Staff
from srs.auth.service import Actor, record
from srs.errors import Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site
from srs.sites.settings_table import CROSS_RULES, cross_field_errors


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


def update_settings(site: Site, changes: dict, *, actor: Actor, now: datetime) -> Site:
    """Apply validated setting changes, audit each old and new value, announce (the API's
    update). Raises Invalid as :func:`change_settings` does."""
    change_settings(site, changes, actor=actor, now=now)
    return site


def change_settings(site: Site, changes: dict, *, actor: Actor, now: datetime) -> dict:
    """Apply validated setting changes, audit each old and new value, announce; return what
    changed, ``{name: {"from": old, "to": new}}`` (empty when nothing did).

    Raises Invalid when the on-call person is not a supervisor at the site, or when the
    change would set a setting below one that bounds it (``CROSS_RULES``), whichever of the
    two it changes.
    """
    ordered = cross_field_errors({name: changes.get(name, getattr(site, name))
                                  for rule in CROSS_RULES for name in (rule.lower, rule.upper)})
    if ordered:
        raise Invalid("Some settings are out of order with one another.", ordered)
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
    return changed


# --- Staff changes that reach a site's settings -----------------------------------------------


@dataclass(frozen=True)
class OffCall:
    """A site whose on-call supervisor a staff change took off call: nobody is on call there
    now, and the admin's page says so."""

    site: Site
    staff_name: str


def _take_off_call(staff: Staff, sites: list[Site], *, actor: Actor, now: datetime,
                   why: str) -> list[OffCall]:
    """Empty the on-call setting of each of ``sites`` that names ``staff``, audited as a
    settings change with its reason. Does not commit."""
    cleared = []
    for site in sites:
        if site.on_call_staff_id == staff.id:
            site.on_call_staff_id = None
            record(actor, "settings_updated", "site", site.id, site_id=site.id, now=now,
                   detail={"on_call_staff_id": {"from": staff.id, "to": None}, "why": why})
            live.announce(site.id, "settings")
            cleared.append(OffCall(site, staff.display_name))
    return cleared


def deactivate_staff(staff: Staff, *, actor: Actor, now: datetime,
                     site_id: int | None = None) -> list[OffCall]:
    """Deactivate ``staff`` (``srs.auth.service.deactivate_staff``: their logins end, tokens
    are revoked, sockets cut) and take them off call wherever they were the on-call
    supervisor, in the same commit. Returns those sites. Raises Conflict as the auth
    service does (oneself, a site's last admin). ``site_id``: the site whose admin did it,
    whose audit trail shows it."""
    auth.check_deactivation(staff, actor=actor)
    cleared = []
    if staff.active:
        on_call_at = list(db.session.execute(
            db.select(Site).where(Site.on_call_staff_id == staff.id)).scalars())
        cleared = _take_off_call(staff, on_call_at, actor=actor, now=now, why="deactivated")
    auth.deactivate_staff(staff, actor=actor, now=now, site_id=site_id)
    return cleared


def set_staff_roles(site: Site, staff: Staff, roles: list[str], *, actor: Actor,
                    now: datetime) -> list[OffCall]:
    """Make ``roles`` ``staff``'s roles at ``site`` (``srs.auth.service.set_site_roles``);
    someone no longer supervisor there is taken off its call. Returns the site when so.
    Raises Invalid and Conflict as the auth service does."""
    chosen = auth.check_roles_change(staff, site, roles, actor=actor)
    cleared = []
    if Role.SUPERVISOR not in chosen:
        cleared = _take_off_call(staff, [site], actor=actor, now=now, why="role removed")
    auth.set_site_roles(staff, site, chosen, actor=actor, now=now)
    return cleared


def update_staff(site: Site, staff: Staff, changes: dict, *, actor: Actor,
                 now: datetime) -> list[OffCall]:
    """Apply an admin's validated changes to one person of ``site`` (any of
    ``display_name``, ``roles``, ``active``), every refusal checked before anything changes.
    Returns the sites whose on-call supervisor it took off call. Raises Invalid and
    Conflict as the auth service does."""
    if "roles" in changes:
        auth.check_roles_change(staff, site, changes["roles"], actor=actor)
    if changes.get("active") is False:
        auth.check_deactivation(staff, actor=actor)
    off_call = []
    if "display_name" in changes:
        auth.rename_staff(staff, changes["display_name"], site_id=site.id, actor=actor,
                          now=now)
    if "roles" in changes:
        off_call += set_staff_roles(site, staff, changes["roles"], actor=actor, now=now)
    if changes.get("active") is False:
        off_call += deactivate_staff(staff, actor=actor, now=now, site_id=site.id)
    elif changes.get("active") is True:
        auth.reactivate_staff(staff, actor=actor, now=now, site_id=site.id)
    return off_call
