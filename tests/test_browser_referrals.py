"""A referral in real Chromium: a client with an overdose last week is checked in on the tablet,
the OAT suggestion shows with its reason, the nurse records it offered and accepted to a
service, and the follow-up is listed when it comes due."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import ACTOR, make_client, make_service, make_site, make_staff
from live_helpers import TIMEOUT_MS, LiveScreen, sign_in
from playwright.sync_api import expect

from srs.common import utcnow
from srs.extensions import db
from srs.overdose.models import OverdoseResponse
from srs.referrals import service
from srs.referrals.models import Referral

pytestmark = [pytest.mark.browser, pytest.mark.live]

CODE = "F-ABCD-1984"


def shot(page, path) -> None:
    # caret="initial": hiding the caret takes an inline style, which the CSP refuses.
    page.screenshot(path=path, caret="initial")


def test_an_overdose_last_week_leads_to_an_oat_referral_and_its_follow_up(
        live_server, tablet, output_dir):
    site = make_site(slug="east", name="East Side", booths=3)
    service.seed_default_rules(site, actor=ACTOR, now=utcnow())
    make_service(site, service_type="oat", name="Rapid access OAT clinic")
    make_staff(site, role="nurse", username="nina")
    client = make_client(site, code=CODE)
    week_ago = utcnow() - timedelta(days=7)
    db.session.add(OverdoseResponse(site_id=site.id, client_id=client.id, kind="opioid",
                                    source="booth", started_at=week_ago,
                                    closed_at=week_ago + timedelta(minutes=25),
                                    outcome="recovered_on_site"))
    db.session.commit()

    screen = LiveScreen(tablet.new_page())
    page = screen.page
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, live_server.url, "nina")
    screen.wait_until_live()

    # Check the client in: the panel under the check-in shows what to offer, and why.
    page.get_by_label("Client code").fill(CODE)
    page.get_by_test_id("checkin-submit").tap()
    # The overdose shows as a flag first; a second tap checks the client in.
    expect(page.get_by_text("Overdose in the last 30 days")).to_be_visible()
    page.get_by_test_id("checkin-submit").tap()
    expect(page.get_by_test_id("checkin-done")).to_contain_text(CODE)
    # The offers fold to one line under the check-in; a tap opens them, with their reasons.
    # The line loads after the check-in answer: on a busy test machine that takes a while.
    line = page.get_by_test_id("offers-open")
    expect(line).to_contain_text("Opioid agonist treatment", timeout=3 * TIMEOUT_MS)
    shot(page, output_dir / "0-checked-in.png")
    line.tap()
    card = page.locator('[data-testid="suggestion-card"][data-service-type="oat"]')
    expect(card).to_contain_text("Opioid agonist treatment")
    day = week_ago.astimezone(ZoneInfo(site.timezone))
    expect(card.get_by_test_id("suggestion-reason")).to_have_text(
        f"Overdose on {day.day} {day:%b %Y}, not on OAT: OAT cuts the risk of another")
    expect(page.get_by_test_id("suggestion-card")).to_have_count(3)  # at most three
    shot(page, output_dir / "1-suggestions.png")

    # Offered, then accepted: the dialog asks where to and for consent.
    card.get_by_test_id("offer-offered").tap()
    expect(card.get_by_test_id("offer-accepted")).to_be_visible()
    card.get_by_test_id("offer-accepted").tap()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Rapid access OAT clinic")
    dialog.get_by_test_id("save-referral").tap()
    expect(dialog).to_contain_text("Record that the client agreed to this referral.")
    dialog.get_by_test_id("referral-consent").tap()
    shot(page, output_dir / "2-accept-dialog.png")
    dialog.get_by_test_id("save-referral").tap()
    # Back to the offers, the accepted one answered.
    expect(dialog.get_by_test_id("offers-answered")).to_contain_text(
        "Opioid agonist treatment (OAT) accepted (follow up")
    expect(page.locator('[data-testid="suggestion-card"][data-service-type="oat"]')) \
        .to_have_count(0)
    shot(page, output_dir / "3-accepted.png")
    dialog.get_by_role("button", name="Close").tap()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_test_id("offers-open")).not_to_contain_text("Opioid agonist treatment")

    referral = db.session.execute(db.select(Referral)).scalar_one()
    assert referral.consent_given and referral.service.name == "Rapid access OAT clinic"

    # Not due yet: the follow-up list is empty.
    page.goto(f"{live_server.url}/sites/east/referrals/follow-ups")
    expect(page.get_by_test_id("follow-up-count")).to_have_text("0")

    # A week later (the referral moved back in time), the daily job lists it as due.
    referral.referred_at -= timedelta(days=7)
    referral.follow_up_due -= timedelta(days=7)
    db.session.commit()
    assert service.list_due_follow_ups(now=utcnow()) == 1
    page.reload()
    row = page.get_by_test_id("follow-up")
    expect(row).to_contain_text(CODE)
    expect(row).to_contain_text("Rapid access OAT clinic")
    shot(page, output_dir / "4-follow-up-due.png")
    row.get_by_role("button", name="Presented for assessment").tap()
    expect(page.get_by_test_id("follow-up-count")).to_have_text("0")
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).outcome == "presented"
    # The refused submit (no consent) is the one failed request; nothing else went wrong.
    errors = screen.unexpected_console()
    assert all("422" in e or "htmx:responseError" in e for e in errors), errors
    assert len(errors) <= 2, errors
