"""The drug-check page (a nurse or a drug checker records a sample) and the drug-alert
pages (supervisors and admins draft, validate, publish, retract and renew).

Forms post plainly and answer with a redirect to the page they came from; a refusal
re-renders the page with its messages beside the fields and what was typed kept.
"""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import FLOOR, Role
from srs.booths.service import get_visit
from srs.common import utcnow
from srs.drugchecks import screens, service
from srs.drugchecks.models import (
    ADVICE,
    ALERT_KINDS,
    ALERT_STATUSES,
    AUDIENCES,
    EVIDENCE,
    FAMILIES,
    LAB_STATUSES,
    METHODS,
    SAMPLE_FORMS,
    SAMPLE_TYPES,
    STRIP_RESULTS,
    STRIPS,
    WATCH_RULES,
)
from srs.drugchecks.schemas import (
    FORM_COMPONENTS,
    DrugAlertForm,
    DrugCheckForm,
    NewAlertForm,
    RetractForm,
    SubstanceForm,
    WatchForm,
)
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.forms import form_input
from srs.idempotency import idempotent
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("drugchecks", __name__)

CHECKERS = (Role.DRUG_CHECKER, Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
ALERTERS = (Role.SUPERVISOR, Role.ADMIN)


@template_globals(bp)
def drugcheck_vocabulary():
    return {"SAMPLE_TYPES": SAMPLE_TYPES, "SAMPLE_FORMS": SAMPLE_FORMS, "STRIPS": STRIPS,
            "STRIP_RESULTS": STRIP_RESULTS, "CHECK_METHODS": METHODS,
            "LAB_STATUSES": LAB_STATUSES, "ALERT_KINDS": ALERT_KINDS,
            "ALERT_STATUSES": ALERT_STATUSES, "EVIDENCE": EVIDENCE, "AUDIENCES": AUDIENCES,
            "ADVICE": ADVICE, "FAMILIES": FAMILIES, "WATCH_RULES": WATCH_RULES}


# --- Drug checks ----------------------------------------------------------------------------


def _checks_page(site, status: int = 200, *, form=None, errors=None, message=None,
                 which: str = "check"):
    page = render_template(
        "drugchecks/checks.html", site=site, checks=service.list_checks(site),
        substances=service.substances(site), watch=service.watch_list(site),
        form=form or {}, errors=errors or {}, which=which, message=message,
        components=FORM_COMPONENTS,
        recorded=request.args.get("recorded", type=int),
        alert_drafted=request.args.get("alert", type=int),
        may_edit_lists=current_actor_may(site, ALERTERS))
    # The lists are seeded the first time a site opens the page.
    db.session.commit()
    return page, status


def current_actor_may(site, roles) -> bool:
    return current_user.has_role(site.id, *roles)


@bp.get("/sites/<slug>/drug-checks")
@site_role_required(*CHECKERS)
def checks_page(site):
    return _checks_page(site)


@bp.post("/sites/<slug>/drug-checks")
@site_role_required(*CHECKERS)
@idempotent
def record_check(site):
    form = form_input(request.form, "methods")
    try:
        check = service.record_check(site, DrugCheckForm().load(form), actor=current_actor(),
                                     now=utcnow())
    except ValidationError as err:
        return _checks_page(site, 422, form=form, errors=_flat(err.messages),
                            message="The check could not be recorded: see the marked fields.")
    except Invalid as err:
        return _checks_page(site, 422, form=form, errors=err.errors, message=err.message)
    return redirect(url_for("drugchecks.checks_page", slug=site.slug, recorded=check.id,
                            alert=check.drug_alert_id), 303)


def _flat(messages: dict) -> dict:
    """Messages of a component row as "Component 2: ..." beside the components."""
    rows = messages.get("components")
    if isinstance(rows, dict):
        messages["components"] = [
            f"Component {int(i) + 1}: {' '.join(str(m) for ms in row.values() for m in ms)}"
            if isinstance(row, dict) else str(row) for i, row in rows.items()]
    return messages


def _list_action(site, schema, act, which: str):
    form = request.form.to_dict()
    try:
        act(schema().load(form))
    except ValidationError as err:
        return _checks_page(site, 422, form=form, errors=err.messages, which=which)
    except Invalid as err:
        return _checks_page(site, 422, form=form, errors=err.errors, which=which,
                            message=err.message)
    return redirect(url_for("drugchecks.checks_page", slug=site.slug) + "#lists", 303)


@bp.post("/sites/<slug>/drug-checks/substances")
@site_role_required(*ALERTERS)
@idempotent
def add_substance(site):
    return _list_action(site, SubstanceForm, lambda data: service.add_substance(
        site, name=data["name"], family=data["family"], actor=current_actor(), now=utcnow()),
        "substance")


@bp.post("/sites/<slug>/drug-checks/watch")
@site_role_required(*ALERTERS)
@idempotent
def add_watch_item(site):
    return _list_action(site, WatchForm, lambda data: service.add_watch_item(
        site, substance=data["substance"], actor=current_actor(), now=utcnow()), "watch")


# --- Drug alerts ----------------------------------------------------------------------------


def _alerts_page(site, status: int = 200, form=None, errors=None):
    alerts = service.alerts_for(site)
    groups = {"draft": [a for a in alerts if a.status in ("draft", "validated")],
              "published": [a for a in alerts if a.status == "published"],
              "past": [a for a in alerts if a.status in ("retracted", "expired")]}
    return render_template("drugchecks/alerts.html", site=site, groups=groups,
                           form=form or {}, errors=errors or {}), status


@bp.get("/sites/<slug>/drug-alerts")
@site_role_required(*ALERTERS)
def alerts_page(site):
    return _alerts_page(site)


@bp.post("/sites/<slug>/drug-alerts")
@site_role_required(*ALERTERS)
@idempotent
def create_alert(site):
    form = form_input(request.form, "advice")
    try:
        data = NewAlertForm().load(form)
    except ValidationError as err:
        return _alerts_page(site, 422, form, err.messages)
    alert = service.create_alert(site, data, actor=current_actor(), now=utcnow())
    return redirect(url_for("drugchecks.alert_page", slug=site.slug, drug_alert_id=alert.id),
                    303)


def _alert_page(site, alert, status: int = 200, *, form=None, errors=None, message=None):
    actor = current_actor()
    return render_template(
        "drugchecks/alert.html", site=site, alert=alert, form=form, errors=errors or {},
        message=message, may_validate=service.may_validate(alert, actor.staff_id),
        may_publish=service.may_publish(alert, actor.staff_id),
        now=utcnow()), status


@bp.get("/sites/<slug>/drug-alerts/<int:drug_alert_id>")
@site_role_required(*ALERTERS)
def alert_page(site, drug_alert_id):
    return _alert_page(site, service.get_alert(site, drug_alert_id))


def _step(site, drug_alert_id, act):
    alert = service.get_alert(site, drug_alert_id)
    try:
        act(alert)
    except Conflict as err:  # refused before anything changed
        return _alert_page(site, alert, 409, message=err.message)
    return redirect(url_for("drugchecks.alert_page", slug=site.slug,
                            drug_alert_id=drug_alert_id), 303)


@bp.post("/sites/<slug>/drug-alerts/<int:drug_alert_id>/edit")
@site_role_required(*ALERTERS)
@idempotent
def edit_alert(site, drug_alert_id):
    alert = service.get_alert(site, drug_alert_id)
    form = form_input(request.form, "advice")
    try:
        data = DrugAlertForm().load(form)
    except ValidationError as err:
        return _alert_page(site, alert, 422, form=form, errors=err.messages,
                           message="The alert was not saved: see the marked fields.")
    return _step(site, drug_alert_id, lambda a: service.update_alert(
        a, site, data, actor=current_actor(), now=utcnow()))


@bp.post("/sites/<slug>/drug-alerts/<int:drug_alert_id>/validate")
@site_role_required(*ALERTERS)
@idempotent
def validate_alert(site, drug_alert_id):
    return _step(site, drug_alert_id, lambda a: service.validate_alert(
        a, site, actor=current_actor(), now=utcnow()))


@bp.post("/sites/<slug>/drug-alerts/<int:drug_alert_id>/publish")
@site_role_required(*ALERTERS)
@idempotent
def publish_alert(site, drug_alert_id):
    return _step(site, drug_alert_id, lambda a: service.publish_alert(
        a, site, actor=current_actor(), now=utcnow()))


@bp.post("/sites/<slug>/drug-alerts/<int:drug_alert_id>/retract")
@site_role_required(*ALERTERS)
@idempotent
def retract_alert(site, drug_alert_id):
    alert = service.get_alert(site, drug_alert_id)
    form = request.form.to_dict()
    try:
        reason = RetractForm().load(form)["reason"]
    except ValidationError as err:
        return _alert_page(site, alert, 422, form=form, errors=err.messages,
                           message="Say why the alert is withdrawn.")
    return _step(site, drug_alert_id, lambda a: service.retract_alert(
        a, site, reason=reason, actor=current_actor(), now=utcnow()))


@bp.post("/sites/<slug>/drug-alerts/<int:drug_alert_id>/renew")
@site_role_required(*ALERTERS)
@idempotent
def renew_alert(site, drug_alert_id):
    return _step(site, drug_alert_id, lambda a: service.renew_alert(
        a, site, actor=current_actor(), now=utcnow()))


# --- A published alert on the screens (srs/drugchecks/screens.py) -----------------------------


@bp.get("/sites/<slug>/drug-alerts/<int:drug_alert_id>/read")
@site_role_required(*Role)
def read_alert(site, drug_alert_id):
    """A published alert as every member of staff at a site it covers reads it."""
    return render_template("drugchecks/read.html", site=site,
                           alert=screens.get_published(site, drug_alert_id), now=utcnow(),
                           may_manage=current_actor_may(site, ALERTERS))


@bp.post("/sites/<slug>/drug-alerts/<int:drug_alert_id>/heard")
@site_role_required(*FLOOR)
@idempotent
def hear_alert(site, drug_alert_id):
    """Acknowledge an urgent alert by name: it stops sounding at the site. Answers with the
    strip as the screen that tapped shows it."""
    now = utcnow()
    screens.hear_alert(screens.get_in_force(site, drug_alert_id, now=now), site,
                       actor=current_actor(), now=now)
    strip = "alerts.floor_alerts" if request.form.get("view") == "floor" else "alerts.alert_list"
    return redirect(url_for(strip, slug=site.slug), 303)


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/drug-alerts/<int:drug_alert_id>/told")
@site_role_required(*FLOOR)
@idempotent
def tell_client(site, visit_id, drug_alert_id):
    """The client at the check-in has been told of an alert: the notice shows what is left
    to tell them."""
    now = utcnow()
    visit = get_visit(site, visit_id)
    alert = screens.get_in_force(site, drug_alert_id, now=now)
    screens.tell_client(alert, visit, site, actor=current_actor(), now=now)
    return render_template(screens.CHECKIN_TEMPLATE, site=site,
                           notice=screens.checkin_notice(visit, site, now=now, told=alert))
