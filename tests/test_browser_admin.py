"""A site set up and run without a shell, in real Chromium: an organisation admin at a desk
(1440x900) creates a site with its booths and a nurse, the nurse signs in on its wall tablet
(1280x800) and runs a visit there, and the supervisor of both sites sees both on the
multi-site dashboard."""

import pytest
from factories import make_site, make_staff
from live_helpers import (
    TIMEOUT_MS,
    ConsoleWatch,
    FloorScreen,
    assign,
    check_in,
    shot,
    sign_in,
    tap,
)
from playwright.sync_api import expect

from srs.extensions import db
from srs.sites.models import Site

pytestmark = [pytest.mark.browser, pytest.mark.live]

DESK = {"width": 1440, "height": 900}


def test_an_org_admin_sets_up_a_site_a_nurse_runs_a_visit_and_a_supervisor_sees_both(
        live_server, browser, tablet, output_dir):
    east = make_site(slug="east", name="East Side", booths=2)
    make_staff(east, role="supervisor", username="sam")
    olu = make_staff(username="olu")
    olu.org_admin = True
    db.session.commit()
    url = live_server.url

    # The organisation admin, from home to the sites page, creates Harbour with 4 booths.
    desk = browser.new_context(viewport=DESK)
    page = desk.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console = ConsoleWatch(page)
    sign_in(page, url, "olu")
    page.get_by_test_id("org-sites-link").click()
    page.locator("#site-name").fill("Harbour")
    page.locator("#site-slug").fill("harbour")
    page.locator("#site-timezone").select_option("America/Vancouver")
    page.locator("#site-injection").fill("3")
    page.locator("#site-inhalation").fill("1")
    page.locator("#site-admin-name").fill("Hana Admin")
    page.locator("#site-admin-username").fill("hana")
    page.get_by_label("Make me an admin of this site too").check()
    page.get_by_test_id("create-site").click()
    expect(page.get_by_test_id("site-created")).to_contain_text("Harbour is created")
    expect(page.get_by_test_id("admin-password")).not_to_be_empty()
    harbour_row = page.locator('[data-testid="site-row"][data-slug="harbour"]')
    expect(harbour_row).to_contain_text("4 (3 injection, 1 inhalation)")
    shot(page, output_dir / "org-site-created.png", full_page=True)

    # Its staff page, from the site's row: a nurse, whose first password shows once.
    harbour_row.get_by_role("link", name="Staff").click()
    page.locator("#staff-display-name").fill("Nell Nurse")
    page.locator("#staff-username").fill("nell")
    page.locator("#staff-roles").get_by_label("nurse").check()
    page.get_by_test_id("add-staff").click()
    password = page.get_by_test_id("staff-password")
    expect(password).not_to_be_empty()
    nell_password = password.inner_text()
    shot(page, output_dir / "site-staff-added.png", full_page=True)

    # The supervisor of East gets a role at Harbour too, from the site's organisation page.
    page.goto(f"{url}/admin/sites")
    harbour_row.get_by_test_id("edit-site").click()
    page.locator("#role-username").fill("sam")
    page.locator("#role-role").select_option("supervisor")
    page.get_by_test_id("give-role").click()
    expect(page.get_by_test_id("role-notice")).to_contain_text("now supervisor at Harbour")
    expect(page.get_by_test_id("site-people")).to_contain_text("Nell Nurse")
    shot(page, output_dir / "org-site-people.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    assert console.errors == []
    desk.close()

    # The nurse on Harbour's wall tablet: straight to its floor of 4 booths; a whole visit.
    harbour = db.session.execute(db.select(Site).filter_by(slug="harbour")).scalar_one()
    assert [b.label for b in harbour.booths] == ["B1", "B2", "B3", "S1"]
    floor = FloorScreen(tablet.new_page(), harbour)
    sign_in(floor.page, url, "nell", nell_password)
    expect(floor.page.locator(".tile")).to_have_count(4)
    floor.wait_until_live()
    code = "F-ABCD-1984"
    check_in(floor, code, handle="Sparrow")
    assign(floor, code, "B2")
    tap(floor.tile("B2").get_by_role("button", name="More…"))
    tap(floor.page.locator(".dialog").get_by_role("button", name="Leaves booth"))
    expect(floor.fragment("aftercare")).to_contain_text(code)
    expect(floor.tile("B2")).to_have_class("tile tile--needs_cleaning")
    shot(floor.page, output_dir / "harbour-tablet.png")
    assert floor.unexpected_console() == []

    # The supervisor of both sites: both boards on one dashboard, Harbour's visit on it.
    desk = browser.new_context(viewport=DESK)
    board = FloorScreen(desk.new_page(), harbour)
    sign_in(board.page, url, "sam")
    board.page.goto(f"{url}/supervise")
    expect(board.page.get_by_role("heading", name="East Side")).to_be_visible()
    expect(board.page.get_by_role("heading", name="Harbour")).to_be_visible()
    expect(board.fragment("aftercare")).to_contain_text(code)
    expect(board.tile("B2")).to_have_class("tile tile--needs_cleaning")
    shot(board.page, output_dir / "supervisor-both-sites.png", full_page=True)
    assert board.unexpected_console() == []
    desk.close()
