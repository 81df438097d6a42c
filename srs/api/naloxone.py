"""Naloxone stock by lot and expiry, and take-home kits.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.naloxone import kits, service
from srs.naloxone.schemas import (
    AddKitsSchema,
    IssueKitSchema,
    KitListSchema,
    KitUseInputSchema,
    KitUseSchema,
    RecallInputSchema,
    RecallSchema,
    ReceiveStockSchema,
    StockSchema,
    TakeHomeKitInputSchema,
    TakeHomeKitSchema,
)
from srs.sites.service import get_site

blp = Blueprint("api_naloxone", __name__, url_prefix="/api/v1",
                description="Naloxone stock and take-home kits")
STOCK = (Role.SUPERVISOR, Role.ADMIN)
# Nurses hand kits out on the floor and hear how they were used; the register's stock and
# recalls are the supervisor's.
KITS = (Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
CONFLICT = {409: {"description": "The kit or lot is not in a state that allows it."}}


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


@blp.get("/sites/<int:site_id>/naloxone/kits")
@blp.doc(operationId="listNaloxoneKits", security=SECURITY)
@token_required(*KITS)
@blp.response(200, KitListSchema)
def list_naloxone_kits(site_id):
    """Take-home kits by serial: lot, expiry, state, who holds each and whether they had a
    kit since."""
    return {"kits": kits.list_kits(get_site(site_id), now=utcnow())}


@blp.post("/sites/<int:site_id>/naloxone/kits")
@blp.doc(operationId="addNaloxoneKits", security=SECURITY, **IDEMPOTENCY)
@token_required(*STOCK)
@idempotent
@blp.arguments(AddKitsSchema)
@blp.response(201, KitListSchema)
def add_naloxone_kits(data, site_id):
    """Kits made from a lot, by serial or a range of serials (K-1001 to K-1020); 422 for a
    serial already in the register, a recalled lot or one with fewer units on hand than
    kits (each kit takes its unit out of the lot)."""
    site = get_site(site_id)
    made = kits.add_kits(site, data, actor=api_actor(), now=utcnow())
    ids = {k.id for k in made}
    return {"kits": [row for row in kits.list_kits(site, now=utcnow()) if row.id in ids]}


@blp.post("/sites/<int:site_id>/naloxone/kits/issue")
@blp.doc(operationId="issueNaloxoneKit", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*KITS)
@idempotent
@blp.arguments(IssueKitSchema)
@blp.response(201, TakeHomeKitSchema)
def issue_naloxone_kit(data, site_id):
    """A kit given to a client code or a trainee: by serial, or (the short form, as
    recordTakeHomeKit) a number of kits of a form; first or a replacement with its reason.
    409 for a serial kit not in stock, recalled or expired."""
    return service.issue_kit(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/naloxone/kits/<int:kit_id>/use")
@blp.doc(operationId="reportKitUse", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*KITS)
@idempotent
@blp.arguments(KitUseInputSchema)
@blp.response(201, KitUseSchema)
def report_kit_use(data, site_id, kit_id):
    """A kit given out was used: day, area, doses, route, 911 called, outcome (counted in
    the monthly report). 409 for a kit never given out or already reported."""
    return kits.report_use(get_site(site_id), kit_id, data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/naloxone/lots/<int:lot_id>/recall")
@blp.doc(operationId="recallNaloxoneLot", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*STOCK)
@idempotent
@blp.arguments(RecallInputSchema)
@blp.response(201, RecallSchema)
def recall_naloxone_lot(data, site_id, lot_id):
    """Recall a lot: every kit made from it, who holds it and whether they had a kit since.
    409 for a lot already recalled."""
    site = get_site(site_id)
    kits.recall_lot(site, lot_id, reason=data["reason"], actor=api_actor(), now=utcnow())
    return kits.recall_view(site, lot_id, now=utcnow())
