"""Naloxone training: sessions and who took part, and the refreshers coming due.

Recording a session accepts an ``Idempotency-Key`` header: a repeat returns the first answer
and records nothing twice.
"""

from datetime import datetime

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.naloxone import training
from srs.naloxone.schemas import (
    RefreshersDueSchema,
    TrainingMonthQuerySchema,
    TrainingSessionInputSchema,
    TrainingSessionListSchema,
    TrainingSessionSchema,
)
from srs.sites.service import get_site

blp = Blueprint("api_training", __name__, url_prefix="/api/v1",
                description="Naloxone training sessions and refreshers")
# A trainer is staff: whoever may give a kit may record the training that goes with it.
TRAINERS = (Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
REFRESHERS = (Role.SUPERVISOR, Role.ADMIN)


@blp.post("/sites/<int:site_id>/naloxone/training-sessions")
@blp.doc(operationId="recordTrainingSession", security=SECURITY, **IDEMPOTENCY)
@token_required(*TRAINERS)
@idempotent
@blp.arguments(TrainingSessionInputSchema)
@blp.response(201, TrainingSessionSchema)
def record_training_session(data, site_id):
    """A naloxone training session: date, place (none: at the site), trainer, curriculum and
    version, format, and each person trained, a client by ``client_code`` or someone from
    outside by ``kind`` and ``organisation``. Staff and police may be named only with
    ``named_consent`` (first and last name and badge number, all three); a named trainee
    seen before (same badge number and last name) is matched, not duplicated. A family
    member or friend needs ``at_risk_consented``. A trainee's ``kit_serial`` (a kit of the
    register in stock) is given with the training as their first kit, to the client for a
    ``client_code``, in the same transaction: a serial the register refuses, or someone who
    already holds a kit (a replacement goes through ``issueNaloxoneKit``), records nothing.
    A 422 gives a trainee's messages under ``trainees``, each saying which item and field
    ("Item 2: badge_number: ...")."""
    return training.record_session(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.get("/sites/<int:site_id>/naloxone/training-sessions")
@blp.doc(operationId="listTrainingSessions", security=SECURITY)
@token_required(*TRAINERS)
@blp.arguments(TrainingMonthQuerySchema, location="query")
@blp.response(200, TrainingSessionListSchema)
def list_training_sessions(query, site_id):
    """The sessions held in ``month`` (site time), latest first, with who took part
    (audited as a read of those sessions when it shows a client's code)."""
    site = get_site(site_id)
    if query["month"]:
        month = datetime.strptime(query["month"], "%Y-%m").date()
    else:
        month = site.local_date(utcnow())
    return {"month": f"{month:%Y-%m}", "sessions": training.list_sessions(
        site, month, actor=api_actor(), now=utcnow())}


@blp.get("/sites/<int:site_id>/naloxone/refreshers")
@blp.doc(operationId="listRefreshersDue", security=SECURITY)
@token_required(*REFRESHERS)
@blp.response(200, RefreshersDueSchema)
def list_refreshers_due(site_id):
    """Police and staff trainees whose refresher is overdue or due within 30 days (the
    site's ``refresher_months`` after their last session), soonest first. Someone who did
    not consent to be named is listed without a name, and counted."""
    return training.refreshers_due([get_site(site_id)], now=utcnow())
