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

from sqlalchemy import bindparam, event, func, inspect, select, text, union_all
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
# In one process: set when a marked unit of work commits, with the due times it set.
_local_wake = threading.Event()
_local_lock = threading.Lock()
# What committed since the clock last looked: the earliest due time set, or "read them all"
# (kept as one value, so that a process whose clock runs elsewhere holds nothing more).
_local_pending = {"unknown": False, "earliest": None}
# (model class, attribute key) -> watched: a change to it at flush marks the unit of work.
_watched: dict[type, set[str]] = defaultdict(set)
# (column, condition) pairs whose earliest future value :func:`next_due` reads.
_due_columns: list[tuple] = []


def watch_due_times(pairs) -> None:
    """Register ``(column, condition)`` pairs: an open item's due time in ``column`` (an ORM
    attribute) counts while ``condition`` (a SQL expression) holds."""
    global _next_due
    for column, condition in pairs:
        if any(column is c and condition is w for c, w in _due_columns):
            continue
        _due_columns.append((column, condition))
        _watched[column.class_].add(column.key)
        _next_due = None


_next_due = None  # the statement of next_due, built once for the columns registered


def next_due_statement():
    global _next_due
    if _next_due is None:
        now = bindparam("now")
        candidates = [
            select(func.min(column).label("at")).where(condition, column > now)
            for column, condition in _due_columns
        ]
        candidates.append(select(func.min(Alert.escalate_at).label("at")).where(
            Alert.resolved_at.is_(None), Alert.escalate_at > now))
        candidates.append(select(func.min(Alert.resound_at).label("at")).where(
            Alert.resolved_at.is_(None), Alert.resound_at > now))
        earliest = union_all(*candidates).subquery()
        _next_due = select(func.min(earliest.c.at))
    return _next_due


def next_due(*, now: datetime) -> datetime | None:
    """The earliest due time after ``now`` that the database holds: a registered column of an
    open item, an unowned alert's escalation or an owned high alarm's re-sound. One
    statement: the clock asks after every scan (the scan itself, in its unit of work)."""
    return db.session.execute(next_due_statement(), {"now": now}).scalar()


def due_times_changed(when: datetime | None = None) -> None:
    """This unit of work set a due time (``when``, the earliest it set, if known): once it
    commits, the scheduler waits for it, or reads the due times again when it is unknown."""
    _mark(db.session(), when)


def due_times_read() -> None:
    """This unit of work read the next due time after its own changes (the scan does): the
    clock that ran it takes that, and needs no notice of what it set."""
    db.session().info.pop(_MARK, None)


def _mark(session, when: datetime | None) -> None:
    marks = session.info.setdefault(_MARK, set())
    marks.add(when)


def _due_times_set(session) -> set:
    """The due times that what the session is about to flush sets (empty: none)."""
    found = set()
    for obj in (*session.new, *session.dirty):
        keys = _watched.get(type(obj))
        if keys:
            attrs = inspect(obj).attrs
            for key in keys:
                found.update(value for value in attrs[key].history.added if value is not None)
    return found


@event.listens_for(Session, "after_flush")
def _note_due_columns(session, _context) -> None:
    # The flush's objects still show what it wrote as their history.
    if _watched:
        for when in _due_times_set(session):
            _mark(session, when)


def _hint(marks: set) -> datetime | None:
    """The earliest due time set, or None when one of them is unknown (read them all)."""
    return None if None in marks else min(marks)


def _hint_text(marks: set) -> str:
    hint = _hint(marks)
    return "" if hint is None else hint.isoformat()


@event.listens_for(Session, "before_commit")
def _notify(session) -> None:
    # Before the commit's own flush: what it is about to write counts too.
    marks = session.info.pop(_MARK, set())
    if _watched:
        marks |= _due_times_set(session)
    if not marks:
        return
    # A released savepoint commits too: what it set waits, with the rest, for the real commit.
    session.info.setdefault(_NOTIFIED, set()).update(marks)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Delivered at commit to every listener on this database; dropped with a rollback.
        connection.execute(text("SELECT pg_notify(:channel, :hint)"),
                           {"channel": CHANNEL, "hint": _hint_text(marks)})


@event.listens_for(Session, "after_commit")
def _wake_here(session) -> None:
    if session.get_nested_transaction() is None:
        marks = session.info.pop(_NOTIFIED, None)
        if marks:
            hint = _hint(marks)
            with _local_lock:
                if hint is None:
                    _local_pending["unknown"] = True
                elif _local_pending["earliest"] is None or hint < _local_pending["earliest"]:
                    _local_pending["earliest"] = hint
            _local_wake.set()


@event.listens_for(Session, "after_transaction_end")
def _forget(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_MARK, None)
        session.info.pop(_NOTIFIED, None)


def _parse_hint(text_value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text_value) if text_value else None
    except ValueError:
        return None


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
        self._drain()  # what changed before it started: its first scan and read cover it
        last_scan, due, read = float("-inf"), None, True
        try:
            while not self._stop.is_set():
                if (due is not None and utcnow() >= due) or \
                        time.monotonic() - last_scan >= self.tick:
                    scanned = self._in_app(lambda: self.scan(now=utcnow()), "alert scan")
                    self.scans += 1
                    last_scan = time.monotonic()
                    # The scan read the next due time after its changes; a failed one did not.
                    due = getattr(scanned, "next_due", due)
                    read = not hasattr(scanned, "next_due")
                if read:
                    due = self._in_app(lambda: next_due(now=utcnow()),
                                       "reading the next due time")
                    read = False
                timeout = self.tick - (time.monotonic() - last_scan)
                if due is not None:
                    timeout = min(timeout, (due - utcnow()).total_seconds() + PAST_DUE_SECONDS)
                hints = self._wait(max(timeout, 0.0))
                if hints and not self._stop.is_set():
                    self._stop.wait(COALESCE_SECONDS)
                    hints += self._drain()
                    # A change says the earliest due time it set: no read needed, unless
                    # one could not say (then every due time is read again).
                    if None in hints:
                        read = True
                    else:
                        due = min([*hints, *([due] if due is not None else [])])
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

    def _wait(self, seconds: float) -> list:
        """Sleep up to ``seconds``; the hints of the changes that woke it (the earliest due
        time each set, None for unknown), empty when nothing did."""
        if self._listener is None:
            if not _local_wake.wait(seconds):
                return []
            return self._drain()
        try:
            # At most a second at a time, so that stop() is heard.
            deadline = time.monotonic() + seconds
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                for note in self._listener.driver_connection.notifies(
                        timeout=min(left, 1.0), stop_after=1):
                    return [_parse_hint(note.payload)]
            return []
        except Exception as error:  # a lost connection: listen again, the tick carries on
            log_failure(log, "waiting for due times failed", error)
            self._unlisten()
            self._stop.wait(min(seconds, 1.0))
            self._listen()
            return [None]

    def _drain(self) -> list:
        _local_wake.clear()
        with _local_lock:
            if _local_pending["unknown"]:
                hints = [None]
            else:
                hints = [_local_pending["earliest"]] if _local_pending["earliest"] else []
            _local_pending.update(unknown=False, earliest=None)
        if self._listener is not None:
            # The database tells of every commit, this process's too: what this process
            # noted may be older than the listening (it came before the clock started).
            hints = []
            try:
                hints += [_parse_hint(note.payload) for note in
                          self._listener.driver_connection.notifies(timeout=0)]
            except Exception as error:
                log_failure(log, "reading due-time notices failed", error)
                hints.append(None)
        return hints
