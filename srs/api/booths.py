"""The floor: check-in, booths, consumption, after-care, discharge, housekeeping; the
site's booths as its admin keeps them.

Every state-changing operation accepts an ``Idempotency-Key`` header: a
repeat returns the first answer and records nothing twice.
"""

import functools

from flask import g
from flask_smorest import Blueprint
from sqlalchemy import bindparam, inspect
from sqlalchemy.orm import joinedload

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import FLOOR, Role
from srs.booths import admin, service
from srs.booths.models import Visit
from srs.booths.schemas import (
    AssignBoothSchema,
    BoothChangeSchema,
    BoothSchema,
    CheckInSchema,
    ConsumptionSchema,
    DischargeSchema,
    NewBoothSchema,
    OutOfServiceSchema,
    SiteBoothSchema,
    VisitSchema,
)
from srs.common import utcnow
from srs.extensions import db
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_booths", __name__, url_prefix="/api/v1", description="The floor")
CONFLICT = {409: {"description": "The floor's state refuses it; the body says what holds it."}}


def _visit(site_id: int, visit_id: int):
    return service.get_visit(get_site(site_id), visit_id)


def _shown(visit):
    """The visit as its answer shows it: its client and consumptions read with it in one
    statement, where the answer would read each on its own. By its identity: the service's
    commit expired it, and reading ``visit.id`` would load it first."""
    return db.session.execute(_shown_statement(), {"visit_id": inspect(visit).identity[0]}
                              ).unique().scalar_one()


@functools.cache
def _shown_statement():
    """Built once: most taps answer with it."""
    return (db.select(Visit).where(Visit.id == bindparam("visit_id"))
            .options(joinedload(Visit.client), joinedload(Visit.consumptions)))


def _booth_view(booth):
    holder = service.holder_of(booth)
    return service.BoothView(booth, booth.state_with(holder), holder)


@blp.post("/sites/<int:site_id>/visits")
@blp.doc(operationId="checkInClient", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(CheckInSchema)
@blp.response(201, VisitSchema)
def check_in_client(data, site_id):
    """A client code (new or known) arrives: a visit in ``waiting``."""
    site = get_site(site_id)
    return _shown(service.check_in(site, actor=api_actor(),
                                   actor_roles=g.api_staff.roles_at(site.id), now=utcnow(),
                                   **data))


@blp.post("/sites/<int:site_id>/visits/<int:visit_id>/booth")
@blp.doc(operationId="assignBooth", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(AssignBoothSchema)
@blp.response(200, VisitSchema)
def assign_booth(data, site_id, visit_id):
    """A waiting visit goes to a booth; 409 names the booth and what holds it."""
    visit = _visit(site_id, visit_id)
    booth = service.get_booth(get_site(site_id), data["booth_id"])
    return _shown(service.assign_booth(visit, booth, actor=api_actor(), now=utcnow()))


@blp.post("/sites/<int:site_id>/visits/<int:visit_id>/consumptions")
@blp.doc(operationId="recordConsumption", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(ConsumptionSchema)
@blp.response(201, ConsumptionSchema)
def record_consumption(data, site_id, visit_id):
    """Substances, route, drug-check results, splitting or sharing, peer assistance."""
    return service.record_consumption(_visit(site_id, visit_id), data, actor=api_actor(),
                                      now=utcnow())


@blp.post("/sites/<int:site_id>/visits/<int:visit_id>/observation")
@blp.doc(operationId="startObservation", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.response(200, VisitSchema)
def start_observation(site_id, visit_id):
    """The client leaves the booth for after-care; the booth needs cleaning."""
    return _shown(service.start_observation(_visit(site_id, visit_id), actor=api_actor(),
                                            now=utcnow()))


@blp.post("/sites/<int:site_id>/visits/<int:visit_id>/discharge")
@blp.doc(operationId="dischargeVisit", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(DischargeSchema)
@blp.response(200, VisitSchema)
def discharge_visit(data, site_id, visit_id):
    """The visit ends; from the queue or straight from a booth a reason is required."""
    return _shown(service.discharge(_visit(site_id, visit_id), reason=data["reason"],
                                    actor=api_actor(), now=utcnow()))


@blp.post("/sites/<int:site_id>/booths/<int:booth_id>/clean")
@blp.doc(operationId="markBoothClean", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.response(200, BoothSchema)
def mark_booth_clean(site_id, booth_id):
    """The booth was wiped: free again."""
    booth = service.get_booth(get_site(site_id), booth_id)
    return _booth_view(service.mark_booth_clean(booth, actor=api_actor(), now=utcnow()))


@blp.put("/sites/<int:site_id>/booths/<int:booth_id>/out-of-service")
@blp.doc(operationId="setBoothOutOfService", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
@idempotent
@blp.arguments(OutOfServiceSchema)
@blp.response(200, BoothSchema)
def set_booth_out_of_service(data, site_id, booth_id):
    """Take a booth out of service with a reason, or put it back with ``reason: null``."""
    booth = service.get_booth(get_site(site_id), booth_id)
    return _booth_view(service.set_booth_out_of_service(
        booth, reason=data["reason"], actor=api_actor(), now=utcnow()))


# --- The site's booths, as its admin keeps them -----------------------------------------------


@blp.get("/sites/<int:site_id>/booths")
@blp.doc(operationId="listBooths", security=SECURITY)
@token_required(Role.ADMIN)
@blp.response(200, SiteBoothSchema(many=True))
def list_booths(site_id):
    """Every booth of the site in board order, retired ones last (admin only)."""
    return admin.list_booths(get_site(site_id))


@blp.post("/sites/<int:site_id>/booths")
@blp.doc(operationId="createBooth", security=SECURITY, **IDEMPOTENCY)
@token_required(Role.ADMIN)
@idempotent
@blp.arguments(NewBoothSchema)
@blp.response(201, SiteBoothSchema)
def create_booth(data, site_id):
    """Add a booth at the end of the board (admin only); 422 if its label is taken."""
    return _booth_view(admin.add_booth(get_site(site_id), actor=api_actor(), now=utcnow(),
                                       **data))


@blp.patch("/sites/<int:site_id>/booths/<int:booth_id>")
@blp.doc(operationId="updateBooth", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(Role.ADMIN)
@idempotent
@blp.arguments(BoothChangeSchema(partial=True))
@blp.response(200, SiteBoothSchema)
def update_booth(data, site_id, booth_id):
    """Rename a booth, change its kind, move it on the board, retire or reinstate it (admin
    only); 409 while a client is in it (kind, retiring) or once it is retired."""
    booth = service.get_booth(get_site(site_id), booth_id)
    return _booth_view(admin.update_booth(booth, data, actor=api_actor(), now=utcnow()))
