"""Drug checks and drug alerts (the early-warning programme).

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask import g
from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.drugchecks import service
from srs.drugchecks.schemas import (
    DrugAlertInputSchema,
    DrugAlertSchema,
    DrugCheckInputSchema,
    DrugCheckSchema,
    RetractSchema,
)
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_drugchecks", __name__, url_prefix="/api/v1",
                description="Drug checks and drug alerts")
CHECKERS = (Role.NURSE, Role.SUPERVISOR, Role.ADMIN, Role.DRUG_CHECKER)
ALERTERS = (Role.SUPERVISOR, Role.ADMIN)
# Everyone at a site reads its published alerts; supervisors and admins also the rest.
READERS = tuple(Role)
STEP_CONFLICT = {409: {"description": "A step out of order (publishing a draft, validating "
                                      "an alert one drafted or last edited)."}}


def _alert(site_id: int, drug_alert_id: int):
    site = get_site(site_id)
    return site, service.get_alert(site, drug_alert_id)


@blp.post("/sites/<int:site_id>/drug-checks")
@blp.doc(operationId="recordDrugCheck", security=SECURITY, **IDEMPOTENCY)
@token_required(*CHECKERS)
@idempotent
@blp.arguments(DrugCheckInputSchema)
@blp.response(201, DrugCheckSchema)
def record_drug_check(data, site_id):
    """Record a sample's check: strips, FTIR components, lab status. A finding on the
    site's watch list drafts a drug alert (``drug_alert_id``)."""
    return service.record_check(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.get("/sites/<int:site_id>/drug-checks")
@blp.doc(operationId="listDrugChecks", security=SECURITY)
@token_required(*CHECKERS)
@blp.response(200, DrugCheckSchema(many=True))
def list_drug_checks(site_id):
    """The site's latest 50 checks, newest first."""
    return service.list_checks(get_site(site_id))


@blp.get("/sites/<int:site_id>/drug-alerts")
@blp.doc(operationId="listDrugAlerts", security=SECURITY)
@token_required(*READERS)
@blp.response(200, DrugAlertSchema(many=True))
def list_drug_alerts(site_id):
    """The alerts covering the site, newest first: every state for supervisors and admins,
    the published ones for everyone else."""
    site = get_site(site_id)
    if g.api_staff.roles_at(site.id) & set(ALERTERS):
        return service.alerts_for(site)
    return service.alerts_for(site, statuses=("published",))


@blp.post("/sites/<int:site_id>/drug-alerts")
@blp.doc(operationId="createDrugAlert", security=SECURITY, **IDEMPOTENCY)
@token_required(*ALERTERS)
@idempotent
@blp.arguments(DrugAlertInputSchema)
@blp.response(201, DrugAlertSchema)
def create_drug_alert(data, site_id):
    """Draft an alert or advisory by hand (a report): it needs a second person's
    validation before it can be published."""
    return service.create_alert(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/drug-alerts/<int:drug_alert_id>/validate")
@blp.doc(operationId="validateDrugAlert", security=SECURITY, responses=STEP_CONFLICT,
         **IDEMPOTENCY)
@token_required(*ALERTERS)
@idempotent
@blp.response(200, DrugAlertSchema)
def validate_drug_alert(site_id, drug_alert_id):
    """Validate a draft as the second person; 409 for the one who drafted or last edited
    it."""
    site, alert = _alert(site_id, drug_alert_id)
    return service.validate_alert(alert, site, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/drug-alerts/<int:drug_alert_id>/publish")
@blp.doc(operationId="publishDrugAlert", security=SECURITY, responses=STEP_CONFLICT,
         **IDEMPOTENCY)
@token_required(*ALERTERS)
@idempotent
@blp.response(200, DrugAlertSchema)
def publish_drug_alert(site_id, drug_alert_id):
    """Publish a validated alert: valid for its ``valid_for_days``; every site it covers
    hears the socket event ``drug_alert``. Two people sign for every published alert: the
    person who validated an alert SRS drafted (and nobody edited) is refused (409)."""
    site, alert = _alert(site_id, drug_alert_id)
    return service.publish_alert(alert, site, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/drug-alerts/<int:drug_alert_id>/retract")
@blp.doc(operationId="retractDrugAlert", security=SECURITY, responses=STEP_CONFLICT,
         **IDEMPOTENCY)
@token_required(*ALERTERS)
@idempotent
@blp.arguments(RetractSchema)
@blp.response(200, DrugAlertSchema)
def retract_drug_alert(data, site_id, drug_alert_id):
    """Withdraw an alert (published or not yet) with the reason."""
    site, alert = _alert(site_id, drug_alert_id)
    return service.retract_alert(alert, site, reason=data["reason"], actor=api_actor(),
                                 now=utcnow())
