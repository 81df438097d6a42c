"""The club's members pages: the list, the enrolment form, a member's page (the steps, the
linkage conversations and the referral engine's suggestions with their reasons, suspend and
end) and the site's consent text with its versions.

Every form on a page posts to its own route: done, back to the page (303); refused, the page
again with the reason beside the form's fields and what was typed."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.clients.service import find_clients
from srs.common import utcnow
from srs.compassion import members
from srs.compassion.member_schemas import (
    ConsentTextForm,
    EndForm,
    EnrolMemberForm,
    LinkageForm,
    StepForm,
    SuspendForm,
)
from srs.compassion.models import LINKAGE_OUTCOMES, STATES
from srs.errors import DomainError, field_messages
from srs.forms import form_input
from srs.referrals import service as referrals
from srs.referrals.models import SERVICE_TYPES
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("club", __name__)

LINKAGE_WORDS = {"offered": "Offered", "accepted": "Accepted", "declined": "Declined",
                 "not_now": "Not now"}
STATE_WORDS = {"applicant": "Applicant", "active": "Active", "suspended": "Suspended",
               "ended": "Ended"}


@template_globals(bp)
def club_vocabulary():
    return {"CLUB_LINKAGE_OUTCOMES": [(o, LINKAGE_WORDS[o]) for o in LINKAGE_OUTCOMES],
            "CLUB_STATES": [(s, STATE_WORDS[s]) for s in STATES],
            "CLUB_STATE_WORDS": STATE_WORDS, "CLUB_LINKAGE_WORDS": LINKAGE_WORDS}


@bp.get("/sites/<slug>/club")
@site_role_required(*members.CLUB)
def members_page(site):
    """The club's members by code and handle (``?state=``: only those)."""
    state = request.args.get("state") or None
    if state not in STATES:
        state = None
    now = utcnow()
    found = members.list_members(site, state=state, actor=current_actor(), now=now)
    return render_template("compassion/members.html", site=site, members=found, state=state,
                           due={m.id: members.linkage_due(site, m, now=now) for m in found})


def _enrol_page(site, status=200, **context):
    context.setdefault("form", {})
    context.setdefault("errors", {})
    return render_template("compassion/enrol.html", site=site,
                           items=members.eligibility_items(site), **context), status


@bp.get("/sites/<slug>/club/enrol")
@site_role_required(*members.CLUB)
def enrol_form(site):
    return _enrol_page(site, form={"code": request.args.get("code", "")})


@bp.get("/sites/<slug>/club/enrol/codes")
@site_role_required(*members.CLUB)
def code_suggestions(site):
    """Known codes holding what the code field holds (2 characters on), as at check-in; a
    tap puts one in the field and leaves the rest of the form as typed."""
    found = find_clients(site, request.args.get("code", ""), actor=current_actor())
    return render_template("compassion/_codes.html", site=site, suggestions=found)


@bp.get("/sites/<slug>/club/enrol/code")
@site_role_required(*members.CLUB)
def code_field(site):
    """The code field holding ``code``."""
    return render_template("compassion/_code_field.html", site=site, errors={},
                           form={"code": request.args.get("code", "")})


@bp.post("/sites/<slug>/club/enrol")
@site_role_required(*members.CLUB)
def enrol(site):
    """Enrol a client as an applicant; a refusal gives the form back as typed."""
    typed = form_input(request.form)
    data = {"code": typed.get("code", ""), "eligibility": {
        key: {"met": bool(typed.get(f"met_{key}")),
              "note": (typed.get(f"note_{key}") or "").strip() or None}
        for key, _label in members.eligibility_items(site)}}
    if site.compassion_identity_required:  # elsewhere the form has no such fields
        data.update({key: typed.get(key, "") for key in members.IDENTITY_FIELDS})
    try:
        member = members.enrol_member(site, EnrolMemberForm().load(data),
                                      actor=current_actor(), now=utcnow())
    except ValidationError as err:
        errors = field_messages(err.messages)
        if "eligibility" in errors:
            errors["eligibility"] = ["Check the notes: at most 300 characters each."]
        return _enrol_page(site, 422, form=typed, errors=errors,
                           message="Check the marked fields.")
    except DomainError as err:
        return _enrol_page(site, err.status, form=typed, errors=err.errors,
                           message=err.message)
    return redirect(url_for("club.member_page", slug=site.slug, member_id=member.id), 303)


def _member_page(site, member_id, status=200, **context):
    """A member's page; ``context`` carries a refused form's ``form_name``, ``form``,
    ``errors`` and ``message``."""
    now, actor = utcnow(), current_actor()
    member = members.get_member(site, member_id, actor=actor, now=now)
    context.setdefault("form", {})
    context.setdefault("errors", {})
    context.setdefault("form_name", None)
    held = members.identity_held(member)
    readable = held and members.may_read_identity(site, actor)
    return render_template(
        "compassion/member.html", site=site, member=member, now=now,
        identity_held=held,
        identity=members.read_identity(site, member, actor=actor, now=now) if readable else None,
        eligibility_labels=dict(members.eligibility_items(site)),
        steps=members.step_rows(site, member), missing=members.steps_missing(site, member),
        consent=members.current_consent_text(site),
        consent_versions={t.id: t.version for t in members.consent_texts(site)},
        sessions=members.training_sessions(site, member),
        linkage=members.linkage_history(member),
        linkage_due_at=members.linkage_due_at(site, member),
        linkage_due=members.linkage_due(site, member, now=now),
        suggestions=members.suggestions(site, member, actor=actor, now=now),
        services=referrals.services(site, active_only=True),
        open_visit=members.open_visit(site, member), SERVICE_TYPES=SERVICE_TYPES,
        may_lead=current_user.has_role(site.id, *members.LEADS),
        may_screen=current_user.has_role(site.id, *members.SCREENERS), **context), status


@bp.get("/sites/<slug>/club/members/<int:member_id>")
@site_role_required(*members.CLUB)
def member_page(site, member_id):
    return _member_page(site, member_id)


def _member_post(site, member_id, form_name, schema, act):
    typed = form_input(request.form)
    try:
        data = schema.load(typed)
        act(data)
    except ValidationError as err:
        return _member_page(site, member_id, 422, form_name=form_name, form=typed,
                            errors=field_messages(err.messages),
                            message="Check the marked fields.")
    except DomainError as err:
        return _member_page(site, member_id, err.status, form_name=form_name, form=typed,
                            errors=err.errors, message=err.message)
    return redirect(url_for("club.member_page", slug=site.slug, member_id=member_id), 303)


@bp.post("/sites/<slug>/club/members/<int:member_id>/steps")
@site_role_required(*members.CLUB)
def record_step(site, member_id):
    """Record a step (the screening: a prescriber or screener only)."""
    name = "step_" + request.form.get("step", "")
    return _member_post(site, member_id, name, StepForm(), lambda data: members.record_step(
        site, member_id, data, actor=current_actor(), now=utcnow()))


@bp.post("/sites/<slug>/club/members/<int:member_id>/linkage")
@site_role_required(*members.CLUB)
def record_linkage(site, member_id):
    """A treatment-linkage conversation; declining changes nothing about the membership."""
    return _member_post(site, member_id, "linkage", LinkageForm(), lambda data: (
        members.record_linkage(site, member_id, data, actor=current_actor(), now=utcnow())))


@bp.post("/sites/<slug>/club/members/<int:member_id>/suspend")
@site_role_required(*members.LEADS)
def suspend(site, member_id):
    """Suspend the member with a reason until a date (site time, from its midnight)."""
    def act(data):
        data = {**data, "until": site.midnight(data["until"])}
        members.suspend_member(site, member_id, data, actor=current_actor(), now=utcnow())
    return _member_post(site, member_id, "suspend", SuspendForm(), act)


@bp.post("/sites/<slug>/club/members/<int:member_id>/end")
@site_role_required(*members.LEADS)
def end(site, member_id):
    return _member_post(site, member_id, "end", EndForm(), lambda data: (
        members.end_membership(site, member_id, data, actor=current_actor(), now=utcnow())))


def _consent_page(site, status=200, **context):
    context.setdefault("errors", {})
    versions = members.consent_texts(site)
    context.setdefault("form", {"text": versions[0].text if versions else ""})
    return render_template("compassion/consent.html", site=site, versions=versions,
                           **context), status


@bp.get("/sites/<slug>/club/consent")
@site_role_required(*members.CONSENT_WRITERS)
def consent_page(site):
    """The risks a member consents to: the version in force, the form for a new one and
    every earlier version."""
    return _consent_page(site)


@bp.post("/sites/<slug>/club/consent")
@site_role_required(*members.CONSENT_WRITERS)
def write_consent(site):
    typed = form_input(request.form)
    try:
        members.write_consent_text(site, ConsentTextForm().load(typed),
                                   actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _consent_page(site, 422, form=typed, errors=field_messages(err.messages),
                             message="Check the text.")
    except DomainError as err:
        return _consent_page(site, err.status, form=typed, errors=err.errors,
                             message=err.message)
    return redirect(url_for("club.consent_page", slug=site.slug), 303)
