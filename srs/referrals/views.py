"""Referrals on screen: the tablet's suggestions during a visit, the follow-ups due, the admin's
service directory and rules, and the uptake figures for reviewers.

The tablet's panel is one fragment (``/floor/visits/<id>/suggestions``) that owns its refresh
rule; each tap posts one offer step and gets the panel back. Admin pages are plain forms that
redirect after a successful post and show field messages beside the fields otherwise.
"""

import json

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import FLOOR, Role
from srs.booths import service as floor
from srs.common import utcnow
from srs.errors import Invalid, NotFound
from srs.forms import form_input
from srs.idempotency import idempotent
from srs.referrals import service
from srs.referrals.models import (
    FOLLOW_UP_OUTCOMES,
    HOUSING,
    OAT_MEDICATIONS,
    OFFER_STATUSES,
    SERVICE_TYPES,
)
from srs.referrals.rules import (
    ALL_OPS,
    CHOICE_LABELS,
    FACTS,
    MAX_ATOMS,
    OP_LABELS,
    OPS_BY_KIND,
    PLACEHOLDERS,
    REASON_EXTRAS,
)
from srs.referrals.schemas import (
    CareProfileForm,
    OfferForm,
    OutcomeForm,
    ServiceForm,
    condition_rows,
    fit_row,
    load_rule_form,
    rule_form_values,
)
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("referrals", __name__)

ADMIN = (Role.ADMIN,)
REVIEWERS = (Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN)


@template_globals(bp)
def referral_vocabulary():
    return {"SERVICE_TYPES": SERVICE_TYPES, "OFFER_STATUSES": OFFER_STATUSES,
            "FOLLOW_UP_OUTCOMES": FOLLOW_UP_OUTCOMES}


# --- The tablet: suggestions during a visit ---------------------------------------------------


def _panel(site, visit, status: int = 200, *, oob: bool = False, in_dialog: bool = False,
           wrapped: bool = False):
    """The suggestions panel; ``in_dialog`` when it sits in a dialog (``wrapped``: with the
    dialog around it), so its taps come back to the dialog rather than the check-in panel."""
    ranked, answered = service.suggestions(visit, actor=current_actor(), now=utcnow())
    template = "_suggestions_dialog.html" if wrapped else "_suggestions.html"
    return render_template(f"referrals/{template}", site=site, visit=visit,
                           suggestions=ranked, answered=answered, oob=oob,
                           in_dialog=in_dialog or wrapped), status


def _in_dialog(values) -> bool:
    return values.get("in_dialog") == "1"


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/suggestions")
@site_role_required(*FLOOR)
def suggestions_panel(site, visit_id):
    """At most three things to offer this client now, each with its reason."""
    return _panel(site, floor.get_visit(site, visit_id), in_dialog=_in_dialog(request.args))


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/suggestions/line")
@site_role_required(*FLOOR)
def suggestions_line(site, visit_id):
    """The suggestions folded to one line under the check-in; a tap opens them in a dialog."""
    visit = floor.get_visit(site, visit_id)
    ranked, _ = service.suggestions(visit, actor=current_actor(), now=utcnow())
    return render_template("referrals/_suggestions_line.html", site=site, visit=visit,
                           suggestions=ranked)


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/suggestions/dialog")
@site_role_required(*FLOOR)
def suggestions_dialog(site, visit_id):
    """The same panel in a dialog, for a client in a booth or in after-care."""
    return _panel(site, floor.get_visit(site, visit_id), wrapped=True)


def _accept_dialog(site, visit, form: dict, status: int = 200, errors=None):
    choices = service.services(site, service_type=form.get("service_type"), active_only=True)
    return render_template("referrals/_accept_dialog.html", site=site, visit=visit, form=form,
                           services=choices, errors=errors or {}), status


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/referral/<service_type>")
@site_role_required(*FLOOR)
def accept_dialog(site, visit_id, service_type):
    """Accepted: where to, consent, and when to follow up."""
    visit = floor.get_visit(site, visit_id)
    if service_type not in SERVICE_TYPES:
        raise NotFound(f"No service type is called {service_type!r}.")
    return _accept_dialog(site, visit, {"service_type": service_type,
                                        "rule_id": request.args.get("rule_id", ""),
                                        "back": request.args.get("back", ""),
                                        "follow_up_days": service.DEFAULT_FOLLOW_UP_DAYS})


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/offers")
@site_role_required(*FLOOR)
@idempotent
def record_offer(site, visit_id):
    """One tap on a suggestion: offered, accepted (from the dialog), declined or not now."""
    visit = floor.get_visit(site, visit_id)
    entered = form_input(request.form)
    from_dialog = entered.get("from") == "dialog"
    try:
        data = OfferForm().load(entered)
        service.record_offer(visit, data, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        if from_dialog:
            return _accept_dialog(site, visit, entered, 422, err.messages)
        raise Invalid("Some fields are not valid.", err.messages) from None
    except Invalid as err:
        if from_dialog and err.errors:
            return _accept_dialog(site, visit, entered, err.status, err.errors)
        raise
    if entered.get("back") == "dialog":
        return _panel(site, visit, wrapped=True)  # back to the suggestions dialog
    if from_dialog:
        # The dialog closes (empty answer) and the panel is swapped out of band.
        return _panel(site, visit, oob=True)
    return _panel(site, visit, in_dialog=_in_dialog(entered))


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/care-profile")
@site_role_required(*FLOOR)
def care_profile_dialog(site, visit_id):
    visit = floor.get_visit(site, visit_id)
    profile = service.care_profile(visit.client, site=site, actor=current_actor(), now=utcnow())
    form = {name: getattr(profile, name) for name in CareProfileForm().fields}
    return _profile_dialog(site, visit, form)


def _profile_dialog(site, visit, form, status: int = 200, errors=None):
    return render_template("referrals/_care_profile_dialog.html", site=site, visit=visit,
                           form=form, errors=errors or {}, OAT_MEDICATIONS=OAT_MEDICATIONS,
                           HOUSING=HOUSING), status


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/care-profile")
@site_role_required(*FLOOR)
@idempotent
def save_care_profile(site, visit_id):
    visit = floor.get_visit(site, visit_id)
    entered = form_input(request.form)
    try:
        data = CareProfileForm().load(entered)
    except ValidationError as err:
        return _profile_dialog(site, visit, entered, 422, err.messages)
    service.save_care_profile(visit.client, data, site=site, actor=current_actor(), now=utcnow())
    return _panel(site, visit, oob=True)


# --- Follow-ups ------------------------------------------------------------------------------


@bp.get("/sites/<slug>/referrals/follow-ups")
@site_role_required(*FLOOR)
def follow_ups(site):
    """Referrals whose follow-up is due: did the client present for assessment?"""
    due = service.follow_ups_due(site, actor=current_actor(), now=utcnow())
    return render_template("referrals/follow_ups.html", site=site, due=due,
                           today=service.facts_module.local_today(site, utcnow()))


@bp.post("/sites/<slug>/referrals/<int:referral_id>/outcome")
@site_role_required(*FLOOR)
@idempotent
def record_outcome(site, referral_id):
    referral = service.get_referral(site, referral_id)
    try:
        data = OutcomeForm().load({**form_input(request.form), "referral_id": referral_id})
    except ValidationError as err:
        raise Invalid("Choose what happened.", err.messages) from None
    service.record_outcome(referral, data["outcome"], actor=current_actor(), now=utcnow())
    return redirect(url_for("referrals.follow_ups", slug=site.slug), 303)


# --- Uptake -----------------------------------------------------------------------------------


@bp.get("/sites/<slug>/referrals/uptake")
@site_role_required(*REVIEWERS)
def uptake(site):
    """Offered, accepted and presented per month and per service type."""
    months = service.uptake_by_month(site, now=utcnow(), months=6)
    return render_template("referrals/uptake.html", site=site, months=months)


# --- Admin: the service directory -------------------------------------------------------------


def _services_page(site, status: int = 200, *, form=None, errors=None, editing=None):
    return render_template("referrals/services.html", site=site,
                           services=service.services(site), form=form or {"active": True},
                           errors=errors or {}, editing=editing), status


@bp.get("/sites/<slug>/referrals/services")
@site_role_required(*ADMIN)
def services_page(site):
    return _services_page(site)


@bp.post("/sites/<slug>/referrals/services")
@site_role_required(*ADMIN)
@idempotent
def create_service(site):
    entered = form_input(request.form)
    try:
        data = ServiceForm().load(entered)
    except ValidationError as err:
        return _services_page(site, 422, form=entered, errors=err.messages)
    service.save_service(site, data, actor=current_actor(), now=utcnow())
    return redirect(url_for("referrals.services_page", slug=site.slug), 303)


@bp.get("/sites/<slug>/referrals/services/<int:service_id>")
@site_role_required(*ADMIN)
def edit_service(site, service_id):
    entry = service.get_service(site, service_id)
    form = {name: getattr(entry, name) for name in ServiceForm().fields}
    return _services_page(site, form=form, editing=entry)


@bp.post("/sites/<slug>/referrals/services/<int:service_id>")
@site_role_required(*ADMIN)
@idempotent
def update_service(site, service_id):
    entry = service.get_service(site, service_id)
    entered = form_input(request.form)
    try:
        data = ServiceForm().load(entered)
    except ValidationError as err:
        return _services_page(site, 422, form=entered, errors=err.messages, editing=entry)
    service.save_service(site, data, actor=current_actor(), now=utcnow(), service=entry)
    return redirect(url_for("referrals.services_page", slug=site.slug), 303)


# --- Admin: rules -----------------------------------------------------------------------------


NEW_RULE = {"priority": 50, "reoffer_days": 30, "active": True, "match": "all"}


def _rules_page(site, status: int = 200, *, form=None, errors=None, rule=None):
    form = form or dict(NEW_RULE)
    return render_template(
        "referrals/rules.html", site=site, rules=service.current_rules(site), rule=rule,
        history=service.rule_history(rule) if rule else [], form=form,
        # A condition with groups inside groups (from the API) has no rows to show.
        nested=json.dumps(rule.condition, indent=2) if rule and not condition_rows(form)
        else None,
        errors=errors or {}, **_condition_rows(form)), status


def _condition_rows(form: dict, rows: list[dict] | None = None) -> dict:
    """What the condition rows partial renders: the rows as typed and the vocabulary."""
    rows = condition_rows(form) if rows is None else rows
    return {"rows": rows or [{}], "match": form.get("match") or "all", "FACTS": FACTS,
            "OPS_BY_KIND": OPS_BY_KIND, "OP_LABELS": OP_LABELS, "ALL_OPS": ALL_OPS,
            "CHOICE_LABELS": CHOICE_LABELS, "MAX_ATOMS": MAX_ATOMS,
            "PLACEHOLDERS": PLACEHOLDERS, "REASON_EXTRAS": REASON_EXTRAS}


@bp.get("/sites/<slug>/referrals/rules")
@site_role_required(*ADMIN)
def rules_page(site):
    return _rules_page(site)


@bp.post("/sites/<slug>/referrals/rules/conditions")
@site_role_required(*ADMIN)
def rule_conditions(site):
    """The rule form's condition rows as typed, re-drawn after a fact changed (its
    comparisons and value input follow the fact), with one more row (``add``) or one
    fewer (``remove``: its position). Saves nothing."""
    entered = form_input(request.form)
    rows = [fit_row(row) for row in condition_rows(entered)]
    if entered.get("add") and len(rows) < MAX_ATOMS:
        rows.append({})
    remove = entered.get("remove", "")
    if remove.isdecimal() and int(remove) < len(rows) and len(rows) > 1:
        del rows[int(remove)]
    return render_template("referrals/_rule_conditions.html", site=site, errors={},
                           **_condition_rows(entered, rows))


@bp.post("/sites/<slug>/referrals/rules")
@site_role_required(*ADMIN)
@idempotent
def create_rule(site):
    entered = form_input(request.form)
    try:
        data = load_rule_form(entered)
    except ValidationError as err:
        return _rules_page(site, 422, form=entered, errors=err.messages)
    rule = service.create_rule(site, data, actor=current_actor(), now=utcnow())
    return redirect(url_for("referrals.edit_rule", slug=site.slug, rule_id=rule.id), 303)


@bp.get("/sites/<slug>/referrals/rules/<int:rule_id>")
@site_role_required(*ADMIN)
def edit_rule(site, rule_id):
    rule = service.get_rule(site, rule_id)
    return _rules_page(site, form=rule_form_values(rule), rule=rule)


@bp.post("/sites/<slug>/referrals/rules/<int:rule_id>")
@site_role_required(*ADMIN)
@idempotent
def update_rule(site, rule_id):
    rule = service.get_rule(site, rule_id)
    entered = form_input(request.form)
    try:
        data = load_rule_form(entered)
    except ValidationError as err:
        return _rules_page(site, 422, form=entered, errors=err.messages, rule=rule)
    new = service.update_rule(rule, data, actor=current_actor(), now=utcnow())
    return redirect(url_for("referrals.edit_rule", slug=site.slug, rule_id=new.id), 303)


@bp.post("/sites/<slug>/referrals/rules/defaults")
@site_role_required(*ADMIN)
@idempotent
def seed_default_rules(site):
    """Add the default rules this site does not have yet (a new site starts with none)."""
    service.seed_default_rules(site, actor=current_actor(), now=utcnow())
    return redirect(url_for("referrals.rules_page", slug=site.slug), 303)
