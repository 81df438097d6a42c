"""A whole visit in real Chromium: a nurse's tablet (1280x800, touch) runs it, the supervisor's
dashboard (1920x1080) shows each step within 2 s, and a dashboard that lost its connection is
right again once it is back."""

from datetime import timedelta

import pytest
from factories import make_booth, make_site, make_staff
from live_helpers import (
    RECONNECT_TIMEOUT_MS,
    FloorScreen,
    assign,
    check_in,
    shot,
    sign_in,
    tap,
)
from playwright.sync_api import Page, expect

from srs.auth.service import Actor
from srs.booths import checks, service
from srs.booths.models import Consumption, Visit
from srs.common import utcnow
from srs.extensions import db
from srs.overdose import service as overdose

pytestmark = [pytest.mark.browser, pytest.mark.live]

STEP_MS = 5000  # the dashboard shows each step live; the floor benchmark measures how fast


@pytest.fixture
def site(live_server):
    # B1 and B2 inject, B3 is the smoking booth; a 2-minute after-care to count down.
    return make_site(slug="east", name="East Side", booths=3, min_observation_seconds=120)


@pytest.fixture
def tablet_screen(live_server, site, tablet) -> FloorScreen:
    make_staff(site, role="nurse", username="nina")
    screen = FloorScreen(tablet.new_page(), site)
    sign_in(screen.page, live_server.url, "nina")  # a nurse of one site lands on its floor
    expect(screen.page.locator(".tile")).to_have_count(3)
    screen.wait_until_live()
    return screen


@pytest.fixture
def dashboard(live_server, site, browser) -> FloorScreen:
    make_staff(site, role="supervisor", username="sam")
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    screen = FloorScreen(context.new_page(), site)
    sign_in(screen.page, live_server.url, "sam")
    screen.page.goto(f"{live_server.url}/supervise")
    expect(screen.page.get_by_role("heading", name="East Side")).to_be_visible()
    expect(screen.page.locator(".tile")).to_have_count(3)
    screen.wait_until_live()
    yield screen
    context.close()


# Records the label of every button that goes busy (disabled, aria-busy) from now on.
WATCH_BUSY = """() => {
  window.srsBusySeen = [];
  new MutationObserver(changes => changes.forEach(change => {
    const el = change.target;
    if (el.tagName === "BUTTON" && el.disabled && el.getAttribute("aria-busy") === "true") {
      window.srsBusySeen.push(el.textContent.trim());
    }
  })).observe(document.body, {attributes: true, subtree: true,
                               attributeFilter: ["disabled", "aria-busy"]});
}"""


def test_a_whole_visit_on_the_tablet_shows_on_the_dashboard(
        live_server, site, tablet_screen, dashboard, output_dir):
    tablet, page = tablet_screen, tablet_screen.page
    code = "F-ABCD-1984"

    # Check in a new code: it waits in the queue on both screens.
    check_in(tablet, code, handle="Sparrow")
    expect(tablet.fragment("queue")).to_contain_text(code)
    expect(dashboard.fragment("queue")).to_contain_text(code, timeout=STEP_MS)
    expect(dashboard.page.get_by_test_id("figure-waiting")).to_have_text("1", timeout=STEP_MS)

    # Tap the client, then a free booth.
    assign(tablet, code, "B1")
    expect(tablet.tile("B1")).to_contain_text("Sparrow")
    expect(dashboard.tile("B1")).to_have_class("tile tile--occupied", timeout=STEP_MS)
    expect(dashboard.tile("B1")).to_contain_text(code, timeout=STEP_MS)
    expect(dashboard.fragment("queue")).not_to_contain_text(code, timeout=STEP_MS)
    # The booth's time ticks in the browser, without asking the server.
    elapsed = tablet.tile("B1").get_by_test_id("booth-elapsed")
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first, timeout=3000)

    # Record what was used (under More… on the tile): big toggles, no keyboard.
    tap(tablet.tile("B1").get_by_role("button", name="More…"))
    dialog = page.locator(".dialog")
    tap(dialog.get_by_role("button", name="Record use"))
    expect(dialog).to_be_visible()
    expect(dialog.locator("label", has_text="Smokes")).to_have_count(0)  # an injection booth
    tap(dialog.locator("label", has_text="Fentanyl").first)
    tap(dialog.locator("label", has_text="Injects"))
    tap(dialog.locator('label[for="use-fentanyl_strip-positive"]'))
    shot(page, output_dir / "tablet-record-use.png")
    page.evaluate(WATCH_BUSY)
    dialog.get_by_test_id("save-use").dblclick()  # a double tap
    expect(dialog).to_have_count(0)
    # Its second tap did not fall through the closing dialog onto what lay beneath it.
    page.wait_for_timeout(700)
    expect(page.locator(".dialog")).to_have_count(0)
    # The button said it was working and could not be tapped again; one record, no refusal.
    assert "Saving…" in page.evaluate("() => window.srsBusySeen")
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Consumption.id))) == 1
    expect(page.locator("#flash")).to_be_empty()
    expect(tablet.tile("B1").get_by_test_id("booth-use")).to_have_text("Fentanyl · Injects")
    expect(dashboard.tile("B1")).to_contain_text("Fentanyl · Injects", timeout=STEP_MS)
    expect(dashboard.tile("B1")).to_contain_text("Fentanyl strip +", timeout=STEP_MS)

    # A second client waits; the tablet as the nurse sees it mid-shift.
    check_in(tablet, "M-WXYZ-1990")
    expect(dashboard.fragment("queue")).to_contain_text("M-WXYZ-1990", timeout=STEP_MS)
    tap(tablet.fragment("queue").locator('[data-code="M-WXYZ-1990"]'))
    shot(page, output_dir / "tablet-assigning.png")
    tap(page.locator("[data-pick-cancel]"))
    expect(page.locator("[data-assign-hint]")).to_be_hidden()

    # Leaves the booth: after-care counts down, the booth needs cleaning.
    tap(tablet.tile("B1").get_by_role("button", name="More…"))
    tap(page.locator(".dialog").get_by_role("button", name="Leaves booth"))
    expect(tablet.fragment("aftercare")).to_contain_text(code)
    expect(dashboard.fragment("aftercare")).to_contain_text(code, timeout=STEP_MS)
    expect(dashboard.tile("B1")).to_have_class("tile tile--needs_cleaning", timeout=STEP_MS)
    countdown = dashboard.fragment("aftercare").get_by_test_id("aftercare-countdown")
    expect(countdown).to_contain_text("left")
    shown = countdown.inner_text()
    expect(countdown).not_to_have_text(shown, timeout=3000)
    shot(page, output_dir / "tablet-floor.png")
    shot(dashboard.page, output_dir / "dashboard.png", full_page=True)

    # Cleaned: free again.
    tap(tablet.tile("B1").get_by_role("button", name="Cleaned"))
    expect(tablet.tile("B1")).to_have_class("tile tile--available")
    expect(dashboard.tile("B1")).to_have_class("tile tile--available", timeout=STEP_MS)

    # Discharge from after-care before minimum observation ends: the tablet asks why first.
    tap(tablet.fragment("aftercare").get_by_role("button", name="Discharge"))
    expect(page.locator(".dialog")).to_contain_text("Minimum observation is not over")
    expect(tablet.fragment("aftercare")).to_contain_text(code)
    tap(page.locator(".dialog").get_by_role("button", name="Declined to stay"))
    expect(tablet.fragment("aftercare")).not_to_contain_text(code)
    expect(dashboard.fragment("aftercare")).not_to_contain_text(code, timeout=STEP_MS)
    expect(dashboard.page.get_by_test_id("figure-visits")).to_have_text("2", timeout=STEP_MS)

    # The dashboard loses its connection while the nurse carries on.
    dashboard.page.context.set_offline(True)
    dashboard.page.evaluate("() => window.srsSocket.io.engine.close()")
    expect(dashboard.page.locator("#connection-banner")).to_be_visible()
    assign(tablet, "M-WXYZ-1990", "B2")
    check_in(tablet, "TF-QRST-2001")
    expect(dashboard.tile("B2")).to_have_class("tile tile--available")  # no hint can reach it

    dashboard.page.context.set_offline(False)
    expect(dashboard.page.locator("#connection-banner")).to_be_hidden(
        timeout=RECONNECT_TIMEOUT_MS)
    # On reconnect it re-fetches everything it shows.
    expect(dashboard.tile("B2")).to_have_class("tile tile--occupied")
    expect(dashboard.tile("B2")).to_contain_text("M-WXYZ-1990")
    expect(dashboard.fragment("queue")).to_contain_text("TF-QRST-2001")
    expect(dashboard.fragment("queue")).not_to_contain_text("M-WXYZ-1990")
    expect(dashboard.page.get_by_test_id("figure-visits")).to_have_text("3")
    expect(dashboard.page.get_by_test_id("figure-in-use")).to_contain_text("1")
    assert dashboard.was_not_reloaded() and tablet.was_not_reloaded()
    shot(dashboard.page, output_dir / "dashboard-after-reconnect.png", full_page=True)
    shot(page, output_dir / "tablet-end.png")

    assert tablet.unexpected_console() == []
    # The dashboard was offline for a moment: its status poll may have fallen in it.
    assert dashboard.unexpected_console_besides_offline_sends() == []


def test_a_refusal_shows_in_the_flash_and_the_tablet_catches_up(
        live_server, site, tablet_screen, output_dir):
    """Another tablet takes the booth first: this one says so and shows the floor as it is."""
    tablet, page = tablet_screen, tablet_screen.page
    check_in(tablet, "F-ABCD-1984")
    tap(tablet.fragment("queue").locator('[data-code="F-ABCD-1984"]'))
    expect(page.locator("[data-assign-hint]")).to_contain_text("F-ABCD-1984")
    # Meanwhile another tablet takes B1, and no hint reaches this one before the tap.
    page.evaluate("() => window.srsSocket.disconnect()")
    booth = site.booths[0]
    other = service.check_in(site, code="M-WXYZ-1990", handle=None, actor=Actor.system(),
                             actor_roles={"nurse"}, now=utcnow())
    service.assign_booth(other, booth, actor=Actor.system(), now=utcnow())
    expect(tablet.tile("B1")).to_have_class("tile tile--available")

    tap(tablet.tile("B1").get_by_role("button", name="Assign here"))
    expect(page.locator("#flash")).to_contain_text("Booth B1 is already taken by M-WXYZ-1990")
    # The 409 makes the screen re-fetch: B1 shows who holds it, our client still waits.
    expect(tablet.tile("B1")).to_have_class("tile tile--occupied")
    expect(tablet.tile("B1")).to_contain_text("M-WXYZ-1990")
    expect(tablet.fragment("queue")).to_contain_text("F-ABCD-1984")
    shot(page, output_dir / "tablet-refused.png")
    tap(page.locator("#flash"))
    expect(page.locator("#flash")).to_be_empty()
    # The browser reports the refused request itself; nothing else may go wrong.
    assert all("409" in error for error in tablet.unexpected_console())


TOUCH_TARGETS = """() => Array.from(document.querySelectorAll(
    'button, .btn, label.toggle, .suggestion, input:not([type=hidden]):not(.toggle__input)'))
  .filter(el => el.offsetParent !== null)
  .map(el => { const r = el.getBoundingClientRect();
               return {text: (el.textContent || el.name || '').trim().slice(0, 30),
                       width: Math.round(r.width), height: Math.round(r.height)}; })
  .filter(box => box.width < 48 || box.height < 48)"""

# What a layout check names: an element's tag, id, classes and test id.
_NAME = """const name = el => [el.tagName.toLowerCase(), el.id && '#' + el.id,
  el.classList.length && '.' + Array.from(el.classList).join('.'),
  el.dataset.testid && '[' + el.dataset.testid + ']',
  (el.textContent || el.value || '').trim().replace(/\\s+/g, ' ').slice(0, 24)]
  .filter(Boolean).join(' ');
const seen = el => el.checkVisibility({visibilityProperty: true});"""

# Every element shown that lies, even in part, outside the 1280x800 screen (but for what a
# box that may scroll, ``scroller``, holds).
OFF_SCREEN = "(scroller) => {" + _NAME + """
  return Array.from(document.querySelectorAll('body *')).filter(seen)
      .filter(el => !(scroller && el.parentElement.closest(scroller))).flatMap(el => {
    const r = el.getBoundingClientRect();
    return r.width && r.height && (r.left < -0.5 || r.top < -0.5 || r.right > innerWidth + 0.5
      || r.bottom > innerHeight + 0.5) ? [name(el) + ' ' + [r.left, r.top, r.right, r.bottom]
      .map(Math.round)] : [];
  });
}"""

# Every element but ``scroller`` that scrolls its own content (a list cut off in a box).
SCROLLERS = "(scroller) => {" + _NAME + """
  return Array.from(document.querySelectorAll('body *')).filter(el =>
    !(scroller && el.matches(scroller)) && el.scrollHeight > el.clientHeight + 1
    && ['auto', 'scroll'].includes(getComputedStyle(el).overflowY)).map(name);
}"""

# Every pair of things to tap (or type in) in ``scope`` shown on top of each other, even by
# one pixel.
OVERLAPS = "(scope) => {" + _NAME + """
  const boxes = Array.from(document.querySelector(scope || 'body').querySelectorAll(
      'button, .btn, a[href], input:not([type=hidden]):not(.toggle__input), .toggle'))
    .filter(seen).map(el => [el, el.getBoundingClientRect()])
    .filter(([, r]) => r.width && r.height);
  const found = [];
  boxes.forEach(([a, ra], i) => boxes.slice(i + 1).forEach(([b, rb]) => {
    if (a.contains(b) || b.contains(a)) return;
    if (Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left) > 0.5
        && Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top) > 0.5) {
      found.push(name(a) + ' / ' + name(b));
    }
  }));
  return found;
}"""

BOX = "el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"


def intersects(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def assert_fits(page: Page, what: str, *, scroller: str = "") -> None:
    """The page is the screen: nothing beyond it, nothing scrolls but ``scroller``, no tap
    target on another."""
    assert page.evaluate(OFF_SCREEN, scroller) == [], what
    assert page.evaluate("() => document.scrollingElement.scrollHeight") <= 800, what
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= 1280, what
    assert page.evaluate(SCROLLERS, scroller) == [], what
    assert page.evaluate(OVERLAPS) == [], what
    assert page.evaluate(TOUCH_TARGETS) == [], what


def test_a_busy_floor_fits_the_tablet_with_big_targets(
        live_server, tablet_screen, dashboard, output_dir):
    """The demo site's busy hour (its 8 booths in every state, 6 waiting, 6 in after-care) on
    one 1280x800 screen without scrolling, every target big and apart from the others; a
    16-booth site scrolls its booths, never the alarms."""
    tablet, page, site = tablet_screen, tablet_screen.page, tablet_screen.site
    actor, now = Actor.system(), utcnow()
    site.min_observation_seconds = 900  # nobody's after-care is over: no alarm moves the floor
    db.session.commit()
    for n in range(4, 9):
        make_booth(site, label=f"B{n}", kind="injection" if n % 3 else "inhalation", position=n)
    booths = {b.label: b.booth for b in service.site_board(site, now=now)["booths"]}

    def arrive(code, handle=None, minutes_ago=0):
        return service.check_in(site, code=code, handle=handle, actor=actor,
                                actor_roles={"nurse"}, now=now - timedelta(minutes=minutes_ago))

    def check(visit, status="ok", **vitals):
        checks.record_check(visit, {"status": status, **vitals}, actor=actor, now=now)

    # Six in after-care, each through a booth that was cleaned after them; one drowsy.
    aftercare = [("F-GGGG-1970", "Wren"), ("M-HHHH-1986", None), ("TF-JJJJ-1993", "Kestrel"),
                 ("M-KKKK-1977", None), ("F-LLLL-2001", "Finch"), ("X-NNNN-1968", None)]
    for n, (code, handle) in enumerate(aftercare):
        booth = booths["B6"]
        visit = service.assign_booth(arrive(code, handle, 20), booth, actor=actor,
                                     now=now - timedelta(minutes=12))
        service.start_observation(visit, actor=actor, now=now - timedelta(seconds=20 * n))
        if n == 2:
            check(visit, "drowsy", spo2=92, respiratory_rate=11)
        if n < len(aftercare) - 1:
            service.mark_booth_clean(booth, actor=actor, now=now)
    # Four in booths (recent checks: no alarm during the test): a positive strip and a drowsy
    # client, two more uses, one not recorded yet.
    for code, label, handle in [("F-ABCD-1984", "B1", "Sparrow"), ("M-EFGH-1975", "B2", None),
                                ("TF-IJKL-1999", "B3", "Moonbeam"), ("X-MNOP-1988", "B4", None)]:
        visit = service.assign_booth(arrive(code, handle, 12), booths[label], actor=actor,
                                     now=now - timedelta(minutes=6))
        if label != "B4":
            kind = booths[label].kind
            service.record_consumption(visit, {
                "substances": ["fentanyl", "crack"] if label == "B1" else ["methamphetamine"],
                "route": "injects" if kind == "injection" else "smokes",
                "fentanyl_strip": "positive" if label == "B1" else "negative",
                "benzo_strip": "not_done", "split_or_shared": label == "B1",
                "peer_assisted": False}, actor=actor, now=now)
        check(visit, "drowsy" if label == "B1" else "ok",
              **({"spo2": 91, "respiratory_rate": 10} if label == "B1" else {}))
    service.set_booth_out_of_service(booths["B7"], reason="Needle bin full", actor=actor,
                                     now=now)
    # Six waiting: five here, the sixth checked in on the tablet (its offers on one line).
    for n, (code, handle) in enumerate([("F-AAAA-1990", "Robin"), ("M-BBBB-1982", None),
                                        ("TM-CCCC-1995", "Jay"), ("F-DDDD-1979", None),
                                        ("M-QQQQ-1991", "Heron")]):
        arrive(code, handle, 8 - n)

    page.reload()
    expect(page.locator(".tile")).to_have_count(8)
    check_in(tablet, "TF-RRRR-2002", handle="Lark")
    expect(page.get_by_test_id("offers-open")).to_be_visible()
    queue = tablet.fragment("queue").get_by_test_id("queue-item")
    expect(queue).to_have_count(6)
    expect(tablet.fragment("aftercare").get_by_test_id("aftercare-item")).to_have_count(6)
    expect(page.locator(".tile[data-state=occupied]")).to_have_count(4)
    expect(page.get_by_test_id("drowsy")).to_have_count(2)
    shot(page, output_dir / "tablet-busy.png")
    assert_fits(page, "the busy floor")

    # Picking a client to assign: the hint and the free booths' Assign here fit too.
    tap(queue.first.locator("[data-pick-visit]"))
    expect(page.locator("[data-assign-hint]")).to_be_visible()
    assert_fits(page, "assigning")
    shot(page, output_dir / "tablet-busy-assigning.png")
    tap(page.locator("[data-pick-cancel]"))

    # What a booth tile keeps under More…: its use, leaving the booth, leaving the site.
    tap(tablet.tile("B1").get_by_role("button", name="More…"))
    expect(page.locator(".dialog")).to_contain_text("F-ABCD-1984")
    assert page.evaluate(TOUCH_TARGETS) == [] and page.evaluate(OVERLAPS, ".dialog") == []
    shot(page, output_dir / "tablet-busy-more.png")
    tap(page.locator(".dialog").get_by_role("button", name="Add use"))
    expect(page.locator(".dialog")).to_contain_text("Fentanyl strip")
    assert page.evaluate(TOUCH_TARGETS) == []
    assert page.evaluate(OVERLAPS, ".dialog") == []
    panel = page.locator(".dialog__panel").bounding_box()
    assert panel["height"] <= 800 - 32, "the whole form fits without scrolling"
    shot(page, output_dir / "tablet-busy-use.png")
    tap(page.locator(".dialog").get_by_role("button", name="Close"))

    tap(tablet.tile("B2").get_by_role("button", name="More…"))
    tap(page.locator(".dialog").get_by_role("button", name="Discharge…"))
    expect(page.locator(".dialog")).to_contain_text("Declined after-care")
    assert page.evaluate(TOUCH_TARGETS) == []
    shot(page, output_dir / "tablet-busy-discharge.png")
    tap(page.locator(".dialog").get_by_role("button", name="Close"))

    # The list of known codes opens below the code and never covers Check in.
    page.get_by_label("Client code").fill("F-A")
    expect(page.get_by_test_id("suggestion")).to_have_count(2)
    listed = page.locator("#code-suggestions").evaluate(BOX)
    assert not intersects(listed, page.get_by_test_id("checkin-submit").evaluate(BOX))
    assert page.evaluate(TOUCH_TARGETS) == []
    shot(page, output_dir / "tablet-busy-autocomplete.png")

    dashboard.page.reload()
    expect(dashboard.page.locator(".tile")).to_have_count(8)
    shot(dashboard.page, output_dir / "dashboard-busy.png", full_page=True)

    # A 16-booth site with an alarm: the booths scroll under a strip that stays in view.
    for n in range(9, 17):
        make_booth(site, label=f"B{n}", position=n)
    visit = db.session.get(Visit, int(tablet.tile("B2").get_attribute("data-visit-id")))
    visit.next_check_due_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    page.reload()
    expect(page.locator(".tile")).to_have_count(16)
    strip = page.get_by_test_id("alarms")
    expect(strip.get_by_test_id("alarm")).to_have_count(1)
    shot(page, output_dir / "tablet-16-booths.png")
    assert_fits(page, "16 booths and an alarm", scroller=".floor__board")
    booths_box = page.locator(".floor__board")
    assert booths_box.evaluate("el => el.scrollHeight > el.clientHeight"), "the booths scroll"
    booths_box.evaluate("el => el.scrollTo(0, el.scrollHeight)")
    expect(tablet.tile("B16")).to_be_in_viewport()
    assert strip.evaluate(BOX)[1] >= 0 and strip.evaluate(BOX)[3] <= booths_box.evaluate(BOX)[1]
    shot(page, output_dir / "tablet-16-booths-scrolled.png")

    # An overdose in B1 and one in after-care on top, and an after-care client whose minimum
    # time is over (Discharge in one tap): their consoles one tap away on the tile, the row
    # and in the emergencies; what no longer fits goes below, never over, and the alarms
    # stay in view.
    visit = db.session.get(Visit, int(tablet.tile("B1").get_attribute("data-visit-id")))
    overdose.start_response(site, kind="opioid", actor=actor, now=utcnow(), visit=visit)
    rows = page.get_by_test_id("aftercare-item")
    resting = db.session.get(Visit, int(rows.nth(0).get_attribute("data-visit-id")))
    overdose.start_response(site, kind="opioid", actor=actor, now=utcnow(), visit=resting)
    rested = db.session.get(Visit, int(rows.nth(1).get_attribute("data-visit-id")))
    rested.observation_ends_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    page.reload()  # started outside the server: no live hint reaches this screen
    # Two overdoses beside B2's check, and (from the next scan) the rested client's time is up.
    alarms = strip.get_by_test_id("alarm")
    expect(alarms.filter(has_text="Overdose response")).to_have_count(2)
    expect(alarms.filter(has_text="Observation time complete")).to_have_count(1)
    expect(tablet.tile("B1").get_by_test_id("overdose-start")).to_have_text("Overdose console")
    expect(page.locator(f'[data-testid=aftercare-item][data-visit-id="{resting.id}"]')
           .get_by_test_id("overdose-start")).to_have_text("Overdose console")
    expect(page.locator(f'.aftercare__item.is-due[data-visit-id="{rested.id}"]')).to_have_count(1)
    expect(page.get_by_test_id("overdose-active")).to_have_count(2)
    assert page.evaluate(OVERLAPS) == [] and page.evaluate(TOUCH_TARGETS) == []
    assert page.evaluate(SCROLLERS, ".floor__board") == []
    page.mouse.wheel(0, 800)
    expect(page.get_by_test_id("aftercare-item").last).to_be_in_viewport()
    assert strip.evaluate(BOX)[1] >= 0 and strip.evaluate(BOX)[3] <= 800
    shot(page, output_dir / "tablet-16-booths-overdose.png")
    assert tablet.unexpected_console() == [] and dashboard.unexpected_console() == []
