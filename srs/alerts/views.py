"""The alarm strip: open alerts as a floor tablet or a dashboard shows them, and owning one."""

from flask import Blueprint, render_template, request
from flask_login import current_user

from srs.alerts import service
from srs.auth.access import current_actor
from srs.auth.models import DISPLAY, FLOOR, WATCHERS
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.sites.access import site_role_required

bp = Blueprint("alerts", __name__)



def _alerts(site, *, floor: bool, status: int = 200):
    return render_template("alerts/_alerts.html", site=site, alerts=service.open_alerts(site),
                           floor=floor, now=utcnow(),
                           can_acknowledge=current_user.has_role(site.id, *FLOOR)), status


@bp.get("/sites/<slug>/alerts")
@site_role_required(*WATCHERS, DISPLAY)
def alert_list(site):
    """Open alarms as a supervisor's dashboard shows them (sounding from level 2)."""
    return _alerts(site, floor=False)


@bp.get("/sites/<slug>/floor/alerts")
@site_role_required(*FLOOR)
def floor_alerts(site):
    """Open alarms as the floor tablet shows them (sounding from level 1)."""
    return _alerts(site, floor=True)


@bp.post("/sites/<slug>/alerts/<int:alert_id>/acknowledge")
@site_role_required(*FLOOR)
@idempotent
def acknowledge_alert(site, alert_id):
    """Own an alarm: it stops sounding and escalating; every screen shows who owns it."""
    service.acknowledge(service.get_alert(site, alert_id), actor=current_actor(), now=utcnow())
    return _alerts(site, floor=request.form.get("view") == "floor")
