"""A site's wall displays: register one (its token answered once), list them, revoke one.

``registerDisplay`` takes no Idempotency-Key: a kept answer would keep the display's
token, and only its hash is ever stored. Registering twice makes two displays; revoke the
one not in use.
"""

from flask import url_for
from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth import service
from srs.auth.models import Role
from srs.auth.schemas import DisplayCreateSchema, DisplaySchema, RegisteredDisplaySchema
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_displays", __name__, url_prefix="/api/v1", description="Wall displays")


@blp.post("/sites/<int:site_id>/displays")
@blp.doc(operationId="registerDisplay", security=SECURITY)
@token_required(Role.ADMIN)
@blp.arguments(DisplayCreateSchema)
@blp.response(201, RegisteredDisplaySchema)
def register_display(data, site_id):
    """Register a wall display; the answer holds its token and sign-in URL, this once."""
    display, token = service.register_display(get_site(site_id), data["name"],
                                              actor=api_actor(), now=utcnow())
    return {"display": display, "token": token,
            "url": url_for("auth.display_sign_in", token=token, _external=True)}


@blp.get("/sites/<int:site_id>/displays")
@blp.doc(operationId="listDisplays", security=SECURITY)
@token_required(Role.ADMIN)
@blp.response(200, DisplaySchema(many=True))
def list_displays(site_id):
    """The site's displays, those in use first (never their tokens)."""
    return service.list_displays(get_site(site_id).id)


@blp.post("/sites/<int:site_id>/displays/<int:display_id>/revoke")
@blp.doc(operationId="revokeDisplay", security=SECURITY, **IDEMPOTENCY)
@token_required(Role.ADMIN)
@idempotent
@blp.response(200, DisplaySchema)
def revoke_display(site_id, display_id):
    """Revoke a display: it is signed out and its sockets are cut at once. Revoking a
    revoked display changes nothing."""
    display = service.get_display(get_site(site_id).id, display_id)
    return service.revoke_display(display, actor=api_actor(), now=utcnow())
