"""The compassion club's evaluation: a member's quarterly survey, the members whose survey is
due, and the club's monthly report (counts only, no client code).

The survey accepts an ``Idempotency-Key`` header: a repeat returns the first answer and
records nothing twice.
"""

from datetime import datetime

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.common import utcnow
from srs.compassion import evaluation
from srs.compassion.evaluation_schemas import (
    ClubReportSchema,
    SurveyInputSchema,
    SurveySchema,
    SurveysDueSchema,
)
from srs.idempotency import idempotent
from srs.incidents.schemas import MonthQuerySchema
from srs.sites.service import get_site

blp = Blueprint("api_compassion_eval", __name__, url_prefix="/api/v1",
                description="Compassion club: member surveys and the monthly report")
NOT_A_MEMBER = {409: {"description": "The person is an applicant or their membership ended: "
                                     "only a member is surveyed."}}


@blp.post("/sites/<int:site_id>/club/members/<int:member_id>/surveys")
@blp.doc(operationId="recordMemberSurvey", security=SECURITY, responses=NOT_A_MEMBER,
         **IDEMPOTENCY)
@token_required(*evaluation.SURVEY_TAKERS)
@idempotent
@blp.arguments(SurveyInputSchema)
@blp.response(201, SurveySchema)
def record_member_survey(data, site_id, member_id):
    """Record a member's quarterly check-in (DULF's questions): overdoses since the last one,
    street supply (none, less, same, more) and treatment contact. The next one comes due the
    site's ``compassion_survey_days`` later."""
    return evaluation.record_member_survey(get_site(site_id), member_id, data,
                                           actor=api_actor(), now=utcnow())


@blp.get("/sites/<int:site_id>/club/surveys/due")
@blp.doc(operationId="listSurveysDue", security=SECURITY)
@token_required(*evaluation.SURVEY_TAKERS)
@blp.response(200, SurveysDueSchema)
def list_surveys_due(site_id):
    """Active and suspended members whose survey is due today or earlier (site time): the
    site's survey days after their last survey, or after they became active."""
    site = get_site(site_id)
    now = utcnow()
    return {"day": site.local_date(now), "survey_days": site.compassion_survey_days,
            "due": evaluation.members_due(site, now=now)}


@blp.get("/sites/<int:site_id>/club/report")
@blp.doc(operationId="getClubReport", security=SECURITY)
@token_required(*evaluation.REPORT_READERS)
@blp.arguments(MonthQuerySchema, location="query")
@blp.response(200, ClubReportSchema)
def get_club_report(query, site_id):
    """The club's figures for ``month`` (YYYY-MM, site time; the last full month if left
    out): members by state at the month's end, supplies and grams by substance, limits
    reached, linkage outcomes, the surveys' answers, and overdoses among members against the
    site's other clients per 1,000 visits. Counts only."""
    site = get_site(site_id)
    if query["month"]:
        month = datetime.strptime(query["month"], "%Y-%m").date()
    else:
        month = site.last_full_month(utcnow())
    return evaluation.month_report(site, month)
