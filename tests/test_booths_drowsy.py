"""A drowsy client is marked on every screen that shows them, with the vitals."""

from datetime import timedelta

import pytest
from factories import ACTOR, make_booth, make_site, make_staff

from srs.booths import checks
from srs.booths import service as floor
from srs.common import utcnow

HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(app):
    return make_site(slug="east", name="East")


@pytest.fixture
def in_booth(site):
    waiting = floor.check_in(site, code="F-ABCD-1984", handle=None, actor=ACTOR,
                             actor_roles={"nurse"}, now=utcnow())
    return floor.assign_booth(waiting, make_booth(site, label="B1"), actor=ACTOR, now=utcnow())


def _drowsy(visit):
    checks.record_check(visit, {"status": "drowsy", "spo2": 91, "respiratory_rate": 10},
                        actor=ACTOR, now=utcnow())


def test_the_tile_and_the_dashboard_mark_a_drowsy_client_until_a_later_check(
        client, auth, site, in_booth):
    make_staff(site, role="supervisor", username="sam")
    assert auth.login("sam").status_code == 302
    _drowsy(in_booth)
    for path in ("/floor/board", "/board"):
        tile = client.get(f"/sites/east{path}", headers=HTMX).get_data(as_text=True)
        assert 'data-testid="drowsy"' in tile and "Drowsy · SpO2 91% · 10/min" in tile, path
    checks.record_check(in_booth, {"status": "ok"}, actor=ACTOR, now=utcnow())
    assert 'data-testid="drowsy"' not in client.get("/sites/east/board", headers=HTMX).get_data(
        as_text=True)


def test_the_after_care_row_marks_drowsy_and_a_booth_finding_does_not_follow(
        client, auth, site, in_booth):
    make_staff(site, role="nurse", username="nina")
    assert auth.login("nina").status_code == 302
    _drowsy(in_booth)
    floor.start_observation(in_booth, actor=ACTOR, now=utcnow())
    row = client.get("/sites/east/floor/aftercare", headers=HTMX).get_data(as_text=True)
    assert 'data-testid="drowsy"' not in row  # that was in the booth: after-care checks anew
    _drowsy(in_booth)
    row = client.get("/sites/east/floor/aftercare", headers=HTMX).get_data(as_text=True)
    assert "Drowsy · SpO2 91% · 10/min" in row


def test_a_drowsy_check_brings_the_next_one_closer_and_ok_restores_the_interval(app):
    site = make_site(slug="closer", booth_check_interval_seconds=180,
                     drowsy_check_interval_seconds=60)
    now = utcnow()
    waiting = floor.check_in(site, code="F-NEAR-1984", handle=None, actor=ACTOR,
                             actor_roles={"nurse"}, now=now)
    visit = floor.assign_booth(waiting, make_booth(site, label="B1"), actor=ACTOR, now=now)
    checks.record_check(visit, {"status": "drowsy", "spo2": 91, "respiratory_rate": 10},
                        actor=ACTOR, now=now + timedelta(seconds=30))
    assert visit.next_check_due_at == now + timedelta(seconds=90)
    checks.record_check(visit, {"status": "ok"}, actor=ACTOR, now=now + timedelta(seconds=90))
    assert visit.next_check_due_at == now + timedelta(seconds=270)
    # A site whose usual interval is already shorter keeps it.
    site.drowsy_check_interval_seconds = 600
    checks.record_check(visit, {"status": "drowsy"}, actor=ACTOR, now=now + timedelta(seconds=100))
    assert visit.next_check_due_at == now + timedelta(seconds=280)
