"""The alarm clock: the scheduler's alert scan runs when something falls due, not on a tick.

Due times are rows (a visit's next check, an overdose's re-dose time, an alert's escalation
and re-sound), so the database stays the only truth and a restarted scheduler catches up. The
scan still runs at least every ``tick`` seconds; between scans the clock sleeps until the
earliest future due time the database holds (:func:`next_due`), and wakes early when a
committed change sets one:

- a change to a due time (a column registered with :func:`srs.alerts.service.
  register_due_source`, seen at flush), a raised alert (its escalation) and an owned one (its
  re-sound) mark their unit of work (:func:`due_times_changed`);
- on PostgreSQL the marked transaction sends ``NOTIFY srs_alert_due`` before it commits, which
  the database delivers only if it commits, to every scheduler listening on that database: a
  scheduler in its own process, or on another machine, hears it;
- in one process (SQLite: the scheduler runs inside the web process) the commit sets an event.

Callers: the alert service (raise, own), the floor packages (through their due sources), the
scheduler (:class:`AlertClock`).
"""

import logging
import threading
import time
from collections import defaultdict
from datetime import datetime

from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.orm import Session

from srs.alerts.models import Alert
from srs.common import utcnow
from srs.errors import log_failure
from srs.extensions import db

log = logging.getLogger(__name__)

CHANNEL = "srs_alert_due"
# After a wake, let a burst of changes (a tap often sets two due times) arrive before reading
# the next due time again: no due time a change sets is this close.
COALESCE_SECONDS = 0.02
# Wake this long after a due time, so that the scan's clock reads at or past it.
PAST_DUE_SECONDS = 0.002

_MARK = "srs_due_changed"
_NOTIFIED = "srs_due_notified"
# In one process: set when a marked unit of work commits.
_local_wake = threading.Event()
# (model class, attribute key) -> watched: a change to it at flush marks the unit of work.
_watched: dict[type, set[str]] = defaultdict(set)
# (column, condition) pairs whose earliest future value :func:`next_due` reads.
_due_columns: list[tuple] = []


def watch_due_times(pairs) -> None:
    """Register ``(column, condition)`` pairs: an open item's due time in ``column`` (an ORM
    attribute) counts while ``condition`` (a SQL expression) holds."""
    for column, condition in pairs:
        if any(column is c and condition is w for c, w in _due_columns):
            continue
        _due_columns.append((column, condition))
        _watched[column.class_].add(column.key)


def next_due(*, now: datetime) -> datetime | None:
    """The earliest due time after ``now`` that the database holds: a registered column of an
    open item, an unowned alert's escalation or an owned high alarm's re-sound."""
    candidates = [
        select(func.min(column)).where(condition, column > now)
        for column, condition in _due_columns
    ]
    candidates.append(select(func.min(Alert.escalate_at)).where(
        Alert.resolved_at.is_(None), Alert.escalate_at > now))
    candidates.append(select(func.min(Alert.resound_at)).where(
        Alert.resolved_at.is_(None), Alert.resound_at > now))
    found = [db.session.execute(query).scalar() for query in candidates]
    found = [when for when in found if when is not None]
    return min(found) if found else None


def due_times_changed() -> None:
    """This unit of work set a due time: once it commits, the scheduler reads them again."""
    db.session().info[_MARK] = True


def _sets_due_times(session) -> bool:
    """Whether what the session is about to flush changes a watched due time."""
    for obj in (*session.new, *session.dirty):
        keys = _watched.get(type(obj))
        if keys:
            attrs = inspect(obj).attrs
            if any(attrs[key].history.added for key in keys):
                return True
    return False


@event.listens_for(Session, "after_flush")
def _note_due_columns(session, _context) -> None:
    # The flush's objects still show what it wrote as their history.
    if _watched and not session.info.get(_MARK) and _sets_due_times(session):
        session.info[_MARK] = True


@event.listens_for(Session, "before_commit")
def _notify(session) -> None:
    # Before the commit's own flush: what it is about to write counts too.
    if not session.info.pop(_MARK, False) and not (_watched and _sets_due_times(session)):
        return
    session.info[_NOTIFIED] = True
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Delivered at commit to every listener on this database; dropped with a rollback.
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


@event.listens_for(Session, "after_commit")
def _wake_here(session) -> None:
    if session.get_nested_transaction() is None and session.info.pop(_NOTIFIED, False):
        _local_wake.set()


@event.listens_for(Session, "after_transaction_end")
def _forget(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_MARK, None)
        session.info.pop(_NOTIFIED, None)


class AlertClock:
    """Run ``scan`` (``scan(now=...)``) at least every ``tick`` seconds and as soon as the
    earliest due time passes; woken early by a committed change to a due time."""

    def __init__(self, app, scan, *, tick: float = 1.0):
        self.app = app
        self.scan = scan
        self.tick = tick
        self._stop = threading.Event()
        self._listener = None
        self.scans = 0
        self.thread: threading.Thread | None = None

    def start(self) -> "AlertClock":
        self.thread = threading.Thread(target=self.run, name="srs-alert-clock", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        _local_wake.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def run(self) -> None:
        self._listen()
        last_scan, due = float("-inf"), None
        try:
            while not self._stop.is_set():
                if (due is not None and utcnow() >= due) or \
                        time.monotonic() - last_scan >= self.tick:
                    self._in_app(lambda: self.scan(now=utcnow()), "alert scan")
                    self.scans += 1
                    last_scan = time.monotonic()
                due = self._in_app(lambda: next_due(now=utcnow()), "reading the next due time")
                timeout = self.tick - (time.monotonic() - last_scan)
                if due is not None:
                    timeout = min(timeout, (due - utcnow()).total_seconds() + PAST_DUE_SECONDS)
                if self._wait(max(timeout, 0.0)) and not self._stop.is_set():
                    self._stop.wait(COALESCE_SECONDS)
                    self._drain()
        finally:
            self._unlisten()

    def _in_app(self, work, what: str):
        with self.app.app_context():
            try:
                return work()
            except Exception as error:
                db.session.rollback()
                log_failure(log, f"{what} failed", error)
                return None
            finally:
                db.session.remove()

    # --- Waiting: a PostgreSQL LISTEN connection, or the in-process event -----------------

    def _listen(self) -> None:
        with self.app.app_context():
            engine = db.engine
            if engine.dialect.name != "postgresql":
                return
            try:
                connection = engine.raw_connection()
                connection.driver_connection.autocommit = True
                connection.driver_connection.execute(f"LISTEN {CHANNEL}")
                self._listener = connection
            except Exception as error:  # the tick still runs the scan
                log_failure(log, "listening for due times failed", error)

    def _unlisten(self) -> None:
        if self._listener is not None:
            try:
                self._listener.invalidate()
            finally:
                self._listener = None

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when a change to a due time woke it."""
        if self._listener is None:
            woke = _local_wake.wait(seconds)
            _local_wake.clear()
            return woke
        try:
            # At most a second at a time, so that stop() is heard.
            deadline = time.monotonic() + seconds
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for _note in self._listener.driver_connection.notifies(
                        timeout=min(left, 1.0), stop_after=1):
                    return True
            return False
        except Exception as error:  # a lost connection: listen again, the tick carries on
            log_failure(log, "waiting for due times failed", error)
            self._unlisten()
            self._stop.wait(min(seconds, 1.0))
            self._listen()
            return False

    def _drain(self) -> None:
        _local_wake.clear()
        if self._listener is not None:
            try:
                for _note in self._listener.driver_connection.notifies(timeout=0):
                    pass
            except Exception as error:
                log_failure(log, "reading due-time notices failed", error)

