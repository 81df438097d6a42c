"""No alarm unseen, in real Chromium: a locked tablet where a second nurse takes an alarm with
their own PIN, and a wall display that never locks during an alarm and is cut off when
revoked."""

import re

import pytest
from factories import make_site, make_staff
from live_helpers import TIMEOUT_MS, LiveScreen, sign_in, tap_pin
from playwright.sync_api import expect

from srs.alerts.models import Alert
from srs.auth.models import Display, LoginSession
from srs.auth.service import Actor
from srs.booths import service
from srs.common import utcnow
from srs.extensions import db
from srs.sites.models import TIMERS

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHECK_SECONDS = TIMERS["booth_check_interval_seconds"].minimum
LOCK_AFTER = TIMERS["lock_after_seconds"].minimum
# Level 1 all along: nothing escalates or re-sounds while a test looks at its screens.
GRACE_SECONDS = TIMERS["escalation_grace_seconds"].maximum
# Due time + one scan (about a second) + the lock screen's poll or the socket, on a busy machine.
ALARM_MS = 10_000
OMARS_PIN = "975312"


@pytest.fixture
def east(live_server):
    """Site "east" with the shortest check and idle times; nurses Nina and Omar, supervisor
    Sam, admin Ada."""
    site = make_site(slug="east", name="East Side", booths=2,
                     booth_check_interval_seconds=CHECK_SECONDS, lock_after_seconds=LOCK_AFTER,
                     escalation_grace_seconds=GRACE_SECONDS)
    people = {"nina": make_staff(site, role="nurse", username="nina"),
              "omar": make_staff(site, role="nurse", username="omar", pin=OMARS_PIN),
              "sam": make_staff(site, role="supervisor", username="sam"),
              "ada": make_staff(site, role="admin", username="ada")}
    for username, name in (("nina", "Nina Park"), ("omar", "Omar Diaz"), ("sam", "Sam Lee"),
                           ("ada", "Ada Admin")):
        people[username].display_name = name
    db.session.commit()
    return {"site": site, **people}


def client_in_booth(east) -> None:
    """A client goes into B1: their first check comes due in CHECK_SECONDS."""
    actor = Actor.of(east["nina"])
    visit = service.check_in(east["site"], code="F-ABCD-1984", handle="Sparrow", actor=actor,
                             actor_roles={"nurse"}, now=utcnow())
    service.assign_booth(visit, east["site"].booths[0], actor=actor, now=utcnow())


def screen(context) -> LiveScreen:
    live = LiveScreen(context.new_page())
    live.page.set_default_timeout(TIMEOUT_MS)
    return live


def test_a_second_nurse_takes_an_alarm_from_the_locked_tablet_with_their_pin(
        live_server, east, tablet, browser, output_dir):
    floor = screen(tablet)
    sign_in(floor.page, live_server.url, "nina")
    expect(floor.page).to_have_url(re.compile(r"/sites/east/floor$"))
    desk = browser.new_context(viewport={"width": 1920, "height": 1080})
    board = screen(desk)
    sign_in(board.page, live_server.url, "sam")
    board.page.goto(f"{live_server.url}/supervise")
    board.wait_until_live()

    # Nina walks away and locks the tablet; a check comes due while it is locked.
    floor.page.get_by_role("button", name="Lock").tap()
    expect(floor.page.get_by_test_id("locked-user")).to_have_text("Nina Park")
    client_in_booth(east)
    board.page.reload()  # the booth was filled from outside the server: show it
    board.wait_until_live()
    alarm = floor.page.get_by_test_id("lock-alarm")
    expect(alarm).to_have_count(1, timeout=ALARM_MS)
    expect(alarm).to_contain_text("Booth check due")
    expect(alarm).to_contain_text("F-ABCD-1984")
    # The locked tablet sounds it, as the floor would.
    expect(floor.page.locator("body")).to_have_attribute("data-alarm-playing", "medium",
                                                         timeout=ALARM_MS)
    floor.page.screenshot(path=output_dir / "1-tablet-locked-with-alarm.png")

    # Omar takes it: "I'm on it", his name, his PIN.
    alarm.get_by_test_id("lock-acknowledge").tap()
    expect(floor.page.get_by_text("Who is taking this alarm?")).to_be_visible()
    expect(floor.page.locator('[data-testid="lock-alarm"].is-picked')).to_have_count(1)
    floor.page.screenshot(path=output_dir / "2-tablet-who-takes-it.png")
    floor.page.get_by_test_id("lock-person").filter(has_text="Omar Diaz").tap()
    expect(floor.page.get_by_test_id("switching-to")).to_have_text("Omar Diaz")
    floor.page.screenshot(path=output_dir / "3-tablet-omars-pin.png")
    tap_pin(floor.page, OMARS_PIN)

    # The tablet is Omar's now, and every screen names him as the owner.
    expect(floor.page).to_have_url(re.compile(r"/sites/east/floor$"))
    expect(floor.page.get_by_test_id("current-user")).to_have_text("Omar Diaz")
    owner = "Owned by Omar Diaz"
    expect(floor.page.get_by_test_id("alarm-owner")).to_have_text(owner)
    expect(board.page.get_by_test_id("alarm-owner")).to_have_text(owner, timeout=ALARM_MS)
    expect(floor.page.locator("body")).not_to_have_attribute("data-alarm-playing", "medium")
    floor.page.screenshot(path=output_dir / "4-tablet-omar-owns-it.png")
    board.page.screenshot(path=output_dir / "5-dashboard-omar-owns-it.png")

    db.session.rollback()
    (alert,) = db.session.execute(db.select(Alert)).scalars()
    assert alert.acknowledged_by == east["omar"].id
    sessions = {s.staff_id: s for s in db.session.execute(db.select(LoginSession)).scalars()
                if s.staff_id in (east["nina"].id, east["omar"].id)}
    assert sessions[east["nina"].id].ended_at is not None
    assert sessions[east["omar"].id].ended_at is None
    assert floor.unexpected_console() == [] and board.unexpected_console() == []
    desk.close()


def test_a_wall_display_stays_unlocked_through_an_alarm_and_is_cut_off_when_revoked(
        live_server, east, browser, output_dir):
    # Ada registers the display on her site's page and reads its link, shown once.
    office = browser.new_context(viewport={"width": 1440, "height": 900})
    admin = screen(office)
    sign_in(admin.page, live_server.url, "ada")
    admin.page.get_by_test_id("displays-link").click()
    admin.page.get_by_label("Name").fill("After-care wall")
    admin.page.get_by_role("button", name="Register display").click()
    link = admin.page.get_by_test_id("display-link").input_value()
    assert re.fullmatch(rf"{live_server.url}/display/srsd_[A-Za-z0-9_-]+", link)
    admin.page.screenshot(path=output_dir / "1-admin-registers-the-display.png")

    # The wall opens the link: the dashboard, live, with sound allowed from the start.
    wall_context = browser.new_context(viewport={"width": 1920, "height": 1080})
    wall = screen(wall_context)
    wall.page.goto(link)
    expect(wall.page).to_have_url(re.compile(r"/supervise$"))
    expect(wall.page.get_by_test_id("current-display")).to_have_text(
        "Wall display · After-care wall")
    wall.wait_until_live()
    expect(wall.page.locator("body")).to_have_attribute("data-sound-allowed", "yes")
    expect(wall.page.get_by_test_id("display-sound-blocked")).to_be_hidden()

    # An alarm: the wall shows and sounds it (every level), and has nothing to tap.
    client_in_booth(east)
    wall.page.reload()  # the booth was filled from outside the server: show it
    wall.wait_until_live()
    alarm = wall.page.get_by_test_id("alarm")
    expect(alarm).to_have_count(1, timeout=ALARM_MS)
    expect(wall.page.locator("body")).to_have_attribute("data-alarm-playing", "medium",
                                                        timeout=ALARM_MS)
    expect(wall.page.get_by_test_id("acknowledge")).to_have_count(0)

    # Past the site's idle time, nobody touching it: still the dashboard, still live, still
    # sounding; the page never reloaded and never saw the lock screen.
    wall.page.wait_for_timeout((LOCK_AFTER + 5) * 1000)
    expect(wall.page).to_have_url(re.compile(r"/supervise$"))
    assert wall.was_not_reloaded()
    assert wall.page.evaluate("() => window.srsSocket.connected")
    expect(alarm).to_have_count(1)
    expect(wall.page.locator("body")).to_have_attribute("data-alarm-playing", "medium")
    wall.page.screenshot(path=output_dir / "2-wall-display-alarm-past-lock-time.png")

    # Ada revokes it (her own screen locked meanwhile: she signs in again). Its socket is
    # cut at once, and the wall falls to the sign-in page.
    sign_in(admin.page, live_server.url, "ada")
    admin.page.goto(f"{live_server.url}/sites/east/displays")
    admin.page.get_by_test_id("revoke-display").click()
    expect(admin.page.get_by_test_id("display-row")).to_contain_text("revoked")
    expect(wall.page.get_by_role("button", name="Sign in")).to_be_visible(timeout=TIMEOUT_MS)
    wall.page.screenshot(path=output_dir / "3-wall-display-revoked.png")
    admin.page.screenshot(path=output_dir / "4-admin-revoked.png")
    db.session.rollback()
    (display,) = db.session.execute(db.select(Display)).scalars()
    assert display.revoked_at is not None and display.last_seen_at is not None
    wall.page.goto(link)
    expect(wall.page.get_by_role("heading", name="Not found")).to_be_visible()
    # A socket the server cuts (Ada's at her lock, the wall's at its revocation) may get a
    # change's frame written just after its close frame, which Chromium logs; the screen
    # already shows the sign-in page by then (a known race in the cut, left open).
    cut = "Data frame received after close"
    assert [e for e in admin.unexpected_console() if cut not in e] == []
    assert [e for e in wall.unexpected_console() if "404" not in e and cut not in e] == []
    office.close()
    wall_context.close()
