"""Checks on clients in a booth or in after-care, and the floor's due times.

A visit carries its due times (``next_check_due_at``, ``booth_due_at``,
``observation_ends_at``); the alert scan reads which passed (:func:`_due_selects`) and, holding
those visits' rows, which are still due (:func:`still_due`).
A check moves the next one and resolves what it answers; Unresponsive raises a high
alarm and, through ``signals.client_unresponsive``, opens an overdose response in the same
unit of work.

Callers: booths views and the API (checks), the floor's service (due times,
resolution), the alert scan (due times).
"""

from datetime import datetime, timedelta

from sqlalchemy import String, bindparam, literal_column, select

from srs import live, signals
from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.auth.service import Actor, record
from srs.booths.models import (
    VISIT_CHANGED,
    CheckStatus,
    ObservationCheck,
    Visit,
    VisitState,
    floor_topic,
)
from srs.errors import Conflict
from srs.extensions import db
from srs.sites.models import Site
from srs.unit import commit

# Which due time of an open visit raises which kind of alert.
VISIT_DUE_TIMES = (
    ("booth_check_due", VisitState.IN_BOOTH, "next_check_due_at"),
    ("booth_time_limit", VisitState.IN_BOOTH, "booth_due_at"),
    ("observation_check_due", VisitState.OBSERVING, "next_check_due_at"),
    ("observation_complete", VisitState.OBSERVING, "observation_ends_at"),
)
BOOTH_KINDS = ("booth_check_due", "booth_time_limit")
CHECK_KINDS = ("booth_check_due", "observation_check_due")


def _due_selects() -> list:
    """Each due time of an open visit that passed (``now``) and has no alert yet, a select a
    kind: the scan reads them with its own reads, in one statement."""
    selects = []
    for kind, state, column_name in VISIT_DUE_TIMES:
        column = getattr(Visit, column_name)
        already = (select(Alert.id).where(
            Alert.kind == kind, Alert.subject_type == "visit", Alert.subject_id == Visit.id,
            Alert.due_at == column).exists())
        selects.append(select(
            literal_column(f"'{kind}'", String).label("kind"), Visit.site_id,
            column.label("due_at"), literal_column("'visit'", String).label("subject_type"),
            Visit.id.label("subject_id"), Visit.id.label("visit_id"), Visit.booth_id,
        ).where(Visit.state == state, column <= bindparam("now"), ~already))
    return selects


# Taking the due visits' rows, in one order (two scans, or a scan and a check, wait in turn).
_TAKE = (select(Visit.id, Visit.state, Visit.booth_id,
                *(getattr(Visit, name)
                  for name in dict.fromkeys(n for _k, _s, n in VISIT_DUE_TIMES)))
         .where(Visit.id.in_(bindparam("ids", expanding=True))).order_by(Visit.id)
         .with_for_update())
_STATES = {kind: (state, column_name) for kind, state, column_name in VISIT_DUE_TIMES}


def still_due(rows) -> list[dict]:
    """Of the visits' due times the scan read, those still due once it holds their rows.

    A check committed since that read moved the due time (PostgreSQL reads beside writers):
    taking the visits' rows makes a check wait for this alarm and resolve it, and the scan
    looks again. Without it, an alarm for a check already done stayed open and escalated.
    """
    taken = {visit.id: visit for visit in db.session.execute(
        _TAKE, {"ids": sorted({row.visit_id for row in rows})})}
    due = []
    for row in rows:
        state, column_name = _STATES[row.kind]
        visit = taken.get(row.visit_id)
        if visit is None or visit.state != state or getattr(visit, column_name) != row.due_at:
            continue
        due.append({"site_id": row.site_id, "kind": row.kind, "due_at": row.due_at,
                    "subject_type": "visit", "subject_id": visit.id, "visit_id": visit.id,
                    "booth_id": visit.booth_id})
    return due


alerts.register_due_statements(_due_selects(), confirm=still_due, due_times=[
    (getattr(Visit, column_name), Visit.state == state)
    for _kind, state, column_name in VISIT_DUE_TIMES])


def record_check(visit: Visit, data: dict, *, actor: Actor, now: datetime) -> ObservationCheck:
    """A nurse checked a client in a booth or in after-care; the next check is due later.

    ``data``: status (ok, drowsy, unresponsive), optional spo2 and
    respiratory_rate, already validated. Unresponsive raises a high alarm at
    once and opens an overdose response for the visit (its console takes over the
    alarm); the check's ``opened_response`` is that response. Raises a 409 when the
    visit is neither in a booth nor in after-care.
    """
    if visit.state not in (VisitState.IN_BOOTH, VisitState.OBSERVING):
        raise Conflict(f"Cannot record a check: this visit is {visit.state.replace('_', ' ')}.",
                       current_state=visit.state, visit_id=visit.id)
    site = db.session.get(Site, visit.site_id)
    interval = (site.booth_check_interval_seconds if visit.state == VisitState.IN_BOOTH
                else site.observation_check_interval_seconds)
    if data["status"] == CheckStatus.DROWSY:  # watch them closer
        interval = min(interval, site.drowsy_check_interval_seconds)
    check = ObservationCheck(visit_id=visit.id, site_id=visit.site_id, recorded_at=now,
                             recorded_by=actor.staff_id, phase=visit.state, **data)
    db.session.add(check)
    visit.next_check_due_at = now + timedelta(seconds=interval)
    alerts.resolve_alerts(visit, why="check_recorded", now=now, kinds=CHECK_KINDS,
                          by=actor.staff_id)
    raised = []
    if data["status"] == CheckStatus.UNRESPONSIVE:
        alert = alerts.raise_alert(site=site, kind="unresponsive", due_at=now, now=now,
                                   visit=visit)
        if alert is not None:
            raised.append(alert)
    else:
        alerts.resolve_alerts(visit, why="responsive_again", now=now, kinds=("unresponsive",),
                       by=actor.staff_id)
    db.session.flush()
    record(actor, "check_recorded", "visit", visit.id, site_id=visit.site_id, now=now,
           detail={"check": check.id, "status": data["status"]})
    alerts.sound(raised, site)
    live.announce(visit.site_id, floor_topic(visit.state))  # its tile or after-care row
    live.announce(visit.site_id, "alerts")
    if data["status"] == CheckStatus.UNRESPONSIVE:  # the overdose console takes over
        check.opened_response = signals.first_answer(signals.client_unresponsive.send(
            site, visit=visit, actor=actor, now=now))
    # The check, its alarms and the response it opened: one commit, or none of them.
    commit(VISIT_CHANGED)
    return check


