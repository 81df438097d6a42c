"""The naloxone program in real Chromium: a trainer records a session of three people on the
wall tablet (1280x800), each leaving with a kit of the register; the supervisor at a desk
(1440x900) recalls the kits' lot and finds exactly those kits and who holds them; a year
on, the police officer's refresher is due."""

from datetime import timedelta

import pytest
from factories import make_client, make_lot, make_site, make_staff
from live_helpers import TIMEOUT_MS, ConsoleWatch, shot, sign_in, tap
from playwright.sync_api import expect

from srs.auth.service import Actor
from srs.common import utcnow
from srs.extensions import db
from srs.naloxone import kits
from srs.naloxone.models import TrainingSession
from srs.naloxone.training import add_months

pytestmark = [pytest.mark.browser, pytest.mark.live]

DESK = {"width": 1440, "height": 900}
CODE = "F-ABCD-1984"


def test_a_session_with_kits_a_recall_and_a_refresher_a_year_on(
        live_server, browser, tablet, output_dir):
    east = make_site(slug="east", name="East Side")
    make_staff(east, role="nurse", username="tess")
    boss = Actor.of(make_staff(east, role="supervisor", username="sam"))
    make_client(east, code=CODE)
    now = utcnow()
    expires = east.local_date(now) + timedelta(days=730)
    for lot_number, first, last in (("L-FIRST", "K-1001", "K-1004"), ("L-OTHER", "K-2001", None)):
        lot = make_lot(east, boss, now=now, lot=lot_number, quantity=10, expires=expires)
        kits.add_kits(east, {"lot_id": lot.id, "first_serial": first, "last_serial": last},
                      actor=boss, now=now)
    url = live_server.url

    # The trainer on the wall tablet: from the floor, the SRS mark home, then the form.
    page = tablet.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console = ConsoleWatch(page)
    sign_in(page, url, "tess")
    tap(page.get_by_test_id("home-link"))
    tap(page.get_by_test_id("training-link"))
    page.get_by_test_id("curriculum").fill("Take-home naloxone")
    rows = page.get_by_test_id("trainee-row")

    # A client, by code from the autocomplete.
    tap(page.get_by_test_id("add-client"))
    expect(rows).to_have_count(1)
    rows.nth(0).get_by_test_id("trainee-code").press_sequentially("abcd")
    tap(rows.nth(0).get_by_test_id("suggestion"))
    expect(rows.nth(0).get_by_test_id("trainee-code")).to_have_value(CODE)
    rows.nth(0).get_by_test_id("trainee-kit-serial").fill("K-1001")
    # A family member: the person at risk consented.
    tap(page.get_by_test_id("add-family-friend"))
    expect(rows).to_have_count(2)
    tap(rows.nth(1).get_by_label("Yes"))
    rows.nth(1).get_by_test_id("trainee-kit-serial").fill("K-1002")
    # A police officer who consents to be named.
    tap(page.get_by_test_id("add-police"))
    expect(rows).to_have_count(3)
    officer = rows.nth(2)
    officer.get_by_test_id("trainee-organisation").fill("City Police")
    tap(officer.get_by_test_id("named-consent"))
    officer.get_by_test_id("trainee-first-name").fill("Olive")
    officer.get_by_test_id("trainee-last-name").fill("Officer")
    officer.get_by_test_id("trainee-badge-number").fill("B-417")
    officer.get_by_test_id("trainee-kit-serial").fill("K-1003")
    shot(page, output_dir / "1-training-form.png", full_page=True)
    # The keyboard closes (its Done key): a tap on a button while a text field holds the
    # focus has Chromium scroll that field into view between the touch and its click.
    officer.get_by_test_id("trainee-kit-serial").blur()
    tap(page.get_by_test_id("training-submit"))
    expect(page.get_by_test_id("training-recorded")).to_contain_text("3 people trained")
    expect(page.get_by_test_id("kits-given")).to_have_text("K-1001, K-1002, K-1003")
    shot(page, output_dir / "2-training-recorded.png")
    assert console.errors == []

    # The supervisor at a desk recalls the first lot from the kit register.
    desk = browser.new_context(viewport=DESK)
    page = desk.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console = ConsoleWatch(page)
    sign_in(page, url, "sam")
    page.get_by_test_id("naloxone-kits-link").click()
    page.get_by_test_id("recall-link").filter(has_text="L-FIRST").click()
    page.locator("#recall-reason").fill("Manufacturer's notice 2026-14")
    page.get_by_role("button", name="Recall this lot").click()
    expect(page.get_by_test_id("recalled")).to_contain_text("Manufacturer's notice 2026-14")
    listed = page.get_by_test_id("kit")
    expect(listed).to_have_count(4)
    assert [listed.nth(i).get_attribute("data-serial") for i in range(4)] == [
        "K-1001", "K-1002", "K-1003", "K-1004"]
    holders = [listed.nth(i).get_by_test_id("kit-holder") for i in range(4)]
    for row in (0, 1, 2):
        expect(listed.nth(row)).to_contain_text("Issued")
    expect(holders[0]).to_have_text(CODE)
    expect(holders[1]).to_contain_text("Family or friend")
    expect(holders[2]).to_contain_text("Olive Officer")
    expect(listed.nth(3)).to_contain_text("Withdrawn")
    expect(holders[3]).to_have_text("—")
    expect(page.get_by_test_id("kit-table")).not_to_contain_text("K-2001")
    shot(page, output_dir / "3-recall.png", full_page=True)

    page.get_by_test_id("home-link").click()
    page.get_by_test_id("refreshers-link").click()
    expect(page.get_by_test_id("none-due")).to_be_visible()
    # The clock passes 12 months. The server's clock is real, so the session moves back
    # instead: held 12 months and a day ago, the officer's refresher is a day overdue.
    session = db.session.execute(db.select(TrainingSession)).scalar_one()
    session.held_on = add_months(session.held_on, -12) - timedelta(days=1)
    db.session.commit()
    page.reload()
    due = page.get_by_test_id("refresher")
    expect(due).to_have_count(1)
    expect(due).to_contain_text("Olive Officer")
    expect(due).to_contain_text("B-417")
    expect(due).to_contain_text("Overdue")
    shot(page, output_dir / "4-refreshers-due.png", full_page=True)
    assert console.errors == []
    desk.close()
