"""Missed doses, holds, urine tests and take-home doses of heroin-assisted treatment.

The missed-dose rule (DOMAIN.md, from oral-OAT rules; no iOAT figure is published):

- A **missed day** is a site-local day on which the patient had a prescription in force and
  was given no dose. A dose withheld (POSS) or declined does not make the day a dosing day:
  the patient had no opioid that day, so it counts as missed, as a day with no visit does.
  A day with any dose given, on site or taken home, ends a run of missed days; so does a day
  with no prescription in force (no dose was due).
- When a site's day ends, the daily job (``run_missed_dose_job``) writes one ``missed`` dose
  row, "No dose on <day>", for each patient whose day was missed (held patients included:
  their days without a dose count towards re-titration), then counts each patient's run.
- At ``hat_missed_hold_days`` consecutive missed days (3) dosing is held until a prescriber
  reviews it; days before the review's day do not count towards another hold. At
  ``hat_missed_retitrate_days`` (5) the prescriber is prompted to re-titrate
  (``retitrate_due``); a new prescription version clears it, and the same run does not
  prompt again once one was signed after it reached the threshold.
- The job runs every few minutes and counts each site's day once (``HatMissedRun``); a day
  the scheduler slept through is counted when it wakes, up to ``CATCH_UP_DAYS`` back.

Take-home doses (Switzerland, BetmSV art. 13) are off unless the site allows them, up to
``hat_take_home_max_days`` days, and only after 6 months of continuous treatment (no hold in
them), with the last two urine tests clear and on-site doses on at least 2 days of each of
the last 4 weeks; never while a patient restarts (held, re-titration due, or in the first
days of a titration).

Every function takes ``actor=`` and ``now=``; every write is audited by ids only.
"""

import functools
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from srs import signals
from srs.auth.models import Role, Staff
from srs.auth.service import Actor, record
from srs.errors import Conflict, Forbidden, Invalid, NotFound
from srs.extensions import db
from srs.hat import service
from srs.hat.models import (
    URINE_RESULTS,
    HatDose,
    HatEnrolment,
    HatHold,
    HatMissedRun,
    HatTakeHome,
    HatUrineTest,
)
from srs.sites.models import Site

log = logging.getLogger(__name__)

JOB = Actor.system("missed-dose job")
# Days back a waking scheduler counts, the day just ended included.
CATCH_UP_DAYS = 7
# Swiss take-home conditions (DOMAIN.md).
CONTINUOUS_MONTHS = 6
URINE_TESTS_NEEDED = 2
CONTACT_WEEKS = 4
CONTACT_DAYS_A_WEEK = 2
# A step-up titration's first days, when take-home doses stay suspended (a plan's are its
# own days). No source gives a figure: the first week.
STEP_UP_RESTART_DAYS = 7
# Who records a urine test, and who hands take-home doses out.
URINE_RECORDERS = (Role.NURSE, Role.PRESCRIBER)
TAKE_HOME_GIVERS = (Role.NURSE, Role.PHARMACIST, Role.PRESCRIBER)
NOTE_LENGTH = 300


class TakeHomeRefused(Invalid):
    """A take-home authorisation the rules refuse: ``errors["conditions"]`` names each."""

    code = "take_home_refused"


# --- Counting missed days ----------------------------------------------------------------------


def _doses_by_day(enrolment: HatEnrolment, first: date, last: date) -> dict[date, set[str]]:
    rows = db.session.execute(db.select(HatDose.day, HatDose.outcome).where(
        HatDose.enrolment_id == enrolment.id, HatDose.day >= first, HatDose.day <= last))
    days: dict[date, set[str]] = {}
    for day, outcome in rows:
        days.setdefault(day, set()).add(outcome)
    return days


def missed_run(enrolment: HatEnrolment, day: date, *, since: date | None = None) -> int:
    """Consecutive missed days ending with ``day`` (and not before ``since``): days with a
    ``missed`` row and no dose given."""
    lookback = max(60, enrolment.site.hat_missed_retitrate_days + 1)
    first = day - timedelta(days=lookback)
    if since is not None:
        first = max(first, since)
    days = _doses_by_day(enrolment, first, day)
    count, current = 0, day
    while current >= first:
        outcomes = days.get(current, set())
        if "given" in outcomes or "missed" not in outcomes:
            break
        count += 1
        current -= timedelta(days=1)
    return count


def _last_lift_day(enrolment: HatEnrolment) -> date | None:
    lifted = db.session.scalar(db.select(db.func.max(HatHold.lifted_at)).where(
        HatHold.enrolment_id == enrolment.id, HatHold.lifted_at.is_not(None),
        HatHold.lift_note.is_not(None)))
    return None if lifted is None else enrolment.site.local_date(lifted)


def _mark_missed(enrolment: HatEnrolment, day: date, *, now: datetime) -> HatDose | None:
    """The day's ``missed`` row, if the patient had a prescription in force, no dose given
    and no ``missed`` row yet."""
    prescription = service.current_prescription(enrolment, day)
    if prescription is None:
        return None
    outcomes = _doses_by_day(enrolment, day, day).get(day, set())
    if "given" in outcomes or "missed" in outcomes:
        return None
    row = HatDose(site_id=enrolment.site_id, enrolment_id=enrolment.id,
                  prescription_id=prescription.id, day=day, at=now, outcome="missed",
                  reason=f"No dose on {day.isoformat()}")
    db.session.add(row)
    db.session.flush()
    return row


def _apply_rules(enrolment: HatEnrolment, day: date, *, now: datetime) -> None:
    site = enrolment.site
    run = missed_run(enrolment, day)
    if enrolment.state == "enrolled":
        since_review = missed_run(enrolment, day, since=_last_lift_day(enrolment))
        if since_review >= site.hat_missed_hold_days:
            _hold(enrolment, "missed_doses", None, held_by=None, now=now)
            record(JOB, "hat_dosing_held", "hat_enrolment", enrolment.id, site_id=site.id,
                   detail={"reason": "missed_doses", "missed_days": since_review,
                           "day": day.isoformat()}, now=now)
    if run >= site.hat_missed_retitrate_days and not enrolment.retitrate_due:
        reached = site.midnight(day - timedelta(days=run - site.hat_missed_retitrate_days))
        signed_since = any(p.signed_at >= reached for p in enrolment.prescriptions)
        if not signed_since:
            enrolment.retitrate_due = True
            record(JOB, "hat_retitration_due", "hat_enrolment", enrolment.id, site_id=site.id,
                   detail={"missed_days": run, "day": day.isoformat()}, now=now)


def count_site_day(site: Site, day: date, *, now: datetime) -> int:
    """Count one of the site's days: mark each missed day, hold and prompt at the
    thresholds. Returns the missed rows written; a day counted before writes nothing."""
    done = db.session.execute(db.select(HatMissedRun.id).where(
        HatMissedRun.site_id == site.id, HatMissedRun.day == day)).scalar_one_or_none()
    if done is not None:
        return 0
    written = 0
    enrolments = db.session.execute(db.select(HatEnrolment).where(
        HatEnrolment.site_id == site.id, HatEnrolment.state != "ended")
        .order_by(HatEnrolment.id)).scalars().all()
    for enrolment in enrolments:
        if site.local_date(enrolment.enrolled_at) > day:
            continue
        if _mark_missed(enrolment, day, now=now) is not None:
            written += 1
        _apply_rules(enrolment, day, now=now)
    db.session.add(HatMissedRun(site_id=site.id, day=day, ran_at=now))
    db.session.commit()
    return written


def run_missed_dose_job(*, now: datetime) -> int:
    """The scheduled job: each site's days that ended and were not counted yet, in order."""
    written = 0
    sites = db.session.execute(db.select(Site).where(Site.id.in_(
        db.select(HatEnrolment.site_id).where(HatEnrolment.state != "ended")))
        .order_by(Site.id)).scalars().all()
    for site in sites:
        ended = site.local_date(now) - timedelta(days=1)
        last = db.session.scalar(db.select(db.func.max(HatMissedRun.day)).where(
            HatMissedRun.site_id == site.id))
        first = ended - timedelta(days=CATCH_UP_DAYS - 1)
        if last is not None:
            first = max(first, last + timedelta(days=1))
        day = first
        while day <= ended:
            written += count_site_day(site, day, now=now)
            day += timedelta(days=1)
    if written:
        log.info("missed-dose job wrote %s missed days", written)
    return written


# --- Holds and the prescriber's review ---------------------------------------------------------


def _open_hold(enrolment: HatEnrolment) -> HatHold | None:
    return db.session.execute(db.select(HatHold).where(
        HatHold.enrolment_id == enrolment.id, HatHold.lifted_at.is_(None))
        .order_by(HatHold.id.desc()).limit(1)).scalar_one_or_none()


def _hold(enrolment: HatEnrolment, reason: str, note: str | None, *, held_by: int | None,
          now: datetime) -> HatHold:
    enrolment.state = "on_hold"
    enrolment.hold_reason = reason
    enrolment.held_at = now
    hold = HatHold(enrolment_id=enrolment.id, reason=reason, note=note, held_at=now,
                   held_by=held_by)
    db.session.add(hold)
    db.session.flush()
    return hold


def _reason(text: str | None, field: str = "reason") -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise Invalid("Give the reason: it is kept with the decision.",
                      {field: ["Give the reason."]})
    if len(cleaned) > NOTE_LENGTH:
        raise Invalid(f"At most {NOTE_LENGTH} characters.",
                      {field: [f"At most {NOTE_LENGTH} characters."]})
    return cleaned


def review_hold(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                now: datetime) -> HatEnrolment:
    """A prescriber lifts the patient's hold with a reason, signed with their PIN: dosing
    resumes (and, if ``retitrate_due``, waits for the new prescription's doses)."""
    enrolment = service.get_enrolment(site, enrolment_id)
    note = _reason(data.get("reason"))
    signer = service._signature(site, actor, data.get("pin"), now=now)
    if enrolment.state != "on_hold":
        raise Conflict("This patient's dosing is not on hold.")
    hold = _open_hold(enrolment)
    if hold is not None:
        hold.lifted_at, hold.lifted_by, hold.lift_note = now, signer.id, note
    previous = enrolment.hold_reason
    enrolment.state, enrolment.hold_reason, enrolment.held_at = "enrolled", None, None
    record(actor, "hat_hold_lifted", "hat_enrolment", enrolment.id, site_id=site.id,
           detail={"hold_reason": previous, "retitrate_due": enrolment.retitrate_due},
           now=now)
    db.session.commit()
    return enrolment


STATE_CHANGES = ("on_hold", "ended")


def update_state(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                 now: datetime) -> HatEnrolment:
    """A prescriber holds the patient's dosing or ends the treatment, with a reason and
    their PIN. An ended enrolment leaves the dosing list; a new enrolment restarts it."""
    enrolment = service.get_enrolment(site, enrolment_id)
    state = data.get("state")
    if state not in STATE_CHANGES:
        raise Invalid("Choose hold or end.", {"state": ["Choose on_hold or ended."]})
    note = _reason(data.get("reason"))
    signer = service._signature(site, actor, data.get("pin"), now=now)
    if enrolment.state == "ended":
        raise Conflict("This patient's treatment has ended already.")
    if state == "on_hold":
        if enrolment.state == "on_hold":
            raise Conflict("This patient's dosing is on hold already.")
        _hold(enrolment, "prescriber", note, held_by=signer.id, now=now)
        record(actor, "hat_dosing_held", "hat_enrolment", enrolment.id, site_id=site.id,
               detail={"reason": "prescriber"}, now=now)
    else:
        hold = _open_hold(enrolment)
        if hold is not None:
            hold.lifted_at, hold.lifted_by = now, signer.id
        enrolment.state, enrolment.ended_at = "ended", now
        enrolment.hold_reason = enrolment.held_at = None
        enrolment.retitrate_due = False
        record(actor, "hat_treatment_ended", "hat_enrolment", enrolment.id, site_id=site.id,
               detail={"client_id": enrolment.client_id}, now=now)
    db.session.commit()
    return enrolment


@signals.client_flags.connect
def _flag_treatment_held(client, *, today: date) -> dict:
    """The check-in flag: the client's treatment dosing is held until a prescriber reviews
    it (no reason shown: the floor sees the code only)."""
    held = db.session.execute(_held_statement(), {"client_id": client.id}).first() is not None
    return {"treatment_held": True} if held else {}


@functools.cache
def _held_statement():
    """Every check-in reads it."""
    return db.select(HatEnrolment.id).where(HatEnrolment.client_id == db.bindparam("client_id"),
                                            HatEnrolment.state == "on_hold")


# --- Urine tests -------------------------------------------------------------------------------


def _has_role(site: Site, actor: Actor, roles) -> Staff:
    staff = service._staff(actor)
    if staff is None or not staff.has_role(site.id, *roles):
        raise Forbidden("Your role at this site may not do this.")
    return staff


def record_urine_test(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                      now: datetime) -> HatUrineTest:
    """A urine test's result (clear of non-prescribed narcotics, or positive), by a nurse or
    prescriber."""
    staff = _has_role(site, actor, URINE_RECORDERS)
    enrolment = service.get_enrolment(site, enrolment_id)
    result, day = data.get("result"), data.get("day") or site.local_date(now)
    if result not in URINE_RESULTS:
        raise Invalid("Choose clear or positive.", {"result": ["Choose clear or positive."]})
    if day > site.local_date(now):
        raise Invalid("A test's day is not in the future.", {"day": ["Today or earlier."]})
    if enrolment.state == "ended":
        raise Conflict("This patient's treatment has ended.")
    test = HatUrineTest(enrolment_id=enrolment.id, day=day, result=result,
                        recorded_by=staff.id, recorded_at=now)
    db.session.add(test)
    db.session.flush()
    record(actor, "hat_urine_test_recorded", "hat_enrolment", enrolment.id, site_id=site.id,
           detail={"urine_test_id": test.id, "result": result}, now=now)
    db.session.commit()
    return test


def urine_tests(enrolment: HatEnrolment) -> list[HatUrineTest]:
    return list(db.session.execute(db.select(HatUrineTest).where(
        HatUrineTest.enrolment_id == enrolment.id)
        .order_by(HatUrineTest.day.desc(), HatUrineTest.id.desc())).scalars())


# --- Take-home doses ---------------------------------------------------------------------------


def _months_before(day: date, months: int) -> date:
    month = day.month - months
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    for day_of_month in range(day.day, 0, -1):
        try:
            return date(year, month, day_of_month)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def restarting(enrolment: HatEnrolment, today: date) -> str | None:
    """Why the patient is restarting (take-home doses suspended), or None."""
    if enrolment.state == "on_hold":
        return "dosing is on hold until a prescriber reviews it"
    if enrolment.retitrate_due:
        return "re-titration is due after missed days"
    prescription = service.current_prescription(enrolment, today)
    if prescription is not None and prescription.titration != "none":
        length = (len(prescription.titration_days) if prescription.titration == "plan"
                  else STEP_UP_RESTART_DAYS)
        if (today - prescription.starts_on).days < max(length, 1):
            return "the patient is in the first days of a titration"
    return None


@dataclass
class TakeHomeCheck:
    unmet: list[str]
    suspended: str | None

    @property
    def allowed(self) -> bool:
        return not self.unmet and self.suspended is None


def check_take_home(enrolment: HatEnrolment, *, now: datetime) -> TakeHomeCheck:
    """The Swiss conditions (DOMAIN.md), each unmet one in words; and a restart's suspension."""
    site = enrolment.site
    today = site.local_date(now)
    unmet = []
    since = _months_before(today, CONTINUOUS_MONTHS)
    window_start = site.midnight(since)
    held = db.session.execute(db.select(HatHold.id).where(
        HatHold.enrolment_id == enrolment.id,
        db.or_(HatHold.lifted_at.is_(None), HatHold.lifted_at > window_start))).first()
    if site.local_date(enrolment.enrolled_at) > since or held is not None:
        unmet.append(f"6 months of continuous treatment: treatment since "
                     f"{since.isoformat()} with no hold is needed")
    tests = urine_tests(enrolment)[:URINE_TESTS_NEEDED]
    if len(tests) < URINE_TESTS_NEEDED or any(t.result != "clear" for t in tests):
        unmet.append("The last two urine tests free of non-prescribed narcotics"
                     + (f": only {len(tests)} recorded" if len(tests) < URINE_TESTS_NEEDED
                        else ": one of them was positive"))
    first = today - timedelta(days=7 * CONTACT_WEEKS - 1)
    dosed = set(db.session.scalars(db.select(HatDose.day).where(
        HatDose.enrolment_id == enrolment.id, HatDose.outcome == "given",
        HatDose.take_home.is_(False), HatDose.day >= first, HatDose.day <= today)))
    short = [week for week in range(CONTACT_WEEKS)
             if len({d for d in dosed if first + timedelta(days=7 * week) <= d
                     < first + timedelta(days=7 * (week + 1))}) < CONTACT_DAYS_A_WEEK]
    if short:
        unmet.append(f"Contact at least twice a week over the last {CONTACT_WEEKS} weeks: "
                     f"{len(short)} of those weeks had fewer than 2 days with a dose on site")
    return TakeHomeCheck(unmet=unmet, suspended=restarting(enrolment, today))


def authorise_take_home(site: Site, enrolment_id: int, data: dict, *, actor: Actor,
                        now: datetime) -> HatTakeHome:
    """A prescriber authorises take-home doses for ``days`` days from ``first_day``
    (tomorrow unless given), signed with their PIN. Refused (TakeHomeRefused, every unmet
    condition named) where the site does not allow them, above its cap, while the patient
    restarts, or when a Swiss condition is unmet."""
    enrolment = service.get_enrolment(site, enrolment_id)
    today = site.local_date(now)
    days = data.get("days")
    first_day = data.get("first_day") or today + timedelta(days=1)
    if not site.hat_take_home_allowed:
        raise TakeHomeRefused("This site does not allow take-home doses.",
                              {"days": ["Take-home doses are off at this site."]})
    if not isinstance(days, int) or days < 1 or days > site.hat_take_home_max_days:
        raise TakeHomeRefused(
            f"At most {site.hat_take_home_max_days} days of take-home doses at this site.",
            {"days": [f"From 1 to {site.hat_take_home_max_days} days."]})
    if first_day < today:
        raise Invalid("Take-home doses start today or later.",
                      {"first_day": ["Today or later."]})
    signer = service._signature(site, actor, data.get("pin"), now=now)
    if enrolment.state == "ended":
        raise Conflict("This patient's treatment has ended.")
    checked = check_take_home(enrolment, now=now)
    reasons = list(checked.unmet)
    if checked.suspended:
        reasons.insert(0, f"Take-home doses are suspended while the patient restarts: "
                          f"{checked.suspended}")
    if reasons:
        raise TakeHomeRefused("Take-home doses refused: " + "; ".join(reasons) + ".",
                              {"conditions": reasons})
    missing = [first_day + timedelta(days=n) for n in range(days)
               if service.current_prescription(enrolment, first_day + timedelta(days=n))
               is None]
    if missing:
        raise Invalid(f"No prescription in force on {missing[0].isoformat()}.",
                      {"days": ["Every take-home day needs a prescription in force."]})
    grant = HatTakeHome(enrolment_id=enrolment.id, first_day=first_day, days=days,
                        authorised_by=signer.id, authorised_at=now)
    db.session.add(grant)
    db.session.flush()
    record(actor, "hat_take_home_authorised", "hat_enrolment", enrolment.id, site_id=site.id,
           detail={"take_home_id": grant.id, "days": days,
                   "first_day": first_day.isoformat()}, now=now)
    db.session.commit()
    return grant


def open_take_home(enrolment: HatEnrolment) -> HatTakeHome | None:
    return db.session.execute(db.select(HatTakeHome).where(
        HatTakeHome.enrolment_id == enrolment.id, HatTakeHome.given_at.is_(None))
        .order_by(HatTakeHome.id.desc()).limit(1)).scalar_one_or_none()


def _given_on(enrolment: HatEnrolment, day: date) -> float:
    return db.session.scalar(db.select(db.func.coalesce(db.func.sum(HatDose.dose_mg), 0.0))
                             .where(HatDose.enrolment_id == enrolment.id,
                                    HatDose.outcome == "given", HatDose.day == day)) or 0.0


def give_take_home(site: Site, enrolment_id: int, take_home_id: int, *, actor: Actor,
                   now: datetime) -> list[HatDose]:
    """Hand out the authorised take-home doses: one ``given`` dose row (``take_home``) per
    session of each day, held to the daily cap by ``check_dose``; they count as doses for
    missed days. Refused while the patient restarts or when a dose would pass a cap."""
    staff = _has_role(site, actor, TAKE_HOME_GIVERS)
    enrolment = service.get_enrolment(site, enrolment_id)
    grant = db.session.get(HatTakeHome, take_home_id)
    if grant is None or grant.enrolment_id != enrolment.id:
        raise NotFound(f"This patient has no take-home authorisation {take_home_id}.")
    if grant.given_at is not None:
        raise Conflict("These take-home doses were given out already.")
    if not site.hat_take_home_allowed:
        raise TakeHomeRefused("This site does not allow take-home doses.",
                              {"days": ["Take-home doses are off at this site."]})
    why = restarting(enrolment, site.local_date(now))
    if enrolment.state == "ended" or why:
        raise TakeHomeRefused(
            f"Take-home doses are suspended while the patient restarts: {why or 'ended'}.",
            {"conditions": [why or "treatment ended"]})
    rows = []
    for offset in range(grant.days):
        day = grant.first_day + timedelta(days=offset)
        prescription = service.current_prescription(enrolment, day)
        if prescription is None:
            raise Invalid(f"No prescription in force on {day.isoformat()}.")
        given = _given_on(enrolment, day)
        moment = site.midnight(day) + timedelta(hours=12)
        for _session in range(prescription.sessions_per_day):
            dose = prescription.dose_on(day)
            checked = service.check_dose(prescription, dose, given, None, moment)
            if not checked.allowed:
                db.session.rollback()
                raise service.CapExceeded(f"{day.isoformat()}: {checked.reasons[0]}",
                                          {"days": checked.reasons})
            row = HatDose(site_id=site.id, enrolment_id=enrolment.id,
                          prescription_id=prescription.id, day=day, at=now, outcome="given",
                          dose_mg=dose, take_home=True, nurse_id=staff.id)
            db.session.add(row)
            rows.append(row)
            given += dose
    grant.given_at, grant.given_by = now, staff.id
    db.session.flush()
    record(actor, "hat_take_home_given", "hat_enrolment", enrolment.id, site_id=site.id,
           detail={"take_home_id": grant.id, "doses": len(rows)}, now=now)
    db.session.commit()
    return rows
