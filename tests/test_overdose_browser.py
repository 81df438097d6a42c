"""An overdose run entirely from the console in real Chromium on the 1280x800 tablet, while the
supervisor's dashboard in a second context shows it live; then the draft holds the timeline."""

import re

import pytest
import requests
from factories import make_site, make_staff
from live_helpers import LiveScreen, api_token, sign_in
from playwright.sync_api import expect

from srs.auth.service import Actor
from srs.booths import service as floor
from srs.common import utcnow
from srs.extensions import db
from srs.naloxone.models import NaloxoneLot
from srs.overdose.models import OverdoseResponse

pytestmark = [pytest.mark.browser, pytest.mark.live]

STEP_MS = 5000  # the dashboard shows each step live (within 5 s on a busy shared machine)
REDOSE_SECONDS = 10  # the shortest re-dose interval the settings allow
# Taps and typing wait longer than the live updates: the machine may be shared and busy.
ACTION_MS = 60_000


@pytest.fixture(autouse=True)
def patient_expect():
    """Assertions wait as long as taps do here; the live checks give their own shorter time."""
    expect.set_options(timeout=ACTION_MS)
    yield
    expect.set_options(timeout=5000)


def shot(page, path, *, full_page=False):
    # caret="initial": hiding the caret takes an inline style, which the CSP refuses.
    page.screenshot(path=path, full_page=full_page, caret="initial")


def api(live_server, staff, method, path, **kwargs):
    response = requests.request(
        method, f"{live_server.url}/api/v1{path}", timeout=ACTION_MS / 1000,
        headers={"Authorization": f"Bearer {api_token(staff)}"}, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture
def site(live_server):
    site = make_site(slug="east", name="East Side", booths=2)
    admin = make_staff(site, role="admin", username="ada")
    # Time driven through the settings: the reassess prompt comes 10 s after a dose.
    api(live_server, admin, "PATCH", f"/sites/{site.id}/settings",
        json={"naloxone_redose_seconds": REDOSE_SECONDS})
    api(live_server, admin, "POST", f"/sites/{site.id}/naloxone/lots", json={
        "product": "Naloxone HCl", "form": "ampoule", "strength": "0.4 mg/mL",
        "lot_number": "LATE-1", "expires_on": "2099-01-01", "quantity": 10})
    api(live_server, admin, "POST", f"/sites/{site.id}/naloxone/lots", json={
        "product": "Naloxone HCl", "form": "ampoule", "strength": "0.4 mg/mL",
        "lot_number": "SOON-1", "expires_on": "2098-01-01", "quantity": 5})
    nurse = make_staff(site, role="nurse", username="nina")
    visit = floor.check_in(site, code="F-ABCD-1984", handle="Sparrow", actor=Actor.of(nurse),
                           actor_roles={"nurse"}, now=utcnow())
    floor.assign_booth(visit, site.booths[0], actor=Actor.of(nurse), now=utcnow())
    return site


def test_a_response_run_from_the_console_while_the_dashboard_watches(
        live_server, site, tablet, browser, output_dir):
    make_staff(site, role="supervisor", username="sam")
    board_context = browser.new_context(viewport={"width": 1920, "height": 1080})
    dashboard = LiveScreen(board_context.new_page())
    dashboard.page.set_default_timeout(ACTION_MS)
    sign_in(dashboard.page, live_server.url, "sam")
    dashboard.page.goto(f"{live_server.url}/supervise")
    panel = dashboard.page.locator(f"#overdose-{site.id}")
    expect(panel).to_contain_text("No emergency under way")
    dashboard.wait_until_live()

    nurse = LiveScreen(tablet.new_page())
    page = nurse.page
    page.set_default_timeout(ACTION_MS)
    sign_in(page, live_server.url, "nina")
    tile = page.locator(f'.tile[data-booth-id="{site.booths[0].id}"]')
    expect(tile).to_contain_text("F-ABCD-1984")

    # One tap on the booth tile opens the console.
    tile.get_by_test_id("overdose-start").tap()
    expect(page.get_by_test_id("console")).to_be_visible()
    expect(page.get_by_test_id("console-kind")).to_have_text("Opioid overdose")
    expect(page.get_by_test_id("console-client")).to_have_text("F-ABCD-1984")
    nurse.wait_until_live()
    expect(panel.get_by_test_id("overdose-active")).to_contain_text("Booth B1",
                                                                   timeout=STEP_MS)
    clock = panel.get_by_test_id("overdose-clock")
    shown = clock.inner_text()
    expect(clock).not_to_have_text(shown, timeout=3000)  # the dashboard's clock ticks

    # The first IM dose: the countdown to reassess runs, then the prompt comes.
    page.get_by_test_id("dose-im").tap()
    expect(page.get_by_test_id("naloxone-status")).to_contain_text("1 dose")
    expect(page.get_by_test_id("redose-countdown")).to_contain_text("left")
    expect(page.get_by_test_id("reassess-prompt")).to_be_hidden()
    expect(panel.get_by_test_id("overdose-doses")).to_have_text("1 naloxone", timeout=STEP_MS)
    shot(page, output_dir / "console-first-dose.png")
    expect(page.get_by_test_id("reassess-prompt")).to_be_visible(
        timeout=(REDOSE_SECONDS + 3) * 1000)
    expect(page.get_by_test_id("redose-countdown")).to_have_text("now")
    shot(page, output_dir / "console-reassess-prompt.png")

    # The re-dose alarm comes into the strip above the console a moment after the prompt:
    # the console moves down, and takes no tap until it has stopped moving (a tap aimed at
    # a button must not land on what slid under it).
    expect(page.get_by_test_id("alarms")).to_contain_text("Reassess: re-dose time")
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bis-settling\b"))

    # The second IM dose restarts the interval; the prompt goes. A finger's double tap,
    # 50 ms apart at the same spot, records one dose.
    box = page.get_by_test_id("dose-im").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.touchscreen.tap(x, y)
    page.wait_for_timeout(50)
    page.touchscreen.tap(x, y)
    expect(page.get_by_test_id("naloxone-status")).to_contain_text("2 doses")
    page.wait_for_timeout(1000)  # a second dose would have been answered by now
    expect(page.get_by_test_id("naloxone-status")).to_contain_text("2 doses")
    expect(page.get_by_test_id("reassess-prompt")).to_be_hidden()
    expect(panel.get_by_test_id("overdose-doses")).to_have_text("2 naloxone", timeout=STEP_MS)

    # The console's own alarm is Nina's since her first entry. Omar, passing B2, taps
    # Overdose for another client meanwhile (no alarm led him there, so the alarm calls
    # everyone until someone owns it): the console shows that alarm and sounds it.
    strip = page.get_by_test_id("alarms")
    expect(strip.get_by_test_id("alarm-owner")).to_contain_text("Owned by nina")
    omar = make_staff(site, role="nurse", username="omar")
    other = api(live_server, omar, "POST", f"/sites/{site.id}/visits",
                json={"code": "M-WXYZ-1990"})
    api(live_server, omar, "POST", f"/sites/{site.id}/visits/{other['id']}/booth",
        json={"booth_id": site.booths[1].id})
    api(live_server, omar, "POST", f"/sites/{site.id}/overdose-responses",
        json={"kind": "opioid", "visit_id": other["id"]})
    # (B1's reassess alarm may be sounding too by now: the one that matters is B2's.)
    b2_alarm = strip.locator('[data-acknowledged="0"]', has_text="M-WXYZ-1990")
    expect(b2_alarm).to_have_count(1, timeout=STEP_MS)
    expect(b2_alarm).to_contain_text("Overdose response")
    expect(page.locator("body")).to_have_attribute("data-alarm-playing", "high",
                                                   timeout=STEP_MS)
    shot(page, output_dir / "console-another-alarm.png")
    strip.get_by_test_id("silence").tap()
    expect(strip.get_by_test_id("silenced")).to_contain_text("Silenced")
    expect(page.locator("body")).not_to_have_attribute("data-alarm-playing", "high")
    expect(b2_alarm).to_have_count(1)  # silenced, still on screen, still nobody's

    # Oxygen, SpO2 88, EMS called.
    page.get_by_test_id("oxygen-10").tap()
    expect(page.get_by_test_id("oxygen-status")).to_contain_text("Oxygen on 10 L/min")
    page.get_by_test_id("spo2-input").fill("88")
    # Another screen's change refreshes the console while the nurse is typing: what she
    # typed stays, and goes once it is saved.
    with page.expect_response(lambda answer: answer.url.endswith("/console")):
        page.evaluate("id => document.body.dispatchEvent(new CustomEvent('srs:responses-' + id))",
                      site.id)
    expect(page.get_by_test_id("spo2-input")).to_have_value("88")
    page.get_by_test_id("spo2-save").tap()
    expect(page.get_by_test_id("spo2-input")).to_have_value("")
    expect(page.get_by_test_id("timeline")).to_contain_text("SpO2 88%")
    page.get_by_test_id("ems-called").tap()
    expect(page.get_by_test_id("ems-called-done")).to_contain_text("EMS called")
    expect(page.locator("#flash")).to_be_empty()
    shot(page, output_dir / "console-under-way.png")
    shot(dashboard.page, output_dir / "dashboard-response-live.png", full_page=True)

    # Close as recovered on site.
    page.get_by_test_id("console-close").tap()
    page.get_by_test_id("outcome-recovered_on_site").tap()
    expect(page.get_by_test_id("console-outcome")).to_contain_text("Recovered on site")
    expect(page.get_by_test_id("console-drafted")).to_contain_text("incident report draft")
    # B1's response is over; B2's, opened by the Unresponsive check, goes on.
    expect(panel.get_by_test_id("overdose-active")).to_have_count(1, timeout=STEP_MS)
    expect(panel.get_by_test_id("overdose-active")).to_contain_text("Booth B2")
    shot(page, output_dir / "console-closed.png", full_page=True)

    # The draft holds the whole timeline, and stock balances.
    db.session.rollback()
    response = db.session.execute(db.select(OverdoseResponse).filter_by(
        booth_id=site.booths[0].id)).scalar_one()
    draft = response.report_draft
    assert [e["what"] for e in draft["timeline"]] == [
        "started", "naloxone", "naloxone", "oxygen_on", "spo2", "ems_called", "closed"]
    assert all(e["who"] == "nina" for e in draft["timeline"])
    assert draft["summary"]["naloxone_doses"] == 2 and draft["summary"]["oxygen"]
    assert draft["summary"]["lowest_spo2"] == 88 and draft["summary"]["ems_called"]
    assert draft["outcome"] == "recovered_on_site"
    quantities = dict(db.session.execute(db.select(NaloxoneLot.lot_number,
                                                   NaloxoneLot.quantity)).all())
    assert quantities == {"SOON-1": 3, "LATE-1": 10}, "first expiry first out"

    assert nurse.unexpected_console() == []
    assert dashboard.unexpected_console() == []
    board_context.close()
