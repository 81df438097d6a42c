"""Naloxone stock by lot and expiry, and take-home kits.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.naloxone import service
from srs.naloxone.schemas import (
    ReceiveStockSchema,
    StockSchema,
    TakeHomeKitInputSchema,
    TakeHomeKitSchema,
)
from srs.sites.service import get_site

blp = Blueprint("api_naloxone", __name__, url_prefix="/api/v1",
                description="Naloxone stock and take-home kits")
STOCK = (Role.SUPERVISOR, Role.ADMIN)
KITS = (Role.NURSE, Role.SUPERVISOR, Role.ADMIN)


@blp.get("/sites/<int:site_id>/naloxone")
@blp.doc(operationId="listNaloxoneStock", security=SECURITY)
@token_required(*STOCK)
@blp.response(200, StockSchema)
def list_naloxone_stock(site_id):
    """Lots by form and expiry, units on hand by form, open stock findings."""
    return service.list_stock(get_site(site_id), now=utcnow())


@blp.post("/sites/<int:site_id>/naloxone/lots")
@blp.doc(operationId="receiveNaloxoneStock", security=SECURITY, **IDEMPOTENCY)
@token_required(*STOCK)
@idempotent
@blp.arguments(ReceiveStockSchema)
@blp.response(201, StockSchema)
def receive_naloxone_stock(data, site_id):
    """Receive naloxone into a lot (a known lot number and form adds to it); 422 for an
    expiry in the past."""
    site = get_site(site_id)
    service.receive_stock(site, data, actor=api_actor(), now=utcnow())
    return service.list_stock(site, now=utcnow())


@blp.post("/sites/<int:site_id>/naloxone/take-home-kits")
@blp.doc(operationId="recordTakeHomeKit", security=SECURITY, **IDEMPOTENCY)
@token_required(*KITS)
@idempotent
@blp.arguments(TakeHomeKitInputSchema)
@blp.response(201, TakeHomeKitSchema)
def record_take_home_kit(data, site_id):
    """Kits given to a client code, by form; whether they replace a used kit and whether
    training was given (counted for the monthly report)."""
    return service.record_take_home_kit(get_site(site_id), data, actor=api_actor(), now=utcnow())
