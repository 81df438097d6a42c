"""Booth housekeeping."""

from flask import g, request
from flask_smorest import Blueprint

from srs.api.access import SECURITY, token_required
from srs.auth.models import Role
from srs.auth.service import Actor
from srs.booths import service
from srs.booths.schemas import BoothSchema, OutOfServiceSchema
from srs.common import utcnow
from srs.sites.service import get_site

blp = Blueprint("api_booths", __name__, url_prefix="/api/v1", description="Booths")


@blp.put("/sites/<int:site_id>/booths/<int:booth_id>/out-of-service")
@blp.doc(operationId="setBoothOutOfService", security=SECURITY)
@token_required(Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
@blp.arguments(OutOfServiceSchema)
@blp.response(200, BoothSchema)
def set_booth_out_of_service(data, site_id, booth_id):
    """Take a booth out of service with a reason, or put it back with ``reason: null``."""
    booth = service.get_booth(get_site(site_id), booth_id)
    return service.set_booth_out_of_service(
        booth, reason=data["reason"], actor=Actor.of(g.api_staff, request.remote_addr),
        now=utcnow())
