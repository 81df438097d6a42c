"""The home page and the supervisor's dashboard shell."""

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from srs.auth.access import any_site_role_required, staff_required
from srs.auth.models import Role
from srs.booths import service as booths
from srs.common import utcnow
from srs.jobs import scheduler_status
from srs.sites import service

bp = Blueprint("sites", __name__)


@bp.get("/")
@staff_required
def home():
    """Send a nurse with one site straight to its floor; everyone else chooses."""
    sites = service.sites_for(current_user)
    floor_sites = [s for s in sites if current_user.has_role(s.id, Role.NURSE)]
    only_nurse = all(r.role == Role.NURSE for r in current_user.roles)
    if len(floor_sites) == 1 and only_nurse:
        return redirect(url_for("booths.floor", slug=floor_sites[0].slug))
    return render_template("sites/home.html", sites=sites, Role=Role)


@bp.get("/supervise")
@any_site_role_required(Role.SUPERVISOR, Role.ADMIN)
def supervise():
    sites = [s for s in service.sites_for(current_user)
             if current_user.has_role(s.id, Role.SUPERVISOR, Role.ADMIN)]
    boards = [booths.site_board(site) for site in sites]
    return render_template("sites/supervise.html", boards=boards,
                           scheduler=scheduler_status(now=utcnow()))
