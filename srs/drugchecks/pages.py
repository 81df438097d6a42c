"""The early warning's reach beyond the alert pages: the public bad-batch form (no
sign-in), an alert's printable poster, and the reviewers' drug-checking figures."""

from datetime import datetime

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import public
from srs.auth.models import Role
from srs.common import utcnow
from srs.drugchecks import inbound, reports, service
from srs.drugchecks.outbox_schemas import WHAT_HAPPENED_MAX, DrugReportForm
from srs.drugchecks.poster import poster_pdf, short_text
from srs.extensions import limiter
from srs.security import download
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("earlywarning", __name__)

ALERTERS = (Role.SUPERVISOR, Role.ADMIN)
REPORT_READERS = (Role.REVIEWER, Role.ADMIN, Role.SUPERVISOR)
# A poster is for everyone at the site to print; drafts only for those who publish.
POSTER_READERS = tuple(Role)
REPORT_RATE_LIMIT = "5 per hour"

# One count per address for the form and the API's submitDrugReport.
report_rate_limit = limiter.shared_limit(
    lambda: current_app.config.get("SRS_REPORT_RATE_LIMIT", REPORT_RATE_LIMIT),
    scope="drug-report", methods=["POST"])


@template_globals(bp)
def alert_reach():
    return {"alert_short_text": short_text}


# --- The public form ------------------------------------------------------------------------


def _report_page(status: int = 200, *, form=None, errors=None, message=None, sent=False):
    return render_template("drugchecks/report.html", sites=inbound.sites(), form=form or {},
                           errors=errors or {}, message=message, sent=sent,
                           what_max=WHAT_HAPPENED_MAX, today=utcnow().date()), status


@bp.route("/report-a-bad-batch", methods=["GET", "POST"])
@public
@report_rate_limit
def report_bad_batch():
    if request.method != "POST":
        return _report_page(sent=request.args.get("sent") == "1")
    form = request.form.to_dict()
    try:
        data = DrugReportForm().load(form)
    except ValidationError as err:
        return _report_page(422, form=form, errors=err.messages,
                            message="Nothing was sent yet: see the marked fields.")
    site = inbound.site_named(data.pop("site"))
    if site is None:
        return _report_page(422, form=form, errors={"site": ["Choose a site from the list."]},
                            message="Nothing was sent yet: see the marked fields.")
    inbound.submit_report(site, data, via="form", now=utcnow())
    return redirect(url_for("earlywarning.report_bad_batch", sent=1), 303)


# --- The poster -----------------------------------------------------------------------------


@bp.get("/sites/<slug>/drug-alerts/<int:drug_alert_id>/poster.pdf")
@site_role_required(*POSTER_READERS)
def poster(site, drug_alert_id):
    """A published (or ended) alert's poster for anyone at the site; a draft's, as a
    preview, for those who publish."""
    alert = service.get_alert(site, drug_alert_id)
    if alert.status in ("draft", "validated") and not current_user.has_role(site.id, *ALERTERS):
        abort(404)
    return download(poster_pdf(alert, site), mimetype="application/pdf",
                    filename=f"drug-alert-{alert.id}.pdf")


# --- The figures ----------------------------------------------------------------------------


def _month(site):
    value = request.args.get("month", "")
    try:
        month = datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        month = None
    if month is None or not 2000 <= month.year <= 2100:
        month = site.local_date(utcnow()).replace(day=1)
    return month


@bp.get("/sites/<slug>/reports/drug-checking")
@site_role_required(*REPORT_READERS)
def figures(site):
    return render_template("drugchecks/figures.html", site=site,
                           report=reports.monthly_figures(site, _month(site)))
