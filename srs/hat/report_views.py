"""The reviewers' page of treatment's monthly figures (``srs.hat.reports``): counts only,
no code and no name. The regulator's monthly report carries the same figures."""

from datetime import date

from flask import Blueprint, render_template, request
from flask_login import current_user

from srs.auth.models import Role
from srs.common import month_asked, utcnow
from srs.hat import reports
from srs.sites.access import site_role_required

bp = Blueprint("hatreports", __name__)

MONTHLY_READERS = (Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN)


def _month(site) -> tuple[date, str | None]:
    """The month asked for, else the last full month, with a note why."""
    return month_asked(request.args.get("month"), site.last_full_month(utcnow()))


@bp.get("/sites/<slug>/hat/report")
@site_role_required(*reports.REPORT_READERS)
def report(site):
    month, notice = _month(site)
    return render_template(
        "hat/report.html", site=site, report=reports.month_report(site, month), notice=notice,
        outcome_labels=reports.OUTCOME_LABELS,
        monthly_link=current_user.has_role(site.id, *MONTHLY_READERS))
