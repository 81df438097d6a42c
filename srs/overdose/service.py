"""Overdose responses and naloxone stock.

Callers: overdose and API views, the daily stock job, the floor's client flags. Each
function that changes something is one unit of work: check, change, announce (topic
``responses`` or ``stock``), commit once (``srs.unit``). ``open_response`` is the piece an
Unresponsive check reuses: it never commits, the check's unit of work does. Each takes
``now`` and an ``Actor`` and raises a DomainError: 409 for a response or stock in the
wrong state, 422 with field messages.

Alarms: ``open_response`` is where an overdose alarm is raised (sounded at its unit's
commit) and ``due_redose_prompts`` lists the responses whose re-dose time has passed, for
the once-a-second alert scan to turn into medium alerts.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import exc, func
from sqlalchemy.orm import selectinload

from srs import live, signals
from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.auth.models import Staff
from srs.auth.service import Actor, record
from srs.booths import service as floor
from srs.booths.models import Visit, VisitState
from srs.clients.models import Client, parse_client_code
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.overdose.models import (
    FORMS,
    FORMS_FOR_KIT,
    FORMS_FOR_ROUTE,
    INTERVENTIONS,
    KIT_FORMS,
    MAX_DOSE_MG,
    MAX_SPO2,
    MIN_DOSE_MG,
    MIN_SPO2,
    OUTCOMES,
    ROUTES,
    SOURCES,
    STANDARD_DOSES,
    Intervention,
    NaloxoneLot,
    OverdoseResponse,
    ResponseKind,
    StockFinding,
    StockMovement,
    TakeHomeKit,
)
from srs.sites.models import Site
from srs.unit import commit

MAX_PER_VISIT = 2
EXPIRY_WARNING = timedelta(days=30)
RECENT_OVERDOSE = timedelta(days=30)
# An entry may be back-dated to a little before the tap that opened the console.
BACKDATE_BEFORE_START = timedelta(minutes=30)
TOPIC_RESPONSES = live.TOPIC_RESPONSES
TOPIC_STOCK = "stock"


class ResponseClosed(Conflict):
    code = "response_closed"


def _closed(response: OverdoseResponse, doing: str) -> ResponseClosed:
    return ResponseClosed(
        f"Cannot {doing}: this response was closed at "
        f"{response.closed_at:%H:%M} UTC ({OUTCOMES[response.outcome].lower()}).",
        current_state="closed", response_id=response.id, outcome=response.outcome)


RESPONSE_CHANGED = ("Someone else changed this response a moment ago. The console will show "
                    "it as it is now.")


def local_date(site: Site, now: datetime) -> date:
    return site.local_date(now)


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


def due_redose_prompts(*, now: datetime) -> list[OverdoseResponse]:
    """Open responses whose re-dose time has passed: the console prompts to reassess.

    Indexed on ``redose_due_at``; the alert scan raises a medium alert for each.
    """
    return list(db.session.execute(db.select(OverdoseResponse).where(
        OverdoseResponse.redose_due_at.is_not(None), OverdoseResponse.redose_due_at <= now,
        OverdoseResponse.closed_at.is_(None)).order_by(OverdoseResponse.redose_due_at)).scalars())


def due_redose_alerts(*, now: datetime):
    """Each open response whose re-dose time passed and has no alert yet (the alert scan's
    source): the console prompts to reassess."""
    already = (db.select(Alert.id).where(
        Alert.kind == "redose_due", Alert.subject_type == "response",
        Alert.subject_id == OverdoseResponse.id,
        Alert.due_at == OverdoseResponse.redose_due_at).exists())
    for response in db.session.execute(db.select(OverdoseResponse).where(
            OverdoseResponse.redose_due_at <= now, OverdoseResponse.closed_at.is_(None),
            ~already)).scalars():
        yield {"site_id": response.site_id, "kind": "redose_due",
               "due_at": response.redose_due_at, **alerts.response_subject(response)}


alerts.register_due_source(due_redose_alerts)


def recent_overdose(client_id: int, *, since: datetime) -> bool:
    """Whether a client had an overdose response started since ``since`` (a check-in flag)."""
    return db.session.execute(db.select(OverdoseResponse.id).where(
        OverdoseResponse.client_id == client_id, OverdoseResponse.started_at >= since,
        OverdoseResponse.kind != ResponseKind.OTHER).limit(1)).first() is not None


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
    # A high alarm on every screen of the site; it replaces an "unresponsive" one.
    alert = alerts.raise_for_response(response, site, "overdose", due_at=now, now=now)
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


def _draw_units(site: Site, forms, units: int, *, kind: str, actor: Actor, now: datetime,
                intervention: Intervention | None = None,
                kit: TakeHomeKit | None = None) -> int:
    """Take ``units`` from the site's lots of ``forms``, first expiry first out; return how
    many could not be found on hand.

    Each unit is taken by a guarded UPDATE (quantity > 0), so two doses at once never take
    the same last ampoule, and every unit taken writes its ledger row.
    """
    today = local_date(site, now)
    short = units
    while short > 0:
        lots = db.session.execute(
            db.select(NaloxoneLot.id, NaloxoneLot.quantity).where(
                NaloxoneLot.site_id == site.id, NaloxoneLot.form.in_(forms),
                NaloxoneLot.quantity > 0, NaloxoneLot.expires_on >= today)
            .order_by(NaloxoneLot.expires_on, NaloxoneLot.received_at, NaloxoneLot.id)
        ).all()
        if not lots:
            break
        lot_id, on_hand = lots[0]
        take = min(short, on_hand)
        taken = db.session.execute(
            db.update(NaloxoneLot).where(NaloxoneLot.id == lot_id,
                                         NaloxoneLot.quantity >= take)
            .values(quantity=NaloxoneLot.quantity - take)
            .execution_options(synchronize_session=False)).rowcount
        if not taken:
            continue  # someone took from it meanwhile: look again
        db.session.add(StockMovement(
            site_id=site.id, lot_id=lot_id, kind=kind, delta=-take, at=now,
            by=actor.staff_id, intervention_id=intervention.id if intervention else None,
            kit_id=kit.id if kit else None))
        if intervention is not None and intervention.lot_id is None:
            intervention.lot_id = lot_id
        short -= take
    db.session.flush()
    for lot in db.session.identity_map.values():
        if isinstance(lot, NaloxoneLot):
            db.session.expire(lot, ["quantity"])
    return short


def _discrepancy(site: Site, *, detail: str, now: datetime, intervention=None,
                 kit=None) -> None:
    key = (f"discrepancy:intervention:{intervention.id}" if intervention is not None
           else f"discrepancy:kit:{kit.id}")
    db.session.add(StockFinding(
        site_id=site.id, kind="discrepancy", key=key, detail=detail, found_at=now,
        intervention_id=intervention.id if intervention else None,
        kit_id=kit.id if kit else None))


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
        short = _draw_units(site, FORMS_FOR_ROUTE[values["route"]], 1, kind="administered",
                            actor=actor, now=now, intervention=entry)
        if short:
            entry.stock_discrepancy = True
            forms = " or ".join(FORMS[f].lower() for f in FORMS_FOR_ROUTE[values["route"]])
            _discrepancy(site, intervention=entry, now=now, detail=(
                f"{ROUTES[values['route']]} {values['dose_mg']:g} mg given in response "
                f"{response.id} with no {forms} on hand."))
    _reset_redose(response, site, now)
    if kind == "reassessed":
        response.redose_due_at = None
        alerts.resolve_response_alerts(response.id, why="dose_given", now=now,
                                       kinds=("redose_due",), by=actor.staff_id)
    response.last_entry_at = now
    if kind == "naloxone":
        check_site_stock(site, now=now)
    record(actor, "intervention_recorded", "overdose_response", response.id,
           site_id=response.site_id, now=now,
           detail={"intervention": entry.id, "kind": kind,
                   "discrepancy": entry.stock_discrepancy})
    live.announce(response.site_id, TOPIC_RESPONSES)
    if kind == "naloxone":
        live.announce(response.site_id, TOPIC_STOCK)
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
        db.session.execute(db.update(NaloxoneLot).where(NaloxoneLot.id == original.lot_id)
                           .values(quantity=NaloxoneLot.quantity + 1)
                           .execution_options(synchronize_session=False))
        db.session.add(StockMovement(
            site_id=site.id, lot_id=original.lot_id, kind="adjusted", delta=1, at=now,
            by=actor.staff_id, intervention_id=entry.id,
            reason=f"Dose entry struck on response {response.id}"))
        lot = db.session.get(NaloxoneLot, original.lot_id)
        db.session.expire(lot, ["quantity"])
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
DISCHARGING_OUTCOMES = {"transferred_to_hospital": "transferred_ems"}


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


# --- Naloxone stock -------------------------------------------------------------------------


@dataclass
class LotView:
    """A lot as the stock page shows it: with whether it is expired or expiring soon."""

    lot: NaloxoneLot
    expired: bool
    expiring: bool
    ledger_total: int

    def __getattr__(self, name):
        return getattr(self.lot, name)


def get_lot(site: Site, lot_id: int) -> NaloxoneLot:
    lot = db.session.get(NaloxoneLot, lot_id)
    if lot is None or lot.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no naloxone lot with id {lot_id}.")
    return lot


def list_stock(site: Site, *, now: datetime) -> dict:
    """Every lot by form and expiry, the totals on hand by form, open findings, recent
    movements and kits."""
    today = local_date(site, now)
    lots = list(db.session.execute(db.select(NaloxoneLot).where(
        NaloxoneLot.site_id == site.id).order_by(
        NaloxoneLot.form, NaloxoneLot.expires_on, NaloxoneLot.id)).scalars())
    ledger = dict(db.session.execute(db.select(
        StockMovement.lot_id, func.sum(StockMovement.delta)).where(
        StockMovement.site_id == site.id).group_by(StockMovement.lot_id)).all())
    views = [LotView(lot, lot.expires_on < today,
                     today <= lot.expires_on <= today + EXPIRY_WARNING,
                     int(ledger.get(lot.id) or 0)) for lot in lots]
    usable = {form: sum(v.quantity for v in views if v.form == form and not v.expired)
              for form in FORMS}
    findings = list(db.session.execute(db.select(StockFinding).where(
        StockFinding.site_id == site.id, StockFinding.resolved_at.is_(None)).order_by(
        StockFinding.found_at.desc(), StockFinding.id.desc())).scalars())
    movements = list(db.session.execute(db.select(StockMovement).where(
        StockMovement.site_id == site.id).options(selectinload(StockMovement.lot)).order_by(
        StockMovement.at.desc(), StockMovement.id.desc()).limit(50)).scalars())
    kits = list(db.session.execute(db.select(TakeHomeKit).where(
        TakeHomeKit.site_id == site.id).options(selectinload(TakeHomeKit.client)).order_by(
        TakeHomeKit.given_at.desc(), TakeHomeKit.id.desc()).limit(20)).scalars())
    return {"site": site, "lots": views, "on_hand": usable, "findings": findings,
            "movements": movements, "kits": kits, "today": today,
            "threshold": site.naloxone_low_stock, "generated_at": now}


def receive_stock(site: Site, data: dict, *, actor: Actor, now: datetime) -> NaloxoneLot:
    """Add received naloxone to a lot (new, or the same lot number and form again).

    Raises Invalid: an expiry already past, a known lot number with another expiry.
    """
    today = local_date(site, now)
    if data["expires_on"] < today:
        raise _field("expires_on", "This stock has expired: do not receive it.")
    lot_number = data["lot_number"].strip()
    if not lot_number:
        raise _field("lot_number", "Give the lot number printed on the box.")
    lot = db.session.execute(db.select(NaloxoneLot).filter_by(
        site_id=site.id, form=data["form"], lot_number=lot_number)).scalar_one_or_none()
    if lot is not None and lot.expires_on != data["expires_on"]:
        raise _field("expires_on", f"Lot {lot_number} is on record with expiry "
                                   f"{lot.expires_on:%Y-%m-%d}; check the box.")
    if lot is None:
        lot = NaloxoneLot(site_id=site.id, product=data["product"].strip(), form=data["form"],
                          strength=data["strength"].strip(), lot_number=lot_number,
                          expires_on=data["expires_on"], quantity=0, received_at=now)
        db.session.add(lot)
        db.session.flush()
    db.session.execute(db.update(NaloxoneLot).where(NaloxoneLot.id == lot.id).values(
        quantity=NaloxoneLot.quantity + data["quantity"]).execution_options(
        synchronize_session=False))
    db.session.add(StockMovement(site_id=site.id, lot_id=lot.id, kind="received",
                                 delta=data["quantity"], at=now, by=actor.staff_id))
    db.session.flush()
    db.session.expire(lot, ["quantity"])
    check_site_stock(site, now=now)
    record(actor, "naloxone_received", "naloxone_lot", lot.id, site_id=site.id, now=now,
           detail={"quantity": data["quantity"]})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return lot


def record_movement(lot: NaloxoneLot, *, kind: str, quantity: int, reason: str | None,
                    actor: Actor, now: datetime) -> StockMovement:
    """Take units out as expired or wasted, or adjust a count (either way) with a reason.

    Raises Invalid (kind, quantity, a missing reason) or Conflict (more than on hand).
    """
    reason = (reason or "").strip() or None
    if kind not in ("expired", "wasted", "adjusted"):
        raise _field("kind", "Choose expired, wasted or adjusted.")
    if not quantity:
        raise _field("quantity", "Give how many.")
    if kind in ("expired", "wasted") and quantity < 0:
        raise _field("quantity", "Give how many went out, as a positive number.")
    if kind == "adjusted" and not reason:
        raise _field("reason", "Say why the count is adjusted.")
    delta = quantity if kind == "adjusted" else -quantity
    changed = db.session.execute(db.update(NaloxoneLot).where(
        NaloxoneLot.id == lot.id, NaloxoneLot.quantity + delta >= 0).values(
        quantity=NaloxoneLot.quantity + delta).execution_options(
        synchronize_session=False)).rowcount
    if not changed:
        db.session.rollback()
        raise Conflict(f"Lot {lot.lot_number} has only {lot.quantity} on hand.",
                       errors={"quantity": [f"At most {lot.quantity}."]},
                       current_quantity=lot.quantity)
    movement = StockMovement(site_id=lot.site_id, lot_id=lot.id, kind=kind, delta=delta,
                             at=now, by=actor.staff_id, reason=reason)
    db.session.add(movement)
    db.session.flush()
    db.session.expire(lot, ["quantity"])
    site = db.session.get(Site, lot.site_id)
    check_site_stock(site, now=now)
    record(actor, "naloxone_movement", "naloxone_lot", lot.id, site_id=lot.site_id, now=now,
           detail={"kind": kind, "delta": delta})
    live.announce(lot.site_id, TOPIC_STOCK)
    db.session.commit()
    return movement


def _client_for_code(site: Site, code: str, *, actor: Actor, now: datetime) -> Client:
    import re

    code = (code or "").strip().upper()
    if not re.fullmatch(site.client_code_pattern, code):
        raise _field("client_code", "Use the site's code form, e.g. F-ABCD-1984.")
    client = db.session.execute(db.select(Client).filter_by(code=code)).scalar_one_or_none()
    if client is None:
        gender, birth_year = parse_client_code(code)
        client = Client(code=code, gender=gender, birth_year=birth_year, created_at=now)
        db.session.add(client)
        db.session.flush()
        record(actor, "client_created", "client", client.id, site_id=site.id, now=now)
    return client


def record_take_home_kit(site: Site, data: dict, *, actor: Actor,
                         now: datetime) -> TakeHomeKit:
    """Kits handed to a client code: taken from stock first expiry first; given even when
    stock is short (flagged for the supervisor). Raises Invalid on the client code or form.
    """
    if data.get("form") not in KIT_FORMS:
        raise _field("form", "Choose injectable or nasal.")
    client = _client_for_code(site, data.get("client_code"), actor=actor, now=now)
    kit = TakeHomeKit(site_id=site.id, client_id=client.id, form=data["form"],
                      number=data.get("number") or 1,
                      replaces_used=bool(data.get("replaces_used")),
                      training_given=bool(data.get("training_given")), given_at=now,
                      given_by=actor.staff_id, stock_discrepancy=False)
    db.session.add(kit)
    db.session.flush()
    short = _draw_units(site, FORMS_FOR_KIT[kit.form], kit.number, kind="take_home",
                        actor=actor, now=now, kit=kit)
    if short:
        kit.stock_discrepancy = True
        _discrepancy(site, kit=kit, now=now, detail=(
            f"{short} {KIT_FORMS[kit.form].lower()} take-home kit(s) given with no stock on "
            f"hand."))
    check_site_stock(site, now=now)
    record(actor, "take_home_kit_given", "client", client.id, site_id=site.id, now=now,
           detail={"kit": kit.id, "form": kit.form, "number": kit.number})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return kit


def resolve_finding(site: Site, finding_id: int, *, actor: Actor, now: datetime) -> StockFinding:
    """A supervisor has seen to a finding (counted, reordered, explained)."""
    finding = db.session.get(StockFinding, finding_id)
    if finding is None or finding.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no stock finding with id {finding_id}.")
    if finding.resolved_at is not None:
        raise Conflict("This finding was already resolved.", current_state="resolved")
    finding.resolved_at = now
    finding.resolved_by = actor.staff_id
    record(actor, "stock_finding_resolved", "stock_finding", finding.id, site_id=site.id,
           now=now, detail={"kind": finding.kind})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return finding


# --- The daily stock check ------------------------------------------------------------------

FAMILIES = {"injectable": ("ampoule", "vial"), "nasal": ("nasal_spray",)}


def check_site_stock(site: Site, *, now: datetime) -> list[StockFinding]:
    """Write findings for low stock and lots expiring within 30 days or expired on hand;
    resolve the ones no longer true. Adds to the session; the caller commits.

    A finding is written once per condition: a lot expiring has one row; low stock of a
    form family has one open row until it is restocked.
    """
    today = local_date(site, now)
    lots = list(db.session.execute(db.select(NaloxoneLot).where(
        NaloxoneLot.site_id == site.id)).scalars())
    open_findings = list(db.session.execute(db.select(StockFinding).where(
        StockFinding.site_id == site.id, StockFinding.resolved_at.is_(None),
        StockFinding.kind != "discrepancy")).scalars())
    wanted: dict[str, tuple] = {}
    for family, forms in FAMILIES.items():
        on_hand = sum(lot.quantity for lot in lots
                      if lot.form in forms and lot.expires_on >= today)
        if on_hand < site.naloxone_low_stock:
            wanted[f"low:{family}"] = ("low_stock", None, (
                f"{family.capitalize()} naloxone: {on_hand} on hand, under this site's "
                f"threshold of {site.naloxone_low_stock}."))
    for lot in lots:
        if lot.quantity <= 0:
            continue
        label = f"Lot {lot.lot_number} ({FORMS[lot.form].lower()}, {lot.quantity} on hand)"
        if lot.expires_on < today:
            wanted[f"expired:{lot.id}"] = ("expired", lot.id,
                                           f"{label} expired on {lot.expires_on:%Y-%m-%d}.")
        elif lot.expires_on <= today + EXPIRY_WARNING:
            wanted[f"expiring:{lot.id}"] = ("expiring", lot.id,
                                            f"{label} expires on {lot.expires_on:%Y-%m-%d}.")
    made = []
    open_by_prefix = {f.key.rsplit("@", 1)[0]: f for f in open_findings}
    for prefix, finding in open_by_prefix.items():
        if prefix not in wanted:
            finding.resolved_at = now
    for prefix, (kind, lot_id, detail) in wanted.items():
        if prefix in open_by_prefix:
            continue
        finding = StockFinding(site_id=site.id, kind=kind, key=f"{prefix}@{_iso(now)}",
                               lot_id=lot_id, detail=detail[:300], found_at=now)
        db.session.add(finding)
        made.append(finding)
    db.session.flush()
    return made


def check_naloxone_stock(*, now: datetime) -> int:
    """The daily job: check every site's stock, commit, announce; return findings made."""
    made = 0
    changed = []
    for site in db.session.execute(db.select(Site).order_by(Site.id)).scalars():
        found = check_site_stock(site, now=now)
        made += len(found)
        if found:
            changed.append(site.id)
    for site_id in changed:
        live.announce(site_id, TOPIC_STOCK)
    db.session.commit()
    return made


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
    kits = list(db.session.execute(db.select(TakeHomeKit).where(
        TakeHomeKit.site_id == site.id, TakeHomeKit.given_at >= start,
        TakeHomeKit.given_at < end)).scalars())
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
        "take_home_kits": {form: sum(k.number for k in kits if k.form == form)
                           for form in KIT_FORMS},
        "take_home_kits_replacing_used": sum(k.number for k in kits if k.replaces_used),
        "take_home_kits_with_training": sum(k.number for k in kits if k.training_given),
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

