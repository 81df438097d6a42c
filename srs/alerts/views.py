"""The alarm strip: open alerts as a floor tablet or a dashboard shows them, and owning one;
on a locked tablet, the site's open alarms and taking one through the PIN step."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from srs import signals
from srs.alerts import service
from srs.auth.access import current_actor, pin_rate_limit, staff_required
from srs.auth.models import DISPLAY, FLOOR, WATCHERS
from srs.auth.service import Actor
from srs.auth.views import pin_step, safe_next
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("alerts", __name__)


@template_globals(bp)
def alarm_strip_context():
    """``alarm_strip(site)``: what the strip under every site page's header shows."""
    return {"alarm_strip": alarm_strip, "on_call_alarms": on_call_alarms,
            "strip_notices": strip_notices, "alarm_place": alarm_place}


def alarm_place(alert) -> str | None:
    """Where an alarm that names no booth is (``signals.alarm_place``): an emergency in
    after-care or in the washroom is found by its place."""
    if alert.booth_id is not None:
        return None
    return signals.first_answer(signals.alarm_place.send(alert))


def strip_notices(site, now) -> list[dict]:
    """What other packages show in a site's strip beside its alarms (``signals.alarm_strip``:
    a published drug alert), each naming the partial that renders it."""
    return [notice for _receiver, notices in signals.alarm_strip.send(site, now=now)
            for notice in notices or ()]


def on_call_alarms() -> list | None:
    """Unowned level-3 alarms of the sites where this person is the on-call supervisor;
    None when they are on call nowhere (then no page carries the banner)."""
    if not current_user.is_authenticated or current_user.is_display:
        return None  # a wall display is nobody: no one is on call on it
    return service.on_call_alerts(current_user.id)


def alarm_strip(site) -> dict | None:
    """The site's open alarms as this person's screen shows them, or None when they may not
    see them: floor staff hear every level and may own one, watchers from level 2."""
    if not current_user.is_authenticated or current_user.is_display:
        return None  # a wall display shows the dashboard's own alarm lists
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
@site_role_required(*WATCHERS, DISPLAY)
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


# --- On a locked tablet -----------------------------------------------------------------------


@bp.get("/sites/<slug>/lock/alerts")
@site_role_required(*FLOOR)
def lock_alerts(site):
    """The site's open alarms as a locked tablet shows them (codes and handles only), each
    unowned one with "I'm on it", which asks who is taking it. Polled: a locked screen has
    no socket."""
    return render_template("auth/_lock_alerts.html", site=site, alerts=service.open_alerts(site),
                           now=utcnow(), next=safe_next(request.args.get("next")),
                           picked=request.args.get("alert", type=int))


@bp.post("/sites/<slug>/lock/alerts/<int:alert_id>/acknowledge")
@site_role_required(*FLOOR)
@pin_rate_limit
def acknowledge_at_lock(site, alert_id):
    """Take an alarm from a locked tablet: the person taps their name and gives their PIN
    (the lock screen's PIN step, so the acknowledgement carries a person), is signed in on
    the tablet, and owns the alarm. Someone having taken it first is no refusal: the floor
    they land on shows who."""
    alert = service.get_alert(site, alert_id)
    login_session = pin_step(site=site, alert_id=alert.id)
    next_url = safe_next(request.form.get("next")) or url_for("booths.floor", slug=site.slug)
    try:
        service.acknowledge(alert, actor=Actor.of(login_session.staff, request.remote_addr),
                            now=utcnow())
    except service.AlertConflict:
        pass
    return redirect(next_url)
