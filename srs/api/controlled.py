"""The controlled-drug register: lines with their balances, receipts, witnessed waste,
two-person counts and marking a loss reported.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.common import utcnow
from srs.controlled import service
from srs.controlled.models import REGISTER_KEEPERS, REGISTER_MANAGERS
from srs.controlled.schemas import (
    CountResultSchema,
    CountSchema,
    CreateDrugSchema,
    DrugSchema,
    EntrySchema,
    LossReportedSchema,
    ReceiveSchema,
    RegisterSchema,
    WasteSchema,
)
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_controlled", __name__, url_prefix="/api/v1",
                description="The controlled-drug register")
BALANCE = {409: {"description": "More than the register's balance: it never goes below "
                                "zero."}}


@blp.get("/sites/<int:site_id>/controlled")
@blp.doc(operationId="listControlledRegister", security=SECURITY)
@token_required(*REGISTER_KEEPERS)
@blp.response(200, RegisterSchema)
def list_controlled_register(site_id):
    """Each drug and strength with its balance, latest movements and last count; losses
    found by a count and not yet reported, with the date they must be reported by."""
    return service.register(get_site(site_id), now=utcnow())


@blp.post("/sites/<int:site_id>/controlled/drugs")
@blp.doc(operationId="createControlledDrug", security=SECURITY, **IDEMPOTENCY)
@token_required(*REGISTER_MANAGERS)
@idempotent
@blp.arguments(CreateDrugSchema)
@blp.response(201, DrugSchema)
def create_controlled_drug(data, site_id):
    """Open a register line for a drug and strength (balance 0); 422 if it exists."""
    return service.create_drug(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/controlled/receipts")
@blp.doc(operationId="receiveControlledStock", security=SECURITY, **IDEMPOTENCY)
@token_required(*REGISTER_KEEPERS)
@idempotent
@blp.arguments(ReceiveSchema)
@blp.response(201, EntrySchema)
def receive_controlled_stock(data, site_id):
    """Stock received: supplier, invoice, lot, expiry, quantity; 422 for expired stock."""
    return service.receive(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/controlled/waste")
@blp.doc(operationId="recordControlledWaste", security=SECURITY, responses=BALANCE,
         **IDEMPOTENCY)
@token_required(*REGISTER_KEEPERS)
@idempotent
@blp.arguments(WasteSchema)
@blp.response(201, EntrySchema)
def record_controlled_waste(data, site_id):
    """Wasted or destroyed stock, witnessed by another staff member of the site who gives
    their PIN (422 for the caller as witness or a wrong PIN)."""
    return service.record_waste(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/controlled/counts")
@blp.doc(operationId="recordStockCount", security=SECURITY, **IDEMPOTENCY)
@token_required(*REGISTER_KEEPERS)
@idempotent
@blp.arguments(CountSchema)
@blp.response(201, CountResultSchema)
def record_stock_count(data, site_id):
    """A shift's count of one line by two staff, each with their PIN. A difference corrects
    the balance, drafts an incident report and starts the 10-day loss-report clock."""
    return service.record_count(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/controlled/counts/<int:count_id>/reported")
@blp.doc(operationId="markControlledLossReported", security=SECURITY, responses={
    409: {"description": "The count matched, or its loss is already reported."}},
    **IDEMPOTENCY)
@token_required(*REGISTER_MANAGERS)
@idempotent
@blp.arguments(LossReportedSchema)
@blp.response(200, CountResultSchema)
def mark_controlled_loss_reported(data, site_id, count_id):
    """The loss a count found was reported to the regulator (its reference); the day-7
    alarm stops."""
    return service.mark_loss_reported(get_site(site_id), count_id, data, actor=api_actor(),
                                      now=utcnow())
