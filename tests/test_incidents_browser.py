"""In real Chromium: a nurse files an incident report (the draft saves itself, a name in the
narrative is caught), a reviewer takes it through review to closed, the nurse reads the
feedback."""

import pytest
from factories import make_booth, make_client, make_site, make_staff
from live_helpers import TIMEOUT_MS, sign_in
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def site(live_server):
    site = make_site(slug="east", name="East Side")
    make_booth(site, label="B1")
    make_client(site, code="F-ABCD-1984")
    make_staff(site, role="nurse", username="nina")
    make_staff(site, role="reviewer", username="rita")
    return site


def test_a_report_from_the_floor_to_closed_and_back_to_its_reporter(
        live_server, site, browser, output_dir):
    base = live_server.url
    nurse_context = browser.new_context(viewport={"width": 1280, "height": 800})
    nurse = nurse_context.new_page()
    nurse.set_default_timeout(TIMEOUT_MS)
    sign_in(nurse, base, "nina")
    nurse.get_by_test_id("incidents-link").click()
    nurse.get_by_test_id("new-report").click()
    expect(nurse.get_by_test_id("report-form")).to_be_visible()

    nurse.get_by_test_id("field-type").select_option("overdose")
    nurse.get_by_test_id("field-occurred").fill("2026-11-18T09:30")
    nurse.get_by_test_id("field-booth").select_option(label="B1")
    nurse.get_by_test_id("field-clients").fill("F-ABCD-1984")
    nurse.get_by_test_id("harm-moderate").check()
    nurse.get_by_test_id("field-narrative").fill(
        "Shawn Miller found F-ABCD-1984 unresponsive in the booth.")
    warning = nurse.get_by_test_id("identifier-warning")
    expect(warning).to_contain_text("Shawn Miller")
    nurse.screenshot(path=str(output_dir / "1-identifier-warning.png"), full_page=True)

    nurse.get_by_test_id("field-narrative").fill(
        "A peer worker found F-ABCD-1984 unresponsive in the booth.")
    nurse.get_by_test_id("field-immediate").fill("Oxygen, then naloxone 0.4 mg IM; recovered.")
    expect(nurse.get_by_test_id("autosave-status")).to_contain_text("Draft saved")
    expect(warning).to_have_count(0)
    nurse.get_by_test_id("submit-report").click()
    expect(nurse.get_by_test_id("stage")).to_have_text("Submitted")
    report_url = nurse.url
    nurse.screenshot(path=str(output_dir / "2-submitted.png"), full_page=True)

    reviewer_context = browser.new_context(viewport={"width": 1600, "height": 1000})
    reviewer = reviewer_context.new_page()
    reviewer.set_default_timeout(TIMEOUT_MS)
    sign_in(reviewer, base, "rita")
    reviewer.goto(f"{base}/sites/east/incidents/week?week=2026-11-16")
    submitted = reviewer.get_by_test_id("stage-submitted")
    expect(submitted).to_contain_text("Overdose")
    expect(reviewer.get_by_test_id("chart-by_type").locator("img")).to_be_visible()
    reviewer.screenshot(path=str(output_dir / "3-weekly-review.png"), full_page=True)
    submitted.get_by_role("link").first.click()

    reviewer.get_by_test_id("start-review").click()
    expect(reviewer.get_by_test_id("stage")).to_have_text("Under review")
    reviewer.get_by_label("Substance potency or contamination").check()
    reviewer.get_by_test_id("review-lessons").fill("Booth checks every 3 minutes held.")
    reviewer.get_by_test_id("review-feedback").fill("Quick, calm response. Thank you.")
    reviewer.get_by_test_id("action-description").fill("Restock oxygen masks in B1")
    reviewer.get_by_test_id("action-owner").select_option(label="nina")
    reviewer.get_by_test_id("action-due").fill("2026-11-25")
    reviewer.get_by_test_id("request-approval").click()
    expect(reviewer.get_by_test_id("stage")).to_have_text("Awaiting approval")
    reviewer.get_by_test_id("approve").click()
    expect(reviewer.get_by_test_id("stage")).to_have_text("Closed")
    expect(reviewer.get_by_test_id("history")).to_contain_text("Awaiting approval → Closed")
    reviewer.screenshot(path=str(output_dir / "4-closed.png"), full_page=True)

    nurse.goto(report_url)
    expect(nurse.get_by_test_id("stage")).to_have_text("Closed")
    expect(nurse.get_by_test_id("feedback-text")).to_have_text("Quick, calm response. Thank you.")
    expect(nurse.get_by_test_id("actions")).to_contain_text("Restock oxygen masks in B1")
    nurse.screenshot(path=str(output_dir / "5-reporter-sees-feedback.png"), full_page=True)
    reviewer_context.close()
    nurse_context.close()
