"""Timer benchmark: 1,000 due times through the real server and scheduler, a crash in between.

    python -m bench.timers [--timers 1000] [--spread 120] [--database-url URL]

Seeds ``--timers`` clients in after-care whose next check falls due at staggered times over
``--spread`` seconds, starts the real server (scheduler inside), SIGKILLs it halfway through,
restarts it after ``--outage`` seconds, and reads back the alerts: lateness (raised minus due)
p50/p99/max for timers due while the server ran and for those due during the outage, missing
and duplicated alerts, and the scan's cost per run (from the server's log, and an idle scan
timed here). The bare baseline, in the same run: the same due times held in memory by a plain
process with ``threading.Timer`` (what an in-memory scheduler does), killed and restarted at
the same moments. Goal: p99 <= 2 s late while running, 0 missing, 0 duplicated.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.floor import ROOT, Database, Server, free_port, percentile, srs_env

GOAL_P99_S = 2.0

# A process that keeps the timers in memory: one threading.Timer per due time, each
# writing "<index> <fired at>" when it fires. Killing it loses whatever had not fired.
IN_MEMORY = r"""
import sys, threading, time
due_file, out_file = sys.argv[1], sys.argv[2]
out = open(out_file, "a", buffering=1)
timers = []
for line in open(due_file):
    index, due = line.split()
    delay = float(due) - time.time()
    if delay < 0:
        continue  # due before this process started: nothing remembers it
    timer = threading.Timer(delay, lambda i=index: out.write(f"{i} {time.time()}\n"))
    timer.start()
    timers.append(timer)
print("ready", flush=True)
threading.Event().wait()
"""


def migrate(env: dict) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT,
                   env=env, check=True, capture_output=True)


def seed(env: dict, timers: int, first_due: datetime, spread: float) -> list[datetime]:
    """The site, and ``timers`` visits in after-care with staggered next checks."""
    script = f"""
from datetime import datetime, timedelta
from srs import create_app
from srs.extensions import db
from srs.booths.models import Visit
from srs.clients.models import Client
from srs.sites.models import Site
app = create_app()
with app.app_context():
    site = Site(name="Bench", slug="bench", timezone="UTC", min_observation_seconds=14400,
                observation_check_interval_seconds=3600, escalation_grace_seconds=900)
    db.session.add(site)
    db.session.flush()
    first = datetime.fromisoformat({first_due.isoformat()!r})
    clients = [Client(site_id=site.id, code=f"X-{{n:04d}}-1980") for n in range({timers})]
    db.session.add_all(clients)
    db.session.flush()
    for n, client in enumerate(clients):
        due = first + timedelta(seconds={spread} * n / {timers})
        db.session.add(Visit(site_id=site.id, client_id=client.id, state="observing",
                             arrived_at=first - timedelta(minutes=30),
                             observation_at=first - timedelta(minutes=5),
                             observation_ends_at=first + timedelta(hours=4),
                             next_check_due_at=due))
    db.session.commit()
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)
    return [first_due + timedelta(seconds=spread * n / timers) for n in range(timers)]


def scan_ms(env: dict, now: datetime, repeats: int = 20) -> float:
    """The median cost of one scan at ``now`` that finds nothing new to raise (ms)."""
    script = f"""
import statistics, time
from datetime import datetime
from srs import create_app
from srs.alerts.service import scan
app = create_app()
with app.app_context():
    now = datetime.fromisoformat({now.isoformat()!r})
    runs = []
    for _ in range({repeats}):
        started = time.perf_counter()
        scan(now=now)
        runs.append((time.perf_counter() - started) * 1000)
    print(statistics.median(runs))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def count_alerts(env: dict) -> int:
    return len(read_alerts(env))


def read_alerts(env: dict) -> list[tuple[int, datetime, datetime]]:
    script = """
from srs import create_app
from srs.extensions import db
from srs.alerts.models import Alert
app = create_app()
with app.app_context():
    # The after-care check alerts of the seeded visits (the only subjects of that kind).
    for a in db.session.execute(db.select(Alert).filter_by(
            kind="observation_check_due", subject_type="visit")).scalars():
        print(a.subject_id, a.due_at.isoformat(), a.raised_at.isoformat())
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    rows = []
    for line in done.stdout.splitlines():
        visit_id, due, raised = line.split()
        rows.append((int(visit_id), datetime.fromisoformat(due), datetime.fromisoformat(raised)))
    return rows


def scan_costs(log_path: Path) -> list[float]:
    return [float(ms) for ms in re.findall(r"alert scan raised=\d+ .*ms=([\d.]+)",
                                           log_path.read_text(errors="replace"))]


def line(label: str, values_s: list[float]) -> str:
    if not values_s:
        return f"  {label:<34} no samples"
    return (f"  {label:<34} p50 {percentile(values_s, 50):6.2f}  p99 "
            f"{percentile(values_s, 99):6.2f}  max {max(values_s):6.2f} s  (n={len(values_s)})")


def run(args) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="srs-timers-"))
    database = Database(args.database_url, tmp)
    env = srs_env(database.create(), tmp / "instance", SRS_SCHEDULER="on")
    migrate(env)
    port = free_port()
    server = Server("srs", [sys.executable, "app.py"], {**env, "SRS_PORT": str(port),
                                                        "SRS_HOST": "127.0.0.1"},
                    tmp / "server.log", port)
    due_file = tmp / "due.txt"
    fired_file = tmp / "in-memory.txt"
    nothing = tmp / "nothing.txt"
    nothing.write_text("")
    memory = None

    def start_memory(timers_file: Path):
        argv = [sys.executable, "-c", IN_MEMORY, str(timers_file), str(fired_file)]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        process.stdout.readline()
        return process

    try:
        server.start()
        # Due times are set once the server runs, so a slow start cannot make them late.
        start = datetime.now(UTC) + timedelta(seconds=args.lead)
        print(f"Seeding {args.timers} timers due over {args.spread:.0f} s from "
              f"{start:%H:%M:%S} ({'PostgreSQL' if args.database_url else 'SQLite'})...",
              flush=True)
        dues = seed(env, args.timers, start, args.spread)
        due_file.write_text("".join(f"{n} {d.timestamp()}\n" for n, d in enumerate(dues)))
        memory = start_memory(due_file)
        if datetime.now(UTC) >= start:
            raise SystemExit("Seeding outlasted --lead: the machine is too busy; raise --lead.")
        crash_at = start + timedelta(seconds=args.spread / 2)
        time.sleep(max(0.0, (crash_at - datetime.now(UTC)).total_seconds()))
        # Down from the signal: waiting for the server's processes to go is part of the outage.
        down_from = datetime.now(UTC)
        server.kill()
        memory.kill()
        memory.wait()
        print(f"Killed both with SIGKILL at {down_from:%H:%M:%S}; down for {args.outage:.0f} s",
              flush=True)
        time.sleep(args.outage)
        server.start()
        # Down until the restarted server answers: what fell due before then was late
        # because nothing ran, not because the scan was slow.
        up_at = datetime.now(UTC)
        # Restarted, an in-memory scheduler knows nothing of the timers it held.
        memory = start_memory(nothing)
        time.sleep(max(0.0, (dues[-1] - datetime.now(UTC)).total_seconds()))
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline and count_alerts(env) < args.timers:
            time.sleep(1)
        time.sleep(2)  # a few more scans: nothing may be raised twice
    finally:
        server.stop()
        if memory is not None and memory.poll() is None:
            memory.kill()
            memory.wait()

    pending_ms = scan_ms(env, datetime(2000, 1, 1, tzinfo=UTC))
    steady_ms = scan_ms(env, datetime.now(UTC))
    alerts = read_alerts(env)
    database.drop()
    by_visit: dict[int, list] = {}
    for visit_id, due, raised in alerts:
        by_visit.setdefault(visit_id, []).append((due, raised))
    missing = args.timers - len(by_visit)
    duplicated = sum(len(found) - 1 for found in by_visit.values())
    running, outage = [], []
    for found in by_visit.values():
        due, raised = found[0]
        late = (raised - due).total_seconds()
        # Raised by a running scheduler (before the kill, or due after the restart) or
        # caught up after the restart (due before it, pending at the kill or after).
        (running if raised <= down_from or due >= up_at else outage).append(late)
    fired = [ln.split() for ln in fired_file.read_text().splitlines()] if fired_file.exists() \
        else []
    memory_late = [float(at) - dues[int(i)].timestamp() for i, at in fired]
    memory_missing = args.timers - len({i for i, _ in fired})
    costs = scan_costs(tmp / "server.log")

    print(f"\nTimers: {args.timers} due over {args.spread:.0f} s; crash at "
          f"{args.spread / 2:.0f} s, {args.outage:.0f} s down")
    print("SRS (due times in the database, one scheduler):")
    print(line("lateness, raised by a running scheduler", running))
    print(line("lateness, caught up after the restart", outage))
    print(f"  down from {down_from:%H:%M:%S} to {up_at:%H:%M:%S} "
          f"({(up_at - down_from).total_seconds():.1f} s)")
    print(f"  missing {missing}, duplicated {duplicated}")
    if costs:
        print(f"  scan that raised: p50 {percentile(costs, 50):.1f} ms, p99 "
              f"{percentile(costs, 99):.1f} ms, max {max(costs):.1f} ms over {len(costs)} runs")
    print(f"  scan with nothing due, {args.timers} timers pending: {pending_ms:.2f} ms (median)")
    print(f"  scan with {args.timers} overdue, all already raised: {steady_ms:.2f} ms (median)")
    print("Bare baseline (threading.Timer in memory, killed and restarted the same way):")
    print(line("lateness of those that fired", memory_late))
    print(f"  missing {memory_missing}, duplicated 0")
    ok = (missing == 0 and duplicated == 0 and running
          and percentile(running, 99) <= GOAL_P99_S)
    print(f"\nGoal (p99 <= {GOAL_P99_S:.0f} s late while running, 0 missing, 0 duplicated): "
          f"{'met' if ok else 'MISSED'}")
    return bool(ok)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=1000, help="due times (1000)")
    parser.add_argument("--spread", type=float, default=120, help="seconds they span (120)")
    parser.add_argument("--outage", type=float, default=10, help="seconds down (10)")
    parser.add_argument("--lead", type=float, default=30,
                        help="seconds from seeding to the first due time (30)")
    parser.add_argument("--settle", type=float, default=60,
                        help="at most this long after the last due time for stragglers (60)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL on this machine (default: a temp SQLite file)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(0 if run(parse_args()) else 1)
