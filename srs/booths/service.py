"""The floor's operations: check-in, queue, booths, consumption, after-care, discharge.

Callers: booths and API views, the CLI. Each function is one unit of work:
check, change, commit, then announce. Each takes ``now`` and an ``Actor``,
and raises a DomainError the app turns into a 409 or 422 with a message.
"""

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Float, exc
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.expression import FunctionElement

from srs import live, signals
from srs.alerts import service as alerts
from srs.auth.models import Role
from srs.auth.service import Actor, record
from srs.booths.checks import BOOTH_KINDS
from srs.booths.models import (
    DISCHARGE_FROM_BOOTH_REASONS,
    EARLY_DISCHARGE_REASONS,
    LEFT_QUEUE_REASONS,
    ROUTES_BY_BOOTH_KIND,
    TOPIC_AFTERCARE,
    TOPIC_BOARD,
    TOPIC_QUEUE,
    VISIT_CHANGED,
    Booth,
    BoothKind,
    BoothState,
    Consumption,
    Visit,
    VisitState,
    floor_topic,
)
from srs.clients import service as clients
from srs.errors import Conflict, Forbidden, Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site
from srs.unit import commit


class BoothTaken(Conflict):
    code = "booth_taken"


class VisitStateConflict(Conflict):
    code = "visit_state"


def _conflict(visit: Visit, doing: str) -> VisitStateConflict:
    return VisitStateConflict(f"Cannot {doing}: this visit is {visit.state.replace('_', ' ')}.",
                              current_state=visit.state, visit_id=visit.id)


# --- Reading the floor ---------------------------------------------------------------------


@dataclass
class BoothView:
    """A booth as a screen shows it: its derived state and the visit holding it."""

    booth: Booth
    state: BoothState
    visit: Visit | None

    def __getattr__(self, name):
        return getattr(self.booth, name)


# What a board holds, each part what one fragment shows: a change reads only the parts its
# topics touch (a check-in the queue and today's figures, not the booths).
BOARD_PARTS = ("booths", "queue", "aftercare", "today")
_PART_STATES = {"booths": VisitState.IN_BOOTH, "queue": VisitState.WAITING,
                "aftercare": VisitState.OBSERVING}


def site_board(site: Site, *, now: datetime, parts=BOARD_PARTS) -> dict:
    """What every screen of a site shows: booths with their state and holder, the queue,
    after-care, and today's figures; or only the ``parts`` asked for (``BOARD_PARTS``).

    Read in as few statements as the parts need: the booths, the open visits of the states
    shown with their client joined (and their booth, unless the booths were read; their
    uses and checks for a booth tile or an after-care row), and today's figures, each one
    statement.
    """
    parts = frozenset(parts)
    board = {"site": site, "generated_at": now}
    views = None
    if "booths" in parts:
        booths = list(db.session.execute(_booths_statement(), {"site_id": site.id}).scalars())
    open_visits = []
    if shown := parts.intersection(_PART_STATES):
        open_visits = list(db.session.execute(
            _open_visits_statement(shown), {"site_id": site.id}).scalars())
    if "booths" in parts:
        holders = {v.booth_id: v for v in open_visits if v.state == VisitState.IN_BOOTH}
        views = [BoothView(b, b.state_with(holders.get(b.id)), holders.get(b.id))
                 for b in booths]
        board["booths"] = views
        board["counts"] = {state: sum(1 for v in views if v.state == state)
                           for state in BoothState}
    if "queue" in parts:
        board["queue"] = [v for v in open_visits if v.state == VisitState.WAITING]
    if "aftercare" in parts:
        board["aftercare"] = [v for v in open_visits if v.state == VisitState.OBSERVING]
    if "today" in parts:
        board["today"] = todays_figures(site, now=now, booths=views)
    return board


@functools.cache
def _figures_statement(*, counting_booths: bool):
    """Today's figures of a site (``site_id``) since its local midnight (``since``), built
    once: every change a dashboard shows reads them, and building the statement anew cost
    more than running it."""
    site_id, since = db.bindparam("site_id"), db.bindparam("since")
    columns = [db.func.count(Visit.id), db.func.count(Visit.client_id.distinct()),
               db.func.count(Visit.id).filter(Visit.state == VisitState.WAITING),
               db.func.avg(epoch_seconds(Visit.booth_at) - epoch_seconds(Visit.arrived_at))]
    if counting_booths:
        standing = db.and_(Booth.site_id == site_id, Booth.retired_at.is_(None))
        columns += [
            # A booth is in use while an open visit holds it (BoothState.OCCUPIED).
            db.select(db.func.count(Visit.id)).join(Booth, Booth.id == Visit.booth_id)
            .where(Visit.site_id == site_id, Visit.state == VisitState.IN_BOOTH, standing)
            .scalar_subquery(),
            db.select(db.func.count(Booth.id)).where(standing).scalar_subquery()]
    return db.select(*columns).where(Visit.site_id == site_id, Visit.arrived_at >= since)


# The board's statements are built once (per combination of parts) and run with the site as
# a parameter: a change's fan-out reads the board, and building a statement anew costs about
# a third of running it.

@functools.cache
def _booths_statement():
    return (db.select(Booth)
            .where(Booth.site_id == db.bindparam("site_id"), Booth.retired_at.is_(None))
            .order_by(Booth.position, Booth.label))


@functools.cache
def _open_visits_statement(parts: frozenset):
    """The open visits of the states ``parts`` show, with what those parts show of each."""
    states = [state for part, state in _PART_STATES.items() if part in parts]
    options = [joinedload(Visit.client)]
    if "booths" not in parts:  # else each visit finds its booth among those just read
        options.append(joinedload(Visit.booth))
    if "booths" in parts:  # a tile shows the last use; the API answers every visit's
        options.append(selectinload(Visit.consumptions))
    if "booths" in parts or "aftercare" in parts:  # a drowsy mark
        options.append(selectinload(Visit.checks))
    return (db.select(Visit)
            .where(Visit.site_id == db.bindparam("site_id"), Visit.state.in_(states))
            .options(*options).order_by(Visit.arrived_at, Visit.id))


def _start_of_day(site: Site, now: datetime) -> datetime:
    return site.midnight(site.local_date(now))


def local_date(site: Site, now: datetime) -> date:
    """The calendar date at the site: a restriction "until the 1st" ends at local midnight."""
    return site.local_date(now)


def todays_figures(site: Site, *, now: datetime, booths: list[BoothView] | None = None) -> dict:
    """Visits, unique clients, waiting now, average wait and booths in use, since local
    midnight at the site: counted by the database in one query, not by loading the day.
    The booths in use come from ``booths`` when the board read them, else from that query."""
    row = db.session.execute(_figures_statement(counting_booths=booths is None), {
        "site_id": site.id, "since": _start_of_day(site, now)}).one()
    visits, unique_clients, waiting_now, average_wait = row[:4]
    if booths is None:
        in_use, total = row[4], row[5]
    else:
        in_use = sum(1 for b in booths if b.state == BoothState.OCCUPIED)
        total = len(booths)
    return {
        "visits": visits,
        "unique_clients": unique_clients,
        "waiting_now": waiting_now,
        # AVG skips visits not yet in a booth (their wait is NULL).
        "average_wait_minutes": (round(float(average_wait) / 60, 1)
                                 if average_wait is not None else None),
        "booths_in_use": in_use,
        "booths_total": total,
    }


class epoch_seconds(FunctionElement):  # noqa: N801 - an SQL function, named as SQL's are
    """Seconds since 1970 of a UTC timestamp column, as SQLite and PostgreSQL each say it."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_seconds_postgresql(element, compiler, **kw):
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element, compiler, **kw):
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def get_booth(site: Site, booth_id: int) -> Booth:
    booth = db.session.get(Booth, booth_id)
    if booth is None or booth.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no booth with id {booth_id}.")
    return booth


def get_visit(site: Site, visit_id: int) -> Visit:
    visit = db.session.get(Visit, visit_id)
    if visit is None or visit.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no visit with id {visit_id}.")
    return visit


# --- Check-in and the queue ----------------------------------------------------------------


def check_in(site: Site, *, code: str, handle: str | None, actor: Actor, actor_roles: set[str],
             now: datetime, override_reason: str | None = None) -> Visit:
    """Start a visit in ``waiting`` for a known or new client code.

    A client under an active service restriction is checked in only when a
    supervisor overrides it (the actor is a supervisor at the site and gives a
    reason); the override is audited. Raises Invalid, Forbidden or Conflict.
    """
    code = clients.check_code(site, code)  # the code's message first, then the handle's
    handle = clients.check_handle(handle)
    client, created = clients.client_for_code(site, code, actor=actor, now=now, handle=handle)
    if not created:
        record(actor, "client_viewed", "client", client.id, site_id=site.id, now=now)
    flags = clients.client_flags(client, today=local_date(site, now))
    override_by = None
    if flags["restricted"]:
        if Role.SUPERVISOR not in actor_roles:
            db.session.commit()  # the read of the record stays audited
            raise Forbidden(
                f"This client is under a service restriction until "
                f"{flags['restricted_until']:%d %b %Y}. A supervisor must check them in.",
                {"code": ["Service restriction: a supervisor override is needed."]})
        if not (override_reason or "").strip():
            db.session.commit()
            raise Invalid("Give the reason for overriding the restriction.", {
                "override_reason": ["Say why the restriction is overridden today."]})
        override_by = actor.staff_id
    if handle and handle != client.handle:
        client.handle = handle
    visit = Visit(site_id=site.id, client_id=client.id, state=VisitState.WAITING,
                  arrived_at=now, checked_in_by=actor.staff_id, override_by=override_by)
    db.session.add(visit)
    try:
        db.session.flush()
    except exc.IntegrityError:
        db.session.rollback()
        raise Conflict("This client is already checked in and has not left yet.",
                       {"code": ["Already on the floor: find them in the queue, a booth or "
                                 "after-care."]}) from None
    record(actor, "visit_checked_in", "visit", visit.id, site_id=site.id, now=now,
           detail={"override": bool(override_by)})
    if override_by:
        record(actor, "restriction_overridden", "client", client.id, site_id=site.id, now=now,
               detail={"visit": visit.id, "reason_given": True})
    live.announce(site.id, TOPIC_QUEUE)
    commit(VISIT_CHANGED)
    return visit


def leave_queue(visit: Visit, *, reason: str, actor: Actor, now: datetime) -> Visit:
    """A waiting client leaves without using: ``departed``, did not consume, with a reason."""
    if reason not in LEFT_QUEUE_REASONS:
        raise Invalid("Choose why they left.", {"reason": [
            f"Choose one of: {', '.join(LEFT_QUEUE_REASONS)}."]})
    if visit.state != VisitState.WAITING:
        raise _conflict(visit, "take them out of the queue")
    visit.state = VisitState.DEPARTED
    visit.departed_at = now
    visit.departure_reason = reason
    visit.consumed = False
    record(actor, "visit_left_queue", "visit", visit.id, site_id=visit.site_id, now=now,
           detail={"reason": reason})
    live.announce(visit.site_id, TOPIC_QUEUE)
    commit(VISIT_CHANGED)
    return visit


# --- Booths ---------------------------------------------------------------------------------


def assign_booth(visit: Visit, booth: Booth, *, actor: Actor, now: datetime) -> Visit:
    """Put a waiting client in a free booth. Raises BoothTaken (409 naming what holds it)."""
    if visit.state != VisitState.WAITING:
        raise _conflict(visit, "assign a booth")
    if booth.site_id != visit.site_id:
        raise NotFound("That booth is not at this visit's site.")
    holder = holder_of(booth)
    if holder is not None:
        raise _taken(booth, holder)
    if booth.retired_at is not None:
        raise _retired(booth)
    if booth.out_of_service_reason:
        raise BoothTaken(f"Booth {booth.label} is out of service: {booth.out_of_service_reason}.",
                         booth=booth.label, booth_state=BoothState.OUT_OF_SERVICE.value)
    if booth.needs_cleaning_since is not None:
        raise BoothTaken(f"Booth {booth.label} needs cleaning first.", booth=booth.label,
                         booth_state=BoothState.NEEDS_CLEANING.value)
    site = db.session.get(Site, visit.site_id)
    visit.state = VisitState.IN_BOOTH
    visit.booth_id = booth.id
    visit.booth_at = now
    visit.booth_due_at = now + timedelta(seconds=_timer(visit, site, "booth", now,
                                                        site.booth_time_limit_seconds))
    visit.next_check_due_at = now + timedelta(seconds=site.booth_check_interval_seconds)
    try:
        db.session.flush()
    except exc.IntegrityError:
        # Another nurse put someone in this booth between our check and our write.
        db.session.rollback()
        raise _taken(booth, holder_of(booth)) from None
    except StaleDataError:
        db.session.rollback()
        raise _conflict(db.session.get(Visit, visit.id), "assign a booth") from None
    record(actor, "booth_assigned", "visit", visit.id, site_id=visit.site_id, now=now,
           detail={"booth": booth.id})
    live.announce(visit.site_id, TOPIC_QUEUE)
    live.announce(visit.site_id, TOPIC_BOARD)
    commit(VISIT_CHANGED)
    return visit


def _timer(visit: Visit, site: Site, stage: str, now: datetime, default: int) -> int:
    """The visit's own booth or after-care time (``signals.visit_timers``), else the site's."""
    # A read by another package: it must not flush the caller's half-made change (a booth
    # taken meanwhile would raise there, outside the caller's handling of it).
    with db.session.no_autoflush:
        own = signals.first_answer(signals.visit_timers.send(visit, site=site, stage=stage,
                                                             now=now))
    return default if own is None else int(own)


def _retired(booth: Booth) -> BoothTaken:
    return BoothTaken(f"Booth {booth.label} is retired.", booth=booth.label,
                      booth_state=BoothState.RETIRED.value)


def holder_of(booth: Booth) -> Visit | None:
    """The open visit in this booth, if any."""
    return db.session.execute(_holder_statement(), {"booth_id": booth.id}).scalar_one_or_none()


@functools.cache
def _holder_statement():
    return db.select(Visit).where(Visit.booth_id == db.bindparam("booth_id"),
                                  Visit.state == VisitState.IN_BOOTH)


def _taken(booth: Booth, holder: Visit | None) -> BoothTaken:
    who = f" by {holder.client.code}" if holder is not None else ""
    return BoothTaken(f"Booth {booth.label} is already taken{who}.", booth=booth.label,
                      booth_state=BoothState.OCCUPIED.value,
                      held_by_visit=holder.id if holder is not None else None)


def record_consumption(visit: Visit, data: dict, *, actor: Actor, now: datetime) -> Consumption:
    """Record what was used, how, and the drug-check results, for a client in a booth."""
    if visit.state != VisitState.IN_BOOTH:
        raise _conflict(visit, "record consumption")
    allowed = ROUTES_BY_BOOTH_KIND[BoothKind(visit.booth.kind)]
    if data["route"] not in allowed:
        raise Invalid("That route is not allowed in this booth.", {"route": [
            f"Booth {visit.booth.label} is an {visit.booth.kind} booth: use one of "
            f"{', '.join(sorted(allowed))}."]})
    entry = Consumption(visit_id=visit.id, recorded_at=now, recorded_by=actor.staff_id, **data)
    db.session.add(entry)
    visit.consumed = True
    db.session.flush()
    record(actor, "consumption_recorded", "visit", visit.id, site_id=visit.site_id, now=now,
           detail={"consumption": entry.id})
    live.announce(visit.site_id, TOPIC_BOARD)
    commit(VISIT_CHANGED)
    return entry


def start_observation(visit: Visit, *, actor: Actor, now: datetime) -> Visit:
    """The client leaves the booth for after-care; the booth needs cleaning."""
    if visit.state != VisitState.IN_BOOTH:
        raise _conflict(visit, "start after-care")
    site = db.session.get(Site, visit.site_id)
    visit.state = VisitState.OBSERVING
    visit.observation_at = now
    visit.observation_ends_at = now + timedelta(seconds=_timer(
        visit, site, "observation", now, site.min_observation_seconds))
    visit.booth_due_at = None
    visit.next_check_due_at = now + timedelta(seconds=site.observation_check_interval_seconds)
    visit.booth.needs_cleaning_since = now
    alerts.resolve_alerts(visit, why="left_booth", now=now, kinds=BOOTH_KINDS)
    record(actor, "observation_started", "visit", visit.id, site_id=visit.site_id, now=now)
    live.announce(visit.site_id, TOPIC_BOARD)
    live.announce(visit.site_id, TOPIC_AFTERCARE)
    live.announce(visit.site_id, "alerts")
    commit(VISIT_CHANGED)
    return visit


def discharge(visit: Visit, *, reason: str | None, actor: Actor, now: datetime) -> Visit:
    """End a visit (a tap): :func:`end_visit`, committed."""
    if visit.state == VisitState.WAITING:
        return leave_queue(visit, reason=reason, actor=actor, now=now)
    end_visit(visit, reason=reason, actor=actor, now=now)
    commit(VISIT_CHANGED)
    return visit


def end_visit(visit: Visit, *, reason: str | None, actor: Actor, now: datetime) -> Visit:
    """End a visit in a booth or in after-care. Does not commit: the caller does (a
    discharge, or an overdose response closed with the client transferred to hospital).

    From after-care no reason is needed (one from ``EARLY_DISCHARGE_REASONS`` is kept when
    given); straight from a booth it is. Raises Invalid (the reason) or a 409 (state).
    """
    if visit.state == VisitState.IN_BOOTH:
        if reason not in DISCHARGE_FROM_BOOTH_REASONS:
            raise Invalid("Say why they leave straight from the booth.", {"reason": [
                f"Choose one of: {', '.join(DISCHARGE_FROM_BOOTH_REASONS)}."]})
        visit.booth.needs_cleaning_since = now
        if reason == "did_not_consume":
            visit.consumed = False
    elif visit.state == VisitState.OBSERVING:
        if reason is not None and reason not in EARLY_DISCHARGE_REASONS:
            raise Invalid("Choose why they leave.", {"reason": [
                f"Choose one of: {', '.join(EARLY_DISCHARGE_REASONS)}."]})
        reason = reason or "discharged"
    else:
        raise _conflict(visit, "discharge")
    left_from = floor_topic(visit.state)
    visit.state = VisitState.DEPARTED
    visit.departed_at = now
    visit.departure_reason = reason
    visit.booth_due_at = visit.next_check_due_at = None
    alerts.resolve_alerts(visit, why="discharged", now=now)
    record(actor, "visit_discharged", "visit", visit.id, site_id=visit.site_id, now=now,
           detail={"reason": reason})
    live.announce(visit.site_id, left_from)
    live.announce(visit.site_id, "alerts")
    return visit


def mark_booth_clean(booth: Booth, *, actor: Actor, now: datetime) -> Booth:
    """A nurse wiped the booth: it is free again."""
    if booth.needs_cleaning_since is None:
        raise Conflict(f"Booth {booth.label} is already clean.",
                       booth=booth.label, booth_state=booth.state_with(holder_of(booth)).value)
    booth.needs_cleaning_since = None
    record(actor, "booth_cleaned", "booth", booth.id, site_id=booth.site_id, now=now)
    live.announce(booth.site_id, TOPIC_BOARD)
    db.session.commit()
    return booth


def set_booth_out_of_service(booth: Booth, *, reason: str | None, actor: Actor,
                             now: datetime) -> Booth:
    """Take a booth out of service with a reason, or back in (``reason=None``); announce.

    :raises BoothTaken: a client is in it, or it is retired.
    """
    if booth.retired_at is not None:
        raise _retired(booth)
    if reason is not None:
        reason = reason.strip()
        if not reason:
            raise Invalid("A reason is required.", {"reason": [
                "Say why the booth is out of service."]})
        holder = holder_of(booth)
        if holder is not None:
            raise _taken(booth, holder)
        booth.out_of_service_reason = reason
        booth.out_of_service_since = now
        action = "booth_out_of_service"
    else:
        booth.out_of_service_reason = None
        booth.out_of_service_since = None
        action = "booth_back_in_service"
    record(actor, action, "booth", booth.id, site_id=booth.site_id, now=now)
    live.announce(booth.site_id, TOPIC_BOARD)
    db.session.commit()
    return booth
