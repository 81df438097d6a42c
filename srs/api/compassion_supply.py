"""A club's supply: tested batches received into the controlled-drug register, supplies to
active members within the site's limits, and a member's allowance.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask import g
from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.common import utcnow
from srs.compassion import supply as service
from srs.compassion.supply_schemas import (
    AllowanceSchema,
    BatchSchema,
    ReceiveBatchSchema,
    RecordSupplySchema,
    SupplySchema,
)
from srs.controlled.models import REGISTER_KEEPERS
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_compassion_supply", __name__, url_prefix="/api/v1",
                description="A compassion club's batches and supply")
REFUSED = {409: {"description": "A limit reached (``limit``: window, pickups, daily, "
                                "substance or weekly; ``remaining_mg``; ``frees_at``), a "
                                "member not active, or more than the batch holds."}}


@blp.get("/sites/<int:site_id>/club/batches")
@blp.doc(operationId="listSupplyBatches", security=SECURITY)
@token_required(*REGISTER_KEEPERS)
@blp.response(200, BatchSchema(many=True))
def list_supply_batches(site_id):
    """The site's batches, newest first, with their check's result and state."""
    return service.list_batches(get_site(site_id))


@blp.post("/sites/<int:site_id>/club/batches")
@blp.doc(operationId="receiveSupplyBatch", security=SECURITY, **IDEMPOTENCY)
@token_required(*REGISTER_KEEPERS)
@idempotent
@blp.arguments(ReceiveBatchSchema)
@blp.response(201, BatchSchema)
def receive_supply_batch(data, site_id):
    """Receive a batch (grams to 0.1 g, or tablets): it opens its own register line counted
    in mg. With a drug check it is judged at once: passed, failed (the labelled substance
    not found, or a watch-list finding) or blocked (a finding the label does not name)."""
    return service.receive_batch(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/club/members/<int:member_id>/supplies")
@blp.doc(operationId="recordSupply", security=SECURITY, responses=REFUSED, **IDEMPOTENCY)
@token_required(*REGISTER_KEEPERS)
@idempotent
@blp.arguments(RecordSupplySchema)
@blp.response(201, SupplySchema)
def record_supply(data, site_id, member_id):
    """Supply an active member from a passed or cleared batch, at cost, witnessed (the
    member joins the floor's queue) or take-home where allowed; drawn from the batch's
    register line."""
    site = get_site(site_id)
    return service.record_supply(site, member_id, data, actor=api_actor(),
                                 actor_roles=g.api_staff.roles_at(site.id), now=utcnow())


@blp.get("/sites/<int:site_id>/club/members/<int:member_id>/allowance")
@blp.doc(operationId="getSupplyAllowance", security=SECURITY)
@token_required(*REGISTER_KEEPERS)
@blp.response(200, AllowanceSchema)
def get_supply_allowance(site_id, member_id):
    """What the member may still take this week and today, pickups left, and when more
    frees up."""
    site = get_site(site_id)
    return service.allowance(site, service.get_member(site, member_id), now=utcnow())
