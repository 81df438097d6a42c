"""The organisation's sites, for organisation admins: create a site with its booths and first
admin, rename it or set its time zone. (``listSites`` answers them every site.)

``createSite`` takes no Idempotency-Key: a kept answer would keep the first admin's password
and PIN, and only their hashes are ever stored. Creating the same slug twice is refused
(422).
"""

from flask import g
from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, org_admin_token_required
from srs.auth.service import staff_entry
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.org import service
from srs.org.schemas import CreatedSiteSchema, OrgSiteSchema, SiteCreateSchema, SiteUpdateSchema

blp = Blueprint("api_org", __name__, url_prefix="/api/v1", description="The organisation")


@blp.post("/sites")
@blp.doc(operationId="createSite", security=SECURITY)
@org_admin_token_required
@blp.arguments(SiteCreateSchema)
@blp.response(201, CreatedSiteSchema)
def create_site(data):
    """Create a site with the default settings, its booths (B1.. injection, S1..
    inhalation) and its first admin; the answer holds that admin's first password and PIN,
    this once."""
    created = service.create_site(
        name=data["name"], slug=data["slug"], timezone=data["timezone"],
        booths=data["booths"], admin=data["admin"],
        add_admin=g.api_staff if data["add_caller_as_admin"] else None,
        actor=api_actor(), now=utcnow())
    return {"site": created.site, "admin": staff_entry(created.site.id, created.admin),
            "password": created.password, "pin": created.pin}


@blp.patch("/sites/<int:site_id>")
@blp.doc(operationId="updateSite", security=SECURITY, **IDEMPOTENCY)
@org_admin_token_required
@idempotent
@blp.arguments(SiteUpdateSchema)
@blp.response(200, OrgSiteSchema)
def update_site(changes, site_id):
    """Rename a site or set its time zone; its screens re-read their settings."""
    return service.update_site(service.get_site(site_id), changes, actor=api_actor(),
                               now=utcnow())
