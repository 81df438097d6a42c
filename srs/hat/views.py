"""Prescribers' pages of heroin-assisted treatment: the patients (codes and handles, never
an identity), the enrolment form, a patient's page (the identity, for a prescriber or
pharmacist, every read audited) and the prescription form with every version signed."""

from datetime import timedelta

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.common import utcnow
from srs.errors import DomainError, field_messages
from srs.forms import form_input
from srs.hat import dosing, missed, service
from srs.hat.missed_schemas import (
    EmptyForm,
    EnrolmentStateForm,
    HoldReviewForm,
    TakeHomeForm,
    UrineTestForm,
)
from srs.hat.models import ELIGIBILITY, MEDICATIONS, ROUTES, TITRATIONS
from srs.hat.schemas import EnrolForm, PrescriptionForm
from srs.idempotency import idempotent
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("hat", __name__)

PRESCRIBING = (Role.PRESCRIBER,)
READERS = service.IDENTITY_READERS


@template_globals(bp)
def hat_vocabulary():
    return {"HAT_ELIGIBILITY": ELIGIBILITY, "HAT_MEDICATIONS": MEDICATIONS,
            "HAT_ROUTES": ROUTES, "HAT_TITRATIONS": TITRATIONS}


@bp.get("/sites/<slug>/hat")
@site_role_required(*READERS)
def patients(site):
    """The site's treatment patients by code and handle: no identity is read here."""
    now = utcnow()
    today = site.local_date(now)
    return render_template("hat/patients.html", site=site, today=today, patients=[
        (p, service.current_prescription(p, today)) for p in service.list_patients(site)],
        withheld=dosing.withheld_today(site, now=now))


def _enrol_page(site, status=200, **context):
    context.setdefault("form", {})
    context.setdefault("errors", {})
    return render_template("hat/enrol.html", site=site, **context), status


@bp.get("/sites/<slug>/hat/enrol")
@site_role_required(*PRESCRIBING)
def enrol_form(site):
    return _enrol_page(site, form={"code": request.args.get("code", "")})


@bp.post("/sites/<slug>/hat/enrol")
@site_role_required(*PRESCRIBING)
def enrol(site):
    """Enrol a client in treatment; a refusal gives the form back as typed (but the PIN).

    Not keyed (``idempotent``): a keyed answer is stored as rendered, and this form's answer
    holds the identity typed in plain text. A repeat is refused anyway (enrolled already).
    """
    typed = form_input(request.form)
    typed.pop("pin", None)
    try:
        data = EnrolForm().load(form_input(request.form))
        enrolment = service.enrol(site, data, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _enrol_page(site, 422, form=typed, errors=field_messages(err.messages),
                           message="Check the marked fields.")
    except DomainError as err:
        return _enrol_page(site, err.status, form=typed, errors=err.errors,
                           message=err.message)
    return redirect(url_for("hat.patient", slug=site.slug, enrolment_id=enrolment.id), 303)


def _patient_page(site, enrolment_id, status=200, **context):
    """The patient's page: identity (the read audited), eligibility, the prescription, the
    dosing hold and its review, urine tests and take-home doses. ``context`` carries a
    refused form's ``form_name``, ``form``, ``errors`` and ``message``."""
    now = utcnow()
    record = service.open_patient(site, enrolment_id, actor=current_actor(), now=now)
    enrolment = record["enrolment"]
    context.setdefault("form", {})
    context.setdefault("errors", {})
    context.setdefault("form_name", None)
    return render_template(
        "hat/patient.html", site=site, **record,
        eligibility=service.eligibility_rows(enrolment),
        missed_days=missed.missed_run(enrolment, site.local_date(now) - timedelta(days=1)),
        urine_tests=missed.urine_tests(enrolment)[:5],
        take_home=missed.check_take_home(enrolment, now=now),
        take_home_open=missed.open_take_home(enrolment),
        withheld=dosing.withheld_today(site, now=now, enrolment_id=enrolment_id),
        **context), status


@bp.get("/sites/<slug>/hat/patients/<int:enrolment_id>")
@site_role_required(*READERS)
def patient(site, enrolment_id):
    """The patient's page with their legal identity; the read is audited."""
    return _patient_page(site, enrolment_id)


def _patient_post(site, enrolment_id, form_name, schema, act):
    """A form on the patient's page: done, back to the page (303); refused, the page again
    with the reason beside the form's fields and what was typed (but the PIN)."""
    typed = form_input(request.form)
    typed.pop("pin", None)
    try:
        data = schema.load(form_input(request.form))
        act(data)
    except ValidationError as err:
        return _patient_page(site, enrolment_id, 422, form_name=form_name, form=typed,
                             errors=field_messages(err.messages),
                             message="Check the marked fields.")
    except DomainError as err:
        return _patient_page(site, enrolment_id, err.status, form_name=form_name, form=typed,
                             errors=err.errors, message=err.message)
    return redirect(url_for("hat.patient", slug=site.slug, enrolment_id=enrolment_id), 303)


@bp.post("/sites/<slug>/hat/patients/<int:enrolment_id>/hold-review")
@site_role_required(*PRESCRIBING)
def review_hold(site, enrolment_id):
    """Lift the patient's dosing hold: the prescriber's review, with a reason and PIN."""
    return _patient_post(site, enrolment_id, "review", HoldReviewForm(), lambda data: (
        missed.review_hold(site, enrolment_id, data, actor=current_actor(), now=utcnow())))


@bp.post("/sites/<slug>/hat/patients/<int:enrolment_id>/state")
@site_role_required(*PRESCRIBING)
def change_state(site, enrolment_id):
    """Hold the patient's dosing or end the treatment, with a reason and PIN."""
    return _patient_post(site, enrolment_id, "state", EnrolmentStateForm(), lambda data: (
        missed.update_state(site, enrolment_id, data, actor=current_actor(), now=utcnow())))


@bp.post("/sites/<slug>/hat/patients/<int:enrolment_id>/urine-tests")
@site_role_required(*PRESCRIBING)
def record_urine_test(site, enrolment_id):
    """A urine test's result (nurses record theirs through the API)."""
    return _patient_post(site, enrolment_id, "urine", UrineTestForm(), lambda data: (
        missed.record_urine_test(site, enrolment_id, data, actor=current_actor(),
                                 now=utcnow())))


@bp.post("/sites/<slug>/hat/patients/<int:enrolment_id>/take-home")
@site_role_required(*PRESCRIBING)
def authorise_take_home(site, enrolment_id):
    """Authorise take-home doses: refused with every unmet condition named."""
    return _patient_post(site, enrolment_id, "take_home", TakeHomeForm(), lambda data: (
        missed.authorise_take_home(site, enrolment_id, data, actor=current_actor(),
                                   now=utcnow())))


@bp.post("/sites/<slug>/hat/patients/<int:enrolment_id>/take-home/<int:take_home_id>/given")
@site_role_required(Role.PRESCRIBER, Role.PHARMACIST)
def give_take_home(site, enrolment_id, take_home_id):
    """Record the authorised take-home doses as given out."""
    return _patient_post(site, enrolment_id, "give", EmptyForm(), lambda _data: (
        missed.give_take_home(site, enrolment_id, take_home_id, actor=current_actor(),
                              now=utcnow())))


def _prescription_page(site, enrolment, status=200, **context):
    context.setdefault("form", {})
    context.setdefault("errors", {})
    today = site.local_date(utcnow())
    return render_template(
        "hat/prescription.html", site=site, enrolment=enrolment, today=today,
        current=service.current_prescription(enrolment, today),
        versions=sorted(enrolment.prescriptions, key=lambda p: p.version, reverse=True),
        **context), status


@bp.get("/sites/<slug>/hat/patients/<int:enrolment_id>/prescriptions")
@site_role_required(*READERS)
def prescriptions(site, enrolment_id):
    """Every version of the patient's prescription, and (for a prescriber) the form that
    signs a new one, filled from the one in force."""
    enrolment = service.get_enrolment(site, enrolment_id)
    current = service.current_prescription(enrolment, site.local_date(utcnow()))
    form = {}
    if current is not None:
        form = {name: getattr(current, name) for name in (
            "medication", "route", "dose_mg", "sessions_per_day", "min_interval_minutes",
            "titration", "top_up_max_mg", "oral_oat")}
        form["titration_days"] = " ".join(f"{d:g}" for d in current.titration_days)
        form["top_up_allowed"] = current.top_up_allowed
        form = {k: f"{v:g}" if isinstance(v, float) else v for k, v in form.items()
                if v is not None}
    return _prescription_page(site, enrolment, form=form)


@bp.post("/sites/<slug>/hat/patients/<int:enrolment_id>/prescriptions")
@site_role_required(*PRESCRIBING)
@idempotent
def prescribe(site, enrolment_id):
    """Sign a new version; a refusal (a hard cap, a wrong PIN) gives the form back as
    typed (but the PIN) with the reason beside its field."""
    enrolment = service.get_enrolment(site, enrolment_id)
    typed = form_input(request.form)
    typed.pop("pin", None)
    try:
        data = PrescriptionForm().load(form_input(request.form))
        prescription, warnings = service.create_prescription(
            site, enrolment.id, data, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _prescription_page(site, enrolment, 422, form=typed,
                                  errors=field_messages(err.messages),
                                  message="Check the marked fields.")
    except DomainError as err:
        return _prescription_page(site, enrolment, err.status, form=typed,
                                  errors=err.errors, message=err.message)
    return _prescription_page(site, enrolment, signed=prescription, warnings=warnings)
