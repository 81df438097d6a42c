"""A site's admin pages: its wall displays (register, list, revoke)."""

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError

from srs.auth import service as auth
from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.auth.schemas import DisplayForm
from srs.common import utcnow
from srs.errors import Invalid
from srs.sites.access import site_role_required

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
