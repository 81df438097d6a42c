"""The audit trail's page and its CSV, for a site's admins and supervisors."""

from flask import Blueprint, render_template, request, stream_with_context
from marshmallow import ValidationError

from srs.audit import service
from srs.audit.schemas import AuditFilterForm
from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.common import utcnow
from srs.errors import Invalid
from srs.security import download
from srs.sites.access import site_role_required

bp = Blueprint("audit", __name__)

READERS = (Role.ADMIN, Role.SUPERVISOR)
CURSORS = ("before", "after")


def _filters(site):
    """The query's filters; raises Invalid naming each bad input."""
    try:
        data = AuditFilterForm().load(request.args.to_dict())
    except ValidationError as error:
        raise Invalid("Some filters are not valid.", {
            name: list(messages) if isinstance(messages, list) else [str(messages)]
            for name, messages in error.messages.items()}) from None
    filters, missing = service.filters_from(site, data)
    return data, filters, missing


def _query() -> dict:
    """The filters as the URL gave them, without the page cursor (for links)."""
    return {k: v for k, v in request.args.items() if k not in CURSORS and v.strip()}


@bp.get("/sites/<slug>/audit")
@site_role_required(*READERS)
def index(site):
    page, errors, missing = None, {}, None
    try:
        data, filters, missing = _filters(site)
    except Invalid as error:
        errors = error.errors
    else:
        page = service.read_events(site, filters, actor=current_actor(), now=utcnow(),
                                   before=data.get("before"), after=data.get("after"))
    return render_template(
        "audit/index.html", site=site, form=request.args, errors=errors, missing=missing,
        rows=service.rows_of(site, page.events) if page else [], page=page, query=_query(),
        staff=service.staff_choices(site), actions=service.action_choices(),
        entities=service.entity_choices()), 422 if errors else 200


@bp.get("/sites/<slug>/audit.csv")
@site_role_required(*READERS)
def export(site):
    _data, filters, _missing = _filters(site)
    now = utcnow()
    service.audit_client_read(site, filters, actor=current_actor(), now=now, export=True)
    return download(stream_with_context(service.csv_export(site, filters)), mimetype="text/csv",
                    filename=f"audit-{site.slug}-{site.local_date(now).isoformat()}.csv")
