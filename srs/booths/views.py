"""The nurse's floor tablet and the board fragment every screen refreshes."""

from flask import Blueprint, render_template

from srs.auth.access import site_role_required
from srs.auth.models import Role
from srs.booths import service

bp = Blueprint("booths", __name__)


@bp.get("/sites/<slug>/floor")
@site_role_required(Role.NURSE, Role.SUPERVISOR)
def floor(site):
    return render_template("booths/floor.html", board=service.site_board(site))


@bp.get("/sites/<slug>/board")
@site_role_required(Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
def board(site):
    return render_template("booths/_board.html", board=service.site_board(site))
