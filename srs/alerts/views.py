"""The alarm strip: open alerts as a floor tablet or a dashboard shows them, and owning one."""

from flask import Blueprint, render_template, request
from flask_login import current_user

from srs.alerts import service
from srs.auth.access import current_actor, staff_required
from srs.auth.models import FLOOR, WATCHERS
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.sites.access import site_role_required

bp = Blueprint("alerts", __name__)


@bp.app_context_processor
def alarm_strip_context():
    """``alarm_strip(site)``: what the strip under every site page's header shows."""
    return {"alarm_strip": alarm_strip, "on_call_alarms": on_call_alarms}


def on_call_alarms() -> list | None:
    """Unowned level-3 alarms of the sites where this person is the on-call supervisor;
    None when they are on call nowhere (then no page carries the banner)."""
    if not current_user.is_authenticated or getattr(current_user, "id", None) is None:
        return None
    return service.on_call_alerts(current_user.id)


def alarm_strip(site) -> dict | None:
    """The site's open alarms as this person's screen shows them, or None when they may not
    see them: floor staff hear every level and may own one, watchers from level 2."""
    if not current_user.is_authenticated:
        return None
    floor = current_user.has_role(site.id, *FLOOR)
    if not floor and not current_user.has_role(site.id, *WATCHERS):
        return None
    return {"alerts": service.open_alerts(site), "floor": floor, "now": utcnow(),
            "can_acknowledge": floor}


def _alerts(site, *, floor: bool, status: int = 200):
    return render_template("alerts/_alerts.html", site=site, alerts=service.open_alerts(site),
                           floor=floor, now=utcnow(),
                           can_acknowledge=current_user.has_role(site.id, *FLOOR)), status


@bp.get("/sites/<slug>/alerts")
@site_role_required(*WATCHERS)
def alert_list(site):
    """Open alarms as a supervisor's dashboard shows them (sounding from level 2)."""
    return _alerts(site, floor=False)


@bp.get("/sites/<slug>/floor/alerts")
@site_role_required(*FLOOR)
def floor_alerts(site):
    """Open alarms as the floor tablet shows them (sounding from level 1)."""
    return _alerts(site, floor=True)


@bp.get("/alerts/on-call")
@staff_required
def on_call_banner():
    """The on-call banner of this person's screen, whatever page it shows."""
    return render_template("alerts/_on_call.html", on_call=on_call_alarms())


@bp.post("/sites/<slug>/alerts/<int:alert_id>/acknowledge")
@site_role_required(*FLOOR)
@idempotent
def acknowledge_alert(site, alert_id):
    """Own an alarm: it stops sounding and escalating; every screen shows who owns it."""
    service.acknowledge(service.get_alert(site, alert_id), actor=current_actor(), now=utcnow())
    return _alerts(site, floor=request.form.get("view") == "floor")
