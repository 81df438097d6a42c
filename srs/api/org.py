"""The organisation's sites, for organisation admins: create a site with its booths and first
admin, rename it or set its time zone (``listSites`` answers them every site); and who else
is organisation admin.

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
from srs.org.schemas import (
    CreatedSiteSchema,
    OrgAdminSchema,
    OrgSiteSchema,
    SiteCreateSchema,
    SiteUpdateSchema,
)

blp = Blueprint("api_org", __name__, url_prefix="/api/v1", description="The organisation")

CONFLICT = {409: {"description": "Not one's own flag, never the last organisation admin's, "
                                 "never a deactivated person."}}


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


@blp.get("/org-admins")
@blp.doc(operationId="listOrgAdmins", security=SECURITY)
@org_admin_token_required
@blp.response(200, OrgAdminSchema(many=True))
def list_org_admins():
    """Everyone holding the organisation admin flag, active people first."""
    return service.org_admins()


@blp.put("/org-admins/<int:staff_id>")
@blp.doc(operationId="grantOrgAdmin", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@org_admin_token_required
@idempotent
@blp.response(200, OrgAdminSchema)
def grant_org_admin(staff_id):
    """Make an active person organisation admin; one who is already changes nothing."""
    return service.grant_org_admin(service.get_staff(staff_id), actor=api_actor(),
                                   now=utcnow())


@blp.delete("/org-admins/<int:staff_id>")
@blp.doc(operationId="removeOrgAdmin", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@org_admin_token_required
@idempotent
@blp.response(200, OrgAdminSchema)
def remove_org_admin(staff_id):
    """Take the flag from another person (their roles at sites stay); 409 for one's own or
    the last organisation admin's."""
    return service.remove_org_admin(service.get_staff(staff_id), actor=api_actor(),
                                    now=utcnow())
