"""Raising, escalating, acknowledging and sounding alerts.

Timers are rows: a visit carries its due times and an overdose response its re-dose time;
each floor package registers a source of what came due (:func:`register_due_source`), and
:func:`scan`, run by the one scheduler at each due time (``srs.alerts.clock``), raises an
alert for each that passed, escalates alerts nobody acknowledged, and re-sounds acknowledged
high alarms that are still unresolved. Raising is idempotent (a unique key per subject, kind
and due time; one row per level reached), so a scan run twice, or after a crash, raises
nothing twice.
Raising and resolving never commit: the operation calling them does (``srs.unit``); a tap
(acknowledge) and the scan announce, then commit once.

Callers: the floor packages (raise and resolve), the alert views and API
(acknowledgement), the scheduler (scan).
"""

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.orm import selectinload

from srs import live
from srs.alerts import clock
from srs.alerts.models import ALERT_KINDS, Alert, AlertEscalation, Priority
from srs.auth.models import Staff
from srs.auth.service import Actor, record
from srs.errors import Conflict, NotFound
from srs.extensions import db
from srs.sites.models import Site

log = logging.getLogger(__name__)

# What came due: each floor package registers a source that the scan calls with ``now``.
# A source yields, for each due time that passed and has no alert yet, the keyword
# arguments of raise_alert (``site_id`` instead of the site).
_due_sources: list = []


def register_due_source(source, *, due_times=()) -> None:
    """``due_times``: ``(column, condition)`` pairs, the due times ``source`` reads (an open
    item's column while the condition holds), which the scheduler's clock waits for; a source
    without them is asked on the clock's tick."""
    if source not in _due_sources:
        _due_sources.append(source)
    clock.watch_due_times(due_times)


def _visit_model():
    """The floor's visit class, as the alert's relationship names it (no import upward)."""
    return Alert.visit.property.mapper.class_


class AlertConflict(Conflict):
    code = "alert_state"


# --- Raising and resolving -------------------------------------------------------------------


def _insert_ignoring_duplicates(values: dict) -> int | None:
    """Insert an alert unless its key exists; return the new id or None (both dialects)."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = (insert(Alert).values(**values)
                 .on_conflict_do_nothing(
                     index_elements=["kind", "subject_type", "subject_id", "due_at"])
                 .returning(Alert.id))
    return db.session.execute(statement).scalar_one_or_none()


def raise_alert(*, site: Site, kind: str, due_at: datetime, now: datetime,
                visit=None, booth_id: int | None = None,
                subject_type: str = "visit", subject_id: int | None = None,
                visit_id: int | None = None) -> Alert | None:
    """Raise an alert at level 1 unless the same subject, kind and due time already has one.

    Returns the new alert, or None when it existed. The caller commits and then
    calls :func:`sound` with what was raised.
    """
    spec = ALERT_KINDS[kind]
    grace = timedelta(seconds=site.escalation_grace_seconds)
    if visit is not None:
        subject_type, subject_id, visit_id = "visit", visit.id, visit.id
        booth_id = booth_id if booth_id is not None else visit.booth_id
    alert_id = _insert_ignoring_duplicates({
        "site_id": site.id, "kind": kind, "priority": spec.priority_at(1).value, "level": 1,
        "subject_type": subject_type, "subject_id": subject_id,
        "visit_id": visit_id, "booth_id": booth_id,
        "due_at": due_at, "raised_at": now,
        "escalate_at": due_at + grace if spec.max_level > 1 else None, "resounds": 0,
    })
    if alert_id is None:
        return None
    if spec.max_level > 1:
        clock.due_times_changed(due_at + grace)  # its escalation
    db.session.add(AlertEscalation(alert_id=alert_id, level=1, raised_at=now))
    return db.session.get(Alert, alert_id)


def resolve_alerts(visit, *, why: str, now: datetime, kinds=None,
                   by: int | None = None) -> list[int]:
    """The condition cleared (a check, leaving the booth, discharge): close the visit's alerts.

    Part of the caller's unit of work; returns the ids resolved.
    """
    return _resolve(Alert.visit_id == visit.id, why=why, now=now, kinds=kinds, by=by)


def resolve_response_alerts(response_id: int, *, why: str, now: datetime, kinds=None,
                            by: int | None = None) -> list[int]:
    """An overdose response moved on (a dose given, closed): close its alerts."""
    return _resolve((Alert.subject_type == "response") & (Alert.subject_id == response_id),
                    why=why, now=now, kinds=kinds, by=by)


def _resolve(which, *, why: str, now: datetime, kinds, by: int | None) -> list[int]:
    statement = (update(Alert)
                 .where(which, Alert.resolved_at.is_(None))
                 .values(resolved_at=now, resolution=why, resolved_by=by,
                         escalate_at=None, resound_at=None)
                 .returning(Alert.id))
    if kinds is not None:
        statement = statement.where(Alert.kind.in_(kinds))
    ids = list(db.session.execute(statement, execution_options={
        "synchronize_session": False}).scalars())
    return ids


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

    def __bool__(self) -> bool:
        return bool(self.raised or self.escalated or self.resounded)


def scan(*, now: datetime) -> ScanResult:
    """Raise what is due, escalate what nobody owns, re-sound owned high alarms; commit; sound.

    The scheduler's, at each due time and at least every second. Idempotent: run twice with the
    same ``now`` it changes nothing the second time.
    """
    started = time.perf_counter()
    result = ScanResult()
    sites: dict[int, Site] = {}

    def site_of(site_id: int) -> Site:
        if site_id not in sites:
            sites[site_id] = db.session.get(Site, site_id)
        return sites[site_id]

    for source in _due_sources:
        for due in source(now=now):
            site_id = due.pop("site_id")
            alert = raise_alert(site=site_of(site_id), now=now, **due)
            if alert is not None:
                result.raised.append(alert.id)

    for alert in db.session.execute(select(Alert).where(
            Alert.resolved_at.is_(None), Alert.escalate_at <= now)).scalars().all():
        if _escalate(alert, site_of(alert.site_id), now):
            result.escalated.append(alert.id)

    for alert in db.session.execute(select(Alert).where(
            Alert.resolved_at.is_(None), Alert.resound_at <= now)).scalars().all():
        grace = timedelta(seconds=site_of(alert.site_id).escalation_grace_seconds)
        done = db.session.execute(
            update(Alert).where(Alert.id == alert.id, Alert.resound_at == alert.resound_at)
            .values(resound_at=now + grace, resounds=Alert.resounds + 1),
            execution_options={"synchronize_session": False}).rowcount
        if done:
            result.resounded.append(alert.id)

    if result:
        db.session.expire_all()
        alerts = db.session.execute(select(Alert).where(Alert.id.in_(
            result.raised + result.escalated + result.resounded))).scalars().all()
        for alert in alerts:
            sound([alert], site_of(alert.site_id), resound=alert.id in result.resounded)
        for site_id in {a.site_id for a in alerts}:
            live.announce(site_id, "alerts")
    db.session.commit()  # and with it the sounds and announcements above
    if result:
        log.info("alert scan raised=%d escalated=%d resounded=%d ms=%.1f", len(result.raised),
                 len(result.escalated), len(result.resounded),
                 (time.perf_counter() - started) * 1000)
    return result


def _escalate(alert: Alert, site: Site, now: datetime) -> bool:
    """Move an unowned alert to the level its age calls for (catching up after downtime)."""
    spec = ALERT_KINDS[alert.kind]
    grace = site.escalation_grace_seconds
    overdue = (now - alert.due_at).total_seconds()
    target = min(spec.max_level, 1 + math.floor(overdue / grace))
    if alert.acknowledged_at is not None or target <= alert.level:
        return False
    next_at = (alert.due_at + timedelta(seconds=grace * target)
               if target < spec.max_level else None)
    done = db.session.execute(
        update(Alert).where(Alert.id == alert.id, Alert.level == alert.level,
                            Alert.acknowledged_at.is_(None), Alert.resolved_at.is_(None))
        .values(level=target, priority=spec.priority_at(target).value, escalate_at=next_at),
        execution_options={"synchronize_session": False}).rowcount
    if not done:
        return False
    for level in range(alert.level + 1, target + 1):
        db.session.add(AlertEscalation(alert_id=alert.id, level=level, raised_at=now))
    return True


# --- Telling the screens ---------------------------------------------------------------------


def alert_payload(alert: Alert, *, resound: bool = False) -> dict:
    """The socket ``alert`` event (DESIGN.md), plus a label and whether it is a re-sound."""
    return {
        "id": alert.id, "site_id": alert.site_id, "kind": alert.kind, "label": alert.label,
        "priority": alert.priority, "level": alert.level,
        "booth": alert.booth.label if alert.booth is not None else None,
        "visit_id": alert.visit_id, "due_at": alert.due_at.isoformat(),
        "raised_at": alert.raised_at.isoformat(), "resound": resound,
    }


def sound(alerts: list[Alert], site: Site, *, resound: bool = False) -> None:
    """After commit: send each alert to the site's screens; level 3 also to the on-call."""
    for alert in alerts:
        on_call = site.on_call_staff_id if alert.level >= 3 else None
        live.alarm(alert_payload(alert, resound=resound), site_id=site.id,
                   on_call_staff_id=on_call)
