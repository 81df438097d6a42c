"""A site's staff, as its admins manage them: list them, add a person (their first password
and PIN answered once), change their name, roles or whether they may sign in, reset their
password or PIN (answered once).

``createStaff`` and ``resetStaffCredentials`` take no Idempotency-Key: a kept answer would
keep a password or PIN, and only their hashes are ever stored. Adding the same username
twice is refused (422); a second reset replaces the first.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth import service
from srs.auth.models import Role
from srs.auth.schemas import (
    StaffCreateSchema,
    StaffResetSchema,
    StaffSchema,
    StaffUpdateSchema,
    StaffWithSecretsSchema,
)
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.sites import service as sites
from srs.sites.service import get_site

blp = Blueprint("api_staff", __name__, url_prefix="/api/v1", description="A site's staff")


@blp.get("/sites/<int:site_id>/staff")
@blp.doc(operationId="listStaff", security=SECURITY)
@token_required(Role.ADMIN)
@blp.response(200, StaffSchema(many=True))
def list_staff(site_id):
    """Everyone with a role at the site, active people first, with their roles there and
    their last sign-in."""
    return service.site_staff(get_site(site_id).id)


@blp.post("/sites/<int:site_id>/staff")
@blp.doc(operationId="createStaff", security=SECURITY)
@token_required(Role.ADMIN)
@blp.arguments(StaffCreateSchema)
@blp.response(201, StaffWithSecretsSchema)
def create_staff(data, site_id):
    """Add a person with roles at the site; the answer holds their first password and PIN,
    this once."""
    site = get_site(site_id)
    staff, password, pin = service.add_site_staff(site, **data, actor=api_actor(),
                                                  now=utcnow())
    return {"staff": service.staff_entry(site.id, staff), "password": password, "pin": pin}


@blp.patch("/sites/<int:site_id>/staff/<int:staff_id>")
@blp.doc(operationId="updateStaff", security=SECURITY, **IDEMPOTENCY)
@token_required(Role.ADMIN)
@idempotent
@blp.arguments(StaffUpdateSchema)
@blp.response(200, StaffSchema)
def update_staff(changes, site_id, staff_id):
    """Change a person's name, roles at the site, or whether they may sign in. Deactivating
    ends their logins, revokes their tokens and cuts their live connections; someone taken
    off call by it is named in ``off_call``. 409 for one's own admin role or the site's last
    admin."""
    site = get_site(site_id)
    staff = service.get_site_staff(site.id, staff_id)
    off_call = sites.update_staff(site, staff, changes, actor=api_actor(), now=utcnow())
    return service.staff_entry(site.id, staff, off_call=[c.site.id for c in off_call])


@blp.post("/sites/<int:site_id>/staff/<int:staff_id>/reset")
@blp.doc(operationId="resetStaffCredentials", security=SECURITY)
@token_required(Role.ADMIN)
@blp.arguments(StaffResetSchema)
@blp.response(200, StaffWithSecretsSchema)
def reset_staff_credentials(data, site_id, staff_id):
    """Give a person a new password, PIN or both; the answer holds them, this once."""
    site = get_site(site_id)
    staff = service.get_site_staff(site.id, staff_id)
    actor, now = api_actor(), utcnow()
    password = (service.reset_password(staff, site_id=site.id, actor=actor, now=now)
                if data["password"] else None)
    pin = service.reset_pin(staff, site_id=site.id, actor=actor, now=now) if data["pin"] else None
    return {"staff": service.staff_entry(site.id, staff), "password": password, "pin": pin}
