"""Sites as an organisation admin keeps them: create a site with its booths and its first
admin, rename it or set its time zone, and who is organisation admin.

Callers: ``srs.org.views``, ``srs.api.org`` and the CLI (``srs site create``, ``srs user
create --org-admin``). Each operation checks every field first, changes, audits and commits
once. The flag holds no role at any site: an organisation admin sees a site's pages only
where they also hold a role there (they may give themselves the admin role of a site they
create).
"""

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import available_timezones

from sqlalchemy import exc

from srs import live
from srs.auth import service as auth
from srs.auth.models import Role, Staff, StaffRole
from srs.auth.service import Actor, record
from srs.booths.models import Booth, BoothKind
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site

NAME_MAX = 120
SLUG_MAX = 60
# Lower-case words joined by single dashes: the slug is in every URL of the site.
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_RULE = (f"Use 1-{SLUG_MAX} lower-case letters and digits, words joined by single "
             f"dashes (e.g. east-end).")
MAX_BOOTHS = 50
# A new site's booth labels, by kind, as the demo site has them: B1, B2... and S1, S2...
BOOTH_PREFIX = {BoothKind.INJECTION: "B", BoothKind.INHALATION: "S"}


@functools.cache
def known_zones() -> frozenset[str]:
    """Every IANA time zone name this machine knows: what a site may keep."""
    return frozenset(available_timezones())


@functools.cache
def time_zones() -> tuple[str, ...]:
    """The time zones a form offers, by name: regions and cities, and UTC."""
    return (*sorted(z for z in known_zones()
                    if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix", "right"))),
            "UTC")


def zone_choices(current: str | None = None) -> tuple[str, ...]:
    """:func:`time_zones`, with ``current`` (a site's own zone, set another way) first when the
    list lacks it, so that saving a form never changes a zone nobody chose."""
    zones = time_zones()
    return zones if not current or current in zones else (current, *zones)


@dataclass(frozen=True)
class NewSite:
    """A site just created, with its first admin and what they sign in with: shown once."""

    site: Site
    admin: Staff | None = None
    password: str | None = None
    pin: str | None = None


@dataclass(frozen=True)
class SiteRow:
    """One site on the organisation's list: its booths in use by kind, its active staff."""

    site: Site
    injection: int
    inhalation: int
    staff: int

    @property
    def booths(self) -> int:
        return self.injection + self.inhalation


def _name(value) -> str:
    name = (value or "").strip()
    if not name or len(name) > NAME_MAX:
        message = f"Give the site a name of 1 to {NAME_MAX} characters."
        raise Invalid(message, {"name": [message]})
    return name


def _slug(value, *, site: Site | None = None) -> str:
    slug = (value or "").strip()
    if len(slug) > SLUG_MAX or not SLUG.match(slug):
        raise Invalid("Invalid slug.", {"slug": [SLUG_RULE]})
    taken = db.session.execute(db.select(Site).filter_by(slug=slug)).scalar_one_or_none()
    if taken is not None and taken is not site:
        message = f"{slug!r} is already the slug of {taken.name}: choose another."
        raise Invalid(message, {"slug": [message]})
    return slug


def _timezone(value) -> str:
    zone = (value or "").strip()
    if zone not in known_zones():
        message = (f"{zone!r} is not a known time zone: give an IANA name such as "
                   f"America/Toronto." if zone else "Choose the site's time zone.")
        raise Invalid(message, {"timezone": [message]})
    return zone


def _booths(value) -> dict[str, int]:
    counts = {kind.value: (value or {}).get(kind.value, 0) for kind in BoothKind}
    for kind, count in counts.items():
        if not isinstance(count, int) or not 0 <= count <= MAX_BOOTHS:
            message = f"Give 0 to {MAX_BOOTHS} {kind} booths."
            raise Invalid(message, {"booths": {kind: [message]}})
    return counts


def _admin(admin: dict) -> dict:
    try:
        auth.check_username(admin.get("username"))
    except Invalid as err:
        raise Invalid(err.message, {"admin": err.errors}) from None
    return admin


def _checked(checks: dict) -> dict:
    """Run each field's check; raise one Invalid naming every field that failed."""
    values, errors = {}, {}
    for field, check in checks.items():
        try:
            values[field] = check()
        except Invalid as err:
            errors.update(err.errors)
    if errors:
        raise Invalid("Some fields are not valid.", errors)
    return values


def create_site(*, name: str, slug: str, timezone: str, booths: dict | None = None,
                admin: dict | None = None, add_admin: Staff | None = None, actor: Actor,
                now: datetime) -> NewSite:
    """Create a site with the default settings, ``booths`` (``{"injection": 6,
    "inhalation": 2}``: labelled B1.. and S1..) and, with ``admin`` (``username``,
    ``display_name``), its first admin, whose generated password and PIN the answer holds
    (only hashes are kept). ``add_admin``, an existing person (the organisation admin
    creating it), is made admin there too.

    :raises Invalid: a bad or taken slug, an empty or long name, an unknown time zone, a
        booth count out of range, a bad or taken username (under ``admin``).
    """
    values = _checked({"name": lambda: _name(name), "slug": lambda: _slug(slug),
                       "timezone": lambda: _timezone(timezone),
                       "booths": lambda: _booths(booths),
                       "admin": lambda: admin and _admin(admin)})
    site = Site(name=values["name"], slug=values["slug"], timezone=values["timezone"],
                created_at=now)
    db.session.add(site)
    try:
        db.session.flush()
    except exc.IntegrityError:  # the same slug, created between our check and our write
        db.session.rollback()
        message = f"{values['slug']!r} was taken a moment ago: choose another."
        raise Invalid(message, {"slug": [message]}) from None
    counts = values["booths"]
    position = 0
    for kind in BoothKind:
        for n in range(1, counts[kind.value] + 1):
            booth = Booth(site_id=site.id, label=f"{BOOTH_PREFIX[kind]}{n}", kind=kind.value,
                          position=position)
            position += 1
            db.session.add(booth)
            db.session.flush()
            record(actor, "booth_created", "booth", booth.id, site_id=site.id, now=now,
                   detail={"label": booth.label, "kind": booth.kind})
    created = NewSite(site)
    if admin is not None:
        password, pin = auth.new_password(), auth.new_pin()
        try:
            person = auth.new_staff(admin.get("username"),
                                    display_name=(admin.get("display_name") or "").strip()
                                    or None, password=password, pin=pin,
                                    roles=[(site, Role.ADMIN.value)], actor=actor)
        except Invalid as err:
            db.session.rollback()
            raise Invalid(err.message, {"admin": err.errors}) from None
        created = NewSite(site, person, password, pin)
    if add_admin is not None:
        add_admin.roles.append(StaffRole(site_id=site.id, role=Role.ADMIN.value))
        record(actor, "role_added", "staff", add_admin.id, site_id=site.id, now=now,
               detail={"role": Role.ADMIN.value})
    record(actor, "site_created", "site", site.id, site_id=site.id, now=now, detail={
        "timezone": site.timezone, "booths": counts,
        "admin_id": created.admin.id if created.admin else None,
        "added_admin_id": add_admin.id if add_admin is not None else None})
    db.session.commit()
    return created


def update_site(site: Site, changes: dict, *, actor: Actor, now: datetime) -> Site:
    """Rename a site or set its time zone (``changes``: any of ``name``, ``timezone``),
    audited as ``site_updated`` with each setting's old and new value; its screens re-read
    their settings. Changing nothing changes nothing.

    :raises Invalid: nothing to change, an empty or long name, an unknown time zone.
    """
    if not changes:
        raise Invalid("Nothing to change: give a name or a time zone.")
    checks = {"name": lambda: _name(changes["name"]),
              "timezone": lambda: _timezone(changes["timezone"])}
    values = _checked({field: check for field, check in checks.items() if field in changes})
    changed = {}
    for field, value in values.items():
        if getattr(site, field) != value:
            changed[field] = {"from": getattr(site, field), "to": value}
            setattr(site, field, value)
    if changed:
        record(actor, "site_updated", "site", site.id, site_id=site.id, now=now,
               detail=changed)
        live.announce(site.id, "settings")
    db.session.commit()
    return site


def get_site(site_id: int) -> Site:
    """:raises NotFound: no such site."""
    site = db.session.get(Site, site_id)
    if site is None:
        raise NotFound("No such site.")
    return site


def site_by_slug(slug: str) -> Site:
    """:raises NotFound: no such site."""
    site = db.session.execute(db.select(Site).filter_by(slug=slug)).scalar_one_or_none()
    if site is None:
        raise NotFound("No such site.")
    return site


def all_sites() -> list[Site]:
    """Every site, by name: what an organisation admin's ``listSites`` answers."""
    return list(db.session.execute(db.select(Site).order_by(Site.name, Site.id)).scalars())


def site_rows() -> list[SiteRow]:
    """Every site by name with its booths in use by kind and its active staff."""
    booths = {}
    for site_id, kind, count in db.session.execute(
            db.select(Booth.site_id, Booth.kind, db.func.count())
            .where(Booth.retired_at.is_(None)).group_by(Booth.site_id, Booth.kind)):
        booths[(site_id, kind)] = count
    staff = dict(db.session.execute(
        db.select(StaffRole.site_id, db.func.count(db.distinct(StaffRole.staff_id)))
        .join(Staff, Staff.id == StaffRole.staff_id).where(Staff.active.is_(True))
        .group_by(StaffRole.site_id)).all())
    return [SiteRow(site, booths.get((site.id, BoothKind.INJECTION.value), 0),
                    booths.get((site.id, BoothKind.INHALATION.value), 0), staff.get(site.id, 0))
            for site in all_sites()]


# --- Organisation admins ----------------------------------------------------------------------


def org_admins() -> list[Staff]:
    """Everyone holding the flag, active people first, by name."""
    return list(db.session.execute(
        db.select(Staff).where(Staff.org_admin.is_(True))
        .order_by(Staff.active.desc(), Staff.display_name, Staff.id)).scalars())


def grant_org_admin(staff: Staff, *, actor: Actor, now: datetime) -> Staff:
    """Make an active person organisation admin. Granting it again changes nothing.

    :raises Conflict: the person is deactivated.
    """
    if not staff.active:
        message = f"{staff.display_name} is deactivated: reactivate them first."
        raise Conflict(message, {"username": [message]})
    if not staff.org_admin:
        staff.org_admin = True
        record(actor, "org_admin_granted", "staff", staff.id, now=now)
    db.session.commit()
    return staff


def remove_org_admin(staff: Staff, *, actor: Actor, now: datetime) -> Staff:
    """Take the flag from another person; someone without it changes nothing. Their open
    pages lose the organisation's pages at their next request (every request checks the
    flag afresh); their roles at sites stay.

    :raises Conflict: the actor's own flag, or the last active organisation admin's.
    """
    if not staff.org_admin:
        return staff
    if actor.staff_id == staff.id:
        raise Conflict("You cannot take away your own organisation admin flag: ask another "
                       "organisation admin.", {"org_admin": ["Not your own."]})
    auth.check_org_admin_stays(staff)
    staff.org_admin = False
    record(actor, "org_admin_removed", "staff", staff.id, now=now)
    db.session.commit()
    return staff


def staff_by_username(username: str) -> Staff:
    """:raises NotFound: nobody has that username (under ``username``)."""
    staff = db.session.execute(db.select(Staff).filter_by(
        username=(username or "").strip().lower())).scalar_one_or_none()
    if staff is None:
        message = f"Nobody has the username {username!r}."
        raise NotFound(message, {"username": [message]})
    return staff


def give_site_role(site: Site, staff: Staff, role: str, *, actor: Actor,
                   now: datetime) -> Staff:
    """Add ``role`` at ``site`` to someone who already has an account, keeping what they
    hold there: a supervisor of several sites, an admin moving between them. Audited as
    ``role_added``; the site's screens let them in on their next request.

    :raises Conflict: the person is deactivated, or already holds that role there.
    """
    if not staff.active:
        message = f"{staff.display_name}'s account is deactivated: reactivate it first."
        raise Conflict(message, {"username": [message]})
    held = staff.roles_at(site.id)
    if role in held:
        message = f"{staff.display_name} is already {role} at {site.name}."
        raise Conflict(message, {"role": [message]})
    auth.set_site_roles(staff, site, sorted({*held, role}), actor=actor, now=now)
    return staff


def site_staff(site: Site) -> list[Staff]:
    """Everyone holding a role at ``site``, by name."""
    return list(db.session.execute(
        db.select(Staff).join(StaffRole).where(StaffRole.site_id == site.id).distinct()
        .order_by(Staff.display_name)).scalars())


def get_staff(staff_id: int) -> Staff:
    """:raises NotFound: no such person."""
    staff = db.session.get(Staff, staff_id)
    if staff is None:
        raise NotFound(f"There is no staff member with id {staff_id}.")
    return staff
