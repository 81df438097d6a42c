"""The shared tablet's lock in real Chromium: idle lock, PIN keypad, PIN lockout, switching
person."""

import re
from datetime import timedelta

import pytest
from factories import PIN, make_site, make_staff
from live_helpers import WAIT_SECONDS, ConsoleWatch, sign_in, submit_login_form, tap_pin
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from srs.auth.models import LoginSession
from srs.common import utcnow
from srs.extensions import db
from srs.sites.models import TIMERS

pytestmark = [pytest.mark.browser, pytest.mark.live]

LOCK_AFTER = TIMERS["lock_after_seconds"].minimum
WRONG_PIN = "135790"
TIMEOUT_MS = WAIT_SECONDS * 1000


@pytest.fixture
def site(live_server):
    """A site locking at its shortest idle time, three booths and a nurse called Nina Park."""
    site = make_site(slug="east", booths=3, lock_after_seconds=LOCK_AFTER)
    nurse = make_staff(site, role="nurse", username="nina")
    nurse.display_name = "Nina Park"
    db.session.commit()
    return site


@pytest.fixture
def page(tablet) -> Page:
    page = tablet.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def login_sessions(username: str) -> list[LoginSession]:
    """This person's login sessions as the database has them now, oldest first."""
    db.session.rollback()
    return list(db.session.execute(
        db.select(LoginSession).join(LoginSession.staff).filter_by(username=username)
        .order_by(LoginSession.id)).scalars())


def expect_floor(page: Page, who: str = "Nina Park") -> None:
    expect(page).to_have_url(re.compile(r"/sites/east/floor$"), timeout=TIMEOUT_MS)
    expect(page.locator(".tile")).to_have_count(3)
    expect(page.get_by_test_id("current-user")).to_have_text(who)


def expect_lock_screen(page: Page, timeout_ms: int = TIMEOUT_MS) -> None:
    expect(page.get_by_role("heading", name="Screen locked")).to_be_visible(timeout=timeout_ms)
    expect(page.get_by_test_id("locked-user")).to_have_text("Nina Park")


def lock_by_hand(page: Page) -> None:
    page.get_by_role("button", name="Lock").tap()
    expect_lock_screen(page)


def test_idle_tablet_locks_itself_and_the_pin_unlocks_it(live_server, site, page, output_dir):
    console = ConsoleWatch(page)
    sign_in(page, live_server.url, "nina")
    expect_floor(page)
    page.screenshot(path=output_dir / "floor.png")

    # Nobody touches the tablet: srs.js locks it once the site's idle time has passed.
    expect_lock_screen(page, timeout_ms=(LOCK_AFTER + 15) * 1000)
    expect(page).to_have_url(re.compile(r"/lock\?next=/sites/east/floor$"))
    (locked,) = login_sessions("nina")
    assert locked.locked_at is not None and locked.ended_at is None
    page.screenshot(path=output_dir / "lock-screen.png")

    tap_pin(page, PIN)
    expect_floor(page)
    assert login_sessions("nina")[0].locked_at is None
    for name in ("floor.png", "lock-screen.png"):
        assert (output_dir / name).stat().st_size > 0
    assert console.errors == []  # no CSP violation, no script error


def test_idle_session_locks_on_the_next_touch_and_a_wrong_pin_is_refused(live_server, site,
                                                                          page):
    sign_in(page, live_server.url, "nina")
    expect_floor(page)
    (login,) = login_sessions("nina")
    login.last_active_at = utcnow() - timedelta(seconds=LOCK_AFTER + 30)
    db.session.commit()

    try:
        page.reload()  # the next thing the nurse does, after walking away
    except PlaywrightError as error:
        # The scheduler's idle check (every 5 s) may lock the session first: its socket is
        # cut and the page reloads itself, which aborts this reload. Either way, the lock.
        assert "ERR_ABORTED" in str(error), error
    expect_lock_screen(page)

    tap_pin(page, WRONG_PIN)
    expect(page.get_by_test_id("lock-message")).to_contain_text(
        "Wrong PIN. 4 attempts left")
    expect_lock_screen(page)
    expect(page.locator("#pin")).to_have_value("")

    tap_pin(page, PIN)
    expect_floor(page)


def test_a_pause_on_the_lock_screen_keeps_the_digits_typed_so_far(live_server, site, page):
    page.clock.install()
    sign_in(page, live_server.url, "nina")
    expect_floor(page)
    lock_by_hand(page)

    tap_pin(page, PIN[:3])
    page.clock.fast_forward((LOCK_AFTER + 15) * 1000)  # the nurse looks away, then goes on
    tap_pin(page, PIN[3:])

    expect_floor(page)


def test_five_wrong_pins_sign_the_screen_out(live_server, site, page):
    sign_in(page, live_server.url, "nina")
    expect_floor(page)
    lock_by_hand(page)

    for left in (4, 3, 2, 1):
        tap_pin(page, WRONG_PIN)
        expect(page.get_by_test_id("lock-message")).to_contain_text(
            f"{left} attempt{'s' if left > 1 else ''} left")
    tap_pin(page, WRONG_PIN)

    expect(page.get_by_test_id("login-message")).to_contain_text(
        "Too many wrong PINs: this screen is signed out.")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    (ended,) = login_sessions("nina")
    assert ended.ended_at is not None
    page.goto(f"{live_server.url}/sites/east/floor")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_another_person_signs_in_from_the_lock_screen(live_server, site, page):
    make_staff(site, role="nurse", username="omar")
    page.clock.install()
    sign_in(page, live_server.url, "nina")
    expect_floor(page)
    lock_by_hand(page)

    page.get_by_role("link", name="Not Nina Park? Sign in").tap()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.clock.fast_forward((LOCK_AFTER + 15) * 1000)  # Omar takes his time
    submit_login_form(page, "omar")

    expect_floor(page, who="omar")
    (nina_login,) = login_sessions("nina")
    assert nina_login.ended_at is not None
    (omar_login,) = login_sessions("omar")
    assert omar_login.ended_at is None and omar_login.locked_at is None


def test_touch_targets_are_at_least_48_px_tall(live_server, site, page):
    def height(locator) -> float:
        expect(locator).to_be_visible()
        # The page's elements exist before its stylesheet has arrived (a form's redirect
        # does not wait for it): measure the page as it is shown, styled.
        locator.page.wait_for_load_state("load")
        return locator.bounding_box()["height"]

    page.goto(f"{live_server.url}/login")
    assert height(page.get_by_role("button", name="Sign in")) >= 48
    submit_login_form(page, "nina")
    expect_floor(page)
    assert height(page.get_by_role("button", name="Lock")) >= 48
    lock_by_hand(page)
    keys = page.locator(".keypad__key")
    expect(keys).to_have_count(12)
    assert [height(key) >= 48 for key in keys.all()] == [True] * 12
    assert height(page.get_by_role("button", name="Unlock")) >= 48
