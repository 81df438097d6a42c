"""An alarm in real Chromium: a 3-second check comes due on the nurse's tablet and sounds there;
"Silence" pauses the tablet only until the next level; unowned, it reaches the supervisor's
dashboard at level 2 (watching two sites, whose links say which has an alarm nobody owns);
"I'm on it" on the tablet silences both screens and names the owner; the client leaving the
booth clears it everywhere. An alarm already at its highest level, silenced,
sounds again once the grace is over."""

from datetime import timedelta

import pytest
from factories import make_site, make_staff
from live_helpers import TIMEOUT_MS, LiveScreen, sign_in
from playwright.sync_api import expect

from srs.auth.service import Actor
from srs.booths import service
from srs.common import utcnow
from srs.extensions import db

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHECK_SECONDS = 3
GRACE_SECONDS = 10
# The grace shortened for the last alarm, so that its pause runs out quickly.
SHORT_GRACE_SECONDS = 3
# Due time + one scan (about a second) + the socket and the re-fetch, on a loaded machine.
ALARM_MS = 8000
# The three alarm sounds (high, medium, low) fetched by the page.
SOUNDS_AT_HAND = """() => new Set(performance.getEntriesByType("resource")
  .map(entry => new URL(entry.name).pathname)
  .filter(path => path.startsWith("/static/sounds/alarm-"))).size === 3"""


def test_a_check_due_sounds_escalates_and_is_owned(live_server, tablet, browser, output_dir):
    site = make_site(slug="east", name="East Side", booths=2,
                     booth_check_interval_seconds=CHECK_SECONDS,
                     escalation_grace_seconds=GRACE_SECONDS)
    nurse = make_staff(site, role="nurse", username="nina")
    # Sam supervises a second, bigger site too, shown first (by name): East is below it.
    other = make_site(slug="aldgate", name="Aldgate", booths=20)
    make_staff(role="supervisor", username="sam", roles=[(other, "supervisor"),
                                                         (site, "supervisor")])

    floor = LiveScreen(tablet.new_page())
    floor.page.set_default_timeout(TIMEOUT_MS)
    sign_in(floor.page, live_server.url, "nina")
    floor.wait_until_live()
    # Before any alarm, once the page is idle, the tablet has every alarm sound at hand.
    floor.page.wait_for_function(SOUNDS_AT_HAND)
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    board = LiveScreen(context.new_page())
    board.page.set_default_timeout(TIMEOUT_MS)
    sign_in(board.page, live_server.url, "sam")
    board.page.goto(f"{live_server.url}/supervise")
    board.wait_until_live()

    # The client goes into booth B1: the first check is due in 3 seconds.
    actor = Actor.of(nurse)
    visit = service.check_in(site, code="F-ABCD-1984", handle="Sparrow", actor=actor,
                             actor_roles={"nurse"}, now=utcnow())
    service.assign_booth(visit, site.booths[0], actor=actor, now=utcnow())
    # Set up outside the server (no live hint from here): both screens load the floor anew.
    for screen in (floor, board):
        screen.page.reload()
        screen.wait_until_live()

    tablet_alarm = floor.page.locator('[data-testid="alarm"]')
    expect(tablet_alarm).to_have_count(1, timeout=ALARM_MS)
    expect(tablet_alarm).to_have_attribute("data-priority", "medium")
    expect(tablet_alarm).to_contain_text("Booth check due")
    expect(tablet_alarm).to_contain_text("F-ABCD-1984")
    expect(floor.page.locator("body")).to_have_attribute("data-alarm-playing", "medium",
                                                         timeout=ALARM_MS)
    expect(floor.page.locator('[data-testid="booth-next-check"]')).to_contain_text("due now")
    floor.page.screenshot(path=output_dir / "tablet-alarm-level-1.png")

    # "Silence" quiets this tablet without taking the alarm: still on screen, still nobody's.
    floor.page.get_by_test_id("silence").tap()
    silenced = floor.page.get_by_test_id("silenced")
    expect(silenced).to_contain_text("Silenced, ")
    expect(floor.page.locator("body")).not_to_have_attribute("data-alarm-playing", "medium")
    expect(tablet_alarm).to_have_attribute("data-acknowledged", "0")
    expect(tablet_alarm.get_by_test_id("acknowledge")).to_be_visible()

    # Level 1 is the floor's: the dashboard lists it but stays quiet.
    dashboard_alarm = board.page.locator('[data-testid="alarm"]')
    expect(dashboard_alarm).to_have_count(1)
    # Where it is: the sites' links mark East, and a bar on screen wherever the page is
    # scrolled leads there.
    east_link, aldgate_link = (
        board.page.locator(f'[data-testid="site-nav"][data-site-nav="{s.id}"]')
        for s in (site, other))
    expect(east_link.get_by_test_id("site-nav-alarms")).to_have_text("1 alarm")
    expect(aldgate_link.get_by_test_id("site-nav-alarms")).to_be_hidden()
    board.page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    assert board.page.evaluate("() => window.scrollY") > 200, "the page scrolled"
    bar = board.page.get_by_test_id("site-alarm-bar")
    expect(bar).to_be_in_viewport()
    expect(bar.locator("a")).to_have_text([f"{site.name} · 1"])
    board.page.evaluate("() => window.scrollTo(0, 0)")
    expect(dashboard_alarm.locator('[data-testid="alarm-level"]')).to_contain_text("Level 1")
    assert board.page.locator("body").get_attribute("data-alarm-playing") is None

    # Nobody took it: after the grace it is level 2, high, and the dashboard sounds too.
    expect(dashboard_alarm.locator('[data-testid="alarm-level"]')).to_contain_text(
        "Level 2", timeout=GRACE_SECONDS * 1000 + ALARM_MS)
    expect(dashboard_alarm).to_have_attribute("data-priority", "high")
    expect(board.page.locator("body")).to_have_attribute("data-alarm-playing", "high",
                                                         timeout=ALARM_MS)
    # By the next level the tablet sounds again: a silence never outlasts the grace.
    expect(floor.page.locator("body")).to_have_attribute("data-alarm-playing", "high",
                                                         timeout=ALARM_MS)
    expect(silenced).to_be_hidden()
    board.page.screenshot(path=output_dir / "dashboard-alarm-level-2.png")

    # The nurse takes it on the tablet: both screens go quiet and say who owns it.
    floor.page.locator('[data-testid="acknowledge"]').click()
    owner = f"Owned by {nurse.display_name}"
    expect(floor.page.locator('[data-testid="alarm-owner"]')).to_have_text(owner)
    expect(board.page.locator('[data-testid="alarm-owner"]')).to_have_text(owner,
                                                                           timeout=ALARM_MS)
    expect(floor.page.locator("body")).not_to_have_attribute("data-alarm-playing", "high")
    expect(board.page.locator("body")).not_to_have_attribute("data-alarm-playing", "high")
    expect(east_link.get_by_test_id("site-nav-alarms")).to_be_hidden()  # someone has it
    expect(bar).to_be_hidden()
    assert floor.page.locator("body").get_attribute("data-alarm-playing") is None
    assert board.page.locator("body").get_attribute("data-alarm-playing") is None
    floor.page.screenshot(path=output_dir / "tablet-alarm-owned.png")
    board.page.screenshot(path=output_dir / "dashboard-alarm-owned.png")

    # The client leaves the booth (under More… on the tile): the condition clears, and the
    # alarm leaves every screen.
    floor.page.locator('[data-testid="booth-more"]').click()
    floor.page.locator('[data-testid="leaves-booth"]').click()
    expect(floor.page.locator('[data-testid="alarm"]')).to_have_count(0)
    expect(board.page.locator('[data-testid="alarm"]')).to_have_count(0, timeout=ALARM_MS)
    expect(floor.page.locator('[data-testid="aftercare-next-check"]')).to_contain_text("left")

    # An alarm at its highest level escalates no further, so nothing but the grace ends its
    # silence. (The grace is shortened, and the client came in long enough ago for their
    # missed check to be at level 3 when it is first seen.)
    site.escalation_grace_seconds = SHORT_GRACE_SECONDS
    db.session.commit()
    came_in = utcnow() - timedelta(seconds=CHECK_SECONDS + 3 * SHORT_GRACE_SECONDS)
    late = service.check_in(site, code="M-WXYZ-1990", handle="Wren", actor=actor,
                            actor_roles={"nurse"}, now=came_in)
    service.assign_booth(late, site.booths[1], actor=actor, now=came_in)
    top = floor.page.locator('[data-testid="alarm"][data-level="3"]')
    expect(top).to_contain_text("M-WXYZ-1990", timeout=ALARM_MS)
    expect(floor.page.locator("body")).to_have_attribute("data-alarm-playing", "high",
                                                         timeout=ALARM_MS)
    floor.page.get_by_test_id("silence").tap()
    expect(floor.page.locator("body")).not_to_have_attribute("data-alarm-playing", "high")
    # The mark counts the pause down, and then the alarm sounds again, still nobody's.
    expect(silenced).to_have_text("Silenced, 1 s")
    expect(floor.page.locator("body")).to_have_attribute("data-alarm-playing", "high",
                                                         timeout=3000)
    expect(silenced).to_be_hidden()
    expect(top).to_have_attribute("data-acknowledged", "0")
    floor.page.screenshot(path=output_dir / "tablet-alarm-sounds-after-silence.png")
    assert floor.unexpected_console() == [] and board.unexpected_console() == []
    context.close()
