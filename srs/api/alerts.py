"""Checks on clients and the alerts that due times raise.

``recordObservationCheck`` moves a visit's next check; ``listAlerts`` gives a
site's open alerts, most urgent first; ``acknowledgeAlert`` makes the caller
the owner (409 naming the owner if someone was first).
"""

from flask_smorest import Blueprint

from srs.alerts import service as alerts
from srs.alerts.schemas import AlertSchema
from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import FLOOR
from srs.booths import checks, service
from srs.booths.schemas import CheckSchema
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_alerts", __name__, url_prefix="/api/v1", description="Checks and alerts")
CONFLICT = {409: {"description": "The visit or alert is not in a state that allows it."}}


@blp.post("/sites/<int:site_id>/visits/<int:visit_id>/checks")
@blp.doc(operationId="recordObservationCheck", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(CheckSchema)
@blp.response(201, CheckSchema)
def record_observation_check(data, site_id, visit_id):
    """A check on a client in a booth or in after-care: ok, drowsy or unresponsive."""
    visit = service.get_visit(get_site(site_id), visit_id)
    return checks.record_check(visit, data, actor=api_actor(), now=utcnow())


@blp.get("/sites/<int:site_id>/alerts")
@blp.doc(operationId="listAlerts", security=SECURITY)
@token_required(*FLOOR)
@blp.response(200, AlertSchema(many=True))
def list_alerts(site_id):
    """The site's open alerts, unowned and most urgent first."""
    return alerts.open_alerts(get_site(site_id))


@blp.post("/sites/<int:site_id>/alerts/<int:alert_id>/acknowledge")
@blp.doc(operationId="acknowledgeAlert", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.response(200, AlertSchema)
def acknowledge_alert(site_id, alert_id):
    """Own an alert: escalation stops; every screen shows who owns it."""
    alert = alerts.get_alert(get_site(site_id), alert_id)
    return alerts.acknowledge(alert, actor=api_actor(), now=utcnow())
