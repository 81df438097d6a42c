"""The organisation admin's pages: every site (create one with its booths and first admin,
rename it, set its time zone) and who is organisation admin."""

from flask import Blueprint, render_template, request
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import current_actor, org_admin_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.errors import DomainError
from srs.forms import form_input
from srs.org import service
from srs.org.schemas import OrgAdminForm, SiteEditForm, SiteForm, SiteRoleForm

bp = Blueprint("org", __name__)

DEFAULT_TIMEZONE = "America/Toronto"


def _sites_page(status: int = 200, *, form=None, errors=None, created=None):
    return render_template("org/sites.html", rows=service.site_rows(),
                           zones=service.time_zones(), form=form or {}, errors=errors or {},
                           created=created, default_zone=DEFAULT_TIMEZONE), status


def _form_errors(errors: dict) -> dict:
    """The service's field names as the form's: ``admin.username`` is ``admin_username``,
    ``booths.injection`` is ``injection_booths``."""
    flat = {key: value for key, value in errors.items() if key not in ("admin", "booths")}
    for key, value in (errors.get("admin") or {}).items():
        flat[f"admin_{key}"] = value
    for key, value in (errors.get("booths") or {}).items():
        flat[f"{key}_booths"] = value
    return flat


@bp.get("/admin/sites")
@org_admin_required
def sites():
    """Every site with its booths and staff; the form that creates one."""
    return _sites_page()


@bp.post("/admin/sites")
@org_admin_required
def create_site():
    """Create a site with its booths and first admin; show that admin's first password and
    PIN, this once."""
    typed = form_input(request.form)
    try:
        data = SiteForm().load(typed)
        created = service.create_site(
            name=data["name"], slug=data["slug"], timezone=data["timezone"],
            booths={"injection": data["injection_booths"],
                    "inhalation": data["inhalation_booths"]},
            admin={"username": data["admin_username"],
                   "display_name": data.get("admin_display_name")},
            add_admin=current_user._get_current_object() if data["add_me"] else None,
            actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _sites_page(422, form=typed, errors=err.messages)
    except DomainError as err:
        return _sites_page(err.status, form=typed, errors=_form_errors(err.errors))
    return _sites_page(created=created)


def _site_page(site, status: int = 200, *, form=None, errors=None, notice=None,
               role_form=None, role_errors=None, role_notice=None):
    return render_template("org/site.html", site=site, zones=service.zone_choices(site.timezone),
                           form=form or {"name": site.name, "timezone": site.timezone},
                           errors=errors or {}, notice=notice, people=service.site_staff(site),
                           roles=[r.value for r in Role], role_form=role_form or {},
                           role_errors=role_errors or {}, role_notice=role_notice), status


@bp.get("/admin/sites/<slug>")
@org_admin_required
def site(slug):
    """One site's name and time zone, to change."""
    return _site_page(service.site_by_slug(slug))


@bp.post("/admin/sites/<slug>")
@org_admin_required
def update_site(slug):
    """Save a site's name and time zone."""
    site = service.site_by_slug(slug)
    typed = form_input(request.form)
    try:
        data = SiteEditForm().load(typed)
        service.update_site(site, data, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _site_page(site, 422, form=typed, errors=err.messages)
    except DomainError as err:
        return _site_page(site, err.status, form=typed, errors=err.errors)
    return _site_page(site, notice=f"{site.name} is saved.")


@bp.post("/admin/sites/<slug>/roles")
@org_admin_required
def give_site_role(slug):
    """Give someone with an account elsewhere a role at this site (by username)."""
    site = service.site_by_slug(slug)
    typed = form_input(request.form)
    try:
        data = SiteRoleForm().load(typed)
        person = service.staff_by_username(data["username"])
        service.give_site_role(site, person, data["role"], actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _site_page(site, 422, role_form=typed, role_errors=err.messages)
    except DomainError as err:
        return _site_page(site, err.status, role_form=typed, role_errors=err.errors)
    return _site_page(site, role_notice=f"{person.display_name} is now {data['role']} at "
                                        f"{site.name}.")


def _admins_page(status: int = 200, *, form=None, errors=None, notice=None,
                 row_errors=None):
    return render_template("org/admins.html", admins=service.org_admins(), form=form or {},
                           errors=errors or {}, notice=notice,
                           row_errors=row_errors or {}), status


@bp.get("/admin/org-admins")
@org_admin_required
def org_admins():
    """Who is organisation admin; make someone one, or take it from them."""
    return _admins_page()


@bp.post("/admin/org-admins")
@org_admin_required
def grant_org_admin():
    """Make the person with this username an organisation admin."""
    typed = form_input(request.form)
    try:
        person = service.staff_by_username(OrgAdminForm().load(typed)["username"])
        service.grant_org_admin(person, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _admins_page(422, form=typed, errors=err.messages)
    except DomainError as err:
        return _admins_page(err.status, form=typed, errors=err.errors)
    return _admins_page(notice=f"{person.display_name} is an organisation admin.")


@bp.post("/admin/org-admins/<int:staff_id>/remove")
@org_admin_required
def remove_org_admin(staff_id):
    """Take the flag from another organisation admin (never one's own, never the last)."""
    person = service.get_staff(staff_id)
    try:
        service.remove_org_admin(person, actor=current_actor(), now=utcnow())
    except DomainError as err:
        return _admins_page(err.status, row_errors={person.id: err.message})
    return _admins_page(notice=f"{person.display_name} is no longer an organisation admin.")
