"""A site's retention page: how long records keep their client, what a period would change
before it is set, and setting or lifting it (site admins). The nightly run is
``srs.clients.retention``; the setting is the one the settings API changes, audited the same."""

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError, fields, validate

from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.clients.retention import COUNT_LABELS, COUNTS, retention_preview
from srs.common import utcnow
from srs.forms import Form
from srs.sites import service as sites
from srs.sites.access import site_role_required
from srs.sites.models import RETENTION_MAX_DAYS, RETENTION_MIN_DAYS, RETENTION_RANGE

bp = Blueprint("retention", __name__)


class RetentionForm(Form):
    """Days to keep, typed; ``confirmed`` once the admin has seen what they change."""

    strip_text = True
    optional = ("retention_days",)  # left blank: asked for, not "not a number"
    retention_days = fields.Integer(
        required=True, validate=validate.Range(min=RETENTION_MIN_DAYS, max=RETENTION_MAX_DAYS,
                                               error=RETENTION_RANGE),
        error_messages={"required": "Give a number of days.",
                        "invalid": "Give a whole number of days, e.g. 730."})
    confirmed = fields.Boolean(load_default=False)


def _page(site, status: int = 200, *, preview=None, form=None, errors=None, confirm=False):
    return render_template(
        "clients/retention.html", site=site, preview=preview, form=form or {},
        errors=errors or {}, confirm=confirm, counts=COUNTS, labels=COUNT_LABELS,
        minimum=RETENTION_MIN_DAYS, maximum=RETENTION_MAX_DAYS), status


@bp.get("/sites/<slug>/admin/retention")
@site_role_required(Role.ADMIN)
def page(site):
    """The period in force and, for the days typed (or the period in force), what the next
    run would change; typed days other than the period in force come with the confirmation
    that sets them."""
    if request.args.get("retention_days") is None:
        days = site.retention_days
        preview = retention_preview(site, days, utcnow()) if days is not None else None
        return _page(site, preview=preview, form={"retention_days": days or ""})
    try:
        data = RetentionForm().load(request.args)
    except ValidationError as err:
        return _page(site, 422, form=request.args, errors=err.messages)
    days = data["retention_days"]
    return _page(site, preview=retention_preview(site, days, utcnow()), form=request.args,
                 confirm=days != site.retention_days)


@bp.post("/sites/<slug>/admin/retention")
@site_role_required(Role.ADMIN)
def save(site):
    """Set the period: first the confirmation stating what it changes, then, confirmed, the
    setting (audited as a settings change)."""
    try:
        data = RetentionForm().load(request.form)
    except ValidationError as err:
        return _page(site, 422, form=request.form, errors=err.messages)
    days = data["retention_days"]
    if not data["confirmed"]:
        return _page(site, preview=retention_preview(site, days, utcnow()),
                     form=request.form, confirm=True)
    sites.update_settings(site, {"retention_days": days}, actor=current_actor(),
                          now=utcnow())
    return redirect(url_for("retention.page", slug=site.slug), 303)


@bp.post("/sites/<slug>/admin/retention/off")
@site_role_required(Role.ADMIN)
def turn_off(site):
    """Keep everything from now on; records already retired stay so."""
    sites.update_settings(site, {"retention_days": None}, actor=current_actor(), now=utcnow())
    return redirect(url_for("retention.page", slug=site.slug), 303)
