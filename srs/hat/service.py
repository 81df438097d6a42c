"""Enrolment, identity reads and prescriptions of heroin-assisted treatment; the dose check
the dosing session calls.

Every function takes ``actor=`` and ``now=``; writes and identity reads are audited by ids
only: a legal name, date of birth, health number or client code never enters the audit
trail, a log line or a live message.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from werkzeug.security import check_password_hash

from srs.auth.models import Role, Staff
from srs.auth.service import LOCKOUT, MAX_FAILED_LOGINS, Actor, record
from srs.clients.models import Client
from srs.errors import Conflict, Forbidden, Invalid, NotFound
from srs.extensions import db
from srs.hat import identity
from srs.hat.models import (
    ELIGIBILITY,
    ELIGIBILITY_KEYS,
    ROUTES,
    HatEnrolment,
    HatPrescription,
)
from srs.sites.models import Site

# Who may read a patient's legal identity (and the patient's page that shows it).
IDENTITY_READERS = (Role.PRESCRIBER, Role.PHARMACIST)
# A top-up: not before this long after a dose (HDM case series: 20 min, no intoxication).
TOP_UP_AFTER = timedelta(minutes=20)
STEP_UP_SHARE = 0.5  # Diaphin: from day 2 a single dose at most 50 % of the day before's total
# Diaphin's first day of IV treatment: a first dose of at most 15 mg, one further 15 mg at
# once, then at most 30 mg a dose at least 30 minutes apart.
DAY_ONE_FIRST_MG = 15.0
DAY_ONE_MG = 30.0
DAY_ONE_GAP = timedelta(minutes=30)


class CapExceeded(Invalid):
    """Above a hard cap the site set: no role may override it."""

    code = "cap_exceeded"


# --- Roles and the prescriber's signature ------------------------------------------------------


def _staff(actor: Actor) -> Staff | None:
    return None if actor.staff_id is None else db.session.get(Staff, actor.staff_id)


def may_read_identity(site: Site, actor: Actor) -> bool:
    staff = _staff(actor)
    return staff is not None and staff.has_role(site.id, *IDENTITY_READERS)


def _signature(site: Site, actor: Actor, pin: str | None, *, now: datetime) -> Staff:
    """The prescriber signing with their PIN re-entered. Raises Forbidden for someone who is
    no prescriber at the site, Invalid (on ``pin``) for a wrong or missing PIN; five wrong
    PINs lock the account as five wrong passwords do."""
    staff = _staff(actor)
    if staff is None or not staff.has_role(site.id, Role.PRESCRIBER):
        raise Forbidden("Only a prescriber at this site may sign.")
    if staff.locked_until and staff.locked_until > now:
        raise Forbidden("Your account is locked after wrong PINs; try again later.")
    if staff.pin_hash is None:
        raise Invalid("You have no PIN set: set one before signing.",
                      {"pin": ["You have no PIN set."]})
    if not pin or not check_password_hash(staff.pin_hash, pin):
        # Added in the database itself: guesses arriving in parallel each count.
        db.session.execute(db.update(Staff).where(Staff.id == staff.id).values(
            failed_logins=Staff.failed_logins + 1))
        failures = db.session.scalar(db.select(Staff.failed_logins).where(
            Staff.id == staff.id))
        record(actor, "hat_signature_refused", "staff", staff.id, site_id=site.id, now=now)
        if failures >= MAX_FAILED_LOGINS:
            staff.locked_until = now + LOCKOUT
            staff.failed_logins = 0
        db.session.commit()
        raise Invalid("Wrong PIN: the signature needs your own PIN.",
                      {"pin": ["Wrong PIN."]})
    staff.failed_logins = 0
    return staff


# --- Enrolment ---------------------------------------------------------------------------------


def _client_by_code(site: Site, code: str) -> Client:
    found = db.session.execute(db.select(Client).where(
        Client.site_id == site.id, Client.code == (code or "").strip().upper(),
        Client.placeholder.is_(False))).scalar_one_or_none()
    if found is None:
        raise Invalid("No client of this site has that code: a patient is enrolled from a "
                      "client the site already knows.", {"code": ["No client with this code."]})
    return found


def current_enrolment(client: Client) -> HatEnrolment | None:
    return db.session.execute(db.select(HatEnrolment).where(
        HatEnrolment.client_id == client.id, HatEnrolment.state != "ended")
    ).scalar_one_or_none()


def enrol(site: Site, data: dict, *, actor: Actor, now: datetime) -> HatEnrolment:
    """Enrol the site's client (by ``code``) with their legal identity (encrypted) and the
    eligibility checklist, signed by the prescriber's PIN. Raises Forbidden, Invalid, or
    Conflict when the client is enrolled already."""
    signer = _signature(site, actor, data.get("pin"), now=now)
    client = _client_by_code(site, data["code"])
    if current_enrolment(client) is not None:
        raise Conflict("This client is already enrolled.")
    checklist = data.get("eligibility") or {}
    unknown = set(checklist) - set(ELIGIBILITY_KEYS)
    if unknown:
        raise Invalid("Unknown eligibility items.", {"eligibility": [
            f"Unknown item: {', '.join(sorted(unknown))}."]})
    eligibility = {key: {"met": bool((checklist.get(key) or {}).get("met")),
                         "note": (checklist.get(key) or {}).get("note") or None}
                   for key in ELIGIBILITY_KEYS}
    if not any(item["met"] for item in eligibility.values()):
        raise Invalid("Tick at least one eligibility item the patient meets.",
                      {"eligibility": ["Tick at least one item."]})
    enrolment = HatEnrolment(
        site_id=site.id, client_id=client.id, state="enrolled", enrolled_at=now,
        enrolled_by=signer.id, legal_name_enc=identity.encrypt(data["legal_name"].strip()),
        date_of_birth_enc=identity.encrypt(data["date_of_birth"].isoformat()),
        health_number_enc=identity.encrypt((data.get("health_number") or "").strip() or None),
        eligibility=eligibility, eligibility_signed_by=signer.id, eligibility_signed_at=now)
    db.session.add(enrolment)
    db.session.flush()
    record(actor, "hat_patient_enrolled", "hat_enrolment", enrolment.id, site_id=site.id,
           detail={"client_id": client.id,
                   "eligibility_met": [k for k, v in eligibility.items() if v["met"]]},
           now=now)
    db.session.commit()
    return enrolment


def get_enrolment(site: Site, enrolment_id: int) -> HatEnrolment:
    enrolment = db.session.get(HatEnrolment, enrolment_id)
    if enrolment is None or enrolment.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no patient with id {enrolment_id}.")
    return enrolment


def list_patients(site: Site) -> list[HatEnrolment]:
    """The site's enrolments, newest first: codes and handles only, no identity read."""
    return list(db.session.execute(
        db.select(HatEnrolment).join(Client, Client.id == HatEnrolment.client_id)
        .where(HatEnrolment.site_id == site.id)
        .order_by(HatEnrolment.state == "ended", Client.code)).scalars())


@dataclass
class Identity:
    """None throughout once retention removed it from an ended treatment's record."""

    legal_name: str | None
    date_of_birth: date | None
    health_number: str | None


def read_identity(site: Site, enrolment: HatEnrolment, *, actor: Actor,
                  now: datetime) -> Identity:
    """The patient's legal identity, for a prescriber or pharmacist at the site; the read is
    audited (``patient_identity_read``, ids only). Raises Forbidden for anyone else."""
    if enrolment.site_id != site.id or not may_read_identity(site, actor):
        raise Forbidden("Only a prescriber or pharmacist at this site may read a patient's "
                        "identity.")
    born = identity.decrypt(enrolment.date_of_birth_enc)
    found = Identity(identity.decrypt(enrolment.legal_name_enc),
                     date.fromisoformat(born) if born else None,
                     identity.decrypt(enrolment.health_number_enc))
    record(actor, "patient_identity_read", "hat_enrolment", enrolment.id, site_id=site.id,
           detail={"client_id": enrolment.client_id}, now=now)
    db.session.commit()
    return found


def open_patient(site: Site, enrolment_id: int, *, actor: Actor, now: datetime) -> dict:
    """A patient's record with identity (getPatient and the patient's page)."""
    enrolment = get_enrolment(site, enrolment_id)
    found = read_identity(site, enrolment, actor=actor, now=now)
    return {"enrolment": enrolment, "identity": found,
            "current": current_prescription(enrolment, site.local_date(now))}


def eligibility_rows(enrolment: HatEnrolment) -> list[tuple[str, str, dict]]:
    return [(key, label, enrolment.eligibility.get(key) or {"met": False, "note": None})
            for key, label in ELIGIBILITY]


# --- Prescriptions -----------------------------------------------------------------------------


def daily_cap(site: Site, medication: str) -> int:
    return (site.hat_cap_hydromorphone_mg_day if medication == "hydromorphone"
            else site.hat_cap_diacetylmorphine_mg_day)


def single_dose_cap(site: Site, medication: str, sessions: int) -> float:
    """The largest single dose: the site's own, else the daily cap divided by the sessions."""
    if site.hat_max_single_dose_mg is not None:
        return float(site.hat_max_single_dose_mg)
    return daily_cap(site, medication) / max(sessions, 1)


def _mg(value: float) -> str:
    return f"{value:g} mg"


@dataclass
class Checked:
    """What the caps said of a prescription: refusals stop it, warnings go with it."""

    refusals: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def check_prescription(site: Site, data: dict) -> Checked:
    """Hold a prescription's figures to the site's hard caps and limits (no override)."""
    out = Checked()
    medication, route = data["medication"], data["route"]
    sessions = data["sessions_per_day"]
    if route not in ROUTES[medication]:
        out.refusals.setdefault("route", []).append(
            f"{medication.capitalize()} is not given {route.upper()} here: choose "
            f"{', '.join(r.upper() for r in ROUTES[medication])}.")
    if sessions > site.hat_max_sessions_per_day:
        out.refusals.setdefault("sessions_per_day", []).append(
            f"At most {site.hat_max_sessions_per_day} sessions a day at this site.")
    cap = daily_cap(site, medication)
    single = single_dose_cap(site, medication, sessions)
    doses = [data["dose_mg"], *(data.get("titration_days") or [])]
    top_up = (data.get("top_up_max_mg") or 0) if data.get("top_up_allowed") else 0
    largest = max(doses)
    if largest > single:
        out.refusals.setdefault("dose_mg", []).append(
            f"{_mg(largest)} is above the largest single dose of {_mg(single)}: a hard cap "
            f"no one can override.")
    total = largest * sessions + top_up * sessions
    if total > cap:
        out.refusals.setdefault("dose_mg", []).append(
            f"{_mg(total)} a day (with top-ups) is above the site's hard cap of {_mg(cap)} "
            f"of {medication} a day: no one can override it.")
    if top_up and top_up > single:
        out.refusals.setdefault("top_up_max_mg", []).append(
            f"A top-up of {_mg(top_up)} is above the largest single dose of {_mg(single)}.")
    if data.get("titration") == "plan" and data.get("titration_days"):
        problem = step_up_plan_problem(data["titration_days"], sessions)
        if problem:
            out.refusals.setdefault("titration_days", []).append(problem)
    if route == "iv" and total > site.hat_warn_iv_mg_day:
        out.warnings.append(
            f"{_mg(total)} a day IV is above {_mg(site.hat_warn_iv_mg_day)}: less effective "
            f"above this (Diaphin's label). Signed with this warning.")
    return out


def step_up_plan_problem(days: list[float], sessions: int) -> str | None:
    """A day-by-day plan held to the step-up rule: from day 2 a single dose at most half the
    previous day's total."""
    for index in range(1, len(days)):
        limit = STEP_UP_SHARE * days[index - 1] * sessions
        if days[index] > limit:
            return (f"Day {index + 1}: {_mg(days[index])} is above half of day {index}'s total "
                    f"({_mg(limit)}).")
    return None


def current_prescription(enrolment: HatEnrolment, day: date) -> HatPrescription | None:
    """The prescription in force on ``day``: the latest signed version whose dates hold it."""
    for version in sorted(enrolment.prescriptions, key=lambda p: p.version, reverse=True):
        if version.active_on(day):
            return version
    return None


def create_prescription(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                        now: datetime) -> tuple[HatPrescription, list[str]]:
    """Sign a new version of the patient's prescription (no version is ever changed); return
    it and any warnings. Raises Forbidden, Invalid (CapExceeded for a hard cap), Conflict
    for an ended enrolment."""
    enrolment = get_enrolment(site, enrolment_id)
    data = dict(data)
    data.setdefault("sessions_per_day", min(3, site.hat_max_sessions_per_day))
    if data.get("min_interval_minutes") is None:
        data["min_interval_minutes"] = site.hat_min_interval_minutes
    checked = check_prescription(site, data)
    if checked.refusals:
        first = next(iter(checked.refusals.values()))[0]
        raise CapExceeded(first, checked.refusals)
    if data.get("ends_on") and data["ends_on"] < data["starts_on"]:
        raise Invalid("The end is before the start.", {"ends_on": ["After the start, please."]})
    signer = _signature(site, actor, data.get("pin"), now=now)
    if enrolment.state == "ended":
        raise Conflict("This patient's treatment has ended: enrol them again first.")
    version = 1 + max((p.version for p in enrolment.prescriptions), default=0)
    prescription = HatPrescription(
        enrolment=enrolment, version=version, medication=data["medication"],
        route=data["route"], dose_mg=data["dose_mg"], sessions_per_day=data["sessions_per_day"],
        min_interval_minutes=data["min_interval_minutes"],
        titration=data.get("titration") or "none",
        titration_days=list(data.get("titration_days") or []),
        top_up_allowed=bool(data.get("top_up_allowed")),
        top_up_max_mg=data.get("top_up_max_mg") if data.get("top_up_allowed") else None,
        oral_oat=(data.get("oral_oat") or "").strip() or None, starts_on=data["starts_on"],
        ends_on=data.get("ends_on"), signed_by=signer.id, signed_at=now)
    db.session.add(prescription)
    db.session.flush()
    record(actor, "hat_prescription_signed", "hat_prescription", prescription.id,
           site_id=site.id, detail={"enrolment_id": enrolment.id, "version": version,
                                    "warned": bool(checked.warnings)}, now=now)
    if enrolment.retitrate_due:  # this version is the re-titration the missed days asked for
        enrolment.retitrate_due = False
        record(actor, "hat_retitration_cleared", "hat_enrolment", enrolment.id,
               site_id=site.id, detail={"prescription_id": prescription.id}, now=now)
    db.session.commit()
    return prescription, checked.warnings


# --- The dose check the dosing session calls ---------------------------------------------------


@dataclass
class DoseCheck:
    allowed: bool
    reasons: list[str]
    earliest_at: datetime | None = None


def diaphin_day_one(prescription: HatPrescription, day: date) -> bool:
    """Whether Diaphin's first-day rule holds the doses of ``day``: IV diacetylmorphine
    under a step-up titration, on the prescription's first day."""
    return (prescription.titration == "step_up" and prescription.medication == "diacetylmorphine"
            and prescription.route == "iv" and day == prescription.starts_on)


def check_dose(prescription: HatPrescription, dose_mg: float, given_today_mg: float,
               last_dose_at: datetime | None, now: datetime, *, top_up: bool = False,
               previous_day_total_mg: float | None = None,
               sessions_today: int | None = None) -> DoseCheck:
    """May ``dose_mg`` be given at ``now`` under ``prescription``? ``given_today_mg`` is what
    the patient had since the site's midnight (top-ups included: they count toward the day's
    total), ``last_dose_at`` their last dose, ``sessions_today`` how many session doses (not
    top-ups) they had today, when the caller knows.

    Hard caps (the site's daily cap, the single-dose cap) refuse whoever asks. A session's
    dose waits the prescription's interval after the last, and no more sessions than the
    prescription's a day are given; a top-up (``top_up``) needs the prescription to allow it,
    waits 20 minutes and is at most its set amount. Under the step-up rule, from day 2 a
    single dose is at most half the previous day's total (``previous_day_total_mg``); on
    day 1 of IV diacetylmorphine Diaphin's rule replaces the interval and the session count:
    a first dose of at most 15 mg, one further 15 mg at once, then at most 30 mg a dose at
    least 30 minutes apart.
    """
    site = prescription.enrolment.site
    reasons: list[str] = []
    earliest = None
    today = site.local_date(now)
    if not prescription.active_on(today):
        reasons.append("The prescription is not in force today.")
    cap = daily_cap(site, prescription.medication)
    single = single_dose_cap(site, prescription.medication, prescription.sessions_per_day)
    if dose_mg <= 0:
        reasons.append("A dose is more than 0 mg.")
    if dose_mg > single:
        reasons.append(f"{_mg(dose_mg)} is above the largest single dose of {_mg(single)}: a "
                       f"hard cap no one can override.")
    if given_today_mg + dose_mg > cap:
        reasons.append(f"{_mg(given_today_mg)} given today and {_mg(dose_mg)} more is above the "
                       f"site's hard cap of {_mg(cap)} of {prescription.medication} a day.")
    if top_up:
        if not prescription.top_up_allowed:
            reasons.append("This prescription allows no top-up.")
        elif prescription.top_up_max_mg is not None and dose_mg > prescription.top_up_max_mg:
            reasons.append(f"A top-up is at most {_mg(prescription.top_up_max_mg)}.")
        if last_dose_at is None:
            reasons.append("A top-up follows a dose: none was given.")
        elif now < last_dose_at + TOP_UP_AFTER:
            earliest = last_dose_at + TOP_UP_AFTER
            reasons.append("A top-up is not before 20 minutes after the dose.")
    else:
        prescribed = prescription.dose_on(today)
        if dose_mg > prescribed:
            reasons.append(f"{_mg(dose_mg)} is above the prescribed {_mg(prescribed)} a "
                           f"session.")
        interval = timedelta(minutes=prescription.min_interval_minutes)
        if diaphin_day_one(prescription, today):
            given = sessions_today if sessions_today is not None else (
                0 if not given_today_mg else 2)
            limit = DAY_ONE_FIRST_MG if given < 2 else DAY_ONE_MG
            if dose_mg > limit:
                which = ("the first dose" if given == 0 else "the second dose" if given == 1
                         else "each dose")
                reasons.append(f"Diaphin's first day: {which} is at most {_mg(limit)}.")
            if given >= 2 and last_dose_at is not None and now < last_dose_at + DAY_ONE_GAP:
                earliest = last_dose_at + DAY_ONE_GAP
                reasons.append("Diaphin's first day: after the first two doses, at least 30 "
                               "minutes between doses.")
        elif last_dose_at is not None and now < last_dose_at + interval:
            earliest = last_dose_at + interval
            reasons.append(f"Too soon: at least {prescription.min_interval_minutes // 60} h "
                           f"{prescription.min_interval_minutes % 60:02d} min between doses.")
        if (sessions_today is not None and not diaphin_day_one(prescription, today)
                and sessions_today >= prescription.sessions_per_day):
            reasons.append(f"All {prescription.sessions_per_day} sessions of today are given.")
    if (prescription.titration == "step_up" and today > prescription.starts_on
            and previous_day_total_mg is not None
            and dose_mg > STEP_UP_SHARE * previous_day_total_mg):
        reasons.append(f"Step-up rule: from day 2 a single dose is at most half the previous "
                       f"day's total ({_mg(STEP_UP_SHARE * previous_day_total_mg)}).")
    return DoseCheck(allowed=not reasons, reasons=reasons, earliest_at=earliest)
