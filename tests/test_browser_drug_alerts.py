"""A drug alert from three overdoses to every screen, in real Chromium: two supervisors sign
for it, and it reaches a nurse's tablet and a wall display live, sounding because it was
marked urgent until the nurse acknowledges it, then waits at check-in until the client is
told. Its poster renders with the title and no client code, and the outbox holds one text per
subscriber of the site, none for one who texted STOP."""

import re
import subprocess
import time
from datetime import timedelta

import pytest
from factories import ACTOR, make_site, make_staff
from live_helpers import FloorScreen, check_in, shot, sign_in, tap
from playwright.sync_api import expect

from srs.auth.service import register_display
from srs.common import utcnow
from srs.drugchecks import outbox
from srs.drugchecks import service as drugchecks
from srs.drugchecks.inbound import receive_text
from srs.drugchecks.models import DrugAlert
from srs.extensions import db
from srs.overdose.models import OverdoseResponse

pytestmark = [pytest.mark.browser, pytest.mark.live]

LIVE_MS = 2_000  # a published alert is on every screen of the site within 2 s
CODE = "F-ABCD-1984"
# Texted to the service's number: two subscribers of the site, one who stopped, one elsewhere.
EAST, EVERYWHERE, STOPPED, WEST = ("+15550100001", "+15550100002", "+15550100003",
                                   "+15550100004")


def test_an_overdose_advisory_signed_by_two_supervisors_reaches_every_screen(
        live_server, tablet, browser, output_dir):
    site = make_site(slug="east", name="East Side", booths=1)
    for username, role, name in (("nina", "nurse", "Nina Park"), ("sam", "supervisor", "Sam Lee"),
                                 ("sara", "supervisor", "Sara Cole")):
        make_staff(site, role=role, username=username).display_name = name
    db.session.commit()
    _display, display_token = register_display(site, "Lobby wall", actor=ACTOR, now=utcnow())

    # Three overdoses in the last two hours, each closed (a running response would sound its
    # own alarm on every screen), and the cluster scan the scheduler runs.
    now = utcnow()
    for minutes in (95, 50, 10):
        started = now - timedelta(minutes=minutes)
        db.session.add(OverdoseResponse(site_id=site.id, kind="opioid", source="not_checked_in",
                                        location="Washroom", started_at=started,
                                        closed_at=started + timedelta(minutes=5),
                                        outcome="recovered_on_site"))
    db.session.commit()
    drugchecks.scan(now=now)
    (advisory,) = db.session.execute(db.select(DrugAlert)).scalars()
    make_site(slug="west", name="West End")
    for number, text in ((EAST, "JOIN east"), (EVERYWHERE, "JOIN"), (STOPPED, "JOIN east"),
                         (STOPPED, "STOP"), (WEST, "JOIN west")):
        receive_text(number, text, now=utcnow())

    # The nurse's tablet and the lobby's wall display are open and live.
    floor = FloorScreen(tablet.new_page(), site)
    sign_in(floor.page, live_server.url, "nina")
    expect(floor.page).to_have_url(re.compile(r"/sites/east/floor$"))
    floor.wait_until_live()
    wall = FloorScreen(browser.new_context(viewport={"width": 1920, "height": 1080}).new_page(),
                       site)
    wall.page.goto(f"{live_server.url}/display/{display_token}")
    expect(wall.page).to_have_url(re.compile(r"/supervise$"))
    wall.wait_until_live()

    # Sam finds the drafted advisory, marks it urgent and for the public: now he may not
    # validate it.
    desk = browser.new_context(viewport={"width": 1440, "height": 900})
    sam = desk.new_page()
    sign_in(sam, live_server.url, "sam")
    sam.goto(f"{live_server.url}/sites/east/drug-alerts")
    drafts = sam.get_by_test_id("alerts-draft")
    expect(drafts.get_by_test_id("alert-row")).to_contain_text("3 overdoses")
    drafts.get_by_role("link", name=advisory.title).click()
    sam.get_by_text("Sound as an alarm").click()
    sam.locator("#ed-audience").select_option("public")
    sam.get_by_test_id("save-alert").click()
    expect(sam.get_by_test_id("validate-refused")).to_be_visible()

    # Sara, a second supervisor, validates and publishes it.
    sara = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    sign_in(sara, live_server.url, "sara")
    sara.goto(f"{live_server.url}/sites/east/drug-alerts/{advisory.id}")
    sara.get_by_test_id("validate").click()
    expect(sara.get_by_test_id("alert-status")).to_have_text("Validated")
    sara.get_by_test_id("publish").click()
    deadline = time.monotonic() + LIVE_MS / 1000
    expect(sara.get_by_test_id("alert-status")).to_have_text("Published")

    # Within 2 s, without a reload: a purple band on the tablet and the wall, sounding.
    for screen in (floor, wall):
        band = screen.page.get_by_test_id("drug-alert")
        left_ms = max(1, (deadline - time.monotonic()) * 1000)
        expect(band).to_contain_text(advisory.title, timeout=left_ms)
        expect(band).to_contain_text("valid until")
        expect(screen.page.locator("body")).to_have_attribute("data-alarm-playing", "medium")
    shot(sara, output_dir / "1-second-supervisor-published.png")
    assert floor.was_not_reloaded() and wall.was_not_reloaded()
    expect(wall.page.get_by_test_id("drug-alert-hear")).to_have_count(0)  # a wall acts on nothing
    shot(floor.page, output_dir / "2-tablet-urgent-drug-alert.png")
    shot(wall.page, output_dir / "3-wall-display-drug-alert.png")

    # Nina acknowledges it by name: every screen of the site stops sounding, the band stays.
    tap(floor.page.get_by_test_id("drug-alert-hear"))
    for screen in (floor, wall):
        expect(screen.page.get_by_test_id("drug-alert-heard")).to_have_text(
            "Heard by Nina Park", timeout=LIVE_MS)
        expect(screen.page.locator("body")).not_to_have_attribute("data-alarm-playing",
                                                                  "medium")

    # The next client checked in is to be told, until Nina taps Told.
    check_in(floor, CODE)
    notice = floor.page.get_by_test_id("checkin-drug-alert")
    expect(notice).to_contain_text(advisory.title)
    shot(floor.page, output_dir / "4-check-in-tell-the-client.png")
    tap(notice.get_by_test_id("drug-alert-told-button"))
    expect(notice).to_have_count(0)
    expect(floor.page.get_by_test_id("drug-alert-told")).to_contain_text(advisory.title)
    shot(floor.page, output_dir / "5-check-in-told.png")
    assert floor.unexpected_console() == [] and wall.unexpected_console() == []

    # The poster for the wall, as Sara prints it: the title, and no client's code.
    poster = sara.request.get(f"{live_server.url}/sites/east/drug-alerts/{advisory.id}"
                              "/poster.pdf")
    assert poster.ok and poster.headers["content-type"] == "application/pdf"
    pdf = output_dir / "6-poster.pdf"
    pdf.write_bytes(poster.body())
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    db.session.expire_all()
    title = db.session.get(DrugAlert, advisory.id).title
    assert " ".join(title.split()) in " ".join(text.split())
    assert CODE not in text
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf),
                    str(output_dir / "6-poster")], check=True)
    assert (output_dir / "6-poster.png").stat().st_size > 0

    # The outbox: one text per subscriber of the site, none for STOP or another site's.
    queued = db.session.execute(db.select(outbox.OutboxMessage).filter_by(
        drug_alert_id=advisory.id)).scalars().all()
    numbers = sorted(outbox.decrypt_number(m.subscriber.number_encrypted) for m in queued)
    assert numbers == [EAST, EVERYWHERE]
    assert {m.status for m in queued} == {"queued"}
