"""One tap's cost in process: SQL statements and CPU of the request and of its fan-out.

    python -m bench.tap [--cycles 40] [--database-url URL]

In this process, on a fresh migrated database (a temp SQLite file, or a throw-away database on
the server of ``--database-url``), seeded as ``bench.floor`` seeds it: a nurse's tablet runs
``--cycles`` visit cycles through the JSON API (check in, assign booth, record a use, start
after-care, clean the booth, discharge), each tap with an Idempotency-Key, while a floor
socket and a dashboard socket (Flask-SocketIO's test clients, admitted by token as the real
screens are) watch the site, so that each change is read and rendered for both kinds of screen
as on a real floor. Printed per kind of tap: statements and CPU (``time.process_time``, every
thread of the process) of the request, then of its fan-out (the board read, the renders and
the emits, on the publisher thread). Without the network, gunicorn, Redis or real sockets:
this is SRS's own work, and it is far steadier from run to run than ``make bench-region``.

Beside it, the bare baseline of the same run: the CPU of one primary-key read of a booth,
through the driver alone (psycopg or sqlite3), SQLAlchemy Core, and the ORM, which prices the
statements a tap makes.
"""

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

from bench.floor import ROOT, Database, seed, srs_env

STEPS = ("check_in", "assign_booth", "record_consumption", "start_observation",
         "mark_booth_clean", "discharge")


def measure(app, seeded: dict, cycles: int) -> dict:
    """{step: [(request statements, request CPU s, fan-out statements, fan-out CPU s)]}."""
    from sqlalchemy import event

    from srs import live
    from srs.extensions import db, socketio

    site = seeded["site_id"]
    nurse = {"Authorization": f"Bearer {seeded['tokens'][0]}"}
    client = app.test_client()
    screens = [socketio.test_client(app, auth={"token": seeded["tokens"][1], "view": "floor"}),
               socketio.test_client(app, auth={"token": seeded["screen_token"],
                                               "view": "watch"})]
    if not all(screen.is_connected() for screen in screens):
        raise SystemExit("a screen's socket was refused")
    statements = [0]

    def count(*_args):
        statements[0] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    rows = defaultdict(list)

    def tap(step: str, path: str, body=None):
        n0, t0 = statements[0], time.process_time()
        response = client.post(f"/api/v1/sites/{site}{path}", json=body,
                               headers={**nurse, "Idempotency-Key": uuid.uuid4().hex})
        n1, t1 = statements[0], time.process_time()
        assert response.status_code < 300, (step, response.status_code, response.get_data())
        answer = response.get_json()
        response.close()  # hands the change to the publisher, as a sent response does
        if not live.wait_until_published():
            raise SystemExit("the publisher did not finish")
        rows[step].append((n1 - n0, t1 - t0, statements[0] - n1, time.process_time() - t1))
        return answer

    def cycle(code: str):
        visit = tap("check_in", "/visits", {"code": code})["id"]
        tap("assign_booth", f"/visits/{visit}/booth", {"booth_id": seeded["spare_booth"]})
        tap("record_consumption", f"/visits/{visit}/consumptions",
            {"substances": ["fentanyl"], "route": "injects"})
        tap("start_observation", f"/visits/{visit}/observation")
        tap("mark_booth_clean", f"/booths/{seeded['spare_booth']}/clean")
        tap("discharge", f"/visits/{visit}/discharge", {})

    for _ in range(3):  # warm: caches, prepared statements
        cycle("X-ZZZZ-1999")
    rows.clear()
    for _ in range(cycles):
        cycle("X-ZZZZ-1999")
    pushed = sum(1 for screen in screens for message in screen.get_received()
                 if message["name"] == "fragments")
    if not pushed:
        raise SystemExit("no screen heard a change: the fan-out was not measured")
    for screen in screens:
        screen.disconnect()
    event.remove(engine, "before_cursor_execute", count)
    return rows


def statement_costs(app, booth_id: int, repeats: int = 2000) -> dict:
    """CPU of one primary-key read of a booth: driver alone, Core, ORM (seconds)."""
    from srs.booths.models import Booth
    from srs.extensions import db

    table = Booth.__table__
    costs = {}
    with app.app_context():
        connection = db.session.connection()
        driver = connection.connection.dbapi_connection
        placeholder = "%s" if db.engine.dialect.name == "postgresql" else "?"

        def raw():
            cursor = driver.cursor()
            cursor.execute(f"SELECT * FROM booth WHERE id = {placeholder}", (booth_id,))
            cursor.fetchone()
            cursor.close()

        def core():
            connection.execute(db.select(table).where(table.c.id == booth_id)).one()

        def orm():
            db.session.execute(db.select(Booth).where(Booth.id == booth_id)).scalar_one()
            db.session.expunge_all()  # read afresh each time, as a new request would

        for label, run in (("driver", raw), ("core", core), ("orm", orm)):
            for _ in range(50):
                run()
            started = time.process_time()
            for _ in range(repeats):
                run()
            costs[label] = (time.process_time() - started) / repeats
        db.session.rollback()
    return costs


def report(rows: dict, costs: dict, label: str, cycles: int) -> None:
    print()
    print(f"One tap in process ({label}; {cycles} visit cycles; median per tap; CPU of every "
          f"thread, time.process_time)")
    print(f"  {'tap':<20} {'request':>18} {'fan-out':>18} {'both':>9}")
    print(f"  {'':<20} {'stmts':>7} {'CPU ms':>10} {'stmts':>7} {'CPU ms':>10} {'CPU ms':>9}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for step in STEPS:
        samples = rows[step]
        med = [statistics.median(s[i] for s in samples) for i in range(4)]
        means = [statistics.fmean(s[i] for s in samples) for i in range(4)]
        totals = [t + m for t, m in zip(totals, means, strict=True)]
        print(f"  {step:<20} {med[0]:7.0f} {med[1] * 1000:10.2f} {med[2]:7.0f} "
              f"{med[3] * 1000:10.2f} {(med[1] + med[3]) * 1000:9.2f}")
    n = len(STEPS)
    print(f"  {'mean of a cycle':<20} {totals[0] / n:7.1f} {totals[1] * 1000 / n:10.2f} "
          f"{totals[2] / n:7.1f} {totals[3] * 1000 / n:10.2f} "
          f"{(totals[1] + totals[3]) * 1000 / n:9.2f}")
    print()
    print("Bare baseline, same run: CPU of one primary-key read of a booth")
    for key, name in (("driver", "the driver alone"), ("core", "SQLAlchemy Core"),
                      ("orm", "SQLAlchemy ORM, an entity")):
        print(f"  {name:<28} {costs[key] * 1e6:7.0f} us")
    per_tap = (totals[0] + totals[2]) / n
    print(f"  a tap's {per_tap:.1f} statements at the ORM's price: "
          f"{per_tap * costs['orm'] * 1000:.1f} ms; at the driver's: "
          f"{per_tap * costs['driver'] * 1000:.1f} ms "
          f"(of {(totals[1] + totals[3]) * 1000 / n:.1f} ms measured)")


def run(args) -> None:
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="srs-bench-"))
    database = Database(args.database_url or None, tmp)
    try:
        url = database.create()
        instance = tmp / "instance"
        instance.mkdir()
        env = srs_env(url, instance, SRS_SCHEDULER="off")
        migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db",
                                   "upgrade"], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300)
        if migrated.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed:\n{migrated.stderr[-3000:]}")
        seeded = seed(env, 2)
        os.environ.update({k: v for k, v in env.items() if k.startswith("SRS_")})
        from srs import create_app
        from srs.extensions import db

        app = create_app()
        rows = measure(app, seeded, args.cycles)
        costs = statement_costs(app, seeded["spare_booth"])
        label = f"PostgreSQL ({database.name})" if args.database_url else "SQLite (temp file)"
        report(rows, costs, label, args.cycles)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server URL (a throw-away database is made there)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
