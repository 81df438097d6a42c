"""The monthly report against hand-counted records, the weekly review, the packet job and
its PDF."""

import csv
import io
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import make_booth, make_referral, make_service, make_site, make_staff
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths.models import Consumption, Visit
from srs.clients.models import Client
from srs.extensions import db
from srs.incidents import charts as charts_module
from srs.incidents import packets, reports, service
from srs.incidents.models import ReviewerNotice, ReviewPacket
from srs.naloxone.models import TakeHomeKit
from srs.overdose.models import Intervention, OverdoseResponse

TORONTO = ZoneInfo("America/Toronto")


def local(zone, *args) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def visit(site, client, arrived, *, booth=None, minutes=40, consumptions=()):
    row = Visit(site_id=site.id, client_id=client.id, state="departed", arrived_at=arrived,
                booth_id=booth.id if booth else None, departed_at=arrived + timedelta(
                    minutes=minutes), consumed=bool(consumptions))
    db.session.add(row)
    db.session.flush()
    for substances, extra in consumptions:
        db.session.add(Consumption(visit_id=row.id, recorded_at=arrived, substances=substances,
                                   route="injects", **extra))
    return row


def report_incident(site, staff, occurred_at, type_, *, submit=True, booth=None):
    actor = Actor.of(staff)
    incident = service.create_incident(site, {
        "type": type_, "occurred_at": occurred_at, "harm": "low",
        "booth_id": booth.id if booth else None, "area": None if booth else "Waiting room",
        "narrative": "F-ABCD-1984 was involved.", "immediate_actions": "Responded."},
        actor=actor, now=occurred_at)
    if submit:
        service.submit_incident(incident, actor=actor, now=occurred_at)
    return incident


@pytest.fixture
def november(app):
    """Hand-counted records for November 2026 at a Toronto site (DST ends on Nov 1)."""
    site = make_site(name="Queen St", slug="queen")
    b1, b2 = make_booth(site, label="B1", position=0), make_booth(site, label="B2", position=1)
    a = Client(site_id=site.id, code="F-AAAA-2000")   # female, 26: 20-29; visited before
    b = Client(site_id=site.id, code="M-BBBB-1960")   # male, 66: 60+
    c = Client(site_id=site.id, code="TF-CCCC-2008")  # trans female, 18: <20
    d = Client(site_id=site.id, code="ANON-0001")     # a site's own code form: unknown
    db.session.add_all([a, b, c, d])
    db.session.flush()
    visit(site, a, local(TORONTO, 2026, 10, 20, 10, 0))
    # Across midnight into November (UTC already says November): counts in October.
    visit(site, a, local(TORONTO, 2026, 10, 31, 23, 30), minutes=70)
    # Arrives 06:59, in a booth after 07:00: the 03-07 band, by arrival. First visit of B.
    visit(site, b, local(TORONTO, 2026, 11, 3, 6, 59), minutes=30)
    visit(site, b, local(TORONTO, 2026, 11, 3, 16, 59))
    visit(site, c, local(TORONTO, 2026, 11, 10, 22, 0), booth=b1, consumptions=[
        (["fentanyl", "crack"], {"split_or_shared": True})])
    # The month's last minutes, leaving in December: counts in November, 22-03.
    visit(site, c, local(TORONTO, 2026, 11, 30, 23, 50), minutes=80)
    visit(site, d, local(TORONTO, 2026, 11, 15, 12, 0), booth=b2, consumptions=[
        (["fentanyl"], {"peer_assisted": True}), (["fentanyl"], {})])
    visit(site, a, local(TORONTO, 2026, 11, 20, 7, 0), booth=b1, consumptions=[(["heroin"], {})])
    visit(site, a, local(TORONTO, 2026, 12, 1, 0, 10))
    other = make_site(name="Elsewhere", slug="elsewhere")
    b_elsewhere = Client(site_id=other.id, code=b.code)
    db.session.add(b_elsewhere)
    db.session.flush()
    visit(other, b_elsewhere, local(TORONTO, 2026, 11, 12, 12, 0))
    db.session.commit()
    nurse = make_staff(site, role="nurse")
    report_incident(site, nurse, local(TORONTO, 2026, 11, 12, 14, 0), "overdose")
    report_incident(site, nurse, local(TORONTO, 2026, 11, 13, 14, 0), "threat", submit=False)
    report_incident(site, nurse, local(TORONTO, 2026, 10, 31, 23, 0), "violence")
    return site


EXPECTED_NOVEMBER = {
    "total_visits": 6,
    "unique_clients": 4,
    "new_clients": 3,
    # Keyed by the code's gender letter, as the API's client codes carry it.
    "clients_by_gender": {"M": 1, "F": 1, "TM": 0, "TF": 1, "X": 0, "unknown": 1},
    "clients_by_age_band": {"<20": 1, "20-29": 1, "30-39": 0, "40-49": 0, "50-59": 0,
                            "60+": 1, "unknown": 1},
    "visits_by_time_band": {"07-12": 1, "12-17": 2, "17-22": 0, "22-03": 2, "03-07": 1},
    "visits_with_consumption": 3,
    "split_or_shared_visits": 1,
    "peer_assisted_visits": 1,
    "booths_in_operation": 2,
}


def test_every_monthly_figure_matches_the_hand_count(november):
    figures = {f.name: value for f, value in
               reports.monthly_report(november, date(2026, 11, 1))["figures"]}
    for name, expected in EXPECTED_NOVEMBER.items():
        assert figures[name] == expected, name
    drugs = figures["drugs_consumed_by_type"]
    assert (drugs["fentanyl"], drugs["crack"], drugs["heroin"]) == (2, 1, 1)
    assert sum(drugs.values()) == 4
    incidents = figures["incident_reports_by_type"]
    assert incidents["overdose"] == 1 and sum(incidents.values()) == 1


def test_october_holds_the_visit_that_crossed_midnight(november):
    figures = {f.name: value for f, value in
               reports.monthly_report(november, date(2026, 10, 1))["figures"]}
    assert figures["total_visits"] == 2
    assert figures["unique_clients"] == 1 and figures["new_clients"] == 1
    assert figures["visits_by_time_band"]["22-03"] == 1
    assert figures["incident_reports_by_type"]["violence"] == 1


def overdose(site, client, started, kind="opioid", *, steps=(), outcome="recovered_on_site"):
    """A closed response with its entries, each ``(kind, minutes after the start, extra)``."""
    response = OverdoseResponse(site_id=site.id, client_id=client.id if client else None,
                                kind=kind, source="booth" if client else "not_checked_in",
                                location=None if client else "Washroom", started_at=started,
                                closed_at=started + timedelta(minutes=30), outcome=outcome)
    db.session.add(response)
    db.session.flush()
    for step, minutes, extra in steps:
        at = started + timedelta(minutes=minutes)
        db.session.add(Intervention(response_id=response.id, kind=step, at=at, recorded_at=at,
                                    **extra))
    db.session.flush()
    return response


NALOXONE = {"dose_mg": 0.4, "route": "im"}


@pytest.fixture
def november_emergencies(november):
    """November's overdoses, kits and referrals at the Queen St site, counted by hand below."""
    site = november
    a, b, c = (db.session.execute(db.select(Client).filter_by(site_id=site.id, code=code))
               .scalar_one() for code in ("F-AAAA-2000", "M-BBBB-1960", "TF-CCCC-2008"))
    # 1. Opioid, two doses of naloxone (the first at 3 min), 911 called, taken to hospital.
    overdose(site, c, local(TORONTO, 2026, 11, 10, 22, 30), steps=[
        ("stimulation", 1, {}), ("naloxone", 3, NALOXONE), ("ems_called", 4, {}),
        ("naloxone", 6, NALOXONE)], outcome="transferred_to_hospital")
    # 2. Opioid, oxygen and rescue breaths only: recovered on site.
    overdose(site, a, local(TORONTO, 2026, 11, 20, 7, 30), steps=[
        ("oxygen_on", 1, {"oxygen_lpm": 10}), ("rescue_breaths", 2, {})])
    # 3. Opioid, someone not checked in: one dose whose entry was struck (recorded in error),
    #    then one real dose at 5 min; EMS treated on site.
    wrong = overdose(site, None, local(TORONTO, 2026, 11, 21, 13, 0), steps=[
        ("naloxone", 2, NALOXONE), ("naloxone", 5, NALOXONE)],
        outcome="treated_by_ems_on_site")
    first = min(wrong.interventions, key=lambda e: e.at)
    db.session.add(Intervention(response_id=wrong.id, kind="naloxone", at=first.at,
                                recorded_at=first.at, amends_id=first.id, struck=True,
                                amend_reason="Recorded on the wrong response", **NALOXONE))
    # 4. Stimulant overdose: cooling and 911, no naloxone.
    overdose(site, b, local(TORONTO, 2026, 11, 3, 17, 30), kind="stimulant",
             steps=[("ems_called", 2, {})], outcome="treated_by_ems_on_site")
    # 5. Another medical emergency (a seizure): 911 called; not an overdose.
    overdose(site, b, local(TORONTO, 2026, 11, 3, 18, 0), kind="other",
             steps=[("ems_called", 1, {})], outcome="transferred_to_hospital")
    # Not November: an October overdose with a dose.
    overdose(site, a, local(TORONTO, 2026, 10, 31, 23, 40), steps=[("naloxone", 1, NALOXONE)])
    for form, number, replaces, training in (("nasal", 2, True, True),
                                             ("injectable", 1, False, True),
                                             ("nasal", 1, False, False)):
        db.session.add(TakeHomeKit(site_id=site.id, client_id=a.id, form=form, number=number,
                                   replaces_used=replaces, training_given=training,
                                   given_at=local(TORONTO, 2026, 11, 20, 8, 0)))
    db.session.add(TakeHomeKit(site_id=site.id, client_id=a.id, form="nasal", number=5,
                               given_at=local(TORONTO, 2026, 12, 1, 9, 0)))
    db.session.commit()
    c_10th, c_30th = db.session.execute(db.select(Visit).filter_by(client_id=c.id)
                                        .order_by(Visit.arrived_at)).scalars()
    a_december = db.session.execute(db.select(Visit).filter_by(client_id=a.id)
                                    .order_by(Visit.arrived_at.desc())).scalars().first()
    inside = make_service(site, service_type="wound_care", name="Nurse's room", on_site=True)
    outside = make_service(site, service_type="oat", name="Rapid access OAT clinic")
    make_referral(c_10th, service=outside, at=local(TORONTO, 2026, 11, 10, 23, 0))
    make_referral(c_10th, service=inside, at=local(TORONTO, 2026, 11, 11, 9, 0))
    make_referral(c_30th, service=outside, at=local(TORONTO, 2026, 11, 30, 23, 55))
    make_referral(a_december, service=outside, at=local(TORONTO, 2026, 12, 1, 0, 15))
    return site


EXPECTED_EMERGENCIES = {
    "overdoses": 4,
    "opioid_overdoses": 3,
    "stimulant_overdoses": 1,
    "overdoses_with_naloxone": 2,
    "overdoses_without_naloxone": 2,
    "naloxone_doses": 3,
    "overdoses_treated_by_ems": 3,
    "ems_calls": 3,
    "overdose_911_calls": 2,
    "other_medical_emergencies": 1,
    "deaths": 0,
    "take_home_kits_by_form": {"injectable": 1, "nasal": 3},
    "take_home_kits_replacing_used": 2,
    "take_home_kits_with_training": 3,
    "services_inside": 1,
    "referrals_outside": 2,
}


def test_the_monthly_overdose_kit_and_referral_figures_match_the_hand_count(
        november_emergencies):
    figures = {f.name: value for f, value in
               reports.monthly_report(november_emergencies, date(2026, 11, 1))["figures"]}
    for name, expected in EXPECTED_EMERGENCIES.items():
        assert figures[name] == expected, name
    by_type = figures["referrals_by_service_type"]
    assert by_type["oat"] == 2
    assert by_type["wound_care"] == 1 and sum(by_type.values()) == 3
    october = {f.name: value for f, value in
               reports.monthly_report(november_emergencies, date(2026, 10, 1))["figures"]}
    assert (october["overdoses"], october["naloxone_doses"]) == (1, 1)


def test_the_weekly_trends_give_naloxone_per_overdose_and_minutes_to_the_first_dose(
        november_emergencies):
    review = reports.weekly_review(november_emergencies, date(2026, 11, 16), {},
                                   today=date(2026, 11, 24))
    weeks = {monday: (per, minutes) for monday, per, minutes in zip(
        review.trend_weeks, review.naloxone_per_overdose, review.minutes_to_naloxone,
        strict=True)}
    # Week of 16 Nov: overdose 2 (no dose) and overdose 3 (one dose left after the strike,
    # at 5 min): 1 dose over 2 overdoses; the median of the one first dose is 5 minutes.
    assert weeks[date(2026, 11, 16)] == (0.5, 5.0)
    # Week of 9 Nov: overdose 1, two doses, the first at 3 min.
    assert weeks[date(2026, 11, 9)] == (2.0, 3.0)
    # Week of 2 Nov: the stimulant overdose only (the other emergency is not an overdose).
    assert weeks[date(2026, 11, 2)] == (0.0, None)
    # Week of 26 Oct holds the October overdose (Saturday 31st, site time).
    assert weeks[date(2026, 10, 26)] == (1.0, 1.0)
    assert weeks[date(2026, 10, 19)] == (None, None)
    charts = {chart.name for chart in charts_module.weekly_charts(review)}
    assert {"naloxone_per_overdose", "minutes_to_naloxone"} <= charts


def test_the_opening_hours_come_from_the_site_settings(november, client):
    from routes import assert_api_error, bearer

    def stated():
        figures = reports.monthly_report(november, date(2026, 11, 1))["figures"]
        return {f.name: value for f, value in figures}["opening_hours"]

    assert stated() == "not set"
    admin = bearer(make_staff(november, role="admin"))
    url = f"/api/v1/sites/{november.id}/settings"
    changed = client.patch(url, headers=admin, json={"opening_hours": "Daily 09:00-21:00"})
    assert changed.status_code == 200, changed.get_json()
    db.session.expire_all()
    assert stated() == "Daily 09:00-21:00"
    assert_api_error(client.patch(url, headers=admin, json={"opening_hours": "x" * 121}), 422,
                     "opening_hours")


def test_the_monthly_csv_and_page_and_api_agree(november, client, auth):
    reviewer = make_staff(november, role="reviewer")
    auth.login(reviewer.username)
    page = client.get("/sites/queen/reports/monthly?month=2026-11")
    assert page.status_code == 200
    assert b'data-figure="total_visits"' in page.data
    # People read words: the page labels each breakdown key.
    text = page.get_data(as_text=True)
    row = re.search(r'data-figure="drugs_consumed_by_type" data-breakdown="crack">(.*?)</tr>',
                    text).group(1)
    assert "<td>Crack cocaine</td>" in row and '<td class="num">1</td>' in row
    assert re.search(r'data-breakdown="TF"><td>trans female</td><td class="num">1</td>', text)
    response = client.get("/sites/queen/reports/monthly.csv?month=2026-11")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    by_key = {(r["figure"], r["breakdown"]): r["value"] for r in rows}
    assert by_key[("opening_hours", "")] == "not set"
    by_key = {key: int(value) for key, value in by_key.items() if key[0] != "opening_hours"}
    assert by_key[("total_visits", "")] == 6
    assert by_key[("visits_by_time_band", "03-07")] == 1
    assert by_key[("clients_by_age_band", "unknown")] == 1
    assert by_key[("clients_by_gender", "trans female")] == 1
    assert by_key[("drugs_consumed_by_type", "Crack cocaine")] == 1

    from routes import bearer

    body = client.get(f"/api/v1/sites/{november.id}/reports/monthly?month=2026-11",
                      headers=bearer(reviewer)).get_json()
    api = {f["name"]: f for f in body["figures"]}
    assert body["month"] == "2026-11"
    for name, expected in EXPECTED_NOVEMBER.items():
        figure = api[name]
        if isinstance(expected, dict):
            assert figure["value"] is None, name
            assert {k: item["value"] for k, item in figure["breakdown"].items()} == expected
        else:
            assert (figure["value"], figure["breakdown"]) == (expected, None), name
    assert api["clients_by_gender"]["breakdown"]["TF"] == {"label": "trans female", "value": 1}
    assert api["opening_hours"]["text"] == "not set"


# --- The weekly review and its packet --------------------------------------------------------


@pytest.fixture
def two_sites(app):
    vancouver = make_site(name="Hastings", slug="hastings")
    vancouver.timezone = "America/Vancouver"
    zurich = make_site(name="Selnau", slug="selnau")
    zurich.timezone = "Europe/Zurich"
    for site in (vancouver, zurich):
        site.created_at = datetime(2026, 1, 5, tzinfo=UTC)
    db.session.commit()
    for site in (vancouver, zurich):
        make_booth(site, label="B1")
    reviewers = {vancouver.id: make_staff(vancouver, role="reviewer"),
                 zurich.id: make_staff(zurich, role="reviewer")}
    nurse_v, nurse_z = make_staff(vancouver, role="nurse"), make_staff(zurich, role="nurse")
    # Sunday 23:30 in Vancouver is Monday 07:30 UTC: still the week of Nov 9 there.
    report_incident(vancouver, nurse_v, local(ZoneInfo("America/Vancouver"),
                                              2026, 11, 15, 23, 30), "overdose")
    # Monday 00:30 in Zurich is Sunday 23:30 UTC: already the week of Nov 16 there.
    report_incident(zurich, nurse_z, local(ZoneInfo("Europe/Zurich"), 2026, 11, 16, 0, 30),
                    "violence")
    report_incident(zurich, nurse_z, local(ZoneInfo("Europe/Zurich"), 2026, 11, 12, 9, 0),
                    "complaint")
    return vancouver, zurich, reviewers


def packet_weeks(site) -> set[date]:
    return set(db.session.execute(db.select(ReviewPacket.week_start).filter_by(
        site_id=site.id)).scalars())


def csv_ids(packet) -> list[str]:
    return [row["id"] for row in csv.DictReader(io.StringIO(packet.csv))]


def test_the_weekly_job_builds_each_sites_packet_at_its_own_monday_seven(two_sites):
    vancouver, zurich, reviewers = two_sites
    week = date(2026, 11, 9)
    # Monday 07:00 in Zurich is 06:00 UTC; in Vancouver it is still Sunday night.
    packets.build_weekly_packets(now=datetime(2026, 11, 16, 5, 59, tzinfo=UTC))
    assert week not in packet_weeks(zurich)
    packets.build_weekly_packets(now=datetime(2026, 11, 16, 6, 0, tzinfo=UTC))
    assert week in packet_weeks(zurich)
    assert week not in packet_weeks(vancouver)
    # Monday 07:00 in Vancouver is 15:00 UTC.
    built = packets.build_weekly_packets(now=datetime(2026, 11, 16, 15, 0, tzinfo=UTC))
    assert [(p.site_id, p.week_start) for p in built] == [(vancouver.id, week)]

    kept = {p.site_id: p for p in db.session.execute(
        db.select(ReviewPacket).filter_by(week_start=week)).scalars()}
    assert len(csv_ids(kept[vancouver.id])) == 1  # the Sunday-night overdose
    assert len(csv_ids(kept[zurich.id])) == 1     # the complaint; not Monday 00:30
    for site in (vancouver, zurich):
        notice = db.session.execute(db.select(ReviewerNotice).filter_by(
            packet_id=kept[site.id].id)).scalar_one()
        assert notice.staff_id == reviewers[site.id].id and notice.read_at is None


@pytest.mark.commits  # a second connection, as another tablet's tap, writes meanwhile
def test_a_packet_being_drawn_holds_no_tap_back(two_sites, app, monkeypatch):
    """Drawing a packet takes seconds on Monday morning: meanwhile a tap at any site is
    recorded at once (on SQLite the job used to hold the write lock throughout, and taps
    failed with "database is locked")."""
    vancouver, _zurich, _ = two_sites
    db.session.commit()
    tablet = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    taps = []

    def draw_while_a_tap_lands(html):
        with tablet.connect() as conn:
            if conn.dialect.name == "sqlite":  # refuse at once rather than wait for the lock
                conn.connection.driver_connection.execute("PRAGMA busy_timeout = 0")
            else:
                conn.execute(text("SET lock_timeout = '100ms'"))
                conn.commit()
            conn.execute(text("UPDATE site SET name = :name WHERE id = :id"),
                         {"name": "Hastings (tapped)", "id": vancouver.id})
            conn.commit()
        taps.append(html)
        return b"%PDF-1.7 drawn"

    monkeypatch.setattr(packets, "render_pdf", draw_while_a_tap_lands)
    try:
        built = packets.build_weekly_packets(now=datetime(2026, 11, 16, 15, 0, tzinfo=UTC))
    finally:
        tablet.dispose()
    assert len(taps) == 2 and len(built) == 2
    assert {p.pdf for p in built} == {b"%PDF-1.7 drawn"}
    db.session.rollback()
    assert db.session.get(type(vancouver), vancouver.id).name == "Hastings (tapped)"


def test_opening_a_packet_reads_that_reviewers_notice_and_is_audited(two_sites, client, auth):
    vancouver, _zurich, reviewers = two_sites
    other = make_staff(vancouver, role="reviewer")
    packets.build_weekly_packets(now=datetime(2026, 11, 16, 15, 0, tzinfo=UTC))
    packet = db.session.execute(db.select(ReviewPacket).filter_by(
        site_id=vancouver.id)).scalar_one()
    reader, packet_id = reviewers[vancouver.id], packet.id
    auth.login(reader.username)

    download = client.get(f"/sites/hastings/incidents/packets/{packet_id}.csv")

    assert download.status_code == 200 and download.mimetype == "text/csv"
    db.session.rollback()  # read what the request committed
    notices = {n.staff_id: n.read_at for n in db.session.execute(
        db.select(ReviewerNotice).filter_by(packet_id=packet_id)).scalars()}
    assert notices[reader.id] is not None and notices[other.id] is None
    read = db.session.execute(db.select(AuditEvent).filter_by(
        action="review_packet_read")).scalar_one()
    assert (read.staff_id, read.entity, read.entity_id) == (reader.id, "review_packet",
                                                            str(packet_id))
    assert client.get("/sites/hastings/incidents/packets/999999.csv").status_code == 404


def test_no_packet_for_a_week_before_the_site_opened(two_sites):
    vancouver, zurich, _ = two_sites
    zurich.created_at = datetime(2026, 11, 16, 6, 30, tzinfo=UTC)  # Monday, after 07:00
    vancouver.created_at = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)  # the Sunday before
    db.session.commit()
    built = packets.build_weekly_packets(now=datetime(2026, 11, 16, 15, 30, tzinfo=UTC))
    assert [p.site_id for p in built] == [vancouver.id]


def test_a_second_run_builds_nothing(two_sites):
    vancouver, zurich, _ = two_sites
    monday = datetime(2026, 11, 16, 15, 30, tzinfo=UTC)
    first = packets.build_weekly_packets(now=monday)
    assert {p.site_id for p in first} == {vancouver.id, zurich.id}
    count = db.session.scalar(db.select(db.func.count(ReviewPacket.id)))
    assert packets.build_weekly_packets(now=monday) == []
    assert packets.build_weekly_packets(now=monday + timedelta(days=3)) == []
    assert db.session.scalar(db.select(db.func.count(ReviewPacket.id))) == count
    assert db.session.scalar(db.select(db.func.count(ReviewerNotice.id))) == count


def test_the_week_runs_monday_to_sunday_in_site_time(two_sites):
    vancouver, zurich, _ = two_sites
    today = date(2026, 11, 20)
    v = reports.weekly_review(vancouver, date(2026, 11, 9), {}, today=today)
    assert len(v.incidents) == 1 and v.by_stage["submitted"] == v.incidents
    z = reports.weekly_review(zurich, date(2026, 11, 16), {}, today=today)
    assert [i.type for i in z.incidents] == ["violence"]
    assert z.by_band["22-03"] == 1  # 00:30 local
    filtered = reports.weekly_review(zurich, date(2026, 11, 9), {"type": "violence"},
                                     today=today)
    assert filtered.incidents == []


def test_the_packet_pdf_opens_and_holds_the_charts(two_sites, tmp_path, output_dir):
    from PIL import Image

    assert shutil.which("pdftoppm"), "pdftoppm is missing: `make pdf-tools` installs it"

    vancouver, _zurich, _ = two_sites
    [packet] = [p for p in packets.build_weekly_packets(
        now=datetime(2026, 11, 16, 15, 0, tzinfo=UTC)) if p.site_id == vancouver.id]
    assert packet.pdf.startswith(b"%PDF")
    pdf = tmp_path / "packet.pdf"
    pdf.write_bytes(packet.pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages, "pdftoppm rendered no page"
    coloured = 0
    for page in pages:
        shutil.copy(page, output_dir / page.name)
        pixels = Image.open(page).convert("RGB").tobytes()
        # The charts' bars and lines are the only saturated colour in the packet.
        coloured += sum(1 for i in range(0, len(pixels), 3)
                        if max(pixels[i:i + 3]) - min(pixels[i:i + 3]) > 60)
    assert coloured > 500, f"no chart drawn in {len(pages)} pages ({coloured} coloured pixels)"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Incidents by type per week" in text and "Hastings" in text
