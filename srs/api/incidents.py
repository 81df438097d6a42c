"""Incident reports, their review, and the regulator's monthly report.

State-changing operations accept an ``Idempotency-Key`` header: a repeat
returns the first answer and records nothing twice.
"""

from datetime import datetime

from flask import g
from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.errors import Forbidden
from srs.idempotency import idempotent
from srs.incidents import reports, service
from srs.incidents.schemas import (
    IncidentCreateSchema,
    IncidentPageSchema,
    IncidentSchema,
    IncidentUpdateSchema,
    ListIncidentsQuerySchema,
    ListQuerySchema,
    MonthlyReportSchema,
    MonthQuerySchema,
    ReviewSchema,
    SubmitSchema,
)
from srs.security import download
from srs.sites.service import get_site

blp = Blueprint("api_incidents", __name__, url_prefix="/api/v1",
                description="Incident reports, review and the monthly report")
ANY_ROLE = (Role.NURSE, Role.SUPERVISOR, Role.REVIEWER, Role.ADMIN)
REVIEWERS = (Role.REVIEWER, Role.ADMIN)
REPORT_READERS = (Role.REVIEWER, Role.ADMIN, Role.SUPERVISOR)
CONFLICT = {409: {"description": "The report's stage refuses it; the body says which stage."}}


def _roles(site) -> set[str]:
    return g.api_staff.roles_at(site.id)


@blp.post("/sites/<int:site_id>/incidents")
@blp.doc(operationId="createIncident", security=SECURITY, **IDEMPOTENCY)
@token_required(*ANY_ROLE)
@idempotent
@blp.arguments(IncidentCreateSchema)
@blp.response(201, IncidentSchema)
def create_incident(data, site_id):
    """Start a draft report; any field may still be missing."""
    return service.create_incident(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.patch("/sites/<int:site_id>/incidents/<int:incident_id>")
@blp.doc(operationId="updateIncident", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*ANY_ROLE)
@idempotent
@blp.arguments(IncidentUpdateSchema)
@blp.response(200, IncidentSchema)
def update_incident(data, site_id, incident_id):
    """Change a draft (its reporter), or amend a submitted report with ``amendment_reason``."""
    site = get_site(site_id)
    incident = service.get_incident(site, incident_id)
    reason = data.pop("amendment_reason", None)
    return service.update_incident(incident, data, actor=api_actor(), roles=_roles(site),
                                   now=utcnow(), amendment_reason=reason)


@blp.post("/sites/<int:site_id>/incidents/<int:incident_id>/submit")
@blp.doc(operationId="submitIncident", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*ANY_ROLE)
@idempotent
@blp.arguments(SubmitSchema)
@blp.response(200, IncidentSchema)
def submit_incident(data, site_id, incident_id):
    """Send a complete draft for review; 422 names text that may identify someone."""
    site = get_site(site_id)
    return service.submit_incident(service.get_incident(site, incident_id), actor=api_actor(),
                                   now=utcnow(), identifiers_checked=data["identifiers_checked"])


@blp.post("/sites/<int:site_id>/incidents/<int:incident_id>/review")
@blp.doc(operationId="reviewIncident", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(Role.REVIEWER)
@idempotent
@blp.arguments(ReviewSchema)
@blp.response(200, IncidentSchema)
def review_incident(data, site_id, incident_id):
    """Factors, actions, lessons, feedback, and a decision: start_review, request_approval,
    return or approve (not one's own report)."""
    site = get_site(site_id)
    return service.review_incident(service.get_incident(site, incident_id), data,
                                   actor=api_actor(), roles=_roles(site), now=utcnow())


@blp.get("/sites/<int:site_id>/incidents/<int:incident_id>")
@blp.doc(operationId="getIncident", security=SECURITY)
@token_required(*ANY_ROLE)
@blp.response(200, IncidentSchema)
def get_incident(site_id, incident_id):
    """One report, with its review and history.

    Its reporter reads it at every stage: a draft (such as the one an overdose response's
    close writes, named by the close's ``incident_id``), and once submitted the reviewer's
    feedback. The site's reviewers and admins read every submitted report. Anyone else
    gets 404, as for a report that does not exist. The read is audited."""
    site = get_site(site_id)
    return service.view_incident(site, incident_id, actor=api_actor(), roles=_roles(site),
                                 now=utcnow(), conceal=True)


@blp.get("/sites/<int:site_id>/incidents")
@blp.doc(operationId="listIncidents", security=SECURITY)
@token_required(*ANY_ROLE)
@blp.arguments(ListIncidentsQuerySchema, location="query")
@blp.response(200, IncidentPageSchema)
def list_incidents(query, site_id):
    """Reports, newest first, filtered and one page at a time.

    With ``mine=true``, the caller's own reports, drafts included (any role at the site);
    without it, every submitted report of the site (reviewers and admins only: 403 for
    other roles)."""
    site = get_site(site_id)
    mine = query.pop("mine")
    if not mine and not _roles(site) & set(REVIEWERS):
        raise Forbidden("Only the site's reviewers and admins list every report: ask for "
                        "your own with mine=true.")
    page, per_page = query.pop("page"), query.pop("per_page")
    items, total = service.list_incidents(site, query, actor=api_actor(), page=page,
                                          per_page=per_page, now=utcnow(), mine=mine)
    return {"items": items, "total": total, "page": page, "per_page": per_page}


@blp.get("/sites/<int:site_id>/incidents.csv")
@blp.doc(operationId="exportIncidents", security=SECURITY, responses={
    200: {"description": "The matching reports as CSV, one row each.",
          "content": {"text/csv": {"schema": {"type": "string"}}}}})
@token_required(*REVIEWERS)
@blp.arguments(ListQuerySchema, location="query")
def export_incidents(query, site_id):
    """The matching reports as CSV (up to 10,000 rows)."""
    site = get_site(site_id)
    query.pop("page"), query.pop("per_page")
    items, _total = service.list_incidents(site, query, actor=api_actor(), page=1,
                                           per_page=10_000, now=utcnow())
    return download(reports.incidents_csv(site, items), mimetype="text/csv")


@blp.get("/sites/<int:site_id>/reports/monthly")
@blp.doc(operationId="getMonthlyReport", security=SECURITY)
@token_required(*REPORT_READERS)
@blp.arguments(MonthQuerySchema, location="query")
@blp.response(200, MonthlyReportSchema)
def get_monthly_report(query, site_id):
    """Every monthly figure for the site and ``month`` (YYYY-MM, site time).

    Each figure has its ``name`` and ``label`` and one of: ``value``, a count (a number);
    ``text``, words (``opening_hours``); or ``breakdown``, counts keyed by the values the
    API itself takes, each key with its ``label`` and ``value`` beside it. The keys:
    incident types as createIncident's ``type`` (``needle_stick``: "Needle-stick injury"),
    substances as recordConsumption's ``substances`` (``fentanyl``), service types as
    recordReferral's ``service_type`` (``oat``), take-home kit forms as
    recordTakeHomeKit's ``form`` (``nasal``), people trained by recordTrainingSession's
    trainee ``kind`` (``police``), genders as the client code's letter (M, F,
    TM, TF, X, or ``unknown``), time bands (``07-12``) and age bands (``20-29``,
    ``unknown``) as they are written. A site that runs heroin-assisted treatment adds its
    ``hat_`` figures (getHatReport has them in full): retention by months (``3``, ``6``,
    ``12``), doses by outcome as recordDoseNotGiven's (``withheld``), doses not given by
    ``outcome: reason``, register balances by line."""
    site = get_site(site_id)
    if query["month"]:
        month = datetime.strptime(query["month"], "%Y-%m").date()
    else:
        month = site.last_full_month(utcnow())
    report = reports.monthly_report(site, month)
    return {"site_id": site.id, "month": f"{report['month']:%Y-%m}",
            "figures": report["figures"]}
