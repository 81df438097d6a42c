"""One scheduler, always: the heartbeat job, the lock, the standby taking over."""

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from conftest import BESIDE_A_SERVER, ON_POSTGRES, ROOT, app_config, server_env
from sqlalchemy import text

from srs import create_app
from srs.common import utcnow
from srs.extensions import db
from srs.jobs import (
    HEARTBEAT_STALE_SECONDS,
    SchedulerHeartbeat,
    SchedulerService,
    heartbeat,
    scheduler_status,
)


def test_heartbeat_writes_one_row_and_counts(app):
    now = utcnow()
    first = heartbeat(now=now)
    second = heartbeat(now=now + timedelta(seconds=2))
    assert first.id == second.id == 1
    assert second.beats == 2
    assert db.session.execute(db.select(db.func.count(SchedulerHeartbeat.id))).scalar() == 1


def test_status_goes_stale_when_the_scheduler_stops(app):
    now = utcnow()
    assert scheduler_status(now=now)["alive"] is False
    heartbeat(now=now)
    assert scheduler_status(now=now + timedelta(seconds=HEARTBEAT_STALE_SECONDS))["alive"]
    later = now + timedelta(seconds=HEARTBEAT_STALE_SECONDS + 1)
    assert scheduler_status(now=later)["alive"] is False


def test_supervisor_sees_a_warning_when_no_scheduler_runs(client, auth):
    from factories import make_site, make_staff

    site = make_site()
    make_staff(site, role="supervisor", username="sam")
    auth.login("sam")
    assert b"timer scheduler is not running" in client.get("/supervise").data
    heartbeat(now=utcnow())
    assert b"timer scheduler is not running" not in client.get("/supervise").data


@pytest.mark.commits  # the scheduler's lock takes a connection of its own
def test_second_scheduler_in_the_same_process_does_not_start(app):
    first, second = SchedulerService(app), SchedulerService(app)
    try:
        assert first.start_if_free() is True
        assert second.start_if_free() is False
    finally:
        first.shutdown()
        second.shutdown()
    third = SchedulerService(app)
    try:
        assert third.start_if_free() is True, "the lock is free again after shutdown"
    finally:
        third.shutdown()


def _wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture
def scheduler_db(databases):
    url = databases.new_migrated("sched")
    app = create_app(app_config(url, **BESIDE_A_SERVER))
    with app.app_context():
        yield url
        db.session.remove()
        db.engine.dispose()


def _beat():
    db.session.remove()
    return db.session.get(SchedulerHeartbeat, 1)


def test_scheduler_started_twice_runs_once_and_the_standby_takes_over(scheduler_db, tmp_path):
    env = server_env(scheduler_db)
    logs = [open(tmp_path / f"scheduler-{n}.log", "w") for n in (1, 2)]  # noqa: SIM115
    command = [sys.executable, "-m", "flask", "--app", "app", "srs", "scheduler"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=logs[0], stderr=logs[0])
    second = None
    try:
        assert _wait_for(lambda: (row := _beat()) and row.pid == first.pid, 30), \
            "the first scheduler beats"
        second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=logs[1], stderr=logs[1])
        beats_before = _beat().beats
        # A loaded machine may take seconds to import the app: wait for the copy to say so.
        assert _wait_for(lambda: "standby" in (tmp_path / "scheduler-2.log").read_text(), 60), \
            "the second copy says it waits as a standby"
        time.sleep(3)  # more than one heartbeat period with both copies running
        row = _beat()
        assert row.pid == first.pid, "only the first scheduler runs jobs"
        assert row.beats > beats_before
        assert second.poll() is None, "the second copy waits as a standby"

        first.terminate()
        first.wait(timeout=15)
        assert _wait_for(lambda: (row := _beat()) and row.pid == second.pid, 20), \
            "the standby takes over when the first stops"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
        for log in logs:
            log.close()


@pytest.mark.commits  # the scheduler's lock takes a connection of its own
def test_a_scheduler_that_loses_its_lock_stops_and_waits(app):
    """On PostgreSQL the lock lives on one connection: if that dies, so does the right to run."""
    service = SchedulerService(app)
    assert service.start_if_free()
    try:
        assert service.lock.still_held()
        if ON_POSTGRES:
            connection = service.lock._connection
            backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
            connection.commit()
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
                other.commit()
            assert service.lock.still_held() is False
            # The lock is free again: a standby would take it now.
            standby = SchedulerService(app)
            assert standby.start_if_free()
            standby.shutdown()
        else:
            # A file lock is held by the open file itself: it is lost only with the process.
            service.lock.release()
            assert service.lock.still_held() is False
    finally:
        service.shutdown()
