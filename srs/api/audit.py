"""The audit trail of a site, read: ``listAuditEvents``."""

from flask_smorest import Blueprint

from srs.api.access import SECURITY, api_actor, token_required
from srs.audit import service
from srs.audit.schemas import AuditPageSchema, AuditQuerySchema
from srs.auth.models import Role
from srs.common import utcnow
from srs.errors import Invalid
from srs.sites.service import get_site

blp = Blueprint("api_audit", __name__, url_prefix="/api/v1", description="The audit trail")


@blp.get("/sites/<int:site_id>/audit-events")
@blp.doc(operationId="listAuditEvents", security=SECURITY)
@token_required(Role.ADMIN, Role.SUPERVISOR)
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditPageSchema)
def list_audit_events(query, site_id):
    """Who did or saw what at the site, newest first, filtered, a page at a time.

    With ``client``, what concerns that client's record; that read is itself audited. Follow
    ``older`` (as ``before``) and ``newer`` (as ``after``) to turn pages. 422 names a client
    code the site does not know."""
    site = get_site(site_id)
    filters, missing = service.filters_from(site, query)
    if missing:
        raise Invalid(missing, {"client": [missing]})
    page = service.read_events(site, filters, actor=api_actor(), now=utcnow(),
                               before=query.get("before"), after=query.get("after"),
                               per_page=query["per_page"])
    return {"items": service.rows_of(site, page.events), "newer": page.newer,
            "older": page.older}
