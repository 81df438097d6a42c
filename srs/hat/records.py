"""What treatment holds about a client, for their access request, and the legal names the
controlled-drug register's own export prints for the people supplied.

Both decrypt a legal identity, so both audit each read (``patient_identity_read`` on the
enrolment, ids only): the client's export through its sections' ``read_action``, the
register's here, in the export's unit of work.
"""

from datetime import datetime

from srs import signals
from srs.auth.service import Actor, record
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.extensions import db
from srs.hat import identity
from srs.hat.models import HatAssessment, HatDose, HatEnrolment, HatPrescription
from srs.hat.service import may_read_identity
from srs.sites.models import Site

ENROLMENT_COLUMNS = ("id", "state", "enrolled_at", "enrolled_by", "ended_at", "hold_reason",
                     "held_at", "eligibility", "eligibility_signed_by",
                     "eligibility_signed_at", "legal_name", "date_of_birth", "health_number")


UNREADABLE = "(unreadable: the identity key was changed)"


def _read(token: str | None) -> str | None:
    try:
        return identity.decrypt(token)
    except identity.IdentityUnreadable:
        return UNREADABLE


def _enrolment_row(enrolment: HatEnrolment) -> dict:
    row = {name: getattr(enrolment, name) for name in ENROLMENT_COLUMNS[:10]}
    row.update(legal_name=_read(enrolment.legal_name_enc),
               date_of_birth=_read(enrolment.date_of_birth_enc),
               health_number=_read(enrolment.health_number_enc))
    return row


@signals.client_record.connect
def treatment_records(client: Client) -> list[Section]:
    """The client's enrolments (their own legal identity with them: the export audits each
    read), prescriptions, pre-dose assessments and doses given or not."""
    enrolments = list(db.session.execute(
        db.select(HatEnrolment).where(HatEnrolment.client_id == client.id)
        .order_by(HatEnrolment.enrolled_at, HatEnrolment.id)).scalars())
    ids = [e.id for e in enrolments]

    def of_enrolments(model, *order):
        if not ids:
            return []
        return list(db.session.execute(db.select(model).where(
            model.enrolment_id.in_(ids)).order_by(*order)).scalars())

    return [
        Section("hat_enrolment", "Treatment enrolments", ENROLMENT_COLUMNS,
                [_enrolment_row(e) for e in enrolments], audit_entity="hat_enrolment",
                read_action="patient_identity_read"),
        section("hat_prescription", "Treatment prescriptions",
                of_enrolments(HatPrescription, HatPrescription.enrolment_id,
                              HatPrescription.version), (
                    "id", "enrolment_id", "version", "medication", "route", "dose_mg",
                    "sessions_per_day", "min_interval_minutes", "titration",
                    "titration_days", "top_up_allowed", "top_up_max_mg", "oral_oat",
                    "starts_on", "ends_on", "signed_by", "signed_at"),
                audit_entity="hat_prescription"),
        section("hat_assessment", "Pre-dose assessments",
                of_enrolments(HatAssessment, HatAssessment.at, HatAssessment.id), (
                    "id", "enrolment_id", "at", "nurse_id", "poss", "intoxication_signs",
                    "last_use_at", "notes", "outcome", "reason")),
        section("hat_dose", "Treatment doses (given or not)",
                of_enrolments(HatDose, HatDose.day, HatDose.at, HatDose.id), (
                    "id", "enrolment_id", "prescription_id", "day", "at", "outcome",
                    "dose_mg", "top_up", "take_home", "nurse_id", "witness_id", "reason")),
    ]


@signals.register_names.connect
def register_names(site: Site, *, client_ids: list[int], actor: Actor,
                   now: datetime | None) -> dict[int, str] | None:
    """The legal names of the patients among ``client_ids``, for a prescriber or pharmacist
    at the site (None for anyone else); each enrolment read is audited."""
    if not may_read_identity(site, actor):
        return None
    enrolments = db.session.execute(
        db.select(HatEnrolment).where(HatEnrolment.site_id == site.id,
                                      HatEnrolment.client_id.in_(client_ids),
                                      HatEnrolment.legal_name_enc.is_not(None))
        .order_by(HatEnrolment.enrolled_at, HatEnrolment.id)).scalars()
    latest = {e.client_id: e for e in enrolments}  # a patient enrolled again: the latest
    names = {}
    for client_id, enrolment in latest.items():
        names[client_id] = _read(enrolment.legal_name_enc)
        record(actor, "patient_identity_read", "hat_enrolment", enrolment.id,
               site_id=site.id, now=now, detail={"via": "controlled_register_exported"})
    return names
