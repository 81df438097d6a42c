"""Heroin-assisted treatment: enrol a patient, read a patient's record (with the legal
identity: prescribers and pharmacists only, every read audited), sign a prescription.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.common import utcnow
from srs.hat import service
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
