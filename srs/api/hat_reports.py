"""Heroin-assisted treatment's monthly figures: the reviewers' report, counts only."""

from datetime import datetime

from flask_smorest import Blueprint

from srs.api.access import SECURITY, token_required
from srs.common import utcnow
from srs.hat import reports
from srs.hat.report_schemas import HatReportSchema
from srs.incidents.schemas import MonthQuerySchema
from srs.sites.service import get_site

blp = Blueprint("api_hat_reports", __name__, url_prefix="/api/v1",
                description="Heroin-assisted treatment: the monthly report")


@blp.get("/sites/<int:site_id>/hat/report")
@blp.doc(operationId="getHatReport", security=SECURITY)
@token_required(*reports.REPORT_READERS)
@blp.arguments(MonthQuerySchema, location="query")
@blp.response(200, HatReportSchema)
def get_hat_report(query, site_id):
    """Treatment's figures for the site and ``month`` (YYYY-MM, site time; the last full
    month if left out): patients in treatment, enrolled and ended; doses given, withheld,
    declined and missed, per day with why; retention at 3, 6 and 12 months; overdoses among
    patients; each register line's balances and movements. No code and no name."""
    site = get_site(site_id)
    if query["month"]:
        month = datetime.strptime(query["month"], "%Y-%m").date()
    else:
        first = site.local_date(utcnow()).replace(day=1)
        month = reports.months_before(first, 1)
    return reports.month_report(site, month)
