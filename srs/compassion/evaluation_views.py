"""The club's evaluation pages: the members whose quarterly survey is due and the tablet's
survey form, and the reviewers' monthly club report with its evaluation export (counts and
program codes only, no client code)."""


from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.service import record
from srs.common import month_asked, utcnow
from srs.compassion import evaluation
from srs.compassion.evaluation_schemas import OVERDOSES_MAX, SurveyForm
from srs.compassion.models import STREET_SUPPLY
from srs.errors import DomainError, field_messages
from srs.extensions import db
from srs.forms import form_input
from srs.security import download
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("club_eval", __name__)


@template_globals(bp)
def club_survey_helpers():
    """What a member's page needs to say when their survey is due and to link it."""
    return {"CLUB_SURVEY_TAKERS": evaluation.SURVEY_TAKERS, "now_utc": utcnow,
            "club_survey_due_on": lambda member, site: evaluation.survey_due_on(
                member, site, evaluation.last_survey(member))}


def _surveys_page(site, *, saved=None):
    now = utcnow()
    return render_template("compassion/surveys_due.html", site=site,
                           due=evaluation.members_due(site, now=now),
                           today=site.local_date(now), saved=saved)


@bp.get("/sites/<slug>/club/surveys")
@site_role_required(*evaluation.SURVEY_TAKERS)
def surveys_due(site):
    """Members whose quarterly survey is due, longest overdue first, by client code."""
    saved = request.args.get("saved")
    return _surveys_page(site, saved=saved if saved and saved.isdigit() else None)


def _survey_page(site, member, status=200, **context):
    context.setdefault("form", {})
    context.setdefault("errors", {})
    last = evaluation.last_survey(member)
    return render_template(
        "compassion/survey.html", site=site, member=member, last=last,
        due_on=evaluation.survey_due_on(member, site, last), street=STREET_SUPPLY,
        street_labels=evaluation.STREET_SUPPLY_LABELS, overdoses_max=OVERDOSES_MAX,
        **context), status


@bp.get("/sites/<slug>/club/members/<int:member_id>/survey")
@site_role_required(*evaluation.SURVEY_TAKERS)
def survey_form(site, member_id):
    """The tablet's survey: three questions, each answered by a tap or a number."""
    return _survey_page(site, evaluation.get_member(site, member_id))


@bp.post("/sites/<slug>/club/members/<int:member_id>/survey")
@site_role_required(*evaluation.SURVEY_TAKERS)
def record_survey(site, member_id):
    """Save the survey; a refusal gives the form back as typed with why under each field."""
    member = evaluation.get_member(site, member_id)
    typed = form_input(request.form)
    try:
        data = SurveyForm().load(typed)
        evaluation.record_member_survey(site, member.id, data, actor=current_actor(),
                                        now=utcnow())
    except ValidationError as err:
        return _survey_page(site, member, 422, form=typed, errors=field_messages(err.messages),
                            message="Nothing was saved: answer the marked questions.")
    except DomainError as err:
        return _survey_page(site, member, err.status, form=typed, errors=err.errors,
                            message=err.message)
    return redirect(url_for("club_eval.surveys_due", slug=site.slug, saved=member.id), 303)


# --- The monthly report -------------------------------------------------------------------------


def _month(site):
    """The month asked for, else the last full month, with a note why."""
    return month_asked(request.args.get("month"), site.last_full_month(utcnow()))


@bp.get("/sites/<slug>/club/report")
@site_role_required(*evaluation.REPORT_READERS)
def report(site):
    """The club's month in counts: members, supplies, limits, linkage, surveys, overdoses
    among members against the site's other clients."""
    month, notice = _month(site)
    return render_template(
        "compassion/report.html", site=site, report=evaluation.month_report(site, month),
        notice=notice, state_labels=evaluation.STATE_LABELS,
        linkage_labels=evaluation.LINKAGE_LABELS,
        street_labels=evaluation.STREET_SUPPLY_LABELS, grams=evaluation.grams,
        monthly_link=current_user.has_role(site.id, *evaluation.REPORT_READERS))


@bp.get("/sites/<slug>/club/report/evaluation.csv")
@site_role_required(*evaluation.REPORT_READERS)
def evaluation_export(site):
    """The month's supplies by program code for an evaluation: a member number of this file
    alone, never a client code. Audited."""
    month, _notice = _month(site)
    body = evaluation.evaluation_csv(site, month)
    now = utcnow()
    record(current_actor(), "compassion_evaluation_exported", "site", site.id, site_id=site.id,
           detail={"month": f"{month:%Y-%m}", "rows": body.count("\n") - 1}, now=now)
    db.session.commit()
    return download(body, mimetype="text/csv",
                    filename=f"{site.slug}-club-evaluation-{month:%Y-%m}.csv")
