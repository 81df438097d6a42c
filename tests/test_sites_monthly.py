"""The monthly report of every site a person reads: a column per site with the figures of
its own page, and their total, on the page and in its CSV."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from factories import make_booth, make_site, make_staff

from srs.booths.models import Consumption, Visit
from srs.clients.models import Client
from srs.common import MONTH_RANGE_NOTICE, utcnow
from srs.extensions import db
from srs.hat.reports import Retention
from srs.incidents import reports

TORONTO, VANCOUVER = ZoneInfo("America/Toronto"), ZoneInfo("America/Vancouver")


def _visit(site, client, zone, *when, booth=None, substances=None):
    arrived = datetime(*when, tzinfo=zone).astimezone(UTC)
    row = Visit(site_id=site.id, client_id=client.id, state="departed", arrived_at=arrived,
                booth_id=booth.id if booth else None,
                departed_at=arrived + timedelta(minutes=30), consumed=bool(substances))
    db.session.add(row)
    db.session.flush()
    if substances:
        db.session.add(Consumption(visit_id=row.id, recorded_at=arrived,
                                   substances=substances, route="injects"))


def _clients(site, *codes):
    made = [Client(site_id=site.id, code=code) for code in codes]
    db.session.add_all(made)
    db.session.flush()
    return made


@pytest.fixture
def sites(app):
    """November 2026 at a Toronto site and a Vancouver one, and a third site's records."""
    east = make_site(name="East Side", slug="east", opening_hours="09:00-21:00")
    west = make_site(name="West End", slug="west")
    west.timezone = "America/Vancouver"
    north = make_site(name="North", slug="north")
    booth = make_booth(east, label="E1")
    a, b = _clients(east, "F-AAAA-2000", "M-BBBB-1960")
    (c,) = _clients(west, "F-AAAA-2000")  # the same code at another site: another person
    (d,) = _clients(north, "X-DDDD-1990")
    _visit(east, a, TORONTO, 2026, 10, 20, 10)  # October: A is no new client in November
    _visit(east, a, TORONTO, 2026, 11, 3, 10, booth=booth, substances=["fentanyl"])
    _visit(east, b, TORONTO, 2026, 11, 4, 13)
    _visit(east, a, TORONTO, 2026, 11, 5, 13)
    _visit(west, c, VANCOUVER, 2026, 11, 10, 8)
    # Still November in Vancouver, December already in Toronto: November at West End.
    _visit(west, c, VANCOUVER, 2026, 11, 30, 23)
    _visit(west, c, VANCOUVER, 2026, 12, 1, 0, 30)
    _visit(north, d, TORONTO, 2026, 11, 6, 13)
    db.session.commit()
    return SimpleNamespace(east=east, west=west, north=north)


def _cells(body: str, figure: str, breakdown: str | None = None) -> dict[str, str]:
    """A figure's row on the page: each column's text, by site slug (``total``)."""
    if breakdown is None:
        match = re.search(rf'<tr data-figure="{figure}">(.*?)</tr>', body, re.S)
    else:
        match = re.search(rf'<tr data-figure="{figure}" data-breakdown="{re.escape(breakdown)}">'
                          rf'(.*?)</tr>', body, re.S)
    assert match, (figure, breakdown)
    return dict(re.findall(r'<td class="num" data-site="([\w-]+)">([^<]*)</td>', match.group(1)))


def test_a_reader_of_two_sites_sees_each_and_their_total(sites, client, auth):
    make_staff(username="rita", roles=[(sites.east, "reviewer"), (sites.west, "supervisor"),
                                       (sites.north, "nurse")])
    auth.login("rita")

    answer = client.get("/reports/monthly?month=2026-11")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert re.findall(r'<th scope="col" class="num" id="site-([\w-]+)"', body) == \
        ["east", "west"]  # no column for North, where she is a nurse
    assert _cells(body, "total_visits") == {"east": "3", "west": "2", "total": "5"}
    assert _cells(body, "unique_clients") == {"east": "2", "west": "1", "total": "3"}
    assert _cells(body, "new_clients") == {"east": "1", "west": "1", "total": "2"}
    assert _cells(body, "visits_by_time_band", "07-12") == {"east": "1", "west": "1",
                                                            "total": "2"}
    assert _cells(body, "visits_by_time_band", "22-03") == {"east": "0", "west": "1",
                                                            "total": "1"}
    assert _cells(body, "drugs_consumed_by_type", "fentanyl") == {"east": "1", "west": "0",
                                                                  "total": "1"}
    assert _cells(body, "booths_in_operation") == {"east": "1", "west": "0", "total": "1"}
    # Words have no total.
    assert _cells(body, "opening_hours") == {"east": "09:00-21:00", "west": "not set",
                                             "total": ""}
    # Each site's column is the figure of its own page.
    own = client.get("/sites/west/reports/monthly?month=2026-11").get_data(as_text=True)
    assert re.search(r'<tr data-figure="total_visits">.*?<td class="num">2</td>', own)

    # Reached from the home page, at each site where she reads the monthly report.
    home = client.get("/").get_data(as_text=True)
    assert set(re.findall(r'href="([^"]+)" data-testid="sites-monthly-link"', home)) == \
        {"/reports/monthly#site-east", "/reports/monthly#site-west"}


def test_the_csv_is_the_pages_table_and_is_never_cached(sites, client, auth):
    make_staff(username="rita", roles=[(sites.east, "reviewer"), (sites.west, "reviewer")])
    auth.login("rita")

    answer = client.get("/reports/monthly.csv?month=2026-11")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "monthly-all-sites-2026-11.csv" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["month", "figure", "breakdown", "east", "west", "all sites"]
    by_figure = {(r[1], r[2]): r[3:] for r in rows[1:]}
    assert by_figure[("total_visits", "")] == ["3", "2", "5"]
    assert by_figure[("clients_by_gender", "female")] == ["1", "1", "2"]
    assert by_figure[("opening_hours", "")] == ["09:00-21:00", "not set", ""]


def test_a_supervisor_sees_only_the_sites_they_read(sites, client, auth):
    make_staff(username="sam", roles=[(sites.east, "supervisor"), (sites.west, "nurse")])
    auth.login("sam")

    body = client.get("/reports/monthly?month=2026-11").get_data(as_text=True)
    assert _cells(body, "total_visits") == {"east": "3", "total": "3"}
    assert "West End" not in body
    rows = list(csv.reader(io.StringIO(
        client.get("/reports/monthly.csv?month=2026-11").get_data(as_text=True))))
    assert rows[0] == ["month", "figure", "breakdown", "east", "all sites"]


def test_a_nurse_may_not_open_it(sites, client, auth):
    make_staff(username="nina", roles=[(sites.east, "nurse"), (sites.west, "nurse")])
    auth.login("nina")

    assert client.get("/reports/monthly").status_code == 403
    assert client.get("/reports/monthly.csv").status_code == 403
    home = client.get("/").get_data(as_text=True)
    assert "sites-monthly-link" not in home


@pytest.mark.parametrize("month", ["2026-13", "november", "1999-12"])
def test_a_month_it_cannot_show_says_so_and_shows_the_last_full_month(
        sites, client, auth, month):
    make_staff(username="rita", roles=[(sites.east, "reviewer"), (sites.west, "reviewer")])
    auth.login("rita")

    answer = client.get(f"/reports/monthly?month={month}")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert MONTH_RANGE_NOTICE.replace("'", "&#39;") in body
    last_full = min(s.last_full_month(utcnow()) for s in (sites.east, sites.west))
    assert f'name="month" value="{last_full:%Y-%m}"' in body


def test_a_percentage_total_is_of_the_added_up_counts():
    """Retention: 1 of 1 at one site and 1 of 3 at another is 50 %, not 100 + 33."""
    figure = next(f for f in reports.FIGURES if f.name == "hat_retention_percent")
    months = [SimpleNamespace(hat=SimpleNamespace(retention=[Retention(3, 1, 1)])),
              SimpleNamespace(hat=SimpleNamespace(retention=[Retention(3, 3, 1)]))]
    assert figure.total(months) == {"3": 50}
    rate = next(f for f in reports.FIGURES if f.name == "club_member_rate")
    clubs = [SimpleNamespace(club=SimpleNamespace(member_overdoses=1, member_visits=100)),
             SimpleNamespace(club=SimpleNamespace(member_overdoses=0, member_visits=900))]
    assert rate.total(clubs) == "1"  # per 1,000 visits: 1 in 1,000
