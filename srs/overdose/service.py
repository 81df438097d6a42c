"""Overdose responses: the console's record, from the first tap to the incident draft.

Callers: overdose and API views, the alert scan (re-dose times), the floor's client flags,
the incident report. Each function that changes something is one unit of work: check,
change, announce (topic ``responses``), commit once (``srs.unit``). ``open_response`` is the
piece an Unresponsive check reuses: it never commits, the check's unit of work does. Each
takes ``now`` and an ``Actor`` and raises a DomainError: 409 for a response in the wrong
state, 422 with field messages.

A naloxone dose is drawn from stock through ``srs.naloxone.service`` (first expiry first; a
dose with nothing on hand is still given and flagged) in the dose's own unit of work.

Alarms: ``open_response`` is where an overdose alarm is raised (sounded at its unit's
commit) and the alert scan reads (``due_redose_alerts``) each response whose re-dose time has
passed, for it to raise a medium alert.
"""

import functools
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import String, bindparam, exc, func, literal_column
from sqlalchemy.orm import selectinload

from srs import live, signals
from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.auth.models import Staff
from srs.auth.service import Actor, record
from srs.booths import service as floor
from srs.booths.models import Visit, VisitState
from srs.clients.models import Client
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.naloxone import service as naloxone
from srs.overdose.models import (
    INTERVENTIONS,
    MAX_DOSE_MG,
    MAX_SPO2,
    MIN_DOSE_MG,
    MIN_SPO2,
    OUTCOMES,
    ROUTES,
    SOURCES,
    STANDARD_DOSES,
    Intervention,
    OverdoseResponse,
    ResponseKind,
)
from srs.sites.models import Site
from srs.unit import commit

MAX_PER_VISIT = 2
RECENT_OVERDOSE = timedelta(days=30)
# An entry may be back-dated to a little before the tap that opened the console.
BACKDATE_BEFORE_START = timedelta(minutes=30)
TOPIC_RESPONSES = live.TOPIC_RESPONSES


class ResponseClosed(Conflict):
    code = "response_closed"


def _closed(response: OverdoseResponse, doing: str) -> ResponseClosed:
    return ResponseClosed(
        f"Cannot {doing}: this response was closed at "
        f"{response.closed_at:%H:%M} UTC ({OUTCOMES[response.outcome].lower()}).",
        current_state="closed", response_id=response.id, outcome=response.outcome)


RESPONSE_CHANGED = ("Someone else changed this response a moment ago. The console will show "
                    "it as it is now.")


# --- Reading --------------------------------------------------------------------------------


def get_response(site: Site, response_id: int) -> OverdoseResponse:
    response = db.session.get(OverdoseResponse, response_id)
    if response is None or response.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no overdose response with id {response_id}.")
    return response


def audit_read(response: OverdoseResponse, *, actor: Actor, now: datetime) -> None:
    """A response names a client: every read of it is in the audit trail."""
    record(actor, "overdose_viewed", "overdose_response", response.id,
           site_id=response.site_id, now=now)
    db.session.commit()


def active_responses(site: Site) -> list[OverdoseResponse]:
    """Open responses of a site, oldest first, with what their panels show."""
    return list(db.session.execute(
        db.select(OverdoseResponse)
        .where(OverdoseResponse.site_id == site.id, OverdoseResponse.closed_at.is_(None))
        .options(selectinload(OverdoseResponse.client), selectinload(OverdoseResponse.booth),
                 selectinload(OverdoseResponse.interventions))
        .order_by(OverdoseResponse.started_at, OverdoseResponse.id)).scalars())


def responses_for_visits(visit_ids) -> dict[int, OverdoseResponse]:
    """The open response of each visit that has one, for the floor's tiles and rows."""
    if not visit_ids:
        return {}
    rows = db.session.execute(db.select(OverdoseResponse).where(
        OverdoseResponse.visit_id.in_(list(visit_ids)),
        OverdoseResponse.closed_at.is_(None))).scalars()
    return {r.visit_id: r for r in rows}


def _redose_due_select():
    """Each open response whose re-dose time passed (``now``) and has no alert yet (read by
    the alert scan with its own reads): the console prompts to reassess."""
    already = (db.select(Alert.id).where(
        Alert.kind == "redose_due", Alert.subject_type == "response",
        Alert.subject_id == OverdoseResponse.id,
        Alert.due_at == OverdoseResponse.redose_due_at).exists())
    return db.select(
        literal_column("'redose_due'", String).label("kind"), OverdoseResponse.site_id,
        OverdoseResponse.redose_due_at.label("due_at"),
        literal_column("'response'", String).label("subject_type"),
        OverdoseResponse.id.label("subject_id"), OverdoseResponse.visit_id,
        OverdoseResponse.booth_id,
    ).where(OverdoseResponse.redose_due_at <= bindparam("now"),
            OverdoseResponse.closed_at.is_(None), ~already)


_REDOSE_DUE = _redose_due_select()
alerts.register_due_statements([_REDOSE_DUE], due_times=[
    (OverdoseResponse.redose_due_at, OverdoseResponse.closed_at.is_(None))])


def due_redose_alerts(*, now: datetime) -> list[dict]:
    """What the alert scan reads of this package at ``now``: the raise_alert keyword
    arguments (``site_id`` instead of the site) of each re-dose time to prompt."""
    return [dict(row._mapping) for row in db.session.execute(_REDOSE_DUE, {"now": now})]


@signals.alarm_place.connect
def _alarm_place(alert: Alert) -> str | None:
    """An alarm about a response names where it is: after-care, or the place it was found."""
    if alert.subject_type != "response":
        return None
    response = db.session.get(OverdoseResponse, alert.subject_id)
    return response.location if response is not None else None


def recent_overdose(client_id: int, *, since: datetime) -> bool:
    """Whether a client had an overdose response started since ``since`` (a check-in flag)."""
    return db.session.execute(_recent_overdose_statement(), {"client_id": client_id, "since": since}
                              ).first() is not None


@functools.cache
def _recent_overdose_statement():
    """Every check-in reads it."""
    return db.select(OverdoseResponse.id).where(
        OverdoseResponse.client_id == bindparam("client_id"),
        OverdoseResponse.started_at >= bindparam("since"),
        OverdoseResponse.kind != ResponseKind.OTHER).limit(1)


@signals.client_flags.connect
def _flag_recent_overdose(client: Client, *, today: date) -> dict:
    """The check-in flag: an overdose in the last 30 days."""
    since = datetime.combine(today, datetime.min.time(), UTC) - RECENT_OVERDOSE
    return {"recent_overdose": recent_overdose(client.id, since=since)}


# --- Starting -------------------------------------------------------------------------------


def start_response(site: Site, *, kind: str, actor: Actor, now: datetime,
                   visit: Visit | None = None, location: str | None = None,
                   source: str | None = None) -> tuple[OverdoseResponse, bool]:
    """A tap on Overdose: :func:`open_response`, committed."""
    response, created = open_response(site, kind=kind, actor=actor, now=now, visit=visit,
                                      location=location, source=source)
    commit(RESPONSE_CHANGED)
    return response, created


def open_response(site: Site, *, kind: str, actor: Actor, now: datetime,
                  visit: Visit | None = None, location: str | None = None,
                  source: str | None = None) -> tuple[OverdoseResponse, bool]:
    """Open a response for a client on the floor (``visit``) or someone not checked in
    (``location`` from the site's list). Return it and whether it is new. Does not commit:
    the operation that calls it does.

    A tap for a visit that already has an open response opens that one again, so two
    nurses tapping at once share one console. Raises Invalid (kind, location), Conflict
    (a visit not in a booth or after-care, a third emergency in one visit from a tap).
    The form counts two emergencies per visit; an Unresponsive check (``source="check"``)
    beyond them still opens a console, unnumbered: nobody unresponsive waits for a
    discharge and a new check-in.
    """
    if kind not in set(ResponseKind):
        raise Invalid("Choose what kind of emergency this is.", {"kind": [
            "Choose opioid, stimulant or other."]})
    if source is not None and source not in SOURCES:
        raise Invalid("Unknown source.", {"source": [f"Choose one of {', '.join(SOURCES)}."]})
    booth = None
    seq = None
    if visit is not None:
        if visit.site_id != site.id:
            raise NotFound(f"Site {site.slug} has no visit with id {visit.id}.")
        existing = db.session.execute(db.select(OverdoseResponse).where(
            OverdoseResponse.visit_id == visit.id,
            OverdoseResponse.closed_at.is_(None))).scalar_one_or_none()
        if existing is not None:
            return existing, False
        if visit.state not in (VisitState.IN_BOOTH, VisitState.OBSERVING):
            raise Conflict(f"{visit.client.code} is not in a booth or after-care "
                           f"(the visit is {visit.state.replace('_', ' ')}). Start the "
                           f"response from 'Someone not checked in'.",
                           current_state=visit.state, visit_id=visit.id)
        earlier = db.session.scalar(db.select(func.count(OverdoseResponse.id)).where(
            OverdoseResponse.visit_id == visit.id))
        if earlier < MAX_PER_VISIT:
            seq = earlier + 1
        elif source != "check":
            raise Conflict(f"This visit already has {MAX_PER_VISIT} emergencies recorded: "
                           f"discharge it and check the client in again.",
                           current_state=visit.state, visit_id=visit.id)
        if visit.state == VisitState.IN_BOOTH:
            booth = visit.booth
            source = source or "booth"
            location = f"Booth {booth.label}"
        else:
            source = source or "aftercare"
            location = "After-care"
    else:
        location = (location or "").strip()
        if location not in site.overdose_locations:
            raise Invalid("Choose where the person is.", {"location": [
                f"Choose one of this site's places: {', '.join(site.overdose_locations)}."]})
        source = "not_checked_in"
    response = OverdoseResponse(
        site_id=site.id, visit_id=visit.id if visit else None, visit_seq=seq,
        client_id=visit.client_id if visit else None, booth_id=booth.id if booth else None,
        kind=kind, source=source, location=location, started_at=now,
        started_by=actor.staff_id, last_entry_at=now)
    try:
        # A savepoint: a lost race undoes this row alone, not the calling operation's work.
        with db.session.begin_nested():
            db.session.add(response)
    except exc.IntegrityError:
        # Another tablet opened one for this visit between our check and our write.
        existing = db.session.execute(db.select(OverdoseResponse).where(
            OverdoseResponse.visit_id == visit.id,
            OverdoseResponse.closed_at.is_(None))).scalar_one_or_none()
        if existing is None:
            raise Conflict("Another emergency was just recorded for this visit; look again.",
                           visit_id=visit.id) from None
        return existing, False
    record(actor, "overdose_started", "overdose_response", response.id, site_id=site.id,
           now=now, detail={"kind": kind, "source": source, "visit": response.visit_id})
    answered = visit is not None and alerts.visit_has_open_alerts(visit)
    # A high alarm on every screen of the site; it replaces an "unresponsive" one.
    alert = alerts.raise_for_response(response, site, "overdose", due_at=now, now=now)
    if answered:
        # Started from an alarm (a check due, Unresponsive): the nurse who answered it is on
        # it, so the overdose alarm is theirs at once and tells nobody "nobody on it".
        alerts.own_response_alerts(response, site, actor=actor, now=now)
    if visit is not None:
        alerts.resolve_alerts(visit, why="response_started", now=now, kinds=("unresponsive",),
                              by=actor.staff_id)
    if alert is not None:
        alerts.sound([alert], site)
    live.announce(site.id, TOPIC_RESPONSES)
    live.announce(site.id, "alerts")
    return response, True


@signals.client_unresponsive.connect
def _open_for_unresponsive(site: Site, *, visit: Visit, actor: Actor,
                           now: datetime) -> OverdoseResponse:
    """An Unresponsive check opens the console for its visit, in the check's unit of work."""
    response, _created = open_response(site, kind="opioid", visit=visit, source="check",
                                       actor=actor, now=now)
    return response


# How long after the start a response opened by a mistaken tap can be taken back.
MISTAKE_WINDOW = timedelta(seconds=30)


def may_cancel(response: OverdoseResponse, *, now: datetime) -> bool:
    """Whether "started by mistake" is still open: within 30 s of a tap's start, before any
    entry. A response an Unresponsive check opened is a finding, never a mistaken tap."""
    return (response.is_open and response.source != "check"
            and now - response.started_at <= MISTAKE_WINDOW and not response.interventions)


def cancel_response(response: OverdoseResponse, *, actor: Actor, now: datetime) -> None:
    """A tap on Overdose made by mistake: the response and its alarm are taken back, the
    audit trail keeps what was started and by whom, and no incident draft is written.

    Raises Conflict once the window has passed or something was recorded on it.
    """
    if not may_cancel(response, now=now):
        raise Conflict("Too late to take this back: close the response with its outcome.",
                       current_state="closed" if not response.is_open else "open",
                       response_id=response.id)
    site_id = response.site_id
    alerts.resolve_response_alerts(response.id, why="started_by_mistake", now=now,
                                   by=actor.staff_id)
    record(actor, "overdose_cancelled", "overdose_response", response.id, site_id=site_id,
           now=now, detail={"kind": response.kind, "source": response.source,
                            "visit": response.visit_id,
                            "started_at": response.started_at.isoformat()})
    db.session.delete(response)
    live.announce(site_id, TOPIC_RESPONSES)
    live.announce(site_id, "alerts")
    commit(RESPONSE_CHANGED)


def get_entry(response: OverdoseResponse, intervention_id: int) -> Intervention:
    entry = db.session.get(Intervention, intervention_id)
    if entry is None or entry.response_id != response.id:
        raise NotFound(f"Response {response.id} has no entry with id {intervention_id}.")
    return entry


def at_site_time(site: Site, reference: datetime, clock: str) -> datetime:
    """``HH:MM`` or ``HH:MM:SS`` on the site's wall clock, on the day of ``reference``.

    Raises Invalid on the ``time`` field for anything else.
    """
    zone = site.zone
    try:
        parsed = time.fromisoformat(clock.strip())
    except ValueError:
        raise _field("time", "Give the time as HH:MM:SS.") from None
    day = reference.astimezone(zone).date()
    return datetime.combine(day, parsed, zone).astimezone(UTC)


def change_kind(response: OverdoseResponse, kind: str, *, actor: Actor,
                now: datetime) -> OverdoseResponse:
    """Say the emergency is of another kind than the first tap said; kept in the timeline."""
    if not response.is_open:
        raise _closed(response, "change the kind")
    if kind not in set(ResponseKind):
        raise Invalid("Choose what kind of emergency this is.", {"kind": [
            "Choose opioid, stimulant or other."]})
    if kind == response.kind:
        return response
    before = response.kind
    response.kind = kind
    response.last_entry_at = now
    db.session.add(Intervention(
        response_id=response.id, kind="note", at=now, recorded_at=now,
        recorded_by=actor.staff_id,
        note=f"Kind changed from {before} to {kind}."))
    record(actor, "overdose_kind_changed", "overdose_response", response.id,
           site_id=response.site_id, now=now, detail={"from": before, "to": kind})
    live.announce(response.site_id, TOPIC_RESPONSES)
    commit(RESPONSE_CHANGED)
    return response


# --- Interventions --------------------------------------------------------------------------


def _field(name: str, message: str) -> Invalid:
    return Invalid(message, {name: [message]})


def _check_entry(kind: str, data: dict) -> dict:
    """The values an entry of ``kind`` keeps, checked; raises Invalid on the field."""
    values = {"dose_mg": None, "route": None, "spo2": None, "oxygen_lpm": None,
              "note": (data.get("note") or "").strip() or None}
    if kind == "naloxone":
        route = data.get("route")
        if route not in ROUTES:
            raise _field("route", "Choose the route: IM, IN or IV.")
        dose = data.get("dose_mg")
        if dose is None:
            dose = STANDARD_DOSES.get(route)
        if dose is None:
            raise _field("dose_mg", "Give the dose in mg.")
        if not MIN_DOSE_MG <= dose <= MAX_DOSE_MG:
            raise _field("dose_mg", f"Give a dose between {MIN_DOSE_MG} and {MAX_DOSE_MG} mg.")
        values.update(dose_mg=round(float(dose), 3), route=route)
    elif kind == "spo2":
        spo2 = data.get("spo2")
        if spo2 is None:
            raise _field("spo2", "Give the SpO2 reading.")
        if not MIN_SPO2 <= spo2 <= MAX_SPO2:
            raise _field("spo2", f"An SpO2 reading is between {MIN_SPO2} and {MAX_SPO2}%.")
        values["spo2"] = int(spo2)
    elif kind == "oxygen_on":
        values["oxygen_lpm"] = data.get("oxygen_lpm")
    elif kind in ("note", "other") and not values["note"]:
        raise _field("note", "Write what was done or seen.")
    for name in ("dose_mg", "route", "spo2", "oxygen_lpm"):
        if values[name] is None and data.get(name) is not None:
            raise _field(name, f"A {INTERVENTIONS[kind].lower()} entry has no {name}.")
    return values


def _entry_time(response: OverdoseResponse, at: datetime | None, now: datetime) -> datetime:
    if at is None:
        return now
    if at > now + timedelta(seconds=5):
        raise _field("at", "An entry cannot be in the future.")
    if at < response.started_at - BACKDATE_BEFORE_START:
        raise _field("at", "An entry cannot be more than 30 minutes before the response "
                           "started.")
    return at


def record_intervention(response: OverdoseResponse, data: dict, *, actor: Actor,
                        now: datetime) -> Intervention:
    """Add one step to a response's record: who, when, what.

    A naloxone dose takes a unit from the lot that expires first; with none on hand the dose
    is still recorded, flagged as a stock discrepancy for the supervisor, and the re-dose
    time is set from it. With ``amends_id``, the entry corrects an earlier one (see
    ``amend_intervention``). Raises ResponseClosed (409) or Invalid (422, on the field).
    """
    if data.get("amends_id") is not None:
        return amend_intervention(response, data["amends_id"], data, actor=actor, now=now)
    if not response.is_open:
        raise _closed(response, "record on it")
    kind = data.get("kind")
    if kind not in INTERVENTIONS:
        raise _field("kind", "Choose what was done.")
    values = _check_entry(kind, data)
    at = _entry_time(response, data.get("at"), now)
    site = db.session.get(Site, response.site_id)
    # Whoever records on the console is on it: the response's alarm is theirs.
    alerts.own_response_alerts(response, site, actor=actor, now=now)
    entry = Intervention(response_id=response.id, kind=kind, at=at, recorded_at=now,
                         recorded_by=actor.staff_id, stock_discrepancy=False, struck=False,
                         **values)
    db.session.add(entry)
    db.session.flush()
    if kind == "naloxone":
        drawn = naloxone.draw_doses(
            site, route=values["route"], intervention_id=entry.id, actor=actor, now=now,
            given=(f"{ROUTES[values['route']]} {values['dose_mg']:g} mg given in response "
                   f"{response.id}"))
        entry.lot_id = drawn.lot_id
        entry.stock_discrepancy = bool(drawn.short)
    _reset_redose(response, site, now)
    if kind == "reassessed":
        response.redose_due_at = None
        alerts.resolve_response_alerts(response.id, why="dose_given", now=now,
                                       kinds=("redose_due",), by=actor.staff_id)
    response.last_entry_at = now
    record(actor, "intervention_recorded", "overdose_response", response.id,
           site_id=response.site_id, now=now,
           detail={"intervention": entry.id, "kind": kind,
                   "discrepancy": entry.stock_discrepancy})
    live.announce(response.site_id, TOPIC_RESPONSES)
    commit(RESPONSE_CHANGED)
    return entry


def _reset_redose(response: OverdoseResponse, site: Site, now: datetime) -> None:
    """The re-dose time: the last dose that stands plus the site's interval."""
    db.session.flush()
    db.session.expire(response, ["interventions"])
    doses = [e for e in effective_entries(response) if e.kind == "naloxone" and not e.struck]
    last = max((e.at for e in doses), default=None)
    reassessed = max((e.at for e in effective_entries(response) if e.kind == "reassessed"),
                     default=None)
    before = response.redose_due_at
    if last is None or (reassessed is not None and reassessed >= last):
        response.redose_due_at = None
    else:
        response.redose_due_at = last + timedelta(seconds=site.naloxone_redose_seconds)
    if response.redose_due_at != before:
        # The prompt that passed is answered: a dose or a reassessment moved the time.
        alerts.resolve_response_alerts(response.id, why="dose_given", now=now,
                                       kinds=("redose_due",))


def amend_intervention(response: OverdoseResponse, amends_id: int, data: dict, *,
                       actor: Actor, now: datetime) -> Intervention:
    """Correct an entry after the fact: a new row pointing at it, with a reason.

    The amended row stays as it was. The amendment carries the entry's values as they
    should read (what ``data`` gives replaces, the rest is kept); ``struck`` says the entry
    was made in error. A struck dose puts its unit back in its lot with an adjustment.
    Allowed on a closed response too: the draft report is rewritten. Raises NotFound,
    Conflict (not the latest version) or Invalid (reason, values).
    """
    original = db.session.get(Intervention, amends_id)
    if original is None or original.response_id != response.id:
        raise _field("amends_id", "That entry is not part of this response.")
    if original.kind == "note" and original.note and original.note.startswith("Kind changed"):
        raise _field("amends_id", "Change the kind from the console instead.")
    newer = db.session.execute(db.select(Intervention.id).where(
        Intervention.amends_id == original.id)).first()
    if newer is not None:
        raise Conflict("This entry was already amended: amend the latest version.",
                       current_state="amended", intervention_id=original.id,
                       latest_id=newer[0])
    reason = (data.get("amend_reason") or "").strip()
    if not reason:
        raise _field("amend_reason", "Say why the entry is corrected.")
    struck = bool(data.get("struck"))
    merged = {name: getattr(original, name) for name in
              ("dose_mg", "route", "spo2", "oxygen_lpm", "note")}
    merged.update({k: v for k, v in data.items()
                   if k in merged and v is not None and v != ""})
    values = _check_entry(original.kind, merged)
    at = original.at if data.get("at") is None else _entry_time(response, data["at"], now)
    root = original
    while root.amends_id is not None:
        root = db.session.get(Intervention, root.amends_id)
    entry = Intervention(
        response_id=response.id, kind=original.kind, at=at, recorded_at=now,
        recorded_by=actor.staff_id, amends_id=original.id, amend_reason=reason,
        struck=struck, lot_id=original.lot_id, stock_discrepancy=original.stock_discrepancy,
        **values)
    db.session.add(entry)
    db.session.flush()
    site = db.session.get(Site, response.site_id)
    if original.kind == "naloxone" and struck and not original.struck and original.lot_id:
        naloxone.return_dose(site, original.lot_id, intervention_id=entry.id, actor=actor,
                             now=now, reason=f"Dose entry struck on response {response.id}")
    if response.is_open:
        _reset_redose(response, site, now)
        response.last_entry_at = now
    else:
        db.session.flush()
        db.session.expire(response, ["interventions"])
        response.report_draft = draft_report(response)
    record(actor, "intervention_amended", "overdose_response", response.id,
           site_id=response.site_id, now=now,
           detail={"intervention": entry.id, "amends": original.id, "struck": struck})
    live.announce(response.site_id, TOPIC_RESPONSES)
    commit(RESPONSE_CHANGED)
    return entry


# --- The timeline and the draft report ------------------------------------------------------


def effective_entries(response: OverdoseResponse) -> list[Intervention]:
    """Each entry as it now stands: the latest amendment of every original, by time."""
    entries = list(response.interventions)
    by_id = {e.id: e for e in entries}
    amended = {e.amends_id for e in entries if e.amends_id is not None}
    latest = [e for e in entries if e.id not in amended]
    for entry in latest:
        root = entry
        while root.amends_id is not None and root.amends_id in by_id:
            root = by_id[root.amends_id]
        entry.original = root  # noqa: B010 - a reading aid for templates, never stored
    return sorted(latest, key=lambda e: (e.at, e.original.id))


def amendments_of(response: OverdoseResponse, entry: Intervention) -> list[Intervention]:
    """The chain behind an entry, oldest first (the original, then each correction)."""
    by_id = {e.id: e for e in response.interventions}
    chain = [entry]
    while chain[-1].amends_id is not None and chain[-1].amends_id in by_id:
        chain.append(by_id[chain[-1].amends_id])
    return list(reversed(chain))


def describe(entry: Intervention) -> str:
    """One line for an entry, as the console and the report print it."""
    if entry.kind == "naloxone":
        text = f"Naloxone {entry.dose_mg:g} mg {ROUTES[entry.route]}"
        if entry.lot is not None:
            text += f", lot {entry.lot.lot_number}"
        if entry.stock_discrepancy:
            text += " (no stock on hand: discrepancy)"
        return text
    if entry.kind == "spo2":
        return f"SpO2 {entry.spo2}%"
    if entry.kind == "oxygen_on":
        return "Oxygen on" + (f", {entry.oxygen_lpm:g} L/min" if entry.oxygen_lpm else "")
    label = INTERVENTIONS[entry.kind]
    if entry.note and entry.kind in ("note", "other"):
        return f"{label}: {entry.note}"
    if entry.note:
        return f"{label} ({entry.note})"
    return label


def _who(staff_id: int | None) -> str:
    if staff_id is None:
        return "system"
    staff = db.session.get(Staff, staff_id)
    return staff.display_name if staff is not None else f"staff {staff_id}"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def response_timeline(response: OverdoseResponse) -> list[dict]:
    """The whole record as plain entries (time, who, what, detail), oldest first.

    Starting, every entry as it now stands (with its corrections: when, who, why) and the
    close. Plain data, so the incident report can take it over as it is.
    """
    where = response.location or ""
    who_for = f" for {response.client.code}" if response.client is not None else ""
    timeline = [{"time": _iso(response.started_at), "who": _who(response.started_by),
                 "what": "started", "detail": f"{_kind_label(response)} response started"
                 f"{who_for} ({where})", "kind": "start", "entry_id": None,
                 "struck": False, "amendments": []}]
    for entry in effective_entries(response):
        chain = amendments_of(response, entry)
        original = chain[0]
        timeline.append({
            "time": _iso(entry.at), "who": _who(original.recorded_by), "what": entry.kind,
            "detail": describe(entry), "kind": entry.kind, "entry_id": entry.id,
            "recorded_at": _iso(original.recorded_at), "struck": entry.struck,
            "amendments": [{"time": _iso(a.recorded_at), "who": _who(a.recorded_by),
                            "reason": a.amend_reason, "struck": a.struck,
                            "was": describe(previous), "was_time": _iso(previous.at)}
                           for previous, a in zip(chain, chain[1:], strict=False)],
        })
    if response.closed_at is not None:
        note = f": {response.outcome_note}" if response.outcome_note else ""
        timeline.append({"time": _iso(response.closed_at), "who": _who(response.closed_by),
                         "what": "closed", "detail": f"Closed: {OUTCOMES[response.outcome]}"
                         f"{note}", "kind": "close", "entry_id": None, "struck": False,
                         "amendments": []})
    return timeline


def _kind_label(response: OverdoseResponse) -> str:
    return {"opioid": "Opioid overdose", "stimulant": "Stimulant overdose",
            "other": "Medical emergency"}[response.kind]


def response_summary(response: OverdoseResponse) -> dict:
    """The answers Ontario's per-overdose record asks for, read from the entries."""
    entries = [e for e in effective_entries(response) if not e.struck]
    kinds = {e.kind for e in entries}
    doses = [e for e in entries if e.kind == "naloxone"]
    ems_called = min((e.at for e in entries if e.kind == "ems_called"), default=None)
    readings = [e.spo2 for e in entries if e.kind == "spo2"]
    return {
        "stimulation": "stimulation" in kinds,
        "rescue_breaths": "rescue_breaths" in kinds,
        "oxygen": "oxygen_on" in kinds,
        "naloxone": bool(doses),
        "naloxone_doses": len(doses),
        "naloxone_total_mg": round(sum(e.dose_mg for e in doses), 3),
        "cpr": "cpr" in kinds,
        "aed": "aed" in kinds,
        "other_intervention": "other" in kinds or "recovery_position" in kinds,
        "ems_called": ems_called is not None,
        "ems_called_at": _iso(ems_called),
        "ems_arrived": "ems_arrived" in kinds,
        "handed_to_ems": "handed_to_ems" in kinds,
        "lowest_spo2": min(readings) if readings else None,
        "stock_discrepancy": any(e.stock_discrepancy for e in doses),
        "outcome": response.outcome,
    }


def draft_report(response: OverdoseResponse) -> dict:
    """The incident draft of type overdose: who, where, when, the summary and the timeline."""
    return {
        "type": "overdose",
        "status": "draft",
        "response_id": response.id,
        "site_id": response.site_id,
        "visit_id": response.visit_id,
        "client_code": response.client.code if response.client is not None else None,
        "kind": response.kind,
        "source": response.source,
        "location": response.location,
        "started_at": _iso(response.started_at),
        "closed_at": _iso(response.closed_at),
        "outcome": response.outcome,
        "outcome_note": response.outcome_note,
        "summary": response_summary(response),
        "timeline": response_timeline(response),
    }


# --- Closing --------------------------------------------------------------------------------


# Outcomes after which the client is no longer on the floor: the visit ends with the close,
# with this departure reason.
DISCHARGING_OUTCOMES = {"transferred_to_hospital": "transferred_ems",
                        "left_against_advice": "left_against_advice"}


def close_response(response: OverdoseResponse, *, outcome: str | None, note: str | None,
                   actor: Actor, now: datetime) -> OverdoseResponse:
    """End a response with its outcome and write the incident draft from its timeline.

    Raises ResponseClosed (409) or Invalid (422: no or unknown outcome, "other" without a
    note).
    """
    if not response.is_open:
        raise _closed(response, "close it again")
    if not outcome:
        raise _field("outcome", "Choose the outcome before closing.")
    if outcome not in OUTCOMES:
        raise _field("outcome", f"Choose one of: {', '.join(OUTCOMES.values())}.")
    note = (note or "").strip() or None
    if outcome == "other" and not note:
        raise _field("note", "Say what the outcome was.")
    response.closed_at = now
    response.closed_by = actor.staff_id
    response.outcome = outcome
    response.outcome_note = note
    response.redose_due_at = None
    db.session.flush()
    response.report_draft = draft_report(response)
    record(actor, "overdose_closed", "overdose_response", response.id,
           site_id=response.site_id, now=now, detail={"outcome": outcome})
    alerts.resolve_response_alerts(response.id, why="response_closed", now=now,
                                   by=actor.staff_id)
    response.drafted = signals.first_answer(  # the incident draft
        signals.response_closed.send(response, actor=actor, now=now))
    visit = response.visit
    if outcome in DISCHARGING_OUTCOMES and visit is not None and visit.state in (
            VisitState.IN_BOOTH, VisitState.OBSERVING):
        # The client left with the outcome: the visit ends with it, the booth is freed.
        floor.end_visit(visit, reason=DISCHARGING_OUTCOMES[outcome], actor=actor, now=now)
    live.announce(response.site_id, TOPIC_RESPONSES)
    live.announce(response.site_id, "alerts")
    commit(RESPONSE_CHANGED)  # the close and its draft together, or neither
    return response


def drafted_report(response: OverdoseResponse, *, reporter_id: int | None):
    """The incident report this closed response drafted for ``reporter_id``, or None: the
    close's own answer knows it (``response.drafted``), and every later render of the
    console (a live re-fetch, a reload) asks the incident package again."""
    if response.is_open or reporter_id is None:
        return None
    if response.drafted is not None:
        return response.drafted
    return signals.first_answer(signals.response_draft.send(response, reporter_id=reporter_id))


# --- Figures for the monthly report ---------------------------------------------------------


def monthly_figures(site: Site, *, start: datetime, end: datetime) -> dict:
    """What Health Canada and Ontario count about overdoses and naloxone in [start, end)."""
    responses = list(db.session.execute(db.select(OverdoseResponse).where(
        OverdoseResponse.site_id == site.id, OverdoseResponse.started_at >= start,
        OverdoseResponse.started_at < end).options(
        selectinload(OverdoseResponse.interventions))).scalars())
    overdoses = [r for r in responses if r.kind != ResponseKind.OTHER]
    summaries = {r.id: response_summary(r) for r in responses}
    with_naloxone = [r for r in overdoses if summaries[r.id]["naloxone"]]
    ems_outcomes = {"treated_by_ems_on_site", "transferred_to_hospital"}
    return {
        "overdoses": len(overdoses),
        "opioid_overdoses": sum(1 for r in overdoses if r.kind == ResponseKind.OPIOID),
        "stimulant_overdoses": sum(1 for r in overdoses if r.kind == ResponseKind.STIMULANT),
        "other_medical_emergencies": len(responses) - len(overdoses),
        "overdoses_with_naloxone": len(with_naloxone),
        "overdoses_without_naloxone": len(overdoses) - len(with_naloxone),
        "naloxone_doses": sum(summaries[r.id]["naloxone_doses"] for r in responses),
        "ems_calls": sum(1 for r in responses if summaries[r.id]["ems_called"]),
        "overdose_ems_calls": sum(1 for r in overdoses if summaries[r.id]["ems_called"]),
        "treated_by_ems": sum(1 for r in overdoses if r.outcome in ems_outcomes),
        "deaths": sum(1 for r in responses if r.outcome == "death"),
        **naloxone.kit_figures(site, start=start, end=end),
    }


def naloxone_timing(site: Site, *, start: datetime, end: datetime) -> list[tuple]:
    """Each overdose started in [start, end): (started_at, naloxone doses, minutes from the
    start to the first dose or None), read from the entries as amended."""
    responses = db.session.execute(db.select(OverdoseResponse).where(
        OverdoseResponse.site_id == site.id, OverdoseResponse.started_at >= start,
        OverdoseResponse.started_at < end, OverdoseResponse.kind != ResponseKind.OTHER)
        .options(selectinload(OverdoseResponse.interventions))).scalars()
    out = []
    for response in responses:
        doses = [e.at for e in effective_entries(response)
                 if e.kind == "naloxone" and not e.struck]
        minutes = ((min(doses) - response.started_at).total_seconds() / 60) if doses else None
        out.append((response.started_at, len(doses), minutes))
    return out


def day_bounds(site: Site, day: date) -> tuple[datetime, datetime]:
    zone = site.zone
    start = datetime.combine(day, time.min, zone)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)

