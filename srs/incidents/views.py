"""Incident report pages: the form (autosaved drafts), a report with its review and
history, the weekly review with its charts, PDF and CSV, the monthly report, and the
admin's contributing-factor list.
"""

from datetime import date, timedelta

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import any_site_role_required, current_actor
from srs.auth.models import Role
from srs.common import month_asked, utcnow
from srs.errors import Invalid
from srs.extensions import db
from srs.forms import form_input
from srs.idempotency import idempotent
from srs.incidents import packets, reports, service
from srs.incidents.models import (
    HARM_GRADES,
    INCIDENT_TYPES,
    VOCABULARY,
    Booth,
    ReviewerNotice,
    ReviewPacket,
    Stage,
)
from srs.incidents.schemas import (
    MAXLENGTH,
    FactorForm,
    IncidentForm,
    ReviewForm,
    local_to_utc,
)
from srs.security import download
from srs.sites import service as site_service
from srs.sites.access import site_role_required
from srs.sites.models import TIME_BANDS
from srs.templating import template_globals

bp = Blueprint("incidents", __name__)

ANY_ROLE = (Role.NURSE, Role.SUPERVISOR, Role.REVIEWER, Role.ADMIN)
REVIEWERS = (Role.REVIEWER, Role.ADMIN)
REPORT_READERS = (Role.REVIEWER, Role.ADMIN, Role.SUPERVISOR)


def _roles(site) -> set[str]:
    return current_user.roles_at(site.id)


@template_globals(bp)
def incident_vocabulary():
    return {**VOCABULARY, "INCIDENT_MAXLENGTH": MAXLENGTH}


def _parse(schema, data: dict) -> dict:
    """Load a form; its refusals as messages per input (a list's, per item, flattened)."""
    try:
        return schema.load(data)
    except ValidationError as error:
        raise Invalid("Some fields are not valid.", {
            name: _flat(messages) for name, messages in error.messages.items()}) from None


def _flat(messages) -> list[str]:
    if isinstance(messages, dict):
        return [m for item in messages.values() for m in _flat(item)]
    return list(messages) if isinstance(messages, list) else [messages]


def _report_data(site) -> dict:
    data = _parse(IncidentForm(), request.form.to_dict())
    if "occurred_at" in data:
        data["occurred_at"] = local_to_utc(data["occurred_at"], site.timezone)
    return data


# --- Reports: list, new, form, submit, amend ------------------------------------------------


@bp.get("/sites/<slug>/incidents")
@site_role_required(*ANY_ROLE)
def index(site):
    roles = _roles(site)
    notices = []
    if Role.REVIEWER in roles:
        notices = list(db.session.execute(
            db.select(ReviewerNotice).join(ReviewPacket)
            .where(ReviewerNotice.staff_id == current_user.id, ReviewerNotice.read_at.is_(None),
                   ReviewPacket.site_id == site.id)
            .order_by(ReviewerNotice.id.desc())).scalars())
    return render_template("incidents/index.html", site=site, roles=roles, notices=notices,
                           reports=service.my_reports(site, actor=current_actor()))


@bp.post("/sites/<slug>/incidents")
@site_role_required(*ANY_ROLE)
@idempotent
def create(site):
    incident = service.create_incident(site, {}, actor=current_actor(), now=utcnow())
    return redirect(url_for("incidents.show", slug=site.slug, incident_id=incident.id))


def _show(site, incident, *, status: int = 200, errors: dict | None = None, form=None,
          review_form=None):
    """The report's page; after a refused post, with what was typed (``form``: the report's
    or the amendment's, ``review_form``: the reviewer's panel) and the messages."""
    roles = _roles(site)
    booths = list(db.session.execute(db.select(Booth).filter_by(site_id=site.id)
                                     .order_by(Booth.position, Booth.label)).scalars())
    chosen = {f.id for f in incident.factors}
    if review_form is not None:
        chosen = {int(v) for v in review_form.getlist("factor_ids") if v.isdigit()}
    return render_template(
        "incidents/show.html", site=site, incident=incident, roles=roles, booths=booths,
        errors=errors or {}, form=form, review_form=review_form,
        factor_tree=service.factor_tree(site) if Role.REVIEWER in roles else [],
        staff=service.staff_of(site) if Role.REVIEWER in roles else [],
        chosen=chosen,
        may_amend=incident.stage != Stage.DRAFT and (
            incident.reported_by == current_user.id or Role.REVIEWER in roles)), status


@bp.get("/sites/<slug>/incidents/<int:incident_id>")
@site_role_required(*ANY_ROLE)
def show(site, incident_id):
    incident = service.view_incident(site, incident_id, actor=current_actor(), roles=_roles(site),
                                     now=utcnow())
    return _show(site, incident)


@bp.post("/sites/<slug>/incidents/<int:incident_id>/draft")
@site_role_required(*ANY_ROLE)
def autosave(site, incident_id):
    """Save a draft as it is typed (htmx, a moment after the last keystroke).

    Not idempotent-keyed: saving the same fields twice changes nothing.
    """
    incident = service.get_incident(site, incident_id)
    now = utcnow()
    try:
        data = _report_data(site)
        data.pop("amendment_reason", None)
        data.pop("identifiers_checked", None)
        service.update_incident(incident, data, actor=current_actor(), roles=_roles(site), now=now)
    except Invalid as error:
        db.session.rollback()
        return render_template("incidents/_autosave.html", site=site, saved_at=None,
                               errors=error.errors, findings={}), 200
    findings = {name: service.identifier_findings(getattr(incident, name), site=site)
                for name in service.FREE_TEXT}
    return render_template("incidents/_autosave.html", site=site, saved_at=now, errors={},
                           findings={k: v for k, v in findings.items() if v})


@bp.post("/sites/<slug>/incidents/<int:incident_id>/submit")
@site_role_required(*ANY_ROLE)
@idempotent
def submit(site, incident_id):
    incident = service.get_incident(site, incident_id)
    now = utcnow()
    try:
        data = _report_data(site)
        checked = data.pop("identifiers_checked", False)
        data.pop("amendment_reason", None)
        service.update_incident(incident, data, actor=current_actor(), roles=_roles(site), now=now)
        service.submit_incident(incident, actor=current_actor(), now=now,
                                identifiers_checked=checked)
    except Invalid as error:
        db.session.rollback()
        incident = service.get_incident(site, incident_id)
        return _show(site, incident, status=422, errors=error.errors, form=request.form)
    return redirect(url_for("incidents.show", slug=site.slug, incident_id=incident.id))


@bp.post("/sites/<slug>/incidents/<int:incident_id>/amend")
@site_role_required(*ANY_ROLE)
@idempotent
def amend(site, incident_id):
    incident = service.get_incident(site, incident_id)
    try:
        data = _report_data(site)
        reason = data.pop("amendment_reason", None)
        service.update_incident(incident, data, actor=current_actor(), roles=_roles(site),
                                now=utcnow(), amendment_reason=reason)
    except Invalid as error:
        db.session.rollback()
        incident = service.get_incident(site, incident_id)
        return _show(site, incident, status=422, errors=error.errors, form=request.form)
    return redirect(url_for("incidents.show", slug=site.slug, incident_id=incident.id))


@bp.post("/sites/<slug>/incidents/<int:incident_id>/review")
@site_role_required(Role.REVIEWER)
@idempotent
def review(site, incident_id):
    incident = service.get_incident(site, incident_id)
    try:
        data = _parse(ReviewForm(), form_input(request.form, "factor_ids", "done_action_ids"))
        if incident.stage not in service.REVIEWING:
            # The panel's fields are shown only under review; a decision alone here.
            data = {"decision": data.get("decision")}
        service.review_incident(incident, data, actor=current_actor(), roles=_roles(site),
                                now=utcnow())
    except Invalid as error:
        db.session.rollback()
        incident = service.get_incident(site, incident_id)
        return _show(site, incident, status=422, errors=error.errors, review_form=request.form)
    return redirect(url_for("incidents.show", slug=site.slug, incident_id=incident.id))


# --- The weekly review -----------------------------------------------------------------------


def _week_and_filters(site) -> tuple[date, dict]:
    args = request.args
    try:
        week = date.fromisoformat(args["week"]) if args.get("week") else None
    except ValueError:
        week = None
    if week is not None and not reports.reportable(week):
        _notice(f"Weeks can be shown {reports.REPORT_RANGE}: this is the current week.")
        week = None
    if week is None:
        week = reports.week_start_of(site, utcnow())
    week -= timedelta(days=week.weekday())
    filters = {"type": args.get("type") if args.get("type") in INCIDENT_TYPES else None,
               "harm": args.get("harm") if args.get("harm") in HARM_GRADES else None,
               "band": args.get("band") if args.get("band") in TIME_BANDS else None,
               "booth_id": args.get("booth_id", type=int)}
    return week, filters


def _today(site) -> date:
    return utcnow().astimezone(reports.local_zone(site)).date()


@bp.get("/sites/<slug>/incidents/week")
@site_role_required(*REVIEWERS)
def week(site):
    week_start, filters = _week_and_filters(site)
    review_data = reports.weekly_review(site, week_start, filters, today=_today(site))
    packets_kept = list(db.session.execute(
        db.select(ReviewPacket.id, ReviewPacket.week_start).filter_by(site_id=site.id)
        .order_by(ReviewPacket.week_start.desc()).limit(8)).all())
    from srs.incidents.charts import weekly_charts  # matplotlib: loaded on first use

    sites = [s for s in current_user.roles if s.role in REVIEWERS]
    return render_template("incidents/week.html", site=site, review=review_data,
                           previous_week=review_data.week_start - timedelta(days=7),
                           next_week=review_data.week_start + timedelta(days=7),
                           charts=weekly_charts(review_data), packets=packets_kept,
                           other_sites=sorted({r.site for r in sites}, key=lambda s: s.name),
                           query=request.args.to_dict())


@bp.get("/sites/<slug>/incidents/week.pdf")
@site_role_required(*REVIEWERS)
def week_pdf(site):
    week_start, filters = _week_and_filters(site)
    now = utcnow()
    html = packets.packet_html(site, week_start, filters, today=_today(site), generated_at=now)
    return download(packets.render_pdf(html), mimetype="application/pdf",
                    filename=f"incidents-{site.slug}-{week_start}.pdf")


@bp.get("/sites/<slug>/incidents/week.csv")
@site_role_required(*REVIEWERS)
def week_csv(site):
    week_start, filters = _week_and_filters(site)
    review_data = reports.weekly_review(site, week_start, filters, today=_today(site))
    return download(reports.incidents_csv(site, review_data.incidents), mimetype="text/csv",
                    filename=f"incidents-{site.slug}-{week_start}.csv")


def _packet(site, packet_id: int) -> ReviewPacket:
    return packets.open_packet(site, packet_id, actor=current_actor(), now=utcnow())


@bp.get("/sites/<slug>/incidents/packets/<int:packet_id>.pdf")
@site_role_required(*REVIEWERS)
def packet_pdf(site, packet_id):
    packet = _packet(site, packet_id)
    return download(packet.pdf, mimetype="application/pdf",
                    filename=f"review-packet-{site.slug}-{packet.week_start}.pdf")


@bp.get("/sites/<slug>/incidents/packets/<int:packet_id>.csv")
@site_role_required(*REVIEWERS)
def packet_csv(site, packet_id):
    packet = _packet(site, packet_id)
    return download(packet.csv, mimetype="text/csv",
                    filename=f"review-packet-{site.slug}-{packet.week_start}.csv")


# --- The monthly report ----------------------------------------------------------------------


def _month(site) -> date:
    month, notice = month_asked(request.args.get("month"),
                                site.last_full_month(utcnow()))
    if notice:
        _notice(notice)
    return month


def _notice(message: str) -> None:
    """A note the page shows above its report (a request asked for what cannot be shown)."""
    g.report_notice = message


@bp.get("/sites/<slug>/reports/monthly")
@site_role_required(*REPORT_READERS)
def monthly(site):
    report = reports.monthly_report(site, _month(site))
    return render_template("incidents/monthly.html", site=site, report=report)


@bp.get("/sites/<slug>/reports/monthly.csv")
@site_role_required(*REPORT_READERS)
def monthly_csv(site):
    report = reports.monthly_report(site, _month(site))
    return download(reports.monthly_csv(report), mimetype="text/csv",
                    filename=f"monthly-{site.slug}-{report['month']:%Y-%m}.csv")


# --- The monthly report of every site a person reads ------------------------------------------


def _sites_report() -> dict:
    """The report of each site where the person may open the monthly report, for the month
    asked (else the last full month at all of them)."""
    sites = [s for s in site_service.sites_for(current_user)
             if current_user.has_role(s.id, *REPORT_READERS)]
    now = utcnow()
    month, notice = month_asked(request.args.get("month"),
                                min(s.last_full_month(now) for s in sites))
    if notice:
        _notice(notice)
    return reports.sites_monthly_report(sites, month)


@bp.get("/reports/monthly")
@any_site_role_required(*REPORT_READERS)
def sites_monthly():
    """The month's figures of every site the person reads, a column each, and their total."""
    return render_template("incidents/sites_monthly.html", report=_sites_report())


@bp.get("/reports/monthly.csv")
@any_site_role_required(*REPORT_READERS)
def sites_monthly_csv():
    report = _sites_report()
    return download(reports.sites_monthly_csv(report), mimetype="text/csv",
                    filename=f"monthly-all-sites-{report['month']:%Y-%m}.csv")


# --- Contributing factors (admin) -----------------------------------------------------------


@bp.get("/sites/<slug>/incidents/factors")
@site_role_required(Role.ADMIN)
def factors(site):
    return render_template("incidents/factors.html", site=site,
                           tree=service.factor_tree(site, include_inactive=True), errors={})


@bp.post("/sites/<slug>/incidents/factors")
@site_role_required(Role.ADMIN)
@idempotent
def add_factor(site):
    data = _parse(FactorForm(), request.form.to_dict())
    service.add_factor(site, label=data["label"], parent_id=data["parent_id"],
                       actor=current_actor(), now=utcnow())
    return redirect(url_for("incidents.factors", slug=site.slug))


@bp.post("/sites/<slug>/incidents/factors/<int:factor_id>/active")
@site_role_required(Role.ADMIN)
@idempotent
def toggle_factor(site, factor_id):
    service.set_factor_active(site, factor_id, active=request.form.get("active") == "1",
                              actor=current_actor(), now=utcnow())
    return redirect(url_for("incidents.factors", slug=site.slug))
