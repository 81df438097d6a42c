"""Naloxone training: sessions and who took part, refreshers and the month's people trained.

Callers: the training pages (``training_views``), the API (``srs.api.training``) and the
monthly report (:func:`trained_by_kind`). :func:`record_session` is one
unit of work: check every field, add the session and its trainees, audit, commit once. It
raises Invalid (422) with a message per field; a trainee's field is named under
``trainees`` by the trainee's place in the list (``{"trainees": {1: {"badge_number": [...]}}}``).

A trainee is a client (by code, so never a name) or someone from outside the site by kind
and organisation. Staff and police may be named (first and last name, badge or employee
number) only with their consent: that is what refresher tracking needs. A named trainee
who comes back (same site, badge number and last name) is the same trainee, so their
refresher history is one line.

A trainee may leave with a kit of the register (``kit_serial``): it is given as their first
kit by the kits' own :func:`srs.naloxone.service.give_kit` (to the client for a client's
row, else to the trainee) in the session's unit of work, so a serial the register refuses
refuses the whole session. Someone who already holds a kit gets theirs from the register,
as a replacement with its reason.
"""

import calendar
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.orm import selectinload

from srs.auth.models import Staff, StaffRole
from srs.auth.service import Actor, record
from srs.clients.models import Client
from srs.clients.service import check_code
from srs.errors import DomainError, Invalid
from srs.extensions import db
from srs.naloxone.models import (
    NAMED_KINDS,
    TRAINEE_KINDS,
    TRAINING_FORMATS,
    NaloxoneKit,
    SessionTrainee,
    TakeHomeKit,
    Trainee,
    TrainingSession,
)
from srs.naloxone.schemas import MAX_TRAINEES, SCORE_RANGE, TRAINING_LONGEST
from srs.naloxone.service import give_kit, kit_to_give
from srs.sites.models import Site

# Kinds a client of the site can be trained as (anyone else is recorded by kind alone).
CLIENT_KINDS = ("person_at_risk", "family_friend", "peer")
# Family and friends: whether the person at risk consented to their training (Scotland).
CONSENT_KINDS = ("family_friend",)
# A refresher is listed this many days before it comes due.
DUE_SOON = timedelta(days=30)
NAME_FIELDS = ("first_name", "last_name", "badge_number")
EXPORT_COLUMNS = ("first_name", "last_name", "badge_number", "organisation", "kind",
                  "last_training", "due_on")


def _at_most(name: str) -> str:
    return f"At most {TRAINING_LONGEST[name]} characters."


def _text(value, limit: int) -> str | None:
    text = (value or "").strip() if isinstance(value, str) else value
    return text[:limit] if text else None


# --- Recording a session --------------------------------------------------------------------


def site_trainers(site: Site) -> list[Staff]:
    """Who may be named as a session's trainer: the site's active staff, by name."""
    at_site = db.select(StaffRole.staff_id).where(StaffRole.site_id == site.id)
    return list(db.session.execute(db.select(Staff).where(
        Staff.id.in_(at_site), Staff.active.is_(True)).order_by(
        Staff.display_name, Staff.id)).scalars())


def _check_session(site: Site, data: dict, today: date, errors: dict) -> dict:
    out = {}
    held_on = data.get("held_on")
    if not isinstance(held_on, date):
        errors["held_on"] = ["Give the date of the session."]
    elif held_on > today:
        errors["held_on"] = ["A session cannot be recorded before it is held."]
    elif held_on < add_months(today, -60):
        errors["held_on"] = ["Give a date in the last five years."]
    out["held_on"] = held_on
    trainer = db.session.get(Staff, data["trainer_id"]) if data.get("trainer_id") else None
    if trainer is None or not trainer.active or not trainer.roles_at(site.id):
        errors["trainer_id"] = ["Choose the trainer: a staff member of this site."]
    out["trainer_id"] = trainer.id if trainer else None
    curriculum = _text(data.get("curriculum"), 1000)
    if not curriculum:
        errors["curriculum"] = ["Give the curriculum taught."]
    elif len(curriculum) > TRAINING_LONGEST["curriculum"]:
        errors["curriculum"] = [_at_most("curriculum")]
    out["curriculum"] = curriculum
    version = _text(data.get("curriculum_version"), 1000)
    if version and len(version) > TRAINING_LONGEST["curriculum_version"]:
        errors["curriculum_version"] = [_at_most("curriculum_version")]
    out["curriculum_version"] = version
    if data.get("format") not in TRAINING_FORMATS:
        errors["format"] = ["Choose brief, standard, trainer of trainers or online."]
    out["format"] = data.get("format")
    place = _text(data.get("place"), 1000)
    if place and len(place) > TRAINING_LONGEST["place"]:
        errors["place"] = [_at_most("place")]
    out["place"] = place
    return out


def _check_trainee(site: Site, row: dict) -> tuple[dict, dict]:
    """One trainee's fields, cleaned, and their messages by field."""
    errors: dict[str, list[str]] = {}
    kind = row.get("kind")
    if kind not in TRAINEE_KINDS:
        errors["kind"] = ["Choose who this person is (person at risk, police...)."]
    clean = {"kind": kind, "client": None, "named_consent": bool(row.get("named_consent"))}
    code = _text(row.get("client_code"), 1000)
    if row.get("client_code") is not None and not code:
        errors["client_code"] = ["Give the client's code, or add them as someone from "
                                 "outside the site."]
    elif code:
        if kind not in CLIENT_KINDS:
            errors["client_code"] = ["Only a person at risk, a family member or friend, or a "
                                     "peer is recorded by client code."]
        else:
            try:
                code = check_code(site, code, field="client_code")
            except Invalid as err:
                errors["client_code"] = err.errors.get("client_code", [err.message])
            else:
                clean["client"] = db.session.execute(db.select(Client).filter_by(
                    site_id=site.id, code=code, placeholder=False)).scalar_one_or_none()
                if clean["client"] is None:
                    errors["client_code"] = [f"No client with code {code} at this site: "
                                             f"check the code, or check them in first."]
    organisation = _text(row.get("organisation"), 1000)
    if organisation and len(organisation) > TRAINING_LONGEST["organisation"]:
        errors["organisation"] = [_at_most("organisation")]
    clean["organisation"] = organisation
    names = {name: _text(row.get(name), 1000) for name in NAME_FIELDS}
    named = any(names.values())
    if kind in NAMED_KINDS and clean["named_consent"]:
        for name, label in (("first_name", "first name"), ("last_name", "last name"),
                            ("badge_number", "badge or employee number")):
            if not names[name]:
                errors[name] = [f"Give the {label}, or untick the consent to be named."]
            elif len(names[name]) > TRAINING_LONGEST[name]:
                errors[name] = [_at_most(name)]
    elif clean["named_consent"] and kind in TRAINEE_KINDS:
        errors["named_consent"] = ["Only staff and police may be named."]
    elif named and kind in NAMED_KINDS:
        errors["named_consent"] = ["A name only with their consent: tick that they consent "
                                   "to be named, or leave the name out."]
    elif named and kind in TRAINEE_KINDS:
        for name in NAME_FIELDS:
            if names[name]:
                errors[name] = ["Only staff and police who consent may be named."]
    clean.update(names if clean["named_consent"] and kind in NAMED_KINDS
                 else dict.fromkeys(NAME_FIELDS))
    consented = row.get("at_risk_consented")
    if kind in CONSENT_KINDS:
        if consented is None or consented == "":
            errors["at_risk_consented"] = ["Say whether the person at risk consented to this "
                                           "training."]
        clean["at_risk_consented"] = None if consented in (None, "") else bool(consented)
    else:
        clean["at_risk_consented"] = None
    score = row.get("post_test_score")
    if score in ("", None):
        score = None
    elif (isinstance(score, bool) or not isinstance(score, int)
          or not SCORE_RANGE[0] <= score <= SCORE_RANGE[1]):
        errors["post_test_score"] = [f"A whole number from {SCORE_RANGE[0]} to "
                                     f"{SCORE_RANGE[1]}, or leave it blank."]
        score = None
    clean["post_test_score"] = score
    serial = _text(row.get("kit_serial"), 1000)
    if serial and len(serial) > TRAINING_LONGEST["kit_serial"]:
        errors["kit_serial"] = [f"A serial has at most {TRAINING_LONGEST['kit_serial']} "
                                f"characters."]
    clean["kit_serial"] = serial.upper() if serial else None
    return clean, errors


def _held_serial(*, client_id: int | None = None, trainee_id: int | None = None) -> str | None:
    """The serial of the kit a client or trainee holds: the last kit given to them, when it
    is a kit of the register not reported used, withdrawn or replaced since."""
    holder = (TakeHomeKit.client_id == client_id if client_id is not None
              else TakeHomeKit.trainee_id == trainee_id)
    last = db.session.execute(
        db.select(NaloxoneKit.serial, NaloxoneKit.state).select_from(TakeHomeKit)
        .outerjoin(NaloxoneKit, NaloxoneKit.id == TakeHomeKit.kit_id).where(holder)
        .order_by(TakeHomeKit.id.desc()).limit(1)).one_or_none()
    return last.serial if last is not None and last.state == "issued" else None


def _same_person(clean: dict) -> tuple:
    if clean["client"] is not None:
        return ("client", clean["client"].id, clean["kind"])
    if clean["first_name"]:
        return ("named", clean["badge_number"].casefold(), clean["last_name"].casefold())
    return ("outside", id(clean))


def _known_trainee(site: Site, clean: dict) -> Trainee | None:
    """The trainee a row names when seen before: a client trained before as this kind, a
    named officer or staff member coming back."""
    found = None
    if clean["client"] is not None:
        found = db.session.execute(db.select(Trainee).where(
            Trainee.site_id == site.id, Trainee.client_id == clean["client"].id,
            Trainee.kind == clean["kind"]).order_by(Trainee.id).limit(1)).scalar_one_or_none()
    elif clean["first_name"]:
        found = db.session.execute(db.select(Trainee).where(
            Trainee.site_id == site.id, Trainee.named_consent.is_(True),
            func.lower(Trainee.badge_number) == clean["badge_number"].lower(),
            func.lower(Trainee.last_name) == clean["last_name"].lower()).order_by(
            Trainee.id).limit(1)).scalar_one_or_none()
    return found


def _trainee_for(site: Site, clean: dict, *, now: datetime) -> tuple[Trainee, bool]:
    """The trainee a row names, found (:func:`_known_trainee`) or made; and whether they
    were found."""
    found = _known_trainee(site, clean)
    if found is not None:
        if clean["organisation"]:
            found.organisation = clean["organisation"]
        if clean["kind"] in CONSENT_KINDS:
            found.at_risk_consented = clean["at_risk_consented"]
        return found, True
    trainee = Trainee(
        site_id=site.id, kind=clean["kind"],
        client_id=clean["client"].id if clean["client"] is not None else None,
        organisation=clean["organisation"], named_consent=bool(clean["first_name"]),
        first_name=clean["first_name"], last_name=clean["last_name"],
        badge_number=clean["badge_number"], at_risk_consented=clean["at_risk_consented"],
        created_at=now)
    db.session.add(trainee)
    return trainee, False


def _kit_messages(site: Site, clean: dict, *, now: datetime, given: set) -> list[str]:
    """Why the kit a row names cannot go with the training (none: it can)."""
    serial = clean["kit_serial"]
    if serial in given:
        return ["This kit is already given to another person in this session."]
    given.add(serial)
    try:
        kit_to_give(site, serial, now=now)
    except DomainError as err:
        return [err.message]
    if clean["client"] is not None:
        held = _held_serial(client_id=clean["client"].id)
    else:
        known = _known_trainee(site, clean) if clean["first_name"] else None
        held = _held_serial(trainee_id=known.id) if known is not None else None
    if held:
        return [f"They already hold kit {held}: give them this one from the kit register, "
                f"as a replacement with its reason."]
    return []


def _give_kits(site: Site, session: TrainingSession, cleaned: list[dict], *, actor: Actor,
               now: datetime) -> list[str]:
    """Give each row's kit to its client or trainee, a first kit given with the training;
    return the serials. A refusal (the kit taken meanwhile) undoes the whole session."""
    serials = []
    for index, (part, clean) in enumerate(zip(session.attendance, cleaned, strict=True)):
        if not clean["kit_serial"]:
            continue
        client = clean["client"]
        try:
            give_kit(site, {"serial": clean["kit_serial"],
                            "client_code": client.code if client is not None else None,
                            "trainee_id": None if client is not None else part.trainee_id,
                            "training_given": True}, actor=actor, now=now)
        except DomainError as err:
            db.session.rollback()
            raise Invalid("Nothing was recorded: 1 entry to correct, marked below.",
                          {"trainees": {index: {"kit_serial": [err.message]}}}) from err
        serials.append(clean["kit_serial"])
    return serials


def record_session(site: Site, data: dict, *, actor: Actor, now: datetime) -> TrainingSession:
    """Record a naloxone training session and each person trained in it.

    ``data``: ``held_on``, ``place`` (None: at the site), ``trainer_id``, ``curriculum``,
    ``curriculum_version``, ``format`` and ``trainees``, each a dict of ``kind`` and, as
    they apply, ``client_code``, ``organisation``, ``named_consent``, ``first_name``,
    ``last_name``, ``badge_number``, ``at_risk_consented``, ``post_test_score`` and
    ``kit_serial`` (a kit of the register given with the training, as a first kit).

    Each client trained is audited as a write to their record, each kit as its issuing is.
    Raises Invalid with every field's message at once; nothing is recorded then.
    """
    errors: dict = {}
    session_data = _check_session(site, data, site.local_date(now), errors)
    rows = data.get("trainees") or []
    if not rows:
        errors["trainees"] = ["Add at least one person trained."]
    elif len(rows) > MAX_TRAINEES:
        errors["trainees"] = [f"At most {MAX_TRAINEES} people in one session."]
    cleaned, row_errors, seen, kits = [], {}, set(), set()
    for index, row in enumerate(rows[:MAX_TRAINEES]):
        clean, messages = _check_trainee(site, row if isinstance(row, dict) else {})
        if not messages:
            person = _same_person(clean)
            if person in seen:
                field = "client_code" if person[0] == "client" else "badge_number"
                messages[field] = ["This person is already in this session."]
            seen.add(person)
        if clean["kit_serial"] and "kit_serial" not in messages:
            refused = _kit_messages(site, clean, now=now, given=kits)
            if refused:
                messages["kit_serial"] = refused
        if messages:
            row_errors[index] = messages
        cleaned.append(clean)
    if row_errors and "trainees" not in errors:
        errors["trainees"] = row_errors
    if errors:
        if kits:
            db.session.rollback()  # the kits looked at were locked for the giving
        count = len(row_errors) + len([k for k in errors if k != "trainees"])
        raise Invalid(f"Nothing was recorded: {count} "
                      f"{'entry' if count == 1 else 'entries'} to correct, marked below.",
                      errors)

    session = TrainingSession(site_id=site.id, recorded_at=now, recorded_by=actor.staff_id,
                              **session_data)
    db.session.add(session)
    returning = 0
    for clean in cleaned:
        trainee, found = _trainee_for(site, clean, now=now)
        returning += found
        session.attendance.append(SessionTrainee(trainee=trainee,
                                                 post_test_score=clean["post_test_score"]))
    db.session.flush()
    session.kits_given = _give_kits(site, session, cleaned, actor=actor, now=now)
    clients = 0
    for part in session.attendance:
        if part.trainee.client_id is not None:
            clients += 1
            record(actor, "naloxone_trained", "client", part.trainee.client_id,
                   site_id=site.id, now=now, detail={"session": session.id,
                                                     "trainee": part.trainee_id})
    detail = {"trainees": len(session.attendance), "clients": clients,
              "returning": returning, "trainer": session.trainer_id, "format": session.format}
    if session.kits_given:
        detail["kits"] = len(session.kits_given)
    record(actor, "naloxone_training_recorded", "naloxone_training_session", session.id,
           site_id=site.id, now=now, detail=detail)
    db.session.commit()
    return session


# --- Reading sessions -----------------------------------------------------------------------


def month_days(month: date) -> tuple[date, date]:
    """The first day of ``month`` and of the month after."""
    first = month.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def list_sessions(site: Site, month: date, *, actor: Actor,
                  now: datetime) -> list[TrainingSession]:
    """The site's sessions held in ``month``, latest first, with who took part; a list
    that shows clients' codes is audited as a read of those sessions (their ids)."""
    first, after = month_days(month)
    sessions = list(db.session.execute(db.select(TrainingSession).where(
        TrainingSession.site_id == site.id, TrainingSession.held_on >= first,
        TrainingSession.held_on < after).options(
        selectinload(TrainingSession.attendance).selectinload(SessionTrainee.trainee)
        .selectinload(Trainee.client), selectinload(TrainingSession.trainer)).order_by(
        TrainingSession.held_on.desc(), TrainingSession.id.desc())).scalars())
    if any(part.trainee.client_id for s in sessions for part in s.attendance):
        record(actor, "naloxone_training_listed", "naloxone_training_session", None,
               site_id=site.id, now=now, detail={"shown": [s.id for s in sessions]})
        db.session.commit()
    return sessions


def trained_by_kind(site: Site, first: date, after: date) -> dict[str, int]:
    """People trained at ``site`` in sessions held in [first, after), by kind: each trainee
    once, however many sessions they took part in (the monthly report's figure)."""
    rows = dict(db.session.execute(
        db.select(Trainee.kind, func.count(func.distinct(Trainee.id)))
        .join(SessionTrainee, SessionTrainee.trainee_id == Trainee.id)
        .join(TrainingSession, TrainingSession.id == SessionTrainee.session_id)
        .where(TrainingSession.site_id == site.id, TrainingSession.held_on >= first,
               TrainingSession.held_on < after)
        .group_by(Trainee.kind)).all())
    return {kind: int(rows.get(kind, 0)) for kind in TRAINEE_KINDS}


# --- Refreshers -----------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day (31 January + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month,
                       day=min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Refresher:
    """A police or staff trainee's refresher: their last session and when the next is due."""

    site: Site
    trainee: Trainee
    last_training: date
    sessions: int
    due_on: date
    today: date

    @property
    def overdue(self) -> bool:
        return self.due_on < self.today

    @property
    def due_soon(self) -> bool:
        return self.today <= self.due_on <= self.today + DUE_SOON

    @property
    def status(self) -> str:
        return "overdue" if self.overdue else "due_soon" if self.due_soon else "later"

    @property
    def named(self) -> bool:
        return self.trainee.named_consent


def refreshers(site: Site, *, now: datetime) -> list[Refresher]:
    """Every police and staff trainee of ``site`` with their refresher's due date
    (``site.refresher_months`` after their last session), soonest first."""
    today = site.local_date(now)
    rows = db.session.execute(
        db.select(Trainee, func.max(TrainingSession.held_on), func.count(TrainingSession.id))
        .join(SessionTrainee, SessionTrainee.trainee_id == Trainee.id)
        .join(TrainingSession, TrainingSession.id == SessionTrainee.session_id)
        .where(Trainee.site_id == site.id, Trainee.kind.in_(NAMED_KINDS))
        .group_by(Trainee.id)).all()
    out = [Refresher(site, trainee, last, count, add_months(last, site.refresher_months), today)
           for trainee, last, count in rows]
    return sorted(out, key=lambda r: (r.due_on, r.trainee.id))


@dataclass(frozen=True)
class RefresherList:
    """What the refreshers page shows for some sites: those due (overdue or within 30
    days), named only with consent, and the counts of all."""

    due: list[Refresher]
    counts: dict[str, int]


def refreshers_due(sites: list[Site], *, now: datetime) -> RefresherList:
    """The refreshers overdue or due within 30 days at ``sites``, soonest first, and counts
    (``overdue``, ``due_soon``, ``later``, ``unnamed_due``: those due who gave no consent to
    be named, listed without a name)."""
    everyone = [r for site in sites for r in refreshers(site, now=now)]
    due = sorted((r for r in everyone if r.status != "later"),
                 key=lambda r: (r.due_on, r.site.id, r.trainee.id))
    counts = {status: sum(r.status == status for r in everyone)
              for status in ("overdue", "due_soon", "later")}
    counts["unnamed_due"] = sum(not r.named for r in due)
    return RefresherList(due, counts)


def _csv_safe(value) -> str:
    """Keep a spreadsheet from running a cell as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def refreshers_csv(site: Site, *, actor: Actor, now: datetime,
                   organisation: str | None = None) -> str:
    """The CSV a police service's training officer asks for: every police and staff trainee
    of ``site`` who consented to be named, with their last training and due date (of one
    organisation when given, case aside). Nobody without consent is in it. Audited."""
    wanted = (organisation or "").strip().casefold()
    rows = [r for r in refreshers(site, now=now) if r.named and (
        not wanted or (r.trainee.organisation or "").casefold() == wanted)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for r in rows:
        t = r.trainee
        writer.writerow([_csv_safe(v) for v in (
            t.first_name, t.last_name, t.badge_number, t.organisation or "",
            TRAINEE_KINDS[t.kind], r.last_training.isoformat(), r.due_on.isoformat())])
    record(actor, "naloxone_refreshers_exported", "site", site.id, site_id=site.id, now=now,
           detail={"rows": len(rows), "organisation_filter": bool(wanted)})
    db.session.commit()
    return out.getvalue()
