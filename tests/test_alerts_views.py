"""The alarm strip on every page of a site, and the on-call banner, through the test client."""

import re
from datetime import timedelta

import pytest
from factories import make_booth, make_site, make_staff

from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.common import utcnow
from srs.extensions import db
from srs.overdose import service as overdose


@pytest.fixture
def site(app):
    return make_site(slug="east", name="East", escalation_grace_seconds=30)


@pytest.fixture
def unresponsive(site):
    """An overdose in B1, started by a tap no alarm led to: its alarm is open and nobody
    owns it (an Unresponsive check would have made it the checking nurse's)."""
    nina = Actor.of(make_staff(site, role="nurse", username="nina"))
    booth = make_booth(site, label="B1")
    waiting = floor.check_in(site, code="F-ABCD-1984", handle="Sparrow", actor=nina,
                             actor_roles={"nurse"}, now=utcnow())
    visit = floor.assign_booth(waiting, booth, actor=nina, now=utcnow())
    overdose.start_response(site, kind="opioid", visit=visit, actor=nina, now=utcnow())
    return db.session.execute(db.select(Alert).filter_by(kind="overdose")).scalar_one()


def test_every_page_of_the_site_carries_the_open_alarms(client, auth, site, unresponsive):
    make_staff(site, role="supervisor", username="sam")
    assert auth.login("sam").status_code == 302
    for path in (f"/sites/{site.slug}/floor",
                 f"/sites/{site.slug}/overdose/{unresponsive.subject_id}",
                 f"/sites/{site.slug}/naloxone", f"/sites/{site.slug}/incidents"):
        page = client.get(path).get_data(as_text=True)
        assert page.count('data-testid="alarms"') == 1, path
        assert 'data-alarms="floor"' in page, path  # floor staff hear every level
        assert 'data-testid="acknowledge"' in page and "F-ABCD-1984" in page, path
        assert 'data-testid="silence"' in page and 'data-grace="30"' in page, path


def test_a_reviewer_who_may_not_watch_the_floor_gets_no_strip(client, auth, site, unresponsive):
    make_staff(site, role="reviewer", username="rita")
    assert auth.login("rita").status_code == 302
    page = client.get(f"/sites/{site.slug}/incidents").get_data(as_text=True)
    assert 'data-testid="alarms"' not in page and "F-ABCD-1984" not in page


def test_the_on_call_banner_names_a_level_three_alarm_until_someone_owns_it(
        client, auth, site, unresponsive):
    sam = make_staff(site, role="supervisor", username="sam")
    site.on_call_staff_id = sam.id
    db.session.commit()
    alerts.scan(now=unresponsive.due_at + timedelta(seconds=61))
    assert auth.login("sam").status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert 'data-testid="on-call"' in home and "has reached level 3 with nobody on it" in home
    alerts.acknowledge(db.session.get(Alert, unresponsive.id), actor=Actor.of(sam),
                       now=utcnow())
    banner = client.get("/alerts/on-call").get_data(as_text=True)
    assert 'data-testid="on-call"' in banner and "nobody on it" not in banner


def test_no_banner_for_someone_on_call_nowhere(client, auth, site, unresponsive):
    assert auth.login("nina").status_code == 302
    assert 'data-testid="on-call"' not in client.get(f"/sites/{site.slug}/floor").get_data(
        as_text=True)


def test_an_emergency_with_no_booth_names_its_place_on_the_strip_and_the_lock_screen(
        client, auth, site):
    """Someone found in the washroom, someone collapsing in after-care: the alarm says where
    to run, on the floor's strip and on a locked tablet."""
    nina = make_staff(site, role="nurse", username="nina")
    site.overdose_locations = ["Washroom", "Front door"]
    waiting = floor.check_in(site, code="F-AFTR-1990", handle=None, actor=Actor.of(nina),
                             actor_roles={"nurse"}, now=utcnow())
    visit = floor.assign_booth(waiting, make_booth(site, label="B1"), actor=Actor.of(nina),
                               now=utcnow())
    floor.start_observation(visit, actor=Actor.of(nina), now=utcnow())
    overdose.start_response(site, kind="opioid", location="Washroom", actor=Actor.of(nina),
                            now=utcnow())
    overdose.start_response(site, kind="opioid", visit=visit, actor=Actor.of(nina),
                            now=utcnow())
    db.session.commit()
    assert auth.login("nina").status_code == 302

    def places(html):
        return sorted(re.findall(r'data-testid="alarm-place">([^<]+)<', html))

    strip = client.get(f"/sites/{site.slug}/floor/alerts", headers={"HX-Request": "true"})
    assert places(strip.get_data(as_text=True)) == ["After-care", "Washroom"]
    assert auth.post("/lock", {"next": f"/sites/{site.slug}/floor"}).status_code == 302
    locked = client.get(f"/sites/{site.slug}/lock/alerts?next=/sites/{site.slug}/floor")
    assert places(locked.get_data(as_text=True)) == ["After-care", "Washroom"]
