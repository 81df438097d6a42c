"""The reports benchmark: the weekly review page and the monthly report on five years of a
site's records, and the monthly report of every site on many sites' records.

``make bench-reports`` runs ``python -m bench.reports`` (``BENCH_ARGS`` passes options). It
builds a fresh, migrated database (a temp SQLite file, or a throw-away database on the server
of ``--database-url``), fills it with bulk inserts (COPY on PostgreSQL, the visits' indexes
built after the load; executemany in batches on SQLite): ``--sites`` sites (one by default)
in America/Vancouver with 12 booths each, sharing evenly ``--clients`` client codes,
``--visits`` visits (1.5 million by default) spread over ``--years`` years, one consumption
per consuming visit, and ``--incidents`` submitted-or-later incident reports (30,000 by
default). Then, through the app's own pages as a reviewer of every site (Flask's test
client, no network), it times:

- the weekly review page (``/sites/<slug>/incidents/week``) of the first site for the last
  full week: the week's reports by stage, 12 weeks of trends, four charts drawn by
  matplotlib;
- the monthly report page (``/sites/<slug>/reports/monthly``) for the last full month;
- the same two through the API's getMonthlyReport, and the weekly packet's PDF, once each;
- the monthly report of every site (``/reports/monthly``): a column per site and the total,
  and its CSV.

Each overdose report has its console record (an opioid or stimulant response with oxygen,
stimulation and, for most opioid ones, one to three naloxone doses), and one visit in forty
ends with a take-home naloxone kit, so the overdose, naloxone and kit figures do real work.

Three baselines are measured in the same run: a bare Flask endpoint through the same test
client (what any page costs here), the raw SQL a site's report cannot avoid (counting the
month's visits and the 12 weeks' incidents through their indexes), and the raw SQL the
report of every site cannot avoid (each site's visits and unique clients in the month, one
grouped query). Each page's ratio to its raw SQL says how much of its time is SRS's own.

Goal: each page <= 1 s; the report of 20 sites with 2 million visits in all on PostgreSQL:

    make bench-reports BENCH_ARGS="--sites 20 --visits 2000000 --clients 40000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test"

Each is timed ``--repeat`` times; the median and the worst are shown.
"""

import argparse
import json
import random
import re
import statistics
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, create_engine, make_url, text

from srs import create_app
from srs.auth.service import Actor, create_staff, issue_token
from srs.booths.models import Booth, Consumption, Visit
from srs.clients.models import Client, parse_client_code
from srs.extensions import db
from srs.incidents.models import HARM_GRADES, INCIDENT_TYPES, Incident
from srs.naloxone.models import TakeHomeKit
from srs.overdose.models import Intervention, OverdoseResponse
from srs.sites.models import Site

PASSWORD = "benchmark password"
BATCH = 20_000
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SUBSTANCE_MIX = (["fentanyl"], ["fentanyl"], ["fentanyl", "crack"], ["methamphetamine"],
                 ["heroin"], ["cocaine"], ["fentanyl", "benzodiazepine"], ["crack"])
STAGES = ("closed",) * 8 + ("submitted", "under_review", "awaiting_approval")
ZONE = "America/Vancouver"


def _options():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server URL (a throw-away database is made on it); "
                             "default: a temp SQLite file")
    parser.add_argument("--sites", type=int, default=1,
                        help="sites sharing the visits, incidents and clients evenly")
    parser.add_argument("--visits", type=int, default=1_500_000, help="in all")
    parser.add_argument("--incidents", type=int, default=30_000, help="in all")
    parser.add_argument("--clients", type=int, default=8_000, help="in all")
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def _fresh_database(server_url: str | None, workdir: Path) -> tuple[str, callable]:
    if not server_url:
        return f"sqlite:///{workdir / 'reports.sqlite3'}", lambda: None
    name = f"srs_bench_reports_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server_url).set(database=name).render_as_string(hide_password=False), drop


def _batches(rows, size=BATCH):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _code(n: int) -> str:
    letters = "".join(chr(65 + (n // 26 ** i) % 26) for i in range(4))
    gender = ("M", "F", "M", "F", "TM", "TF", "X")[n % 7]
    return f"{gender}-{letters}-{1950 + n % 55}"


def _slug(n: int) -> str:
    return "bench" if n == 0 else f"bench-{n + 1:02d}"


def populate(options, end: datetime) -> dict:
    """Fill the database; return what the timings need."""
    rng = random.Random(options.seed)
    sites = [Site(name="Bench" if n == 0 else f"Bench {n + 1:02d}", slug=_slug(n),
                  timezone=ZONE) for n in range(options.sites)]
    db.session.add_all(sites)
    db.session.flush()
    booths = {site.id: [Booth(site_id=site.id, label=f"B{n + 1}", position=n,
                              kind="inhalation" if n >= 10 else "injection")
                        for n in range(12)] for site in sites}
    db.session.add_all([b for site_booths in booths.values() for b in site_booths])
    reviewer = create_staff("bench-reviewer", display_name="Bench reviewer", password=PASSWORD,
                            pin=None, roles=[(site, role) for site in sites
                                             for role in ("reviewer", "nurse")],
                            actor=Actor.system("bench"))
    db.session.commit()
    booth_ids = {site_id: [b.id for b in site_booths] for site_id, site_booths in booths.items()}
    site_ids = [site.id for site in sites]

    started = time.perf_counter()
    # The clients, spread evenly over the sites (a client is a record of one site).
    per_site = max(1, options.clients // len(sites))
    codes = [(code, *parse_client_code(code)) for code in map(_code, range(per_site))]
    _bulk_insert(Client.__table__, [
        {"site_id": site_id, "code": code, "gender": gender, "birth_year": birth_year,
         "created_at": end} for site_id in site_ids for code, gender, birth_year in codes])
    first_client = dict(db.session.execute(db.select(Client.site_id, db.func.min(Client.id))
                                           .group_by(Client.site_id)).all())
    db.session.commit()

    span = timedelta(days=365 * options.years).total_seconds()
    start = end - timedelta(seconds=span)
    step = span / options.visits
    next_visit = db.session.scalar(db.select(db.func.coalesce(db.func.max(Visit.id), 0))) + 1

    def visits():
        for n in range(options.visits):
            arrived = start + timedelta(seconds=n * step + rng.random() * step)
            consumed = rng.random() < 0.9
            site_id = site_ids[n % len(site_ids)]
            yield {"id": next_visit + n, "site_id": site_id,
                   "client_id": first_client[site_id] + rng.randrange(per_site),
                   "state": "departed", "booth_id": rng.choice(booth_ids[site_id]),
                   "arrived_at": arrived, "booth_at": arrived + timedelta(minutes=4),
                   "departed_at": arrived + timedelta(minutes=40), "consumed": consumed,
                   "version": 1}

    inserted = 0
    with _indexes_set_aside(Visit.__table__, Consumption.__table__):
        for batch in _batches(visits()):
            inserted += _fill_visits(batch, booth_ids, rng)
    visits_seconds = time.perf_counter() - started

    types = list(INCIDENT_TYPES)
    weights = [30 if t in ("overdose", "violence") else 5 for t in types]

    def incidents():
        for _ in range(options.incidents):
            at = start + timedelta(seconds=rng.random() * span)
            stage = rng.choice(STAGES)
            site_id = rng.choice(site_ids)
            yield {"site_id": site_id, "stage": stage,
                   "type": rng.choices(types, weights)[0],
                   "occurred_at": at, "booth_id": rng.choice(booth_ids[site_id] + [None]),
                   "area": "Waiting room", "harm": rng.choice(list(HARM_GRADES)[:4]),
                   "narrative": "F-ABCD-1984 was found unresponsive; recovered.",
                   "immediate_actions": "Oxygen; naloxone.", "ems_involved": False,
                   "police_involved": False, "follow_up_needed": False,
                   "reported_by": reviewer.id, "created_at": at, "updated_at": at,
                   "submitted_at": at, "closed_at": at if stage == "closed" else None,
                   "lessons_learned": "", "feedback": "", "version": 1}

    for batch in _batches(incidents()):
        db.session.connection().execute(Incident.__table__.insert(), batch)
        db.session.commit()
    responses = kits = 0
    for site in sites:
        responses += _fill_responses(site, rng, first_client[site.id], per_site)
        kits += _fill_kits(site, rng, first_client[site.id], per_site, start, end,
                           count=options.visits // 40 // len(sites))
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does to a database that has lived a while: statistics, and the
        # visibility map that lets an index answer alone.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return {"sites": sites, "reviewer": reviewer, "inserted": inserted,
            "responses": responses, "kits": kits,
            "fill_seconds": time.perf_counter() - started, "visits_seconds": visits_seconds}


def _fill_visits(batch: list[dict], booth_ids: dict, rng) -> int:
    """A batch of visits and a consumption for each consuming one."""
    _bulk_insert(Visit.__table__, batch)
    _bulk_insert(Consumption.__table__, [
        {"visit_id": v["id"], "recorded_at": v["booth_at"],
         "substances": rng.choice(SUBSTANCE_MIX),
         "route": "injects" if v["booth_id"] not in booth_ids[v["site_id"]][10:] else "smokes",
         "fentanyl_strip": "not_done", "benzo_strip": "not_done",
         "split_or_shared": rng.random() < 0.05, "peer_assisted": rng.random() < 0.03}
        for v in batch if v["consumed"]])
    db.session.commit()
    return len(batch)


@contextmanager
def _indexes_set_aside(*tables):
    """On PostgreSQL, the tables' indexes (other than their keys and unique constraints)
    dropped while the block loads them and built again after: building an index over the
    loaded rows is much faster than keeping it up row by row."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    indexes = db.session.execute(text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)"),
        {"tables": [t.name for t in tables]}).all()
    for name, _definition in indexes:
        db.session.execute(text(f'DROP INDEX "{name}"'))
    db.session.commit()
    yield
    for _name, definition in indexes:
        db.session.execute(text(definition))
    db.session.commit()


def _bulk_insert(table, rows: list[dict]) -> None:
    """Insert ``rows`` (each naming every column without a server default): by COPY on
    PostgreSQL, the fastest way in; else one executemany."""
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    types = [table.c[name].type for name in columns]
    # JSON goes in as its text (the driver would wrap it, which COPY does not).
    processors = [json.dumps if isinstance(t, JSON) else t.bind_processor(connection.dialect)
                  for t in types]
    cursor = connection.connection.driver_connection.cursor()
    # The bench's own rows refer to what it just made: no foreign-key trigger per row (they
    # cost more than the copy itself). For this transaction only.
    cursor.execute("SET LOCAL session_replication_role = replica")
    names = ", ".join(f'"{name}"' for name in columns)
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([process(row[name]) if process else row[name]
                            for name, process in zip(columns, processors, strict=True)])


def _fill_responses(site, rng, first_client: int, clients: int) -> int:
    """A console record for each overdose report: the response and its entries."""
    overdoses = db.session.execute(db.select(Incident.occurred_at).where(
        Incident.site_id == site.id, Incident.type.in_(("overdose", "stimulant_overdose")))
        .order_by(Incident.occurred_at)).scalars().all()
    next_id = db.session.scalar(
        db.select(db.func.coalesce(db.func.max(OverdoseResponse.id), 0))) + 1
    rows, entries = [], []
    for n, at in enumerate(overdoses):
        kind = "stimulant" if rng.random() < 0.15 else "opioid"
        rows.append({"id": next_id + n, "site_id": site.id, "kind": kind, "source": "booth",
                     "client_id": first_client + rng.randrange(clients), "started_at": at,
                     "closed_at": at + timedelta(minutes=30), "outcome": "recovered_on_site",
                     "version": 1})
        steps = [("stimulation", 1), ("oxygen_on", 2)]
        if kind == "opioid" and rng.random() < 0.8:
            first = 1 + rng.random() * 5
            steps += [("naloxone", first + 2.5 * d) for d in range(rng.randint(1, 3))]
        for step, minutes in steps:
            moment = at + timedelta(minutes=minutes)
            entries.append({"response_id": next_id + n, "kind": step, "at": moment,
                            "recorded_at": moment, "stock_discrepancy": False, "struck": False,
                            "dose_mg": 0.4 if step == "naloxone" else None,
                            "route": "im" if step == "naloxone" else None,
                            "oxygen_lpm": 10 if step == "oxygen_on" else None})
    for batch in _batches(rows):
        db.session.connection().execute(OverdoseResponse.__table__.insert(), batch)
    for batch in _batches(entries):
        db.session.connection().execute(Intervention.__table__.insert(), batch)
    db.session.commit()
    return len(rows)


def _fill_kits(site, rng, first_client: int, clients: int, start, end, *, count: int) -> int:
    """``count`` take-home kits over the period."""
    span = (end - start).total_seconds()
    kits = ({"site_id": site.id, "client_id": first_client + rng.randrange(clients),
             "form": rng.choice(("nasal", "injectable")), "number": 1,
             "replaces_used": rng.random() < 0.3, "training_given": rng.random() < 0.6,
             "given_at": start + timedelta(seconds=rng.random() * span),
             "stock_discrepancy": False} for _ in range(count))
    for batch in _batches(kits):
        db.session.connection().execute(TakeHomeKit.__table__.insert(), batch)
    db.session.commit()
    return count


def _bare_client():
    """The baseline page: a bare Flask endpoint through the same test client."""
    from flask import Flask

    bare = Flask("bare")

    @bare.get("/page")
    def page():
        return "<!doctype html><title>bare</title><p>ok</p>"

    return bare.test_client()


def _raw_sql(app, site_id: int, month_start, month_end, weeks_start, weeks_end,
             repeat: int) -> tuple[list[float], list[float]]:
    """The SQL a report cannot avoid: the month's visits and 12 weeks' incidents, counted."""
    wall, cpu = [], []
    with app.app_context():
        for _ in range(repeat):
            began, began_cpu = time.perf_counter(), time.process_time()
            db.session.scalar(db.select(db.func.count(Visit.id)).where(
                Visit.site_id == site_id, Visit.arrived_at >= month_start,
                Visit.arrived_at < month_end))
            db.session.scalar(db.select(db.func.count(Incident.id)).where(
                Incident.site_id == site_id, Incident.occurred_at >= weeks_start,
                Incident.occurred_at < weeks_end))
            db.session.rollback()
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
        db.session.remove()
    return wall, cpu


def _raw_sites_sql(app, site_ids: list[int], month_start, month_end,
                   repeat: int) -> tuple[list[float], list[float]]:
    """The SQL the report of every site cannot avoid: each site's visits and unique clients
    in the month, counted in one grouped query."""
    wall, cpu = [], []
    with app.app_context():
        for _ in range(repeat):
            began, began_cpu = time.perf_counter(), time.process_time()
            db.session.execute(db.select(Visit.site_id, db.func.count(Visit.id),
                                         db.func.count(db.func.distinct(Visit.client_id)))
                               .where(Visit.site_id.in_(site_ids),
                                      Visit.arrived_at >= month_start,
                                      Visit.arrived_at < month_end)
                               .group_by(Visit.site_id)).all()
            db.session.rollback()
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
        db.session.remove()
    return wall, cpu


def _timed(client, url: str, repeat: int, **kwargs) -> tuple[list[float], list[float]]:
    """Wall-clock and this process's CPU time of each request (the CPU figure is what a
    busy shared machine cannot inflate; on PostgreSQL it leaves out the server's work)."""
    wall, cpu = [], []
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, **kwargs)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        assert response.status_code == 200, (url, response.status_code)
    return wall, cpu


def _line(label: str, timed: tuple[list[float], list[float]]) -> str:
    wall, cpu = timed
    verdict = "ok" if statistics.median(wall) <= 1.0 else "OVER 1 s"
    return (f"  {label:<40} median {statistics.median(wall) * 1000:8.1f} ms   "
            f"worst {max(wall) * 1000:8.1f} ms   cpu median "
            f"{statistics.median(cpu) * 1000:7.1f} ms   ({len(wall)} runs) {verdict}")


def main() -> None:
    options = _options()
    workdir = Path(tempfile.mkdtemp(prefix="srs-bench-reports-"))
    url, drop = _fresh_database(options.database_url, workdir)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True,
                      "SRS_SCHEDULER": False, "SRS_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                      "RATELIMIT_ENABLED": False})
    try:
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            end = datetime.now(UTC).replace(microsecond=0)
            print(f"database: {db.engine.dialect.name}; filling {options.visits:,} visits, "
                  f"{options.incidents:,} incidents over {options.years:g} years...", flush=True)
            filled = populate(options, end)
            print(f"filled in {filled['fill_seconds']:.0f} s "
                  f"(visits and consumptions {filled['visits_seconds']:.0f} s)", flush=True)
            site, reviewer = filled["sites"][0], filled["reviewer"]
            site_ids = [s.id for s in filled["sites"]]
            token = issue_token(reviewer, actor=Actor.system("bench"))
            site_id, slug, username = site.id, site.slug, reviewer.username
            db.session.remove()

        client = app.test_client()
        login_page = client.get("/login").get_data(as_text=True)
        response = client.post("/login", data={"csrf_token": _CSRF.search(login_page).group(1),
                                               "username": username, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        zone = ZoneInfo(ZONE)
        local_end = end.astimezone(zone)
        week = (local_end.date() - timedelta(days=local_end.weekday() + 7)).isoformat()
        month = (local_end.date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        repeat = options.repeat
        client.get(f"/sites/{slug}/incidents/week?week={week}")  # warm: imports, templates
        client.get(f"/reports/monthly?month={month}")
        every_site = f"monthly report, all {len(site_ids)} site{'s' * (len(site_ids) > 1)}"
        results = [
            ("weekly review page", _timed(client, f"/sites/{slug}/incidents/week?week={week}",
                                          repeat)),
            ("weekly review, filtered (overdose)", _timed(
                client, f"/sites/{slug}/incidents/week?week={week}&type=overdose", repeat)),
            ("monthly report page", _timed(client, f"/sites/{slug}/reports/monthly?month="
                                                   f"{month}", repeat)),
            ("getMonthlyReport (API)", _timed(
                client, f"/api/v1/sites/{site_id}/reports/monthly?month={month}", repeat,
                headers={"Authorization": f"Bearer {token}"})),
            ("weekly packet PDF", _timed(client, f"/sites/{slug}/incidents/week.pdf?week={week}",
                                         1)),
            (every_site, _timed(client, f"/reports/monthly?month={month}", repeat)),
            (f"{every_site}, CSV", _timed(client, f"/reports/monthly.csv?month={month}",
                                          repeat)),
        ]
        month_first = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=zone)
        month_next = (month_first + timedelta(days=32)).replace(day=1)
        week_end = datetime.fromisoformat(week).replace(tzinfo=zone) + timedelta(days=7)
        bare = _bare_client()
        baselines = [
            ("bare Flask endpoint", _timed(bare, "/page", repeat * 4)),
            ("raw SQL: month visits, 12 weeks incidents", _raw_sql(
                app, site_id, month_first.astimezone(UTC), month_next.astimezone(UTC),
                (week_end - timedelta(weeks=12)).astimezone(UTC), week_end.astimezone(UTC),
                repeat)),
            (f"raw SQL: month visits, clients, {len(site_ids)} site(s)", _raw_sites_sql(
                app, site_ids, month_first.astimezone(UTC), month_next.astimezone(UTC),
                repeat)),
        ]
        print(f"\nweek of {week}, month {month}; {len(site_ids)} site(s), "
              f"{filled['inserted']:,} visits, "
              f"{filled['responses']:,} overdose responses, {filled['kits']:,} take-home kits "
              f"on {url.split(':')[0]}")
        for label, times in results:
            print(_line(label, times))
        print("baselines, same run:")
        for label, times in baselines:
            print(_line(label, times))
        floor = statistics.median(baselines[1][1][0])
        sites_floor = statistics.median(baselines[2][1][0])
        print("ratio of each page's median to the raw SQL's (the every-site pages: to the "
              "every-site SQL's):")
        for label, (wall, _cpu) in results:
            base = sites_floor if label.startswith(every_site) else floor
            print(f"  {label:<40} x{statistics.median(wall) / base:,.0f}")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()


if __name__ == "__main__":
    main()
