"""Timers that a crash cannot lose: the real server killed mid-way, two schedulers at once."""

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from conftest import BESIDE_A_SERVER, ROOT, LiveServer, app_config, server_env
from factories import make_booth, make_site, make_staff

from srs import create_app
from srs.alerts.models import Alert, AlertEscalation
from srs.auth.service import Actor
from srs.booths import service
from srs.booths.models import Visit
from srs.common import utcnow
from srs.extensions import db

pytestmark = pytest.mark.live

TIMERS = 20
INTERVAL = 3  # seconds: the site's after-care check interval


def _after_care_timers(count: int, *, spread: float) -> tuple[list[int], object]:
    """``count`` clients in after-care whose first check falls due over ``spread`` seconds."""
    site = make_site(observation_check_interval_seconds=INTERVAL, min_observation_seconds=3600,
                     escalation_grace_seconds=600)
    nurse = Actor.of(make_staff(site, role="nurse"))
    start = utcnow()
    ids = []
    for n in range(count):
        booth = make_booth(site, label=f"B{n + 1}", position=n)
        at = start + timedelta(seconds=spread * n / count)
        visit = service.check_in(site, code=f"F-{chr(65 + n)}AAA-1980", handle=None,
                                 actor=nurse, actor_roles={"nurse"}, now=at)
        service.assign_booth(visit, booth, actor=nurse, now=at)
        service.start_observation(visit, actor=nurse, now=at)
        ids.append(visit.id)
    return ids, site


def _raised(kind="observation_check_due") -> list[Alert]:
    db.session.remove()
    return list(db.session.execute(db.select(Alert).filter_by(kind=kind)).scalars())


def _wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _exactly_once(visit_ids: list[int]) -> None:
    alerts = _raised()
    by_visit = {}
    for alert in alerts:
        by_visit.setdefault(alert.visit_id, []).append(alert)
    assert sorted(by_visit) == sorted(visit_ids), "every timer raised its alert"
    assert all(len(found) == 1 for found in by_visit.values()), "no timer raised twice"
    for visit_id, (alert,) in by_visit.items():
        visit = db.session.get(Visit, visit_id)
        assert alert.due_at == visit.next_check_due_at
        assert alert.raised_at >= alert.due_at
    level_ones = db.session.execute(db.select(db.func.count()).select_from(AlertEscalation)
                                    .filter_by(level=1)).scalar_one()
    assert level_ones == len(visit_ids)


def test_pending_timers_survive_a_sigkill_and_fire_exactly_once(databases, tmp_path):
    url = databases.new_migrated("sigkill")
    app = create_app(app_config(url, **BESIDE_A_SERVER))
    server = LiveServer(url, tmp_path / "server.log", SRS_SCHEDULER="on")
    with app.app_context():
        server.start()
        try:
            visit_ids, _site = _after_care_timers(TIMERS, spread=4)
            assert _wait_for(lambda: len(_raised()) >= 1, 20), "the scheduler raises on time"
            server.kill()
            killed_at = utcnow()
            before = len(_raised())
            assert 0 < before < TIMERS, f"{before} raised before the kill: some must be pending"
            # Down long enough that every pending timer falls due while nothing runs.
            last_due = max(v.next_check_due_at for v in db.session.execute(
                db.select(Visit).where(Visit.id.in_(visit_ids))).scalars())
            time.sleep(max(0.0, (last_due - utcnow()).total_seconds()) + 1)
            restarted_at = utcnow()
            server.start()
            assert _wait_for(lambda: len(_raised()) >= TIMERS, 30), \
                f"only {len(_raised())} of {TIMERS} raised after the restart"
            time.sleep(2)  # more scans: nothing may be raised twice
            _exactly_once(visit_ids)
            alerts = _raised()
            late = [a for a in alerts if a.raised_at >= restarted_at]
            assert len(late) == TIMERS - before, "the restart caught up on what was pending"
            assert all(a.due_at < restarted_at for a in late)
            assert all(a.raised_at <= killed_at for a in alerts if a.raised_at < restarted_at)
        finally:
            server.stop()
            db.session.remove()
            db.engine.dispose()


def test_two_schedulers_raise_each_alert_once(databases, tmp_path):
    url = databases.new_migrated("twosched")
    app = create_app(app_config(url, **BESIDE_A_SERVER))
    env = server_env(url)
    command = [sys.executable, "-m", "flask", "--app", "app", "srs", "scheduler"]
    logs = [tmp_path / f"scheduler-{n}.log" for n in (1, 2)]
    handles = [open(path, "w") for path in logs]  # noqa: SIM115
    processes = []
    with app.app_context():
        try:
            for handle in handles:
                processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle,
                                                  stderr=handle))
            visit_ids, _site = _after_care_timers(TIMERS, spread=2)
            assert _wait_for(lambda: len(_raised()) >= TIMERS, 30)
            time.sleep(2)
            _exactly_once(visit_ids)
            texts = [path.read_text() for path in logs]
            raising = [n for n, text in enumerate(texts) if "alert scan raised=" in text]
            assert len(raising) == 1, "exactly one scheduler raised alerts"
            assert "standby" in texts[1 - raising[0]]
            assert all(p.poll() is None for p in processes), "the standby keeps waiting"
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=15)
            for handle in handles:
                handle.close()
            db.session.remove()
            db.engine.dispose()
