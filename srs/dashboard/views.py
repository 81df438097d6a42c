"""The home page and the supervisor's dashboard: every site's figures, board, queue and
after-care, read-only and live."""

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from srs.alerts.service import open_alerts
from srs.auth.access import any_site_role_required, staff_required
from srs.auth.models import DISPLAY, Role
from srs.booths.views import live_board
from srs.common import utcnow
from srs.jobs import scheduler_status
from srs.live import channel_status
from srs.sites import service
from srs.sites.access import site_role_required

bp = Blueprint("dashboard", __name__)

SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)


@bp.get("/")
@staff_required
def home():
    """Send a nurse with one site straight to its floor; everyone else chooses."""
    sites = service.sites_for(current_user)
    floor_sites = [s for s in sites if current_user.has_role(s.id, Role.NURSE)]
    only_nurse = all(r.role == Role.NURSE for r in current_user.roles)
    if len(floor_sites) == 1 and only_nurse:
        return redirect(url_for("booths.floor", slug=floor_sites[0].slug))
    return render_template("dashboard/home.html", sites=sites, Role=Role)


@bp.get("/supervise")
@any_site_role_required(*SUPERVISING, DISPLAY)
def supervise():
    """Each site the person supervises or administers, one section each, on one page; on a
    wall display, its site's."""
    now = utcnow()
    sites = [s for s in service.sites_for(current_user)
             if current_user.has_role(s.id, *SUPERVISING, DISPLAY)]
    return render_template("dashboard/supervise.html",
                           boards=[live_board(site) for site in sites],
                           alerts_by_site={site.id: open_alerts(site) for site in sites},
                           floor=False, **_status(now))


# How often a dashboard asks whether the scheduler runs and the live channel works.
STATUS_POLL_SECONDS = 10


def _status(now) -> dict:
    return {"scheduler": scheduler_status(now=now), "channel": channel_status(),
            "poll_seconds": STATUS_POLL_SECONDS}


@bp.get("/supervise/status")
@any_site_role_required(*SUPERVISING, DISPLAY)
def status():
    """The dashboard's warnings (no scheduler, a degraded live channel), asked in the
    background. While the channel is degraded, and once when it is back, the answer tells
    the page to re-read everything it shows: what other servers changed never came live."""
    context = _status(utcnow())
    response = make_response(render_template("dashboard/_status.html", **context))
    if "degraded" in (context["channel"], request.args.get("was")):
        response.headers["HX-Trigger"] = "srs:resync"
    return response


@bp.get("/sites/<slug>/today")
@site_role_required(*SUPERVISING, DISPLAY)
def today(site):
    """Today's figures of one site: the dashboard re-fetches it when the site changes."""
    return render_template("dashboard/_today.html", board=live_board(site))
