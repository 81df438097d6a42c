"""The dosing session's tablet pages: today's list (codes and handles, never an identity;
re-fetched when the ``hat`` topic changes) and a patient's dosing panel with its three
forms: the pre-dose assessment, the dose drawn and given, a dose not given.

Each form posts one action with its own idempotency key and answers with the panel; a
refusal comes back in it with its messages beside the fields and what was typed kept
(never a PIN).
"""

from datetime import timedelta

from flask import Blueprint, render_template, request
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.common import utcnow
from srs.controlled import service as register
from srs.errors import DomainError, field_messages
from srs.forms import form_input
from srs.hat import dosing
from srs.hat.dosing_schemas import AssessmentForm, DoseForm, NotGivenForm
from srs.hat.service import get_enrolment
from srs.idempotency import idempotent
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("hat_dosing", __name__)
ROLES = dosing.DOSING_ROLES
PINS = ("witness_pin", "waste_witness_pin")


@template_globals(bp)
def dosing_vocabulary():
    return {"HAT_POSS": dosing.POSS_LABELS, "HAT_SIGNS": dosing.INTOXICATION_SIGNS,
            "HAT_NOT_GIVEN": dosing.NOT_GIVEN}


def _list_context(site) -> dict:
    now = utcnow()
    return {"site": site, "now": now, "today": site.local_date(now),
            "rows": dosing.dosing_today(site, now=now)}


@bp.get("/sites/<slug>/hat/dosing")
@site_role_required(*ROLES)
def dosing_page(site):
    return render_template("hat/dosing.html", **_list_context(site))


@bp.get("/sites/<slug>/hat/dosing/list")
@site_role_required(*ROLES)
def dosing_list(site):
    return render_template("hat/_dosing_list.html", **_list_context(site))


def _panel_context(site, enrolment, **extra) -> dict:
    now = utcnow()
    row = dosing.patient_row(enrolment, now=now)
    lines = dosing.register_lines(site, row.prescription.medication) if row else []
    return {"site": site, "now": now, "enrolment": enrolment, "row": row, "lines": lines,
            "staff": register.staff_with_pins(site), "form": {}, "errors": {},
            "message": None, "done": None, "which": None, **extra}


def _panel(site, enrolment, status: int = 200, **extra):
    return render_template("hat/_dosing_patient.html",
                           **_panel_context(site, enrolment, **extra)), status


@bp.get("/sites/<slug>/hat/dosing/<int:enrolment_id>")
@site_role_required(*ROLES)
def dosing_patient(site, enrolment_id):
    enrolment = get_enrolment(site, enrolment_id)
    return render_template("hat/dosing_patient.html", **_panel_context(site, enrolment))


def _last_use(site, clock: str | None, now):
    """A wall-clock time the patient last used: today's, or yesterday's if later than now."""
    if not clock:
        return None
    hours, minutes = (int(part) for part in clock.split(":"))
    if hours > 23 or minutes > 59:
        raise ValidationError({"last_use_at": ["A time like 07:30."]})
    today = site.local_date(now)
    moment = site.midnight(today) + timedelta(hours=hours, minutes=minutes)
    return moment - timedelta(days=1) if moment > now else moment


def _act(site, enrolment, which: str, schema, act, *lists: str):
    typed = {k: v for k, v in form_input(request.form, *lists).items() if k not in PINS}
    now = utcnow()
    try:
        data = schema().load(form_input(request.form, *lists))
        done = act(data, now)
    except ValidationError as err:
        return _panel(site, enrolment, 422, form=typed, which=which,
                      errors={which: field_messages(err.messages)},
                      message="Check the marked fields.")
    except DomainError as err:
        return _panel(site, enrolment, err.status, form=typed, which=which,
                      errors={which: err.errors or {}}, message=err.message)
    return _panel(site, enrolment, done=done, which=which)


@bp.post("/sites/<slug>/hat/dosing/<int:enrolment_id>/assessment")
@site_role_required(*ROLES)
@idempotent
def assess(site, enrolment_id):
    enrolment = get_enrolment(site, enrolment_id)

    def act(data, now):
        data["last_use_at"] = _last_use(site, data.get("last_use_at"), now)
        return dosing.record_assessment(site, enrolment.id, data, actor=current_actor(),
                                        now=now)

    return _act(site, enrolment, "assess", AssessmentForm, act, "intoxication_signs")


@bp.post("/sites/<slug>/hat/dosing/<int:enrolment_id>/dose")
@site_role_required(*ROLES)
@idempotent
def dose(site, enrolment_id):
    enrolment = get_enrolment(site, enrolment_id)
    return _act(site, enrolment, "dose", DoseForm, lambda data, now: dosing.record_dose(
        site, enrolment.id, data, actor=current_actor(), now=now))


@bp.post("/sites/<slug>/hat/dosing/<int:enrolment_id>/not-given")
@site_role_required(*ROLES)
@idempotent
def not_given(site, enrolment_id):
    enrolment = get_enrolment(site, enrolment_id)
    return _act(site, enrolment, "not_given", NotGivenForm,
                lambda data, now: dosing.record_not_given(
                    site, enrolment.id, data, actor=current_actor(), now=now))
