"""Alert scan benchmark: SQL statements and CPU per scan, per alert raised and escalated.

    python -m bench.scan [--sites 20] [--due 1,20] [--repeats 30] [--database-url URL]

In this process, on a fresh migrated database (a temp SQLite file, or a throw-away database on
the server of ``--database-url``): ``--sites`` sites with a booth each per alert, a client in
each booth. Each round moves ``N`` visits' next check to the past (``--due``), then runs what
the scheduler's alarm clock runs at a due time (the scan, and the next due time it sleeps
until) three times: the scan that raises the N alarms, the same scan again (nothing new: an
idle scan), and one a grace later that escalates them. Then the round's alerts are deleted.
Printed: statements and scheduler CPU (time.process_time) per cycle, and per alert, median
of ``--repeats`` rounds; beside them, the bare baseline of the same run: one ``SELECT 1``
round trip on the same engine, without the ORM.
"""

import argparse
import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, event, update

from bench.floor import Database, srs_env, srs_environ
from bench.timers import migrate

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GRACE = 120


def seed(sites: int, booths: int) -> list[int]:
    """``sites`` sites, ``booths`` booths each with a client in it; the visits' ids, spread
    across the sites."""
    from srs.booths.models import Booth, Visit
    from srs.clients.models import Client
    from srs.extensions import db
    from srs.sites.models import Site

    visits = []
    for s in range(sites):
        site = Site(name=f"Site {s}", slug=f"site-{s}", timezone="UTC",
                    escalation_grace_seconds=GRACE)
        db.session.add(site)
        db.session.flush()
        for b in range(booths):
            booth = Booth(site_id=site.id, label=f"B{b + 1}", kind="injection")
            client = Client(site_id=site.id, code=f"X-{s:02d}{b:02d}-1980")
            db.session.add_all([booth, client])
            db.session.flush()
            visit = Visit(site_id=site.id, client_id=client.id, booth_id=booth.id,
                          state="in_booth", arrived_at=NOW - timedelta(hours=1),
                          booth_at=NOW - timedelta(minutes=10),
                          booth_due_at=NOW + timedelta(days=1),
                          next_check_due_at=NOW + timedelta(days=1))
            db.session.add(visit)
            db.session.flush()
            visits.append((b, s, visit.id))
    db.session.commit()
    return [visit_id for _b, _s, visit_id in sorted(visits)]


def cycle(now: datetime, counter: list) -> tuple[int, float, object]:
    """One wake of the alarm clock: the scan, then the next due time (unless the scan's
    result carries it); statements and CPU seconds, and the scan's result."""
    from srs.alerts import clock
    from srs.alerts.service import scan
    from srs.extensions import db

    before, started = counter[0], time.process_time()
    result = scan(now=now)
    db.session.remove()
    if getattr(result, "next_due", clock) is clock:  # this scan does not read it
        clock.next_due(now=now)
        db.session.remove()
    return counter[0] - before, time.process_time() - started, result


def run(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="srs-bench-scan-"))
    database = Database(args.database_url, tmp)
    url = database.create()
    try:
        env = srs_env(url, tmp / "instance", SRS_SCHEDULER="off")
        migrate(env)
        with srs_environ(env):
            from srs import create_app
            from srs.alerts.models import Alert, AlertEscalation
            from srs.booths.models import Visit
            from srs.extensions import db

            app = create_app()
            logging.getLogger("srs.alerts.service").setLevel(logging.WARNING)  # a line a scan
            with app.app_context():
                counts = [int(n) for n in args.due.split(",")]
                visit_ids = seed(args.sites, max(counts) // args.sites + 1)
                counter = [0]

                @event.listens_for(db.engine, "before_cursor_execute")
                def _count(*_args):
                    counter[0] += 1

                print(f"{db.engine.dialect.name}, {args.sites} sites, median of "
                      f"{args.repeats} rounds")
                print(f"{'due':>4} {'scan':<9} {'stmts':>6} {'cpu ms':>8} {'ms/alert':>9}")
                for n in counts:
                    rows = {"raise": [], "idle": [], "escalate": []}
                    due = visit_ids[:n]
                    for r in range(args.repeats + 2):  # the first two warm up
                        due_at = NOW + timedelta(seconds=r)
                        db.session.execute(update(Visit).where(Visit.id.in_(due)).values(
                            next_check_due_at=due_at))
                        db.session.commit()
                        db.session.remove()
                        now = due_at + timedelta(seconds=1)
                        for name, at, expect in (("raise", now, "raised"), ("idle", now, None),
                                                 ("escalate", now + timedelta(seconds=GRACE),
                                                  "escalated")):
                            stmts, cpu, result = cycle(at, counter)
                            got = len(getattr(result, expect)) if expect else int(bool(result))
                            assert got == (n if expect else 0), (name, got)
                            if r >= 2:
                                rows[name].append((stmts, cpu))
                        db.session.execute(delete(AlertEscalation))
                        db.session.execute(delete(Alert))
                        db.session.execute(update(Visit).where(Visit.id.in_(due)).values(
                            next_check_due_at=NOW + timedelta(days=1)))
                        db.session.commit()
                        db.session.remove()
                    for name, samples in rows.items():
                        stmts = statistics.median(s for s, _ in samples)
                        ms = statistics.median(c for _, c in samples) * 1000
                        per = f"{ms / n:9.2f}" if name != "idle" else f"{'':>9}"
                        print(f"{n:>4} {name:<9} {stmts:>6.0f} {ms:>8.2f} {per}")
                # The bare baseline, same run and engine: one round trip, no ORM.
                bare = []
                with db.engine.connect() as connection:
                    for _ in range(args.repeats + 2):
                        started = time.process_time()
                        connection.exec_driver_sql("SELECT 1").scalar()
                        bare.append(time.process_time() - started)
                print(f"{'bare':>4} {'SELECT 1':<9} {1:>6} "
                      f"{statistics.median(bare[2:]) * 1000:>8.2f}")
                db.session.remove()
                db.engine.dispose()
    finally:
        database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--due", default="1,20", help="alerts per scan, comma-separated")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server URL (a throw-away database is made there)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
