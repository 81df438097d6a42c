"""A site's admin pages: its wall displays (register, list, revoke), its staff (add, reset
a password or PIN, change roles, deactivate, reactivate) and its settings."""

import functools
import zoneinfo

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError

from srs.auth import service as auth
from srs.auth.access import current_actor
from srs.auth.models import Role, Staff
from srs.auth.schemas import ROLE_CHOICES, DisplayForm, StaffForm, StaffRolesForm
from srs.common import utcnow
from srs.errors import DomainError, Invalid
from srs.extensions import db
from srs.forms import form_input
from srs.sites import service
from srs.sites.access import site_role_required
from srs.sites.models import (
    COMPASSION_DEFAULT_ELIGIBILITY,
    COMPASSION_STEPS,
    TIMER_SETTINGS,
    TIMERS,
)
from srs.sites.schemas import DURATIONS, WAIVED_SENT, SiteSettingsForm, timer_range
from srs.sites.settings_table import (
    API_NUMBERS,
    BOOLEAN,
    BY_NAME,
    DECIMAL,
    DURATION,
    PAGE_SETTINGS,
    WHOLE,
    number,
    page_groups,
)
from srs.templating import duration

bp = Blueprint("sites", __name__)


def _displays_page(site, status: int = 200, *, registered=None, link=None, form=None,
                   errors=None):
    return render_template("sites/displays.html", site=site,
                           displays=auth.list_displays(site.id), registered=registered,
                           link=link, form=form or {}, errors=errors or {}), status


@bp.get("/sites/<slug>/displays")
@site_role_required(Role.ADMIN)
def displays(site):
    """The site's wall displays: which are in use, when each was last seen, revoking one."""
    return _displays_page(site)


@bp.post("/sites/<slug>/displays")
@site_role_required(Role.ADMIN)
def register_display(site):
    """Register a display and show its sign-in link, this once: only its hash is kept."""
    try:
        data = DisplayForm().load(request.form)
        display, token = auth.register_display(site, data["name"], actor=current_actor(),
                                               now=utcnow())
    except ValidationError as err:
        return _displays_page(site, 422, form=request.form, errors=err.messages)
    except Invalid as err:
        return _displays_page(site, err.status, form=request.form, errors=err.errors)
    link = url_for("auth.display_sign_in", token=token, _external=True)
    return _displays_page(site, registered=display, link=link)


@bp.post("/sites/<slug>/displays/<int:display_id>/revoke")
@site_role_required(Role.ADMIN)
def revoke_display(site, display_id):
    """Revoke a display: it is signed out and its live connection cut at once."""
    auth.revoke_display(auth.get_display(site.id, display_id), actor=current_actor(),
                        now=utcnow())
    return redirect(url_for("sites.displays", slug=site.slug))


# --- The site's staff -------------------------------------------------------------------------
#
# Every form posts with htmx and gets the staff panel back (``sites/_staff.html``, the page
# includes it): a refusal keeps what was typed and says why beside the field or the person,
# a new password or PIN appears this once at the top of the panel.


def _staff_panel(site, status: int = 200, *, template="sites/_staff.html", form=None,
                 errors=None, row_errors=None, created=None, secrets=None, notices=()):
    return render_template(template, site=site, entries=auth.site_staff(site.id),
                           roles=ROLE_CHOICES, form=form or {}, errors=errors or {},
                           row_errors=row_errors or {}, created=created,
                           secrets=secrets or {}, notices=list(notices)), status


def _off_call_notices(off_call) -> list[str]:
    return [f"{item.staff_name} was the on-call supervisor of {item.site.name}: nobody is on "
            f"call there now. Choose someone in the site's settings." for item in off_call]


@bp.get("/sites/<slug>/admin/staff")
@site_role_required(Role.ADMIN)
def staff(site):
    """The site's staff with their roles and last sign-in; add, reset, change, deactivate."""
    return _staff_panel(site, template="sites/staff.html")


@bp.post("/sites/<slug>/admin/staff")
@site_role_required(Role.ADMIN)
def add_staff(site):
    """Add a person and show their first password and PIN, this once."""
    typed = form_input(request.form, "roles")
    try:
        data = StaffForm().load(typed)
        person, password, pin = auth.add_site_staff(site, **data, actor=current_actor(),
                                                    now=utcnow())
    except ValidationError as err:
        return _staff_panel(site, 422, form=typed, errors=err.messages)
    except DomainError as err:
        return _staff_panel(site, err.status, form=typed, errors=err.errors)
    return _staff_panel(site, created=person,
                        secrets={"password": password, "pin": pin, "new": True})


def _flat(messages) -> list[str]:
    """Every message of a marshmallow error, however nested (a list's items by index)."""
    if isinstance(messages, dict):
        return [text for value in messages.values() for text in _flat(value)]
    if isinstance(messages, list):
        return [text for value in messages for text in _flat(value)]
    return [str(messages)]


def _person_change(site, staff_id: int, change):
    """Run ``change(person)`` on one person of the site and answer the panel, a refusal
    beside that person's row."""
    person = auth.get_site_staff(site.id, staff_id)
    try:
        outcome = change(person)
    except ValidationError as err:
        return _staff_panel(site, 422, row_errors={person.id: " ".join(_flat(err.messages))})
    except DomainError as err:
        return _staff_panel(site, err.status, row_errors={person.id: err.message})
    return _staff_panel(site, **(outcome or {}))


@bp.post("/sites/<slug>/admin/staff/<int:staff_id>/roles")
@site_role_required(Role.ADMIN)
def change_roles(site, staff_id):
    """Make the ticked roles this person's roles at the site."""
    def change(person):
        roles = StaffRolesForm().load(form_input(request.form, "roles"))["roles"]
        off_call = service.set_staff_roles(site, person, roles, actor=current_actor(),
                                           now=utcnow())
        return {"notices": [f"{person.display_name}'s roles are saved.",
                            *_off_call_notices(off_call)]}
    return _person_change(site, staff_id, change)


@bp.post("/sites/<slug>/admin/staff/<int:staff_id>/deactivate")
@site_role_required(Role.ADMIN)
def deactivate_staff(site, staff_id):
    """Deactivate a person: their logins end and their screens are cut off at once."""
    def change(person):
        off_call = service.deactivate_staff(person, actor=current_actor(), now=utcnow(),
                                            site_id=site.id)
        return {"notices": [f"{person.display_name} is deactivated: signed out everywhere.",
                            *_off_call_notices(off_call)]}
    return _person_change(site, staff_id, change)


@bp.post("/sites/<slug>/admin/staff/<int:staff_id>/reactivate")
@site_role_required(Role.ADMIN)
def reactivate_staff(site, staff_id):
    """Let a deactivated person sign in again."""
    def change(person):
        auth.reactivate_staff(person, actor=current_actor(), now=utcnow(), site_id=site.id)
        return {"notices": [f"{person.display_name} may sign in again."]}
    return _person_change(site, staff_id, change)


@bp.post("/sites/<slug>/admin/staff/<int:staff_id>/reset/<any(password, pin):what>")
@site_role_required(Role.ADMIN)
def reset_secret(site, staff_id, what):
    """Give a person a new password or PIN and show it, this once."""
    def change(person):
        reset = auth.reset_password if what == "password" else auth.reset_pin
        secret = reset(person, site_id=site.id, actor=current_actor(), now=utcnow())
        return {"created": person, "secrets": {what: secret}}
    return _person_change(site, staff_id, change)


# --- The site's settings ----------------------------------------------------------------------
#
# One form for every setting, grouped as the floor meets them; it posts with htmx and gets the
# settings panel back (``sites/_settings.html``, the page includes it): a refusal keeps what
# was typed and says why under the field, a save says what changed. Timers are typed as
# minutes and seconds (``SiteSettingsForm`` turns them into the seconds the API speaks); the
# groups, titles, help and units are the settings table's (``srs.sites.settings_table``).

# The page's groups, titles, help, units and inputs: the settings table's, in its order.
SETTING_GROUPS = page_groups()
SETTING_TITLES = {setting.name: setting.title for setting in PAGE_SETTINGS}
CLUB_LISTS = ("compassion_pickup_windows", "compassion_waived_steps", "compassion_eligibility",
              "compassion_substance_limits_mg")


@functools.cache
def _time_zones() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """IANA zones by region, the old aliases (US/Eastern, EST5EDT...) left out."""
    regions = {}
    for zone in sorted(zoneinfo.available_timezones()):
        region = zone.split("/")[0]
        if "/" in zone and region in _ZONE_REGIONS:
            regions.setdefault(region, []).append(zone)
    return (*((region, tuple(zones)) for region, zones in regions.items()), ("UTC", ("UTC",)))


_ZONE_REGIONS = {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
                 "Europe", "Indian", "Pacific"}


def _site_inputs(site) -> dict:
    """The form's inputs as the site's settings fill them."""
    inputs = {"timezone": site.timezone, "client_code_pattern": site.client_code_pattern,
              "opening_hours": site.opening_hours or "",
              "on_call_staff_id": str(site.on_call_staff_id or ""),
              "overdose_locations": list(site.overdose_locations)}
    for setting in DURATIONS:
        minutes, seconds = divmod(getattr(site, setting.name), 60)
        inputs[f"{setting.name}-min"], inputs[f"{setting.name}-sec"] = (
            str(minutes), f"{seconds:02d}")
    for setting in API_NUMBERS:
        value = getattr(site, setting.name)
        if setting.kind == BOOLEAN:
            inputs[setting.name] = "true" if value else "false"
        elif setting.kind != DURATION:
            inputs[setting.name] = "" if value is None else number(setting.on_page(value))
    inputs.update(
        compassion_pickup_windows=", ".join(site.compassion_pickup_windows or ()),
        compassion_waived_steps=list(site.compassion_waived_steps or ()),
        compassion_eligibility="\n".join(
            f"{key}: {label}" for key, label in site.compassion_eligibility or ()),
        compassion_substance_limits_mg="\n".join(
            f"{name}: {number(mg / 1000)}"
            for name, mg in (site.compassion_substance_limits_mg or {}).items()))
    return inputs


STEP_LABELS = dict(COMPASSION_STEPS)


def _club_shown(name: str, value) -> str:
    """One of the club's lists as the saved message shows it."""
    if name == "compassion_pickup_windows":
        return ", ".join(value) if value else "any time"
    if name == "compassion_waived_steps":
        return ", ".join(STEP_LABELS.get(step, step) for step in value) if value else "none"
    if name == "compassion_eligibility":
        return "; ".join(label for _key, label in value) if value else "the default list"
    return "; ".join(f"{substance} {number(mg / 1000)} g"
                     for substance, mg in value.items()) if value else "none"


def _shown(site, name: str, value) -> str:
    """A setting's value as the saved message shows it."""
    setting = BY_NAME.get(name)
    if name in TIMERS or (setting and setting.kind == DURATION):
        return duration(value)
    if name == "on_call_staff_id":
        person = db.session.get(Staff, value) if value else None
        return person.display_name if person else "nobody"
    if name == "overdose_locations":
        return ", ".join(value)
    if name in CLUB_LISTS:
        return _club_shown(name, value)
    if setting and setting.kind == BOOLEAN:
        return "yes" if value else "no"
    if setting and setting.kind in (WHOLE, DECIMAL):
        if value is None:
            return f"blank ({setting.blank})" if setting.nullable else "none"
        return f"{number(setting.on_page(value))} {setting.shown_unit}".strip()
    return "none" if value is None else str(value)


def _change_shown(site, name: str, change: dict) -> str:
    """A change as the saved message lists it: "15:00 → 20:00"; places added and removed."""
    if name == "overdose_locations":
        added = [place for place in change["to"] if place not in change["from"]]
        removed = [place for place in change["from"] if place not in change["to"]]
        said = [f"added {', '.join(added)}" if added else "",
                f"removed {', '.join(removed)}" if removed else ""]
        return "; ".join(part for part in said if part) or "put in a new order"
    return f"{_shown(site, name, change['from'])} → {_shown(site, name, change['to'])}"


def _settings_panel(site, status: int = 200, *, template="sites/_settings.html", form=None,
                    errors=None, changed=None):
    supervisors = [entry.staff for entry in auth.site_staff(site.id)
                   if entry.staff.active and Role.SUPERVISOR in entry.roles]
    placed = set(SETTING_TITLES)
    saved = None
    if changed is not None:
        saved = [(SETTING_TITLES.get(name, name), _change_shown(site, name, change))
                 for name, change in changed.items()]
    return render_template(
        template, site=site, form=form or _site_inputs(site), errors=errors or {},
        groups=SETTING_GROUPS, timer_range=timer_range,
        other_timers=[s for s in TIMER_SETTINGS if s.name not in placed],
        zones=_time_zones(), zone_names={z for _, names in _time_zones() for z in names},
        supervisors=supervisors, saved=saved, club_steps=COMPASSION_STEPS, waived_sent=WAIVED_SENT,
        default_eligibility=COMPASSION_DEFAULT_ELIGIBILITY), status


@bp.get("/sites/<slug>/admin/settings")
@site_role_required(Role.ADMIN)
def settings(site):
    """Every setting of the site: timers, alarms, after-care, naloxone, drug early warning,
    heroin-assisted treatment, the site."""
    return _settings_panel(site, template="sites/settings.html")


@bp.post("/sites/<slug>/admin/settings")
@site_role_required(Role.ADMIN)
def save_settings(site):
    """Save the settings form; answer the panel with what changed, or with the refusals."""
    typed = form_input(request.form, "overdose_locations", "compassion_waived_steps")
    try:
        changed = service.change_settings(site, SiteSettingsForm().load(typed),
                                          actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _settings_panel(site, 422, form=typed, errors=err.messages)
    except Invalid as err:
        return _settings_panel(site, err.status, form=typed, errors=err.errors)
    return _settings_panel(site, changed=changed)
