"""The dosing session on the floor: who is due today, the check before each dose, the dose
drawn from the register and given, or not given and why.

Each write is one unit of work: check, change, audit (ids only), announce (topic ``hat``,
no identity and no code in it), commit once; any refusal saves nothing. Every function
takes ``actor=`` and ``now=``.

The floor's timers: a dose given to a patient with an open visit is linked to it, and the
visit's booth time becomes the site's injection window and its after-care the site's HAT
after-care time (longer while the prescription titrates), through
``signals.visit_timers`` (the floor imports nothing of this package).
"""

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from srs import live, signals
from srs.auth.models import Role
from srs.auth.service import Actor, record
from srs.booths.models import OPEN_STATES, Visit, VisitState
from srs.controlled import service as register
from srs.controlled.models import ControlledDrug
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.hat.models import (
    POSS_SCORES,
    HatAssessment,
    HatDose,
    HatEnrolment,
    HatPrescription,
)
from srs.hat.service import (
    DAY_ONE_GAP,
    CapExceeded,
    check_dose,
    current_prescription,
    diaphin_day_one,
    get_enrolment,
)
from srs.overdose import service as overdose
from srs.sites.models import Site

TOPIC = "hat"
# Who runs the dosing session.
DOSING_ROLES = (Role.NURSE, Role.PRESCRIBER, Role.PHARMACIST, Role.SUPERVISOR)
# A dose needs a pre-dose assessment that let it go ahead, this recent.
ASSESSMENT_VALID_FOR = timedelta(hours=1)
POSS_LABELS = {0: "S: asleep, easy to rouse", 1: "1: awake and alert",
               2: "2: slightly drowsy, easily roused",
               3: "3: frequently drowsy, drifts off mid-sentence",
               4: "4: somnolent, minimal or no response"}
# Signs of intoxication the nurse looks for before a dose (CRISM: rule intoxication out).
INTOXICATION_SIGNS = (
    ("pinpoint_pupils", "Pinpoint pupils"),
    ("nodding", "Nodding off"),
    ("slurred_speech", "Slurred speech"),
    ("slow_breathing", "Slow or shallow breathing"),
    ("unsteady", "Unsteady on their feet"),
    ("alcohol", "Smells of alcohol"),
    ("stimulant", "Agitated or stimulant signs"),
)
INTOXICATION_KEYS = tuple(key for key, _label in INTOXICATION_SIGNS)
NOT_GIVEN = ("withheld", "declined", "missed")
# Other names a register line may carry for each medication.
DRUG_NAMES = {"diacetylmorphine": ("diacetylmorphine", "diamorphine", "heroin", "diaphin"),
              "hydromorphone": ("hydromorphone", "dilaudid")}
HELD = "Dosing is held until a prescriber reviews."


def _field(name: str, message: str) -> Invalid:
    return Invalid(message, {name: [message]})


# --- Reading -----------------------------------------------------------------------------------


def _given(enrolment_id: int, day: date | None = None):
    query = db.select(HatDose).where(HatDose.enrolment_id == enrolment_id,
                                     HatDose.outcome == "given")
    if day is not None:
        query = query.where(HatDose.day == day)
    return query.order_by(HatDose.at)


def last_given(enrolment_id: int) -> HatDose | None:
    return db.session.execute(_given(enrolment_id).order_by(None).order_by(
        HatDose.at.desc()).limit(1)).scalar_one_or_none()


def latest_assessment(enrolment_id: int) -> HatAssessment | None:
    return db.session.execute(db.select(HatAssessment).where(
        HatAssessment.enrolment_id == enrolment_id).order_by(
        HatAssessment.at.desc(), HatAssessment.id.desc()).limit(1)).scalar_one_or_none()


def open_visit(enrolment: HatEnrolment) -> Visit | None:
    """The patient's visit on the floor now (checked in, in a booth or in after-care)."""
    return db.session.execute(db.select(Visit).where(
        Visit.client_id == enrolment.client_id, Visit.site_id == enrolment.site_id,
        Visit.state.in_([str(s) for s in OPEN_STATES])).order_by(Visit.id.desc()).limit(1)
    ).scalar_one_or_none()


@dataclass
class DosingRow:
    """A patient due today: code and handle only, never an identity."""

    enrolment: HatEnrolment
    prescription: HatPrescription
    doses: list[HatDose]
    sessions_given: int
    next_at: datetime | None
    on_hold: bool
    retitrate_due: bool
    withheld_today: list[HatDose]
    last_assessment: HatAssessment | None
    visit: Visit | None
    flags: list[str] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.enrolment.client.code

    @property
    def handle(self) -> str | None:
        return self.enrolment.client.handle


def _next_at(prescription: HatPrescription, last: HatDose | None, today: date,
             sessions_given: int) -> datetime | None:
    if last is None:
        return None
    if diaphin_day_one(prescription, today):
        return last.at + DAY_ONE_GAP if sessions_given >= 2 else None
    return last.at + timedelta(minutes=prescription.min_interval_minutes)


def patient_row(enrolment: HatEnrolment, *, now: datetime) -> DosingRow | None:
    """A patient's dosing today, or None without a prescription in force today."""
    today = enrolment.site.local_date(now)
    prescription = current_prescription(enrolment, today)
    if prescription is None or enrolment.state == "ended":
        return None
    doses = list(db.session.execute(db.select(HatDose).where(
        HatDose.enrolment_id == enrolment.id, HatDose.day == today)
        .order_by(HatDose.at)).scalars())
    given = [d for d in doses if d.outcome == "given"]
    sessions = sum(1 for d in given if not d.top_up)
    withheld = [d for d in doses if d.outcome == "withheld"]
    row = DosingRow(
        enrolment=enrolment, prescription=prescription, doses=doses, sessions_given=sessions,
        next_at=_next_at(prescription, last_given(enrolment.id), today, sessions),
        on_hold=enrolment.state == "on_hold", retitrate_due=bool(enrolment.retitrate_due),
        withheld_today=withheld, last_assessment=latest_assessment(enrolment.id),
        visit=open_visit(enrolment))
    if row.on_hold:
        row.flags.append("on_hold")
    if row.retitrate_due:
        row.flags.append("retitrate_due")
    if withheld:
        row.flags.append("withheld_today")
    return row


def dosing_today(site: Site, *, now: datetime) -> list[DosingRow]:
    """The site's patients with a prescription in force today, by code: what each had
    today, the earliest time each may dose next, their flags and last assessment."""
    enrolments = db.session.execute(db.select(HatEnrolment).where(
        HatEnrolment.site_id == site.id, HatEnrolment.state != "ended")).scalars()
    rows = [row for enrolment in enrolments
            if (row := patient_row(enrolment, now=now)) is not None]
    return sorted(rows, key=lambda r: (r.on_hold, r.next_at or now, r.code))


def withheld_today(site: Site, *, now: datetime, enrolment_id: int | None = None
                   ) -> list[HatDose]:
    """Doses withheld today (the prescriber's list): newest first."""
    query = db.select(HatDose).where(HatDose.site_id == site.id, HatDose.outcome == "withheld",
                                     HatDose.day == site.local_date(now))
    if enrolment_id is not None:
        query = query.where(HatDose.enrolment_id == enrolment_id)
    return list(db.session.execute(query.order_by(HatDose.at.desc())).scalars())


def register_lines(site: Site, medication: str) -> list[ControlledDrug]:
    """The site's register lines a dose of ``medication`` may be drawn from."""
    names = DRUG_NAMES[medication]
    return [drug for drug in db.session.execute(db.select(ControlledDrug).where(
        ControlledDrug.site_id == site.id).order_by(ControlledDrug.name,
                                                    ControlledDrug.strength)).scalars()
            if any(name in drug.name.lower() for name in names)]


# --- The assessment ------------------------------------------------------------------------


def _live_enrolment(site: Site, enrolment_id: int) -> HatEnrolment:
    enrolment = get_enrolment(site, enrolment_id)
    if enrolment.state == "ended":
        raise Conflict("This patient's treatment has ended.")
    return enrolment


def record_assessment(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                      now: datetime) -> HatAssessment:
    """The check before a dose: POSS, signs of intoxication, time of last use, notes.

    At the site's withhold score (default POSS 3) the dose is withheld: a dose record
    "withheld" with the reason, on the prescriber's list. At the console score (default 4)
    the overdose console opens for the patient too (for their visit when they are in a
    booth or after-care, else where they are). Raises Invalid, NotFound, Conflict.
    """
    enrolment = _live_enrolment(site, enrolment_id)
    poss = data.get("poss")
    if poss not in POSS_SCORES:
        raise _field("poss", "Choose the POSS score: S, 1, 2, 3 or 4.")
    signs = list(dict.fromkeys(data.get("intoxication_signs") or []))
    unknown = [s for s in signs if s not in INTOXICATION_KEYS]
    if unknown:
        raise _field("intoxication_signs", f"Unknown sign: {', '.join(unknown)}.")
    last_use = data.get("last_use_at")
    if last_use is not None and last_use > now:
        raise _field("last_use_at", "The last use is not in the future.")
    notes = (data.get("notes") or "").strip() or None
    if notes and len(notes) > 500:
        raise _field("notes", "At most 500 characters.")
    today = site.local_date(now)
    prescription = current_prescription(enrolment, today)
    if poss >= site.hat_poss_console:
        outcome = "console"
        reason = (f"POSS {poss} (console at {site.hat_poss_console}): dose withheld, overdose "
                  f"console opened, prescriber told.")
    elif poss >= site.hat_poss_withhold:
        outcome = "withheld"
        reason = (f"POSS {poss} (withhold at {site.hat_poss_withhold}): dose withheld, "
                  f"prescriber told.")
    else:
        outcome, reason = "proceed", None
    assessment = HatAssessment(
        site_id=site.id, enrolment_id=enrolment.id, at=now, nurse_id=actor.staff_id, poss=poss,
        intoxication_signs=signs, last_use_at=last_use, notes=notes, outcome=outcome,
        reason=reason)
    db.session.add(assessment)
    db.session.flush()
    if outcome == "console":
        assessment.response_id = _open_console(site, enrolment, actor=actor, now=now).id
    if outcome != "proceed":
        dose = HatDose(site_id=site.id, enrolment_id=enrolment.id,
                       prescription_id=prescription.id if prescription else None,
                       assessment_id=assessment.id, day=today, at=now, outcome="withheld",
                       nurse_id=actor.staff_id, reason=reason,
                       visit_id=(visit.id if (visit := open_visit(enrolment)) else None))
        db.session.add(dose)
        db.session.flush()
        record(actor, "hat_dose_not_given", "hat_dose", dose.id, site_id=site.id, now=now,
               detail={"enrolment_id": enrolment.id, "outcome": "withheld",
                       "assessment_id": assessment.id})
    record(actor, "hat_assessment_recorded", "hat_assessment", assessment.id, site_id=site.id,
           now=now, detail={"enrolment_id": enrolment.id, "poss": poss, "outcome": outcome,
                            "response_id": assessment.response_id})
    live.announce(site.id, TOPIC)
    db.session.commit()
    return assessment


def _open_console(site: Site, enrolment: HatEnrolment, *, actor: Actor, now: datetime):
    """The overdose console for the patient: for their visit in a booth or after-care, else
    at the waiting room (or the site's first place) with the client named."""
    visit = open_visit(enrolment)
    if visit is not None and visit.state in (VisitState.IN_BOOTH, VisitState.OBSERVING):
        response, _created = overdose.open_response(site, kind="opioid", visit=visit,
                                                    actor=actor, now=now)
        return response
    places = site.overdose_locations or []
    place = "Waiting room" if "Waiting room" in places else (places[0] if places else None)
    if place is None:
        raise Conflict("This site lists no place for an overdose response: open the console "
                       "by hand, and add the places in the site's settings.")
    response, _created = overdose.open_response(site, kind="opioid", location=place,
                                                actor=actor, now=now)
    if response.client_id is None:
        response.client_id = enrolment.client_id
    return response


# --- The dose -----------------------------------------------------------------------------------


def _usable_assessment(enrolment: HatEnrolment, *, now: datetime) -> HatAssessment:
    assessment = latest_assessment(enrolment.id)
    if assessment is None or assessment.at < now - ASSESSMENT_VALID_FOR or assessment.at > now:
        raise Conflict("No dose without a pre-dose assessment: record one first (it holds "
                       "for an hour).", errors={"assessment": ["Assess the patient first."]})
    if assessment.outcome != "proceed":
        raise Conflict(f"The last assessment withheld the dose: {assessment.reason}",
                       errors={"assessment": ["The dose is withheld."]})
    used = db.session.execute(db.select(HatDose.id).where(
        HatDose.assessment_id == assessment.id, HatDose.outcome == "given").limit(1)
    ).scalar_one_or_none()
    if used is not None:
        raise Conflict("That assessment was for the dose already given: assess the patient "
                       "again before the next.", errors={"assessment": ["Assess again."]})
    return assessment


def in_titration(prescription: HatPrescription, day: date) -> bool:
    """Whether the prescription still titrates on ``day``: a plan's days, or under the
    step-up rule until a session's dose reached the prescribed dose on an earlier day."""
    if prescription.titration == "plan":
        return 0 <= (day - prescription.starts_on).days < len(prescription.titration_days)
    if prescription.titration == "step_up":
        reached = db.session.execute(db.select(HatDose.id).where(
            HatDose.prescription_id == prescription.id, HatDose.outcome == "given",
            HatDose.top_up.is_(False), HatDose.day < day,
            HatDose.dose_mg >= prescription.dose_mg).limit(1)).scalar_one_or_none()
        return reached is None
    return False


def record_dose(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                now: datetime) -> HatDose:
    """A dose drawn from the register and given, in one unit of work.

    ``data``: ``dose_mg``, ``top_up``, ``drug_id`` (a register line of the medication),
    ``quantity`` (the register's units drawn for the dose), ``identity_checked``, optionally
    ``waste_quantity`` (units taken out beyond the dose and wasted: their own register entry,
    witnessed) with ``waste_reason``, ``waste_witness_id`` and ``waste_witness_pin``, and
    optionally a second staff member witnessing the dose (``witness_id``, ``witness_pin``).

    Refused (nothing saved) without a pre-dose assessment that let it go ahead within the
    hour, while dosing is held, for anything :func:`srs.hat.service.check_dose` refuses
    (hard caps for every role, the interval, the top-up rules, the step-up and first-day
    rules), for a register line of another drug or more than its balance. Raises Invalid,
    Conflict (CapExceeded is an Invalid), NotFound.
    """
    enrolment = _live_enrolment(site, enrolment_id)
    if enrolment.state == "on_hold":
        raise Conflict(HELD, errors={"enrolment": [HELD]})
    today = site.local_date(now)
    prescription = current_prescription(enrolment, today)
    if prescription is None:
        raise Conflict("No prescription is in force today.")
    assessment = _usable_assessment(enrolment, now=now)
    dose_mg = data.get("dose_mg")
    if dose_mg is None:
        raise _field("dose_mg", "Give the dose in mg.")
    top_up = bool(data.get("top_up"))
    if top_up and assessment.intoxication_signs:
        raise _field("top_up", "No top-up: the assessment saw signs of intoxication.")
    given = list(db.session.execute(_given(enrolment.id, today)).scalars())
    last = last_given(enrolment.id)
    if top_up and last is not None and last.top_up:
        raise _field("top_up", "One top-up a session: the last dose was a top-up.")
    previous = db.session.scalar(db.select(db.func.coalesce(db.func.sum(HatDose.dose_mg), 0))
                                 .where(HatDose.enrolment_id == enrolment.id,
                                        HatDose.outcome == "given",
                                        HatDose.day == today - timedelta(days=1)))
    checked = check_dose(prescription, dose_mg, sum(d.dose_mg for d in given),
                         last.at if last else None, now, top_up=top_up,
                         previous_day_total_mg=float(previous) if previous else None,
                         sessions_today=sum(1 for d in given if not d.top_up))
    if not checked.allowed:
        # The same refusal for whoever asks: a hard cap has no override.
        raise CapExceeded(" ".join(checked.reasons), {"dose_mg": checked.reasons})
    # The register line: one of the site's, of this medication.
    drug = db.session.get(ControlledDrug, data.get("drug_id")) if data.get("drug_id") else None
    if drug is None or drug not in register_lines(site, prescription.medication):
        raise _field("drug_id", f"Choose the register line of {prescription.medication} the "
                                f"dose is drawn from.")
    quantity = data.get("quantity")
    if not quantity or quantity < 1:
        raise _field("quantity", "Give how many units were drawn, a whole number above zero.")
    waste_quantity = data.get("waste_quantity") or 0
    if waste_quantity < 0:
        raise _field("waste_quantity", "A whole number, or leave it blank.")
    if waste_quantity and not (data.get("waste_reason") or "").strip():
        raise _field("waste_reason", "Say what was wasted and why.")
    # Every PIN before any write: a wrong PIN's audit is committed on its own.
    witness = None
    if data.get("witness_id"):
        if data["witness_id"] == actor.staff_id:
            raise _field("witness_id", "The witness is another person, not you.")
        witness = register.check_staff_pin(site, data["witness_id"], data.get("witness_pin"),
                                           field="witness_id", actor=actor, now=now)
    if waste_quantity:
        if data.get("waste_witness_id") == actor.staff_id:
            raise _field("waste_witness_id", "The witness is another person, not you.")
        register.check_staff_pin(site, data.get("waste_witness_id"),
                                 data.get("waste_witness_pin"), field="waste_witness_id",
                                 actor=actor, now=now)
    visit = open_visit(enrolment)
    dose = HatDose(site_id=site.id, enrolment_id=enrolment.id, prescription_id=prescription.id,
                   assessment_id=assessment.id, day=today, at=now, outcome="given",
                   dose_mg=float(dose_mg), top_up=top_up, nurse_id=actor.staff_id,
                   witness_id=witness.id if witness else None,
                   visit_id=visit.id if visit else None)
    try:
        db.session.add(dose)
        db.session.flush()
        entry = register.draw_for_dose(
            drug, client=enrolment.client, quantity=quantity,
            dose_mg=max(1, round(float(dose_mg))),
            identity_checked=bool(data.get("identity_checked")), dose_id=dose.id,
            actor=actor, now=now)
        dose.register_entry_id = entry.id
        if waste_quantity:
            register.waste(drug, {"kind": "wasted", "quantity": waste_quantity,
                                  "reason": data["waste_reason"].strip(),
                                  "witness_id": data.get("waste_witness_id"),
                                  "witness_pin": data.get("waste_witness_pin")},
                           actor=actor, now=now)
        if visit is not None:
            _time_visit(site, visit, prescription, now=now)
        record(actor, "hat_dose_given", "hat_dose", dose.id, site_id=site.id, now=now,
               detail={"enrolment_id": enrolment.id, "dose_mg": float(dose_mg),
                       "top_up": top_up, "register_entry_id": entry.id,
                       "witness_id": dose.witness_id, "visit_id": dose.visit_id})
    except Exception:
        db.session.rollback()
        raise
    live.announce(site.id, TOPIC)
    live.announce(site.id, register.TOPIC)
    db.session.commit()
    return dose


def _time_visit(site: Site, visit: Visit, prescription: HatPrescription, *,
                now: datetime) -> None:
    """A dose given to a patient already in a booth or after-care: its timer restarts on
    the treatment's times (a visit still waiting gets them as it moves on)."""
    if visit.state == VisitState.IN_BOOTH:
        visit.booth_due_at = now + timedelta(minutes=site.hat_injection_window_minutes)
    elif visit.state == VisitState.OBSERVING:
        visit.observation_ends_at = now + timedelta(minutes=aftercare_minutes(
            site, prescription, site.local_date(now)))
    else:
        return
    live.announce(site.id, "board")
    live.announce(site.id, "aftercare")


def aftercare_minutes(site: Site, prescription: HatPrescription, day: date) -> int:
    return (site.hat_aftercare_titration_minutes if in_titration(prescription, day)
            else site.hat_aftercare_minutes)


@functools.cache
def _dose_of_visit_statement():
    """The last dose given in a visit: read when a visit enters a booth and after-care."""
    return (db.select(HatDose).where(HatDose.visit_id == db.bindparam("visit_id"),
                                     HatDose.outcome == "given")
            .order_by(HatDose.at.desc()).limit(1))


@signals.visit_timers.connect
def _visit_timer(visit: Visit, *, site: Site, stage: str, now: datetime) -> int | None:
    """The injection window and after-care of a visit in which a dose was given today."""
    dose = db.session.execute(_dose_of_visit_statement(),
                              {"visit_id": visit.id}).scalar_one_or_none()
    if dose is None:
        return None
    if stage == "booth":
        return site.hat_injection_window_minutes * 60
    if stage == "observation" and dose.prescription is not None:
        return aftercare_minutes(site, dose.prescription, site.local_date(now)) * 60
    return None


# --- A dose not given ------------------------------------------------------------------------


def record_not_given(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                     now: datetime) -> HatDose:
    """A session's dose not given: withheld, declined or missed, with why (required)."""
    enrolment = _live_enrolment(site, enrolment_id)
    outcome = data.get("outcome")
    if outcome not in NOT_GIVEN:
        raise _field("outcome", "Choose withheld, declined or missed.")
    reason = (data.get("reason") or "").strip()
    if not reason:
        raise _field("reason", "Say why the dose was not given.")
    if len(reason) > 200:
        raise _field("reason", "At most 200 characters.")
    today = site.local_date(now)
    prescription = current_prescription(enrolment, today)
    visit = open_visit(enrolment)
    dose = HatDose(site_id=site.id, enrolment_id=enrolment.id,
                   prescription_id=prescription.id if prescription else None, day=today,
                   at=now, outcome=outcome, nurse_id=actor.staff_id, reason=reason,
                   visit_id=visit.id if visit else None)
    db.session.add(dose)
    db.session.flush()
    record(actor, "hat_dose_not_given", "hat_dose", dose.id, site_id=site.id, now=now,
           detail={"enrolment_id": enrolment.id, "outcome": outcome})
    live.announce(site.id, TOPIC)
    db.session.commit()
    return dose
