"""A heroin-assisted treatment day in real Chromium: a prescriber at a desk (1440x900) enrols a
patient and signs a prescription; a nurse on the 1280x800 floor tablet checks the patient in,
puts them in a booth, records the pre-dose assessment and the dose drawn from the register,
and after-care counts down on the treatment's own time; the register shows the movement. A
second patient, too drowsy (POSS 3), is withheld, and the prescriber sees it."""

import re
from datetime import date

import pytest
from factories import PIN, make_client, make_site, make_staff
from live_helpers import TIMEOUT_MS, ConsoleWatch, FloorScreen, assign, check_in, shot, sign_in, tap
from playwright.sync_api import expect

from srs.auth.service import Actor
from srs.booths.models import Visit
from srs.common import utcnow
from srs.controlled import service as register
from srs.extensions import db
from srs.hat import service as hat
from srs.hat.models import HatDose

pytestmark = [pytest.mark.browser, pytest.mark.live]

DESK = {"width": 1440, "height": 900}
FIRST, SECOND = "F-HATA-1980", "M-HATB-1975"
LEGAL_NAME = "Jordan Quintessa Example"


def test_a_dosing_day_from_enrolment_to_after_care_and_a_withheld_dose(
        live_server, browser, tablet, output_dir):
    site = make_site(slug="east", name="East Side", booths=2)
    prescriber = make_staff(site, role="prescriber", username="pia")
    make_staff(site, role="nurse", username="nina")
    boss = Actor.of(make_staff(site, role="supervisor", username="sam"))
    make_client(site, code=FIRST, handle="Wren")
    make_client(site, code=SECOND)
    now = utcnow()
    line = register.create_drug(site, {"name": "Hydromorphone", "strength": "100 mg ampoule",
                                       "unit": "ampoule"}, actor=boss, now=now)
    register.receive(site, {"drug_id": line.id, "supplier": "Pharmacy", "invoice": "INV-1",
                            "lot_number": "HM-1", "expires_on": date(2028, 1, 1),
                            "quantity": 10}, actor=boss, now=now)
    # The second patient was enrolled and prescribed for before today.
    other = hat.enrol(site, {"code": SECOND, "legal_name": "Someone Else",
                             "date_of_birth": date(1975, 1, 2), "health_number": "1111",
                             "eligibility": {"severe_oud": {"met": True, "note": None}},
                             "pin": PIN}, actor=Actor.of(prescriber), now=now)
    hat.create_prescription(site, other.id, {
        "medication": "hydromorphone", "route": "iv", "dose_mg": 80.0, "sessions_per_day": 3,
        "min_interval_minutes": None, "titration": "none", "titration_days": [],
        "top_up_allowed": False, "top_up_max_mg": None, "starts_on": site.local_date(now),
        "ends_on": None, "pin": PIN}, actor=Actor.of(prescriber), now=now)
    url = live_server.url

    # The prescriber at her desk enrols the first patient and signs a prescription.
    desk = browser.new_context(viewport=DESK)
    doctor = desk.new_page()
    doctor.set_default_timeout(TIMEOUT_MS)
    doctor_console = ConsoleWatch(doctor)
    sign_in(doctor, url, "pia")
    doctor.get_by_test_id("home-link").click()
    doctor.get_by_test_id("hat-enrol-link").click()
    doctor.get_by_test_id("hat-code").fill(FIRST)
    doctor.get_by_test_id("hat-legal-name").fill(LEGAL_NAME)
    doctor.get_by_test_id("hat-dob").fill("1980-05-06")
    doctor.get_by_test_id("hat-health-number").fill("9876-543-210")
    doctor.get_by_test_id("hat-met-severe_oud").check()
    doctor.get_by_test_id("hat-met-oral_oat_not_responding").check()
    doctor.get_by_test_id("hat-pin").fill(PIN)
    doctor.get_by_test_id("hat-enrol").click()
    expect(doctor.get_by_test_id("hat-identity-name")).to_have_text(LEGAL_NAME)
    doctor.get_by_test_id("hat-prescriptions").click()
    doctor.get_by_test_id("hat-medication").select_option("hydromorphone")
    doctor.get_by_test_id("hat-route").select_option("iv")
    doctor.get_by_test_id("hat-dose").fill("100")
    doctor.get_by_test_id("hat-sessions").fill("3")
    doctor.get_by_test_id("hat-pin").fill(PIN)
    doctor.get_by_test_id("hat-sign").click()
    expect(doctor.get_by_test_id("hat-signed")).to_be_visible()
    shot(doctor, output_dir / "1-prescription-signed.png", full_page=True)

    # The nurse on the floor tablet: check in, a booth, then the dosing page.
    floor = FloorScreen(tablet.new_page(), site)
    page = floor.page
    sign_in(page, url, "nina")
    check_in(floor, FIRST)
    assign(floor, FIRST, "B1")
    floor_url = page.url
    tap(page.get_by_test_id("home-link"))
    tap(page.get_by_test_id("hat-dosing-link"))
    rows = page.get_by_test_id("dosing-row")
    expect(rows).to_have_count(2)
    first = rows.filter(has_text=FIRST)
    expect(first.get_by_test_id("flag-on-floor")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(LEGAL_NAME)
    shot(page, output_dir / "2-dosing-list.png")
    tap(first.get_by_test_id("dosing-open"))
    tap(page.locator('label[for="assess-poss-1"]'))
    tap(page.get_by_test_id("assess-submit"))
    expect(page.get_by_test_id("dosing-done")).to_contain_text("The dose may go ahead")
    page.get_by_test_id("dose-dose_mg").fill("100")
    page.get_by_test_id("dose-quantity").fill("1")
    tap(page.locator('label[for="dose-identity_checked-on"]'))
    page.get_by_test_id("dose-quantity").blur()
    tap(page.get_by_test_id("dose-submit"))
    expect(page.get_by_test_id("dosing-done")).to_contain_text("100 mg given")
    expect(page.get_by_test_id("dosing-sessions")).to_contain_text("1 of 3")
    shot(page, output_dir / "3-dose-given.png", full_page=True)
    visit = db.session.execute(db.select(Visit).where(Visit.departed_at.is_(None)).order_by(
        Visit.id)).scalars().first()
    dose = db.session.execute(db.select(HatDose).filter_by(outcome="given")).scalar_one()
    db.session.refresh(visit)
    assert dose.visit_id == visit.id
    assert round((visit.booth_due_at - dose.at).total_seconds()) == 7 * 60

    # Back on the floor: the patient leaves the booth, and after-care counts 15 minutes.
    page.goto(floor_url)
    tap(floor.tile("B1").get_by_role("button", name="More…"))
    tap(page.locator(".dialog").get_by_role("button", name="Leaves booth"))
    countdown = floor.fragment("aftercare").get_by_test_id("aftercare-countdown")
    expect(countdown).to_have_text(re.compile(r"1[45]:\d\d"))
    shown = countdown.inner_text()
    expect(countdown).not_to_have_text(shown, timeout=3000)
    shot(page, output_dir / "4-after-care.png")

    # The register shows the ampoule drawn for the patient, by code, and the balance.
    tap(page.get_by_test_id("home-link"))
    tap(page.get_by_test_id("controlled-link"))
    register_line = page.get_by_test_id("controlled-line").filter(has_text="Hydromorphone")
    expect(register_line.get_by_test_id("balance")).to_contain_text("9")
    expect(register_line.get_by_test_id("entry").filter(has_text=FIRST)).to_have_count(1)
    expect(page.locator("body")).not_to_contain_text(LEGAL_NAME)
    shot(page, output_dir / "5-register.png", full_page=True)

    # The second patient is too drowsy: POSS 3 withholds the dose.
    tap(page.get_by_test_id("home-link"))
    tap(page.get_by_test_id("hat-dosing-link"))
    tap(page.get_by_test_id("dosing-row").filter(has_text=SECOND).get_by_test_id("dosing-open"))
    tap(page.locator('label[for="assess-poss-3"]'))
    tap(page.get_by_test_id("assess-submit"))
    expect(page.get_by_test_id("dosing-done")).to_contain_text("withheld")
    expect(page.get_by_test_id("dose-row")).to_have_attribute("data-outcome", "withheld")
    shot(page, output_dir / "6-withheld.png")
    assert floor.console.errors == []

    # The prescriber sees it on her patients page.
    doctor.get_by_test_id("home-link").click()
    doctor.get_by_test_id("hat-link").click()
    withheld = doctor.get_by_test_id("hat-withheld-row")
    expect(withheld).to_have_count(1)
    expect(withheld).to_contain_text(SECOND)
    expect(withheld).to_contain_text("POSS 3")
    shot(doctor, output_dir / "7-prescriber-sees-withheld.png")
    assert doctor_console.errors == []
