"""Live updates in real Chromium: a nurse's floor tablet and a supervisor's dashboard follow a
change without reloading, and a screen that lost its connection says so and catches up."""

import pytest
from factories import make_site, make_staff
from live_helpers import (
    OFFLINE_SENDS,
    RECONNECT_TIMEOUT_MS,
    TIMEOUT_MS,
    LiveScreen,
    api_token,
    set_out_of_service,
    sign_in,
)
from playwright.sync_api import expect

from srs.auth.models import AuditEvent
from srs.common import utcnow
from srs.extensions import db

pytestmark = [pytest.mark.browser, pytest.mark.live]


class Screen(LiveScreen):
    def tile(self, booth):
        return self.page.locator(f'.tile[data-booth-id="{booth.id}"]')


@pytest.fixture
def site(live_server):
    return make_site(slug="east", name="East Side", booths=3)


@pytest.fixture
def floor(live_server, site, tablet) -> Screen:
    """The nurse's wall tablet, signed in and showing the floor."""
    make_staff(site, role="nurse", username="nina")
    screen = Screen(tablet.new_page())
    screen.page.set_default_timeout(TIMEOUT_MS)
    sign_in(screen.page, live_server.url, "nina")
    expect(screen.page.locator(".tile")).to_have_count(3)
    screen.wait_until_live()
    return screen


@pytest.fixture
def dashboard(live_server, site, browser) -> Screen:
    """The supervisor's desktop dashboard."""
    make_staff(site, role="supervisor", username="sam")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    screen = Screen(context.new_page())
    screen.page.set_default_timeout(TIMEOUT_MS)
    sign_in(screen.page, live_server.url, "sam")
    screen.page.get_by_role("link", name="Supervisor dashboard").click()
    expect(screen.page.get_by_role("heading", name="East Side")).to_be_visible()
    expect(screen.page.locator(".tile")).to_have_count(3)
    screen.wait_until_live()
    yield screen
    context.close()


@pytest.fixture
def token(site) -> str:
    """An integration's bearer token, held by the site's supervisor."""
    return api_token(make_staff(site, role="supervisor"))


def test_out_of_service_shows_on_floor_and_dashboard_without_reload(
        live_server, site, floor, dashboard, token, output_dir):
    booth = site.booths[1]
    for screen in (floor, dashboard):
        expect(screen.tile(booth)).to_have_class("tile tile--available")

    set_out_of_service(live_server.url, token, booth, "Needle bin full")

    for screen in (floor, dashboard):
        expect(screen.tile(booth)).to_have_class("tile tile--out_of_service")
        expect(screen.tile(booth)).to_contain_text("Needle bin full")
        expect(screen.tile(site.booths[0])).to_have_class("tile tile--available")
        assert screen.was_not_reloaded()
    dashboard.page.screenshot(path=output_dir / "supervisor-dashboard.png", full_page=True)
    assert (output_dir / "supervisor-dashboard.png").stat().st_size > 0
    for screen in (floor, dashboard):
        assert screen.console.errors == []


def test_a_screen_that_lost_its_connection_says_so_and_catches_up(
        live_server, site, floor, dashboard, token):
    booth = site.booths[2]
    # Two booths to clean while the tablet is offline.
    dirty, second = site.booths[0], site.booths[1]
    dirty.needs_cleaning_since = second.needs_cleaning_since = utcnow()
    db.session.commit()
    floor.page.evaluate("() => document.body.dispatchEvent(new CustomEvent('srs:resync'))")
    expect(floor.tile(dirty)).to_have_class("tile tile--needs_cleaning")
    expect(floor.tile(second)).to_have_class("tile tile--needs_cleaning")
    screens = (floor, dashboard)
    for screen in screens:
        expect(screen.page.locator("#connection-banner")).to_be_hidden()
        # The network drops: no new connection can be made, the open one is gone.
        screen.page.context.set_offline(True)
        screen.page.evaluate("() => window.srsSocket.io.engine.close()")
    for screen in screens:
        expect(screen.page.locator("#connection-banner")).to_be_visible()
        expect(screen.page.locator("#connection-banner")).to_contain_text("Connection lost")

    set_out_of_service(live_server.url, token, booth, "Door lock broken")
    for screen in screens:
        # No hint can reach a screen without a socket: it still shows what it last knew.
        expect(screen.tile(booth)).to_have_class("tile tile--available")
    # Taps made offline are kept, said to be waiting (for which booth), and not lost.
    pending = floor.page.get_by_test_id("pending-tap")
    floor.tile(dirty).get_by_role("button", name="Cleaned").tap()
    expect(pending).to_have_text(["B1 Cleaned: not sent yet, it goes when the connection "
                                  "returns."])
    floor.tile(second).get_by_role("button", name="Cleaned").tap()
    expect(pending).to_have_count(2)
    floor.page.wait_for_timeout(10_000)  # ten seconds offline: the taps are still kept
    expect(pending.nth(0)).to_contain_text("B1 Cleaned: not sent yet")
    expect(pending.nth(1)).to_contain_text("B2 Cleaned: not sent yet")
    expect(floor.tile(dirty)).to_have_class("tile tile--needs_cleaning")
    # When the connection returns, the server (or what stands in front of it) fails to
    # answer B2's tap once.
    floor.page.route(f"**/floor/booths/{second.id}/clean",
                     lambda route: route.fulfill(status=503, body="Service Unavailable"),
                     times=1)

    for screen in screens:
        screen.page.context.set_offline(False)
    for screen in screens:
        expect(screen.page.locator("#connection-banner")).to_be_hidden(
            timeout=RECONNECT_TIMEOUT_MS)
        # On reconnect the screen re-fetches everything it shows.
        expect(screen.tile(booth)).to_have_class("tile tile--out_of_service")
        expect(screen.tile(booth)).to_contain_text("Door lock broken")
        # B1's kept tap went once the connection returned: recorded once, seen everywhere.
        expect(screen.tile(dirty)).to_have_class("tile tile--available")
        assert screen.was_not_reloaded()
    # B2's is not lost silently: shown as not recorded, with Try again; the booth still
    # needs cleaning on every screen.
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("Not recorded: B2 Cleaned. The server answered 503.")
    for screen in screens:
        expect(screen.tile(second)).to_have_class("tile tile--needs_cleaning")
    pending.get_by_role("button", name="Try again").tap()
    expect(pending).to_have_count(0)
    for screen in screens:
        expect(screen.tile(second)).to_have_class("tile tile--available")
    # What failed while offline is all htmx reported: the tablet's two kept taps (and the
    # dashboard's status poll, which asks every 10 s) could not be sent, and the browser
    # logged B2's 503; nothing else.
    for screen in screens:
        assert {e.split(",")[0] for e in screen.unexpected_console()} <= OFFLINE_SENDS | {
            "console: Failed to load resource: the server responded with a status of 503 "
            "(Service Unavailable)"}
    assert sorted(e.split(",")[0] for e in floor.unexpected_console()) == sorted(
        [*OFFLINE_SENDS, *OFFLINE_SENDS, "console: Failed to load resource: the server "
         "responded with a status of 503 (Service Unavailable)"])
    # Each tap recorded exactly once, the retried one included.
    db.session.rollback()
    cleaned = db.session.execute(db.select(AuditEvent).filter_by(
        action="booth_cleaned")).scalars().all()
    assert sorted(event.entity_id for event in cleaned) == sorted([str(dirty.id),
                                                                   str(second.id)])
