"""A published drug alert on the screens of the sites it covers: the alarm strip (its own
kind, sounding only when urgent until someone acknowledges it by name), the check-in panel
until the client is told, and the page any staff member reads it on."""

import re
from datetime import timedelta

import pytest
from conftest import csrf_token
from factories import ACTOR, make_site, make_staff

from srs import signals
from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.common import utcnow
from srs.drugchecks import service
from srs.extensions import db

HTMX = {"HX-Request": "true"}
DRUG_ALERT = re.compile(r'<article class="alarm alarm--drug[^>]*>')


def drug_alert(site, *, title_area, status="published", urgent=False, published_ago=None,
               scope="site"):
    """An alert of ``site`` taken to ``status`` by two people (drafted, validated, ...)."""
    drafter, checker = make_staff(site, role="supervisor"), make_staff(site, role="supervisor")
    now = utcnow() - (published_ago or timedelta(minutes=1))
    alert = service.create_alert(site, {"kind": "drug_alert", "area": title_area,
                                        "found": "Xylazine 12% in heroin", "scope": scope,
                                        "urgent": urgent, "evidence": "ftir",
                                        "advice": ["test_first"]},
                                 actor=Actor.of(drafter), now=now)
    if status == "draft":
        return alert
    service.validate_alert(alert, site, actor=Actor.of(checker), now=now)
    service.publish_alert(alert, site, actor=Actor.of(drafter), now=now)
    if status == "retracted":
        service.retract_alert(alert, site, reason="Lab found none", actor=Actor.of(checker),
                              now=now)
    elif status == "expired":
        service.expire_alerts(now=utcnow())
        db.session.commit()
    return alert


def signed_in(client, auth, staff):
    auth.logout()
    assert auth.login(staff.username).status_code == 302


def drug_alerts_shown(html: str) -> list[str]:
    return re.findall(r'data-testid="drug-alert-title">([^<]+)<', html)


@pytest.fixture
def east(app):
    return make_site(name="East", slug="east")


def test_the_strip_shows_a_published_alert_at_the_sites_it_covers_and_nothing_else(
        app, client, auth, east):
    west = make_site(name="West", slug="west")
    shown = drug_alert(east, title_area="Shown")
    drug_alert(east, title_area="Draft", status="draft")
    drug_alert(east, title_area="Retracted", status="retracted")
    drug_alert(east, title_area="Expired", status="expired", published_ago=timedelta(days=15))
    # Past its end, though the scan has not marked it expired yet.
    drug_alert(east, title_area="Lapsed", published_ago=timedelta(days=15))
    everywhere = drug_alert(west, title_area="Everywhere", scope="organisation")
    nurse = make_staff(roles=[(east, "nurse"), (west, "nurse")])
    signed_in(client, auth, nurse)

    for url in ("/sites/east/floor", "/sites/east/floor/alerts"):
        html = client.get(url).get_data(as_text=True)
        assert drug_alerts_shown(html) == [everywhere.title, shown.title]
        [band] = DRUG_ALERT.findall(html)[:1]
        assert "data-alert-id" not in band, "a non-urgent alert does not sound"
        assert "alarms--active" not in html and 'data-testid="silence"' not in html
    assert "valid until" in html and "Evidence: FTIR" in html
    assert f'href="/sites/east/drug-alerts/{shown.id}/read"' in html
    # The strip re-reads itself when a drug alert changes.
    assert f"srs:drug_alerts-{east.id} from:body" in html
    assert drug_alerts_shown(client.get("/sites/west/floor/alerts").get_data(as_text=True)) \
        == [everywhere.title]

    supervisor = make_staff(east, role="supervisor")
    signed_in(client, auth, supervisor)
    dashboard = client.get("/supervise").get_data(as_text=True)
    assert shown.title in drug_alerts_shown(dashboard)


def test_an_urgent_alert_sounds_until_a_named_person_acknowledges_it(app, client, auth, east):
    alert = drug_alert(east, title_area="Urgent", urgent=True)
    nurse = make_staff(east, role="nurse", username="nina")
    signed_in(client, auth, nurse)

    strip = client.get("/sites/east/floor/alerts", headers=HTMX).get_data(as_text=True)
    [band] = DRUG_ALERT.findall(strip)
    assert f'data-alert-id="drug-{alert.id}"' in band and 'data-acknowledged="0"' in band
    assert 'data-priority="medium"' in band
    assert "alarms--active" in strip and 'data-testid="drug-alert-hear"' in strip
    # A locked tablet shows and sounds it too; acknowledging needs a person signed in.
    locked = client.get("/sites/east/lock/alerts").get_data(as_text=True)
    assert f'data-alert-id="drug-{alert.id}"' in locked and 'data-acknowledged="0"' in locked
    assert 'data-testid="drug-alert-hear"' not in locked

    heard = client.post(f"/sites/east/drug-alerts/{alert.id}/heard", headers=HTMX,
                        data={"csrf_token": csrf_token(client), "view": "floor"},
                        follow_redirects=True)
    assert heard.status_code == 200
    html = heard.get_data(as_text=True)
    [band] = DRUG_ALERT.findall(html)
    assert 'data-acknowledged="1"' in band and "alarms--active" not in html
    assert "Heard by Nina" in html or f"Heard by {nurse.display_name}" in html
    [event] = db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "drug_alert_heard")).scalars().all()
    assert event.staff_id == nurse.id and event.entity_id == str(alert.id)

    again = client.post(f"/sites/east/drug-alerts/{alert.id}/heard", headers=HTMX,
                        data={"csrf_token": csrf_token(client), "view": "floor"})
    assert again.status_code == 409 and "already acknowledged" in again.get_data(as_text=True)


def test_check_in_shows_untold_alerts_until_the_client_is_told(app, client, auth, east):
    first = drug_alert(east, title_area="First")
    second = drug_alert(east, title_area="Second")
    drug_alert(east, title_area="Draft", status="draft")
    nurse = make_staff(east, role="nurse")
    signed_in(client, auth, nurse)
    token = csrf_token(client)

    def check_in(code):
        response = client.post("/sites/east/floor/check-in", headers=HTMX,
                               data={"csrf_token": token, "code": code})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def to_tell(html):
        return [int(i) for i in re.findall(
            r'data-drug-alert-id="(\d+)" data-testid="checkin-drug-alert"', html)]

    html = check_in("F-ABCD-1984")
    assert to_tell(html) == [second.id, first.id]
    visit = floor.get_visit(east, int(re.search(r"/floor/visits/(\d+)/drug-alerts", html)[1]))
    told = client.post(f"/sites/east/floor/visits/{visit.id}/drug-alerts/{first.id}/told",
                       headers=HTMX, data={"csrf_token": token})
    assert told.status_code == 200
    assert to_tell(told.get_data(as_text=True)) == [second.id]
    assert f"Told: {first.title}" in told.get_data(as_text=True)
    [event] = db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "drug_alert_told")).scalars().all()
    assert (event.staff_id, event.entity, event.entity_id) == (nurse.id, "visit", str(visit.id))
    assert event.detail == {"drug_alert_id": first.id}
    # The client's access request names it.
    sections = [got for _r, made in signals.client_record.send(visit.client) for got in made]
    [told_section] = [got for got in sections if got.record_type == "drug_alert_told"]
    assert [(row["drug_alert_id"], row["told_by"]) for row in told_section.rows] == [
        (first.id, nurse.id)]

    # Another client has been told nothing; the same client, back later, only the rest.
    assert to_tell(check_in("F-WXYZ-1990")) == [second.id, first.id]
    floor.leave_queue(visit, reason="left", actor=ACTOR, now=utcnow())
    assert to_tell(check_in("F-ABCD-1984")) == [second.id]


def test_any_staff_role_at_a_covered_site_reads_a_published_alert(app, client, auth, east):
    alert = drug_alert(east, title_area="Read")
    draft = drug_alert(east, title_area="Draft", status="draft")
    west = make_site(name="West", slug="west")
    for role in ("reviewer", "drug_checker", "nurse"):
        signed_in(client, auth, make_staff(east, role=role))
        page = client.get(f"/sites/east/drug-alerts/{alert.id}/read")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert alert.title in html and "Xylazine 12% in heroin" in html
        assert "Get your drugs checked before use" in html and 'data-testid="valid-until"' in html
        assert 'data-testid="alert-ended"' not in html
        assert client.get(f"/sites/east/drug-alerts/{draft.id}/read").status_code == 404
    signed_in(client, auth, make_staff(west, role="nurse"))
    assert client.get(f"/sites/west/drug-alerts/{alert.id}/read").status_code == 404
