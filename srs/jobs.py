"""Everything that runs on a clock: the one table of jobs and the one scheduler.

Exactly one scheduler runs per database. It holds a lock while it runs: a
PostgreSQL advisory lock when the database is PostgreSQL (so copies on other
machines wait as standbys), otherwise a file lock beside the SQLite database.
``app.py`` starts it inside the web process; ``flask --app app srs scheduler``
runs it alone. ``create_app`` never starts it.
"""

import fcntl
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from srs.alerts.clock import AlertClock
from srs.alerts.service import scan as scan_alerts
from srs.auth.service import lock_idle_sessions
from srs.clients.retention import apply_retention
from srs.common import UTCDateTime, utcnow
from srs.compassion.members import lapse_suspensions
from srs.config import private_file, private_folder
from srs.drugchecks.service import scan as scan_drug_alerts
from srs.errors import log_failure
from srs.extensions import db
from srs.hat.missed import run_missed_dose_job
from srs.idempotency import forget_older_than
from srs.incidents.packets import build_weekly_packets
from srs.naloxone.kits import warn_expiring_kits
from srs.naloxone.service import check_naloxone_stock
from srs.referrals.service import list_due_follow_ups

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock key every SRS scheduler competes for.
ADVISORY_LOCK_KEY = 0x5352_5301
HEARTBEAT_SECONDS = 2
# The alert scan runs at each due time and at least this often.
ALERT_SCAN_SECONDS = 1
LOCK_CHECK_SECONDS = 2
# A heartbeat older than this means no scheduler is running: alarms cannot fire.
HEARTBEAT_STALE_SECONDS = 15


class SchedulerHeartbeat(db.Model):
    """One row: which scheduler holds the lock and when it last ran its jobs."""

    __tablename__ = "scheduler_heartbeat"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(120))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beats: Mapped[int] = mapped_column(Integer, default=0)


def heartbeat(*, now: datetime) -> SchedulerHeartbeat:
    """Record that this scheduler is alive; screens warn when the row goes stale."""
    row = db.session.get(SchedulerHeartbeat, 1)
    if row is None:
        row = SchedulerHeartbeat(id=1, beats=0)
        db.session.add(row)
    if row.pid != os.getpid() or row.host != socket.gethostname():
        row.started_at = now
        row.beats = 0
    row.host = socket.gethostname()
    row.pid = os.getpid()
    row.beat_at = now
    row.beats += 1
    db.session.commit()
    return row


def scheduler_status(*, now: datetime) -> dict:
    """Whether a scheduler is alive, for the dashboards' warning banner."""
    row = db.session.get(SchedulerHeartbeat, 1)
    if row is None:
        return {"alive": False, "beat_at": None}
    age = (now - row.beat_at).total_seconds()
    return {"alive": age <= HEARTBEAT_STALE_SECONDS, "beat_at": row.beat_at}


@dataclass(frozen=True)
class Job:
    id: str
    func: object
    trigger: str
    trigger_args: dict = field(default_factory=dict)


# The table of jobs. Each calls one service function with ``now``. Alarms are not in it: the
# alert scan runs on its own clock (``AlertClock``), at each due time the database holds.
JOBS: tuple[Job, ...] = (
    Job("heartbeat", heartbeat, "interval", {"seconds": HEARTBEAT_SECONDS}),
    Job("lock_idle_sessions", lock_idle_sessions, "interval", {"seconds": 5}),
    Job("forget_idempotency_keys", forget_older_than, "interval", {"hours": 1}),
    # Low naloxone stock and lots expiring within 30 days, as findings on the stock page.
    Job("naloxone_stock_check", check_naloxone_stock, "cron", {"hour": 10, "minute": 0}),
    # Clients' take-home kits expiring within the site's window, listed for replacement.
    Job("naloxone_kit_expiry", warn_expiring_kits, "cron", {"hour": 10, "minute": 5}),
    Job("referral_follow_ups", list_due_follow_ups, "cron", {"hour": 6, "minute": 0}),
    # Monday 07:00 in each site's own timezone; the job builds a week's packet once.
    Job("weekly_review_packets", build_weekly_packets, "interval", {"minutes": 5}),
    # Overdose clusters draft advisories; published drug alerts past their date expire.
    Job("drug_alert_scan", scan_drug_alerts, "interval", {"minutes": 2}),
    # Records older than a site's retention period give their client to a placeholder.
    Job("retention", apply_retention, "cron", {"hour": 4, "minute": 30}),
    # Each site's treatment day that ended: missed doses written, holds and re-titration
    # prompts at the site's thresholds; every few minutes, so each site's own midnight is
    # caught, and a day is counted once.
    Job("hat_missed_doses", run_missed_dose_job, "interval", {"minutes": 5}),
    # Club members whose suspension's end has passed are active again (a read does it too).
    Job("club_suspensions", lapse_suspensions, "interval", {"minutes": 5}),
)


class SchedulerLock:
    """The right to be the one scheduler: advisory lock on PostgreSQL, else a file lock."""

    def __init__(self, app):
        self.app = app
        self._connection = None
        self._file = None

    def try_acquire(self) -> bool:
        with self.app.app_context():
            engine = db.engine
            if engine.dialect.name == "postgresql":
                connection = engine.connect()
                # Session-level lock: this connection must never go back to the pool
                # while it holds it, and closing it must really release it.
                connection.detach()
                got = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                ).scalar()
                connection.commit()  # the lock outlives the transaction; don't idle in one
                if got:
                    self._connection = connection
                    return True
                connection.close()
                return False
            path = self._lock_path(engine)
        # Private like the database beside it (0600): it names the host and process.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        private_file(path)  # one made before this rule
        fh = os.fdopen(fd, "r+")  # held open for the life of the lock
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{socket.gethostname()} {os.getpid()}\n")
        fh.flush()
        self._file = fh
        return True

    def _lock_path(self, engine) -> Path:
        database = engine.url.database
        if database and database != ":memory:":
            return Path(f"{database}.scheduler.lock")
        return private_folder(self.app.instance_path) / "scheduler.lock"

    def still_held(self) -> bool:
        """A session-level advisory lock lasts as long as its connection: ask that connection."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
            return True
        except Exception:  # any failure means the session, and so the lock, may be gone
            log.exception("the connection holding the scheduler lock failed")
            self._connection.invalidate()
            self._connection = None
            return False

    def release(self) -> None:
        if self._connection is not None:
            # Unlock before closing: PostgreSQL frees a closed session's locks only once its
            # backend has noticed the close, and a standby asking at once would be refused.
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": ADVISORY_LOCK_KEY})
                self._connection.commit()
            except Exception:  # a dead connection holds no lock
                log.warning("unlocking the scheduler lock failed; closing its connection")
            self._connection.close()
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _run_in_app(app, func):
    def run():
        with app.app_context():
            try:
                func(now=utcnow())
            except Exception as error:
                db.session.rollback()
                log_failure(log, f"scheduled job {func.__name__} failed", error)
            finally:
                db.session.remove()

    return run


def build_scheduler(app) -> BackgroundScheduler:
    """A scheduler with every job of the table, catching up on runs it missed."""
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    for job in JOBS:
        scheduler.add_job(_run_in_app(app, job.func), job.trigger, id=job.id, name=job.id,
                          next_run_time=utcnow(), **job.trigger_args)
    return scheduler


class SchedulerService:
    """Hold the lock and run the scheduler; wait as a standby while another holds it."""

    def __init__(self, app, *, standby_poll_seconds: float = 2.0):
        self.app = app
        self.lock = SchedulerLock(app)
        self.scheduler: BackgroundScheduler | None = None
        self.alert_clock: AlertClock | None = None
        self.standby_poll_seconds = standby_poll_seconds
        self._stop = threading.Event()

    def start_if_free(self) -> bool:
        """Start now if no other scheduler holds the lock; return whether it started."""
        if not self.lock.try_acquire():
            return False
        self.scheduler = build_scheduler(self.app)
        self.scheduler.start()
        # Raise, escalate and re-sound alarms at the due times in the database.
        self.alert_clock = AlertClock(self.app, scan_alerts, tick=ALERT_SCAN_SECONDS).start()
        log.info("scheduler started pid=%s", os.getpid())
        return True

    def run_forever(self) -> None:
        """Block: wait as a standby until the lock is free, run, and keep checking the lock.

        If the lock is lost (the PostgreSQL connection holding it died, so a
        standby may already have taken over), stop at once and go back to waiting.
        """
        announced = False
        while not self._stop.is_set():
            if not self.start_if_free():
                if not announced:
                    log.info("another scheduler holds the lock; waiting as a standby")
                    announced = True
                self._stop.wait(self.standby_poll_seconds)
                continue
            announced = False
            while not self._stop.wait(LOCK_CHECK_SECONDS):
                if not self.lock.still_held():
                    log.error("scheduler lost its lock; stopping and waiting as a standby")
                    self.shutdown()
                    break
        self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        if self.alert_clock is not None:
            self.alert_clock.stop()
            self.alert_clock = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self.lock.release()
