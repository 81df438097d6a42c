"""Raising, escalating, acknowledging and sounding alerts.

Timers are rows: a visit carries its due times and an overdose response its re-dose time;
each floor package registers a source of what came due (:func:`register_due_statements`,
read with the scan's own reads in one statement, or :func:`register_due_source`), and
:func:`scan`, run by the one scheduler at each due time (``srs.alerts.clock``), raises an
alert for each that passed, escalates alerts nobody acknowledged, and re-sounds acknowledged
high alarms that are still unresolved: all of one scan in one unit of work, a few statements
whatever it finds. Raising is idempotent (a unique key per subject, kind
and due time; one row per level reached), so a scan run twice, or after a crash, raises
nothing twice.
Raising and resolving never commit: the operation calling them does (``srs.unit``); a tap
(acknowledge) and the scan announce, then commit once.

Callers: the floor packages (raise and resolve), the alert views and API
(acknowledgement), the scheduler (scan).
"""

import functools
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    case,
    cast,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import selectinload

from srs import live
from srs.alerts import clock
from srs.alerts.models import ALERT_KINDS, Alert, AlertEscalation, Priority, kind_label
from srs.auth.models import Staff
from srs.auth.service import Actor, record
from srs.common import UTCDateTime
from srs.errors import Conflict, NotFound
from srs.extensions import db
from srs.sites.models import Site

log = logging.getLogger(__name__)

# What came due: each floor package registers a source that the scan calls with ``now``.
# A source yields, for each due time that passed and has no alert yet, the keyword
# arguments of raise_alert (``site_id`` instead of the site).
_due_sources: list = []
# Or, read with the scan's own reads in one statement: (selects, confirm) of each source
# registered with register_due_statements.
_due_statements: list = []
# The columns of a due statement's rows, in this order: raise_alert's keyword arguments.
DUE_COLUMNS = ("kind", "site_id", "due_at", "subject_type", "subject_id", "visit_id",
               "booth_id")


def register_due_source(source, *, due_times=()) -> None:
    """``due_times``: ``(column, condition)`` pairs, the due times ``source`` reads (an open
    item's column while the condition holds), which the scheduler's clock waits for; a source
    without them is asked on the clock's tick."""
    global _scan_read, _sounding
    if source not in _due_sources:
        _due_sources.append(source)
    clock.watch_due_times(due_times)
    _scan_read = _sounding = None


def register_due_statements(selects, *, confirm=None, due_times=()) -> None:
    """A source the scan reads in the same statement as its own reads: ``selects`` return a
    row (columns :data:`DUE_COLUMNS`) for each due time that passed (the bind parameter
    ``now``) and has no alert yet. ``confirm``, given the rows of its selects, yields the
    raise_alert keyword arguments (``site_id`` instead of the site) of those still due (it may
    take their rows first); without it each row is raised. ``due_times`` as for
    :func:`register_due_source`."""
    global _scan_read, _sounding
    selects = list(selects)
    for statement in selects:
        names = tuple(column.key for column in statement.selected_columns)
        if names != DUE_COLUMNS:
            raise ValueError(f"a due statement's columns are {DUE_COLUMNS}, not {names}")
    if not any(selects == known for known, _confirm in _due_statements):
        _due_statements.append((selects, confirm))
    clock.watch_due_times(due_times)
    _scan_read = _sounding = None


def _visit_model():
    """The floor's visit class, as the alert's relationship names it (no import upward)."""
    return Alert.visit.property.mapper.class_


class AlertConflict(Conflict):
    code = "alert_state"


# --- Raising and resolving -------------------------------------------------------------------


def _insert_ignoring_duplicates(rows: list[dict]) -> list:
    """Insert alerts, each unless its key exists; the id, site, kind, due time and
    escalation time of each new one (both dialects). The rows go as one statement's
    parameter sets, which SQLAlchemy sends as one multi-row INSERT."""
    statement = _insert_alerts_statement(db.session.get_bind().dialect.name)
    return db.session.execute(statement, rows).all()


@functools.cache
def _insert_alerts_statement(dialect: str):
    # Built once: a statement with its rows in VALUES would be built and compiled anew on
    # every scan (SQLAlchemy caches no multi-VALUES statement).
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = Alert.__table__
    return (insert(table)
            .on_conflict_do_nothing(
                index_elements=["kind", "subject_type", "subject_id", "due_at"])
            .returning(table.c.id, table.c.site_id, table.c.kind, table.c.due_at,
                       table.c.escalate_at))


def _alert_row(*, site, kind: str, due_at: datetime, now: datetime,
               visit=None, booth_id: int | None = None,
               subject_type: str = "visit", subject_id: int | None = None,
               visit_id: int | None = None) -> dict:
    """The new alert's columns at level 1 (``site``: its id and escalation grace)."""
    spec = ALERT_KINDS[kind]
    grace = timedelta(seconds=site.escalation_grace_seconds)
    if visit is not None:
        subject_type, subject_id, visit_id = "visit", visit.id, visit.id
        booth_id = booth_id if booth_id is not None else visit.booth_id
    return {
        "site_id": site.id, "kind": kind, "priority": spec.priority_at(1).value, "level": 1,
        "subject_type": subject_type, "subject_id": subject_id,
        "visit_id": visit_id, "booth_id": booth_id,
        "due_at": due_at, "raised_at": now,
        "escalate_at": due_at + grace if spec.max_level > 1 else None, "resounds": 0,
    }


def _raise_rows(rows: list[dict], now: datetime) -> list:
    """Insert the alerts that do not exist yet, each with its level-1 record; what
    :func:`_insert_ignoring_duplicates` returns of them."""
    raised = _insert_ignoring_duplicates(rows)
    for alert in raised:
        if alert.escalate_at is not None:
            clock.due_times_changed(alert.escalate_at)  # its escalation
    _record_levels([(alert.id, 1) for alert in raised], now)
    return raised


def _record_levels(levels: list[tuple[int, int]], now: datetime) -> None:
    """The ``alert_escalation`` record of each (alert id, level) reached, in one statement."""
    if levels:
        db.session.execute(insert(AlertEscalation.__table__), [
            {"alert_id": alert_id, "level": level, "raised_at": now}
            for alert_id, level in levels])


def raise_alert(*, site: Site, kind: str, due_at: datetime, now: datetime,
                visit=None, booth_id: int | None = None,
                subject_type: str = "visit", subject_id: int | None = None,
                visit_id: int | None = None) -> Alert | None:
    """Raise an alert at level 1 unless the same subject, kind and due time already has one.

    Returns the new alert, or None when it existed. The caller commits and then
    calls :func:`sound` with what was raised.
    """
    raised = _raise_rows([_alert_row(
        site=site, kind=kind, due_at=due_at, now=now, visit=visit, booth_id=booth_id,
        subject_type=subject_type, subject_id=subject_id, visit_id=visit_id)], now)
    return db.session.get(Alert, raised[0].id) if raised else None


def resolve_alerts(visit, *, why: str, now: datetime, kinds=None,
                   by: int | None = None) -> list[int]:
    """The condition cleared (a check, leaving the booth, discharge): close the visit's alerts.

    Part of the caller's unit of work; returns the ids resolved.
    """
    return _resolve("visit", visit.id, why=why, now=now, kinds=kinds, by=by)


def resolve_response_alerts(response_id: int, *, why: str, now: datetime, kinds=None,
                            by: int | None = None) -> list[int]:
    """An overdose response moved on (a dose given, closed): close its alerts."""
    return _resolve("response", response_id, why=why, now=now, kinds=kinds, by=by)


def _resolve(subject: str, subject_id: int, *, why: str, now: datetime, kinds,
             by: int | None) -> list[int]:
    params = {"of_id": subject_id, "now": now, "why": why, "by": by}
    if kinds is not None:
        params["kinds"] = list(kinds)
    return list(db.session.execute(
        _resolve_statement(subject, kinds is not None), params,
        execution_options={"synchronize_session": False}).scalars())


@functools.cache
def _resolve_statement(subject: str, of_kinds: bool):
    """Close the open alerts of a visit or an overdose response (``of_id``), of some
    ``kinds`` or all: built once for each, as most taps on the floor run one. (An UPDATE's
    parameters may not be named as its columns.)"""
    which = (Alert.visit_id == bindparam("of_id") if subject == "visit" else
             (Alert.subject_type == "response") & (Alert.subject_id == bindparam("of_id")))
    statement = (update(Alert)
                 .where(which, Alert.resolved_at.is_(None))
                 .values(resolved_at=bindparam("now"), resolution=bindparam("why"),
                         resolved_by=bindparam("by"), escalate_at=None, resound_at=None)
                 .returning(Alert.id))
    if of_kinds:
        statement = statement.where(Alert.kind.in_(bindparam("kinds", expanding=True)))
    return statement


def response_subject(response) -> dict:
    """What an alert about an overdose response names (keyword arguments of raise_alert)."""
    return {"subject_type": "response", "subject_id": response.id,
            "visit_id": response.visit_id, "booth_id": response.booth_id}


def raise_for_response(response, site: Site, kind: str, *, due_at: datetime,
                       now: datetime) -> Alert | None:
    """Raise an alert about an overdose response (it started; its re-dose time passed)."""
    return raise_alert(site=site, kind=kind, due_at=due_at, now=now,
                       **response_subject(response))


# --- Reading ---------------------------------------------------------------------------------


def open_alerts(site: Site) -> list[Alert]:
    """Every unresolved alert of a site, the most urgent first."""
    alerts = list(db.session.execute(
        select(Alert).where(Alert.site_id == site.id, Alert.resolved_at.is_(None))
        .options(selectinload(Alert.owner), selectinload(Alert.booth),
                 selectinload(Alert.visit).selectinload(_visit_model().client))
    ).scalars())
    order = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}
    alerts.sort(key=lambda a: (a.acknowledged_at is not None, order[a.priority], -a.level,
                               a.due_at))
    return alerts


def on_call_alerts(staff_id: int) -> list[Alert] | None:
    """Unowned level-3 alerts at the sites where ``staff_id`` is on call, the most urgent
    first; None when they are on call at no site."""
    site_ids = list(db.session.execute(
        select(Site.id).where(Site.on_call_staff_id == staff_id)).scalars())
    if not site_ids:
        return None
    return list(db.session.execute(
        select(Alert).where(Alert.site_id.in_(site_ids), Alert.resolved_at.is_(None),
                            Alert.acknowledged_at.is_(None), Alert.level >= 3)
        .options(selectinload(Alert.booth), selectinload(Alert.site))
        .order_by(Alert.due_at)).scalars())


def get_alert(site: Site, alert_id: int) -> Alert:
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no alert with id {alert_id}.")
    return alert


# --- Acknowledging ---------------------------------------------------------------------------


def _own(which, *, site: Site, actor: Actor, now: datetime) -> list:
    """Make the unowned, unresolved alerts ``which`` selects ``actor``'s; escalation stops
    and a high one re-sounds after the grace until it clears. Part of the caller's unit of
    work; returns the (id, kind, level) of each alert it took, each recorded in the audit
    trail."""
    grace = timedelta(seconds=site.escalation_grace_seconds)
    taken = list(db.session.execute(
        update(Alert).where(which, Alert.acknowledged_at.is_(None), Alert.resolved_at.is_(None))
        .values(acknowledged_by=actor.staff_id, acknowledged_at=now, escalate_at=None,
                resound_at=case((Alert.priority == Priority.HIGH.value, now + grace),
                                else_=None))
        .returning(Alert.id, Alert.kind, Alert.level),
        execution_options={"synchronize_session": False}))
    for alert_id, kind, level in taken:
        record(actor, "alert_acknowledged", "alert", alert_id, site_id=site.id, now=now,
               detail={"kind": kind, "level": level})
    if taken:
        clock.due_times_changed(now + grace)  # a high one's re-sound
        live.announce(site.id, "alerts")
    return taken


def acknowledge(alert: Alert, *, actor: Actor, now: datetime) -> Alert:
    """The first person to acknowledge owns the alert; escalation stops.

    A high alarm acknowledged but not resolved re-sounds after the grace time.
    Raises AlertConflict (409) naming the owner when someone was first, or
    saying why it was resolved.
    """
    site = db.session.get(Site, alert.site_id)
    if not _own(Alert.id == alert.id, site=site, actor=actor, now=now):
        db.session.rollback()
        db.session.refresh(alert)
        raise _already(alert)
    db.session.commit()
    db.session.refresh(alert)
    return alert


def visit_has_open_alerts(visit) -> bool:
    """Whether an alarm of ``visit`` (a check due, a time limit, Unresponsive) is open."""
    return db.session.execute(select(Alert.id).where(
        Alert.visit_id == visit.id, Alert.resolved_at.is_(None)).limit(1)).first() is not None


def own_response_alerts(response, site: Site, *, actor: Actor, now: datetime) -> list:
    """Someone is running a response's console (they recorded on it): its overdose alarm,
    if nobody owns it yet, is theirs and stops escalating. Does not commit."""
    return _own((Alert.subject_type == "response") & (Alert.subject_id == response.id)
                & (Alert.kind == "overdose"), site=site, actor=actor, now=now)


def _already(alert: Alert) -> AlertConflict:
    if alert.resolved_at is not None:
        return AlertConflict(f"This alert was already resolved ({_why(alert.resolution)}).",
                             current_state="resolved", alert_id=alert.id)
    owner = db.session.get(Staff, alert.acknowledged_by)
    name = owner.display_name if owner is not None else "someone"
    return AlertConflict(f"{name} already owns this alert.", current_state="acknowledged",
                         alert_id=alert.id, owner=name)


RESOLUTIONS = {
    "check_recorded": "a check was recorded",
    "responsive_again": "the client responded at a check",
    "left_booth": "the client left the booth",
    "discharged": "the client was discharged",
    "response_started": "an overdose response took over",
    "dose_given": "another dose was given",
    "response_closed": "the overdose response was closed",
    "started_by_mistake": "the overdose response was started by mistake",
}


def _why(resolution: str | None) -> str:
    return RESOLUTIONS.get(resolution or "", resolution or "resolved")


# --- The scan --------------------------------------------------------------------------------


@dataclass
class ScanResult:
    raised: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    resounded: list[int] = field(default_factory=list)
    # The earliest due time after the scan's ``now`` once it committed (the alarm clock
    # sleeps until it), read in the scan's own unit of work.
    next_due: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.raised or self.escalated or self.resounded)


# What the scan reads of a site: its grace (raising, escalating, re-sounding) and its on-call
# (a level-3 alarm reaches them).
_SITES = select(Site.id, Site.escalation_grace_seconds, Site.on_call_staff_id).where(
    Site.id.in_(bindparam("ids", expanding=True)))
# The rows of the scan's one read, besides those of the due statements (``source``, their
# index): the open alerts whose escalation or re-sound time passed, and the next due time.
TIMED_OUT, NEXT_DUE = -1, -2
_ALERT_COLUMNS = (("alert_id", Integer()), ("level", Integer()),
                  ("acknowledged_at", UTCDateTime()), ("escalate_at", UTCDateTime()),
                  ("resound_at", UTCDateTime()))
_DUE_TYPES = {"kind": String(), "site_id": Integer(), "due_at": UTCDateTime(),
              "subject_type": String(), "subject_id": Integer(), "visit_id": Integer(),
              "booth_id": Integer()}
_scan_read = None


def _scan_read_statement():
    """Every due statement's rows, the open alerts whose escalation or re-sound time passed
    (two partial indexes) and the next due time (``srs.alerts.clock``) in one statement:
    an idle scan, every second, is one round trip. Built once for the sources registered."""
    global _scan_read
    if _scan_read is None:
        def nothing(type_):
            return cast(null(), type_)

        def branch(statement, source: int, alert_columns=None):
            return statement.add_columns(
                literal_column(str(source), Integer).label("source"),
                *(alert_columns or [nothing(type_).label(name)
                                    for name, type_ in _ALERT_COLUMNS]))

        branches = [branch(statement, index)
                    for index, (selects, _confirm) in enumerate(_due_statements)
                    for statement in selects]
        branches.append(branch(
            select(Alert.kind, Alert.site_id, Alert.due_at,
                   *(nothing(_DUE_TYPES[name]).label(name) for name in DUE_COLUMNS[3:]))
            .where(Alert.resolved_at.is_(None),
                   or_(Alert.escalate_at <= bindparam("now"),
                       Alert.resound_at <= bindparam("now"))),
            TIMED_OUT, [Alert.id.label("alert_id"), Alert.level, Alert.acknowledged_at,
                        Alert.escalate_at, Alert.resound_at]))
        branches.append(branch(select(
            *(nothing(_DUE_TYPES[name]).label(name) for name in DUE_COLUMNS[:2]),
            clock.next_due_statement().scalar_subquery().label("due_at"),
            *(nothing(_DUE_TYPES[name]).label(name) for name in DUE_COLUMNS[3:])), NEXT_DUE))
        _scan_read = union_all(*branches)
    return _scan_read


_sounding = None


def _sounding_statement():
    """What the screens hear of each alert the scan changed, with its booth's label, and the
    next due time after the scan's changes (on every row): one statement, built once the
    booth's mapper is known (no import upward) for the sources registered."""
    global _sounding
    if _sounding is None:
        booth = Alert.booth.property.mapper.class_
        _sounding = (select(Alert.id, Alert.site_id, Alert.kind, Alert.priority, Alert.level,
                            Alert.visit_id, Alert.due_at, Alert.raised_at,
                            booth.label.label("booth"),
                            clock.next_due_statement().scalar_subquery().label("next_due"))
                     .outerjoin(booth, booth.id == Alert.booth_id)
                     .where(Alert.id.in_(bindparam("ids", expanding=True))))
    return _sounding


@dataclass
class _Late:
    """An alert the scan raised past its escalation time, as the read shows a timed-out one."""

    alert_id: int
    site_id: int
    kind: str
    level: int
    due_at: datetime
    acknowledged_at: datetime | None
    escalate_at: datetime | None
    resound_at: datetime | None


class _Sites:
    """The sites a scan touches, each read once, those it needs at a time in one statement."""

    def __init__(self):
        self.rows: dict = {}

    def need(self, site_ids) -> "_Sites":
        missing = set(site_ids) - self.rows.keys()
        if missing:
            for row in db.session.execute(_SITES, {"ids": sorted(missing)}):
                self.rows[row.id] = row
        return self

    def __getitem__(self, site_id: int):
        return self.rows[site_id]


def scan(*, now: datetime) -> ScanResult:
    """Raise what is due, escalate what nobody owns, re-sound owned high alarms; commit; sound.

    The scheduler's, at each due time and at least every second. Idempotent: run twice with the
    same ``now`` it changes nothing the second time. The result says the next due time too.
    """
    started = time.perf_counter()
    result = ScanResult()
    sites = _Sites()

    read = db.session.execute(_scan_read_statement(), {"now": now}).all()
    by_source, timed_out = {}, []
    for row in read:
        if row.source == NEXT_DUE:
            result.next_due = row.due_at
        elif row.source == TIMED_OUT:
            timed_out.append(row)
        else:
            by_source.setdefault(row.source, []).append(row)
    due = []
    for index, (_selects, confirm) in enumerate(_due_statements):
        rows = by_source.get(index)
        if rows:
            due += (confirm(rows) if confirm is not None
                    else [{name: getattr(row, name) for name in DUE_COLUMNS} for row in rows])
    due += [item for source in _due_sources for item in source(now=now)]

    if due:
        sites.need(item["site_id"] for item in due)
        rows = {}
        for item in due:  # a key once: the insert skips keys that exist, not its own twice
            row = _alert_row(site=sites[item["site_id"]], now=now,
                             **{k: v for k, v in item.items() if k != "site_id"})
            rows.setdefault((row["kind"], row["subject_type"], row["subject_id"],
                             row["due_at"]), row)
        raised = _raise_rows(list(rows.values()), now)
        result.raised = [alert.id for alert in raised]
        # Raised late (after downtime): its escalation time passed too.
        timed_out += [_Late(alert_id=alert.id, site_id=alert.site_id, kind=alert.kind,
                            level=1, due_at=alert.due_at, acknowledged_at=None,
                            escalate_at=alert.escalate_at, resound_at=None)
                      for alert in raised
                      if alert.escalate_at is not None and alert.escalate_at <= now]

    if timed_out:
        sites.need(alert.site_id for alert in timed_out)
    levels = []
    for alert in timed_out:
        if alert.escalate_at is not None and alert.escalate_at <= now:
            reached = _escalate(alert, sites[alert.site_id], now)
            if reached:
                levels += [(alert.alert_id, level) for level in reached]
                result.escalated.append(alert.alert_id)
    _record_levels(levels, now)
    for alert in timed_out:
        if alert.resound_at is not None and alert.resound_at <= now:
            grace = timedelta(seconds=sites[alert.site_id].escalation_grace_seconds)
            done = db.session.execute(_resound_statement(), {
                "alert_id": alert.alert_id, "was": alert.resound_at, "next": now + grace},
                execution_options={"synchronize_session": False}).rowcount
            if done:
                result.resounded.append(alert.alert_id)

    if result:
        changed = db.session.execute(_sounding_statement(), {
            "ids": result.raised + result.escalated + result.resounded, "now": now}).all()
        for alert in changed:
            site = sites[alert.site_id]
            live.alarm(_payload(alert, booth=alert.booth, resound=alert.id in result.resounded),
                       site_id=site.id,
                       on_call_staff_id=site.on_call_staff_id if alert.level >= 3 else None)
        for site_id in {alert.site_id for alert in changed}:
            live.announce(site_id, "alerts")
        # What it set (an escalation, a re-sound) counts: read again in this unit of work,
        # the clock that runs the scan needs no other notice of them.
        result.next_due = changed[0].next_due if changed else clock.next_due(now=now)
    clock.due_times_read()
    db.session.commit()  # and with it the sounds and announcements above
    if result:
        log.info("alert scan raised=%d escalated=%d resounded=%d ms=%.1f", len(result.raised),
                 len(result.escalated), len(result.resounded),
                 (time.perf_counter() - started) * 1000)
    return result


def _escalate(alert, site, now: datetime) -> range:
    """Move an unowned alert to the level its age calls for (catching up after downtime);
    the levels it reached (none: it stays)."""
    spec = ALERT_KINDS[alert.kind]
    grace = site.escalation_grace_seconds
    overdue = (now - alert.due_at).total_seconds()
    target = min(spec.max_level, 1 + math.floor(overdue / grace))
    if alert.acknowledged_at is not None or target <= alert.level:
        return range(0)
    next_at = (alert.due_at + timedelta(seconds=grace * target)
               if target < spec.max_level else None)
    done = db.session.execute(_escalate_statement(), {
        "alert_id": alert.alert_id, "was": alert.level, "target": target,
        "priority": spec.priority_at(target).value, "next": next_at},
        execution_options={"synchronize_session": False}).rowcount
    if not done:
        return range(0)
    return range(alert.level + 1, target + 1)


# Built once, run with parameters, as a scan runs them for each alert it moves (an UPDATE's
# parameters may not be named as its columns). Each changes a row only as the scan read it:
# another scheduler, or an owner, got there first when nothing changes.


@functools.cache
def _escalate_statement():
    return (update(Alert)
            .where(Alert.id == bindparam("alert_id"), Alert.level == bindparam("was"),
                   Alert.acknowledged_at.is_(None), Alert.resolved_at.is_(None))
            .values(level=bindparam("target"), priority=bindparam("priority"),
                    escalate_at=bindparam("next")))


@functools.cache
def _resound_statement():
    return (update(Alert)
            .where(Alert.id == bindparam("alert_id"), Alert.resound_at == bindparam("was"))
            .values(resound_at=bindparam("next"), resounds=Alert.resounds + 1))


# --- Telling the screens ---------------------------------------------------------------------


def alert_payload(alert: Alert, *, resound: bool = False) -> dict:
    """The socket ``alert`` event (DESIGN.md), plus a label and whether it is a re-sound."""
    return _payload(alert, booth=alert.booth.label if alert.booth is not None else None,
                    resound=resound)


def _payload(alert, *, booth: str | None, resound: bool) -> dict:
    """``alert``: an alert or a row of its columns; ``booth``: its booth's label."""
    return {
        "id": alert.id, "site_id": alert.site_id, "kind": alert.kind,
        "label": kind_label(alert.kind), "priority": alert.priority, "level": alert.level,
        "booth": booth, "visit_id": alert.visit_id, "due_at": alert.due_at.isoformat(),
        "raised_at": alert.raised_at.isoformat(), "resound": resound,
    }


def sound(alerts: list[Alert], site: Site, *, resound: bool = False) -> None:
    """After commit: send each alert to the site's screens; level 3 also to the on-call."""
    for alert in alerts:
        on_call = site.on_call_staff_id if alert.level >= 3 else None
        live.alarm(alert_payload(alert, resound=resound), site_id=site.id,
                   on_call_staff_id=on_call)
