"""Overdose responses: the console's record.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.api.booths import CONFLICT
from srs.auth.models import FLOOR, Role
from srs.booths.service import get_visit
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.overdose import service
from srs.overdose.schemas import (
    CloseResponseSchema,
    InterventionInputSchema,
    InterventionSchema,
    ResponseSchema,
    StartResponseSchema,
)
from srs.sites.service import get_site

blp = Blueprint("api_overdose", __name__, url_prefix="/api/v1", description="Overdose response")
READERS = (Role.NURSE, Role.SUPERVISOR, Role.REVIEWER, Role.ADMIN)


def _response(site_id: int, response_id: int):
    return service.get_response(get_site(site_id), response_id)


@blp.post("/sites/<int:site_id>/overdose-responses")
@blp.doc(operationId="startOverdoseResponse", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(StartResponseSchema)
@blp.response(201, ResponseSchema)
def start_overdose_response(data, site_id):
    """Open an emergency for a visit (booth, after-care) or someone not checked in (a place
    from the site's list). A visit with an open response gets that one back."""
    site = get_site(site_id)
    visit = get_visit(site, data["visit_id"]) if data["visit_id"] is not None else None
    response, _created = service.start_response(
        site, kind=data["kind"], visit=visit, location=data["location"],
        source=data["source"], actor=api_actor(), now=utcnow())
    return response


@blp.get("/sites/<int:site_id>/overdose-responses")
@blp.doc(operationId="listOverdoseResponses", security=SECURITY)
@token_required(*READERS)
@blp.response(200, ResponseSchema(many=True))
def list_overdose_responses(site_id):
    """The site's open responses, oldest first."""
    return service.active_responses(get_site(site_id))


@blp.get("/sites/<int:site_id>/overdose-responses/<int:response_id>")
@blp.doc(operationId="getOverdoseResponse", security=SECURITY)
@token_required(*READERS)
@blp.response(200, ResponseSchema)
def get_overdose_response(site_id, response_id):
    """One response: every entry, its timeline, and once closed its incident draft."""
    response = _response(site_id, response_id)
    service.audit_read(response, actor=api_actor(), now=utcnow())
    return response


@blp.post("/sites/<int:site_id>/overdose-responses/<int:response_id>/interventions")
@blp.doc(operationId="recordIntervention", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(InterventionInputSchema)
@blp.response(201, InterventionSchema)
def record_intervention(data, site_id, response_id):
    """Add a step (stimulation, breaths, oxygen, naloxone, SpO2, CPR, AED, EMS...), or
    correct one with ``amends_id`` and a reason. 409 once the response is closed (a
    correction is still accepted)."""
    return service.record_intervention(_response(site_id, response_id), data,
                                       actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/overdose-responses/<int:response_id>/close")
@blp.doc(operationId="closeOverdoseResponse", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(CloseResponseSchema)
@blp.response(200, ResponseSchema)
def close_overdose_response(data, site_id, response_id):
    """Close with an outcome; the answer carries the incident draft (``report_draft``)."""
    return service.close_response(_response(site_id, response_id), outcome=data["outcome"],
                                  note=data["note"], actor=api_actor(), now=utcnow())
