"""Heroin-assisted treatment: enrol a patient, read a patient's record (with the legal
identity: prescribers and pharmacists only, every read audited), sign a prescription.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.hat import dosing, missed, service
from srs.hat.dosing_schemas import (
    AssessmentInputSchema,
    AssessmentSchema,
    DoseInputSchema,
    DoseSchema,
    DosingTodaySchema,
    NotGivenInputSchema,
)
from srs.hat.missed_schemas import (
    EnrolmentStateSchema,
    HoldReviewSchema,
    TakeHomeDoseSchema,
    TakeHomeInputSchema,
    TakeHomeSchema,
    UrineTestInputSchema,
    UrineTestSchema,
)
from srs.hat.schemas import (
    EnrolmentSchema,
    EnrolSchema,
    PatientSchema,
    PrescriptionInputSchema,
    SignedPrescriptionSchema,
)
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_hat", __name__, url_prefix="/api/v1",
                description="Heroin-assisted treatment: patients and prescriptions")
PRESCRIBING = (Role.PRESCRIBER,)
CONFLICT = {409: {"description": "The client is enrolled already, or the patient's "
                                 "treatment has ended."}}


@blp.post("/sites/<int:site_id>/hat/patients")
@blp.doc(operationId="enrolPatient", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*PRESCRIBING)
@idempotent
@blp.arguments(EnrolSchema)
@blp.response(201, EnrolmentSchema)
def enrol_patient(data, site_id):
    """Enrol a client the site knows (by code) in treatment: legal name, date of birth and
    health number (stored encrypted, never answered here), the eligibility checklist, signed
    with the prescriber's PIN (422 for a wrong one)."""
    return service.enrol(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.get("/sites/<int:site_id>/hat/patients/<int:enrolment_id>")
@blp.doc(operationId="getPatient", security=SECURITY)
@token_required(*service.IDENTITY_READERS)
@blp.response(200, PatientSchema)
def get_patient(site_id, enrolment_id):
    """A patient's record with their legal identity, the prescription in force and every
    version; the read is audited."""
    return service.open_patient(get_site(site_id), enrolment_id, actor=api_actor(),
                                now=utcnow())


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/prescriptions")
@blp.doc(operationId="createPrescription", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*PRESCRIBING)
@idempotent
@blp.arguments(PrescriptionInputSchema)
@blp.response(201, SignedPrescriptionSchema)
def create_prescription(data, site_id, enrolment_id):
    """Sign a new version of the patient's prescription with the prescriber's PIN (earlier
    versions are kept). 422 ``cap_exceeded`` above a hard cap of the site: no role can
    override one. ``warnings`` says when an IV total is above the site's warning line."""
    prescription, warnings = service.create_prescription(
        get_site(site_id), enrolment_id, data, actor=api_actor(), now=utcnow())
    return {"prescription": prescription, "warnings": warnings}


# --- The dosing session ----------------------------------------------------------------------

DOSE_REFUSED = {409: {"description": "No pre-dose assessment that let the dose go ahead "
                                     "within the hour, dosing held until a prescriber "
                                     "reviews, no prescription in force today, the treatment "
                                     "ended, or more than the register line holds."}}
ENDED = {409: {"description": "The patient's treatment has ended."}}


@blp.get("/sites/<int:site_id>/hat/dosing")
@blp.doc(operationId="listDosingToday", security=SECURITY)
@token_required(*dosing.DOSING_ROLES)
@blp.response(200, DosingTodaySchema)
def list_dosing_today(site_id):
    """Patients with a prescription in force today, by client code and handle (never an
    identity): each one's doses today of the sessions a day, the earliest time of the next,
    flags (``on_hold``, ``retitrate_due``, ``withheld_today``) and last assessment."""
    site = get_site(site_id)
    now = utcnow()
    return {"day": site.local_date(now), "patients": dosing.dosing_today(site, now=now)}


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/assessments")
@blp.doc(operationId="recordPreDoseAssessment", security=SECURITY, responses=ENDED,
         **IDEMPOTENCY)
@token_required(*dosing.DOSING_ROLES)
@idempotent
@blp.arguments(AssessmentInputSchema)
@blp.response(201, AssessmentSchema)
def record_pre_dose_assessment(data, site_id, enrolment_id):
    """The check before a dose. At the site's withhold score (default POSS 3) the dose is
    withheld and the prescriber told (``outcome`` ``withheld``); at its console score
    (default 4) the overdose console opens too (``console``, ``response_id``)."""
    return dosing.record_assessment(get_site(site_id), enrolment_id, data,
                                    actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/doses")
@blp.doc(operationId="recordDose", security=SECURITY, responses=DOSE_REFUSED, **IDEMPOTENCY)
@token_required(*dosing.DOSING_ROLES)
@idempotent
@blp.arguments(DoseInputSchema)
@blp.response(201, DoseSchema)
def record_dose(data, site_id, enrolment_id):
    """A dose drawn from the register and given, in one unit of work: nothing is saved on a
    refusal. 422 ``cap_exceeded`` for anything the prescription or the site's hard caps
    refuse (no role can override a cap), the interval, the top-up rules, the step-up and
    first-day rules; 422 for a register line of another drug or a wrong witness PIN."""
    return dosing.record_dose(get_site(site_id), enrolment_id, data, actor=api_actor(),
                              now=utcnow())


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/doses-not-given")
@blp.doc(operationId="recordDoseNotGiven", security=SECURITY, responses=ENDED, **IDEMPOTENCY)
@token_required(*dosing.DOSING_ROLES)
@idempotent
@blp.arguments(NotGivenInputSchema)
@blp.response(201, DoseSchema)
def record_dose_not_given(data, site_id, enrolment_id):
    """A session's dose not given: withheld, declined or missed, with the reason."""
    return dosing.record_not_given(get_site(site_id), enrolment_id, data, actor=api_actor(),
                                   now=utcnow())


# --- Holds, the enrolment's state, urine tests and take-home doses (srs.hat.missed) ------------

NOT_HELD = {409: {"description": "The patient's dosing is not on hold."}}
STATE_CONFLICT = {409: {"description": "The patient is on hold already, or the treatment has "
                                       "ended."}}
NO_TAKE_HOME = {409: {"description": "These take-home doses were given out already."}}


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/hold-review")
@blp.doc(operationId="reviewDosingHold", security=SECURITY, responses=NOT_HELD,
         **IDEMPOTENCY)
@token_required(*PRESCRIBING)
@idempotent
@blp.arguments(HoldReviewSchema)
@blp.response(200, EnrolmentSchema)
def review_dosing_hold(data, site_id, enrolment_id):
    """A prescriber lifts a patient's dosing hold (after missed days, or their own) with a
    reason, signed with their PIN (422 for a wrong one). ``retitrate_due`` stays until a new
    prescription version is signed."""
    return missed.review_hold(get_site(site_id), enrolment_id, data, actor=api_actor(),
                              now=utcnow())


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/state")
@blp.doc(operationId="updateEnrolmentState", security=SECURITY, responses=STATE_CONFLICT,
         **IDEMPOTENCY)
@token_required(*PRESCRIBING)
@idempotent
@blp.arguments(EnrolmentStateSchema)
@blp.response(200, EnrolmentSchema)
def update_enrolment_state(data, site_id, enrolment_id):
    """A prescriber holds a patient's dosing (``on_hold``) or ends the treatment (``ended``:
    the patient leaves the dosing list), with a reason, signed with their PIN."""
    return missed.update_state(get_site(site_id), enrolment_id, data, actor=api_actor(),
                               now=utcnow())


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/urine-tests")
@blp.doc(operationId="recordUrineTest", security=SECURITY, responses=ENDED, **IDEMPOTENCY)
@token_required(*missed.URINE_RECORDERS)
@idempotent
@blp.arguments(UrineTestInputSchema)
@blp.response(201, UrineTestSchema)
def record_urine_test(data, site_id, enrolment_id):
    """A urine test's result, by a nurse or prescriber: take-home doses need the last two
    clear."""
    return missed.record_urine_test(get_site(site_id), enrolment_id, data, actor=api_actor(),
                                    now=utcnow())


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/take-home")
@blp.doc(operationId="authoriseTakeHome", security=SECURITY, responses=ENDED, **IDEMPOTENCY)
@token_required(*PRESCRIBING)
@idempotent
@blp.arguments(TakeHomeInputSchema)
@blp.response(201, TakeHomeSchema)
def authorise_take_home(data, site_id, enrolment_id):
    """A prescriber authorises take-home doses for ``days`` days, signed with their PIN.
    422 ``take_home_refused`` where the site does not allow them, above its cap, while the
    patient restarts, or when a Swiss condition is unmet: ``errors.conditions`` names each
    (6 months of continuous treatment, the last two urine tests clear, contact at least
    twice a week over the last 4 weeks)."""
    return missed.authorise_take_home(get_site(site_id), enrolment_id, data,
                                      actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/hat/patients/<int:enrolment_id>/take-home/<int:take_home_id>"
          "/given")
@blp.doc(operationId="giveTakeHomeDoses", security=SECURITY, responses=NO_TAKE_HOME,
         **IDEMPOTENCY)
@token_required(*missed.TAKE_HOME_GIVERS)
@idempotent
@blp.response(201, TakeHomeDoseSchema(many=True))
def give_take_home_doses(site_id, enrolment_id, take_home_id):
    """Record the authorised take-home doses as given out: one dose a session for each
    day, held to the site's caps; they count as doses for missed days. 422 while the
    patient restarts or above a cap."""
    return missed.give_take_home(get_site(site_id), enrolment_id, take_home_id,
                                 actor=api_actor(), now=utcnow())
