"""The floor tablet and the supervisor's dashboard through the test client: every page action's
happy path, its refusals (409 in #flash, 422 beside the field with what was entered kept), and
a repeated tap that records once."""

import re
from datetime import date, timedelta

import pytest
from conftest import csrf_token
from factories import ACTOR, make_booth, make_client, make_site, make_staff
from routes import field_error, input_value

from srs.auth.models import AuditEvent
from srs.booths import service
from srs.booths.models import Booth, Consumption, Visit
from srs.common import utcnow
from srs.extensions import db

HTMX = {"HX-Request": "true"}


class Floor:
    """A site with two injection booths and a smoking booth, and a signed-in nurse's tablet."""

    def __init__(self, client, auth):
        self.client, self.auth = client, auth
        self.site = make_site(name="East Side", slug="east")
        self.booths = {label: make_booth(self.site, label=label, kind=kind, position=n)
                       for n, (label, kind) in enumerate(
                           [("B1", "injection"), ("B2", "injection"), ("S1", "inhalation")])}
        self.nurse = make_staff(self.site, role="nurse", username="nina")
        self.sign_in(self.nurse)

    def sign_in(self, staff):
        self.auth.logout()
        assert self.auth.login(staff.username).status_code == 302
        self.token = csrf_token(self.client)

    def url(self, path: str) -> str:
        return f"/sites/{self.site.slug}{path}"

    def get(self, path: str):
        return self.client.get(self.url(path), headers=HTMX)

    def post(self, path: str, data: dict | None = None, key: str | None = None):
        form = {"csrf_token": self.token, **(data or {})}
        if key is not None:
            form["idempotency_key"] = key
        return self.client.post(self.url(path), data=form, headers=HTMX)

    # Floor states made through the service, as another tablet would.
    def waiting(self, code="F-ABCD-1984", handle=None) -> Visit:
        return service.check_in(self.site, code=code, handle=handle, actor=ACTOR,
                                actor_roles={"nurse"}, now=utcnow())

    def in_booth(self, code="F-ABCD-1984", booth="B1", handle=None) -> Visit:
        return service.assign_booth(self.waiting(code, handle), self.booths[booth], actor=ACTOR,
                                    now=utcnow())

    def observing(self, code="F-ABCD-1984", booth="B1") -> Visit:
        return service.start_observation(self.in_booth(code, booth), actor=ACTOR, now=utcnow())

    def observed(self, code="F-ABCD-1984", booth="B1") -> Visit:
        """In after-care with the minimum observation time over: free to go."""
        visit = self.observing(code, booth)
        visit.observation_ends_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        return visit


@pytest.fixture
def floor(client, auth):
    return Floor(client, auth)


def text(response) -> str:
    return response.get_data(as_text=True)


def visit_now(visit_id: int) -> Visit:
    db.session.rollback()  # read what the request committed
    return db.session.get(Visit, visit_id)


def booth_state(booth: Booth) -> str:
    db.session.rollback()
    return booth.state_with(service.holder_of(booth)).value


def assert_flash(response, status: int, *phrases: str) -> str:
    """A refusal an htmx request shows in the screen's #flash."""
    body = text(response)
    assert response.status_code == status, body
    assert response.headers["HX-Retarget"] == "#flash"
    assert "flash--error" in body
    for phrase in phrases:
        assert phrase in body, body
    return body


def oob_fragments(body: str) -> set[str]:
    return set(re.findall(r'id="([a-z]+)-\d+"[^>]*hx-swap-oob="true"', body, re.S))


# --- Pages ---------------------------------------------------------------------------------


def test_the_floor_page_has_check_in_queue_board_and_aftercare(floor):
    floor.in_booth("F-ABCD-1984", handle="Sparrow")
    floor.waiting("M-WXYZ-1990")
    page = text(floor.client.get(floor.url("/floor")))
    assert 'id="checkin"' in page and 'name="code"' in page
    site_id = floor.site.id
    for fragment in ("queue", "board", "aftercare"):
        assert f'id="{fragment}-{site_id}"' in page
        assert f'hx-trigger="srs:refetch-{site_id} from:body, srs:resync from:body"' in page
    assert page.count('class="tile tile--') == 3
    assert "Sparrow" in page and "M-WXYZ-1990" in page
    assert 'id="dialog"' in page


def test_live_action_forms_are_the_same_for_every_tablet(floor):
    """Board, queue and after-care go to every tablet as one render: their one-tap forms
    carry no per-request key or token (srs.js keys each tap, CSRF goes in a header);
    the check-in panel, rendered for this tablet alone, keeps its own key."""
    floor.in_booth("F-ABCD-1984", booth="B1")
    floor.observed("F-EFGH-1984", booth="B2")
    floor.waiting("M-WXYZ-1990")
    page = text(floor.client.get(floor.url("/floor")))
    forms = re.findall(r"<form[^>]*hx-post=.*?</form>", page, re.S)
    actions = {re.search(r'hx-post="[^"]*/([a-z-]+)(?:/\d+)?"', form).group(1) for form in forms}
    assert {"check-in", "clean", "booth", "discharge", "start"} <= actions
    checkin = [form for form in forms if "check-in" in form]
    assert len(checkin) == 1 and input_value(checkin[0], "idempotency_key")
    for form in forms:
        assert 'hx-sync="this:drop"' in form
        if form not in checkin:
            assert "idempotency_key" not in form and "csrf_token" not in form


def test_read_only_fragments_show_no_actions(floor):
    floor.in_booth("F-ABCD-1984")
    floor.waiting("M-WXYZ-1990")
    floor.sign_in(make_staff(floor.site, role="admin"))
    for path in ("/board", "/queue", "/aftercare"):
        response = floor.get(path)
        assert response.status_code == 200
        assert "hx-post" not in text(response) and "data-pick-visit" not in text(response)
    assert "F-ABCD-1984" in text(floor.get("/board"))
    assert "M-WXYZ-1990" in text(floor.get("/queue"))


def test_floor_fragments_carry_the_actions(floor):
    floor.in_booth("F-ABCD-1984")
    floor.waiting("M-WXYZ-1990")
    board = text(floor.get("/floor/board"))
    assert 'data-testid="overdose-start"' in board and ">Check<" in board
    assert "More…" in board and "Assign here" in board
    assert 'data-pick-visit' in text(floor.get("/floor/queue"))


def test_each_tile_and_row_links_its_own_visit_or_booth(floor):
    """A render builds each kind of URL once and puts each tile's or row's id in: every
    button still opens its own visit's or booth's dialog, under the app's mount point too."""
    first = floor.in_booth("F-ABCD-1984", booth="B1")
    second = floor.observing("F-EFGH-1984", booth="B2")
    floor.post(f"/floor/booths/{floor.booths['S1'].id}/out-of-service", {"reason": "Broken"})
    waiting = floor.waiting("M-WXYZ-1990")
    for root in ("", "/srs"):
        def links(path, root=root):
            return re.findall(r'hx-(?:get|post)="([^"]+)"', text(floor.client.get(
                floor.url(path), headers=HTMX, base_url=f"http://localhost{root}")))
        site = f"{root}/sites/east"
        board, aftercare, queue = links("/floor/board"), links("/floor/aftercare"), \
            links("/floor/queue")
        assert {f"{site}/floor/visits/{first.id}/check", f"{site}/floor/visits/{first.id}/more",
                f"{site}/floor/booths/{floor.booths['S1'].id}/in-service"} <= set(board)
        assert {f"{site}/floor/visits/{second.id}/check",
                f"{site}/floor/visits/{second.id}/discharge"} <= set(aftercare)
        assert f"{site}/floor/visits/{waiting.id}/leave" in queue
    for url in (f"/floor/visits/{first.id}/check", f"/floor/visits/{second.id}/check"):
        assert floor.get(url).status_code == 200


def test_more_on_a_booth_tile_holds_what_a_visit_needs_once(floor):
    """A compact tile keeps Overdose and Check; its use and leaving are one tap further."""
    visit = floor.in_booth("F-ABCD-1984")
    more = text(floor.get(f"/floor/visits/{visit.id}/more"))
    assert "Record use" in more and "Discharge…" in more
    assert re.search(rf'<form[^>]*hx-post="[^"]*/visits/{visit.id}/observation".*?Leaves booth',
                     more, re.S)
    floor.post(f"/floor/visits/{visit.id}/observation")
    assert_flash(floor.get(f"/floor/visits/{visit.id}/more"), 409, "no longer in a booth")


# --- Check-in ------------------------------------------------------------------------------


def test_check_in_a_new_code_starts_a_waiting_visit(floor):
    response = floor.post("/floor/check-in", {"code": " f-abcd-1984 ", "handle": "Sparrow"})
    body = text(response)
    assert response.status_code == 200, body
    assert "queue" in oob_fragments(body), "the queue follows at once"
    visit = db.session.execute(db.select(Visit)).scalar_one()
    # A receipt that stays true once the client moves on: when, in the site's time.
    arrived = floor.site.local(visit.arrived_at).strftime("%H:%M")
    assert f"checked in at {arrived} as number 1 in the queue" in body
    assert (visit.state, visit.client.code, visit.client.handle) == (
        "waiting", "F-ABCD-1984", "Sparrow")
    assert input_value(body, "code") == "", "a fresh form for the next client"


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"code": "F-AB", "handle": "Sparrow"}, "code", "code form"),
    ({"code": "", "handle": "Sparrow"}, "code", "Enter the client"),
    ({"code": "F-ABCD-1984", "handle": "416 555 0199"}, "handle", "phone number"),
    ({"code": "F-ABCD-1984", "handle": "Mary Smith"}, "handle", "full name"),
])
def test_bad_check_in_input_is_shown_beside_the_field_and_kept(floor, form, field, message):
    response = floor.post("/floor/check-in", form)
    body = text(response)
    assert response.status_code == 422, body
    assert message in field_error(body, field)
    assert input_value(body, "code") == form["code"]
    assert input_value(body, "handle") == form["handle"].replace("'", "&#39;")
    assert "HX-Retarget" not in response.headers, "it stays in the check-in panel"
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == 0


def test_a_client_already_on_the_floor_is_refused_beside_the_code(floor):
    floor.waiting("F-ABCD-1984")
    response = floor.post("/floor/check-in", {"code": "F-ABCD-1984"})
    assert response.status_code == 409
    assert "Already on the floor" in field_error(text(response), "code")


def test_autocomplete_offers_known_codes_after_two_characters(floor):
    make_client(floor.site, code="F-ABCD-1984", handle="Sparrow")
    make_client(floor.site, code="F-ABEE-1990")
    make_client(floor.site, code="M-ZZZZ-1970")
    assert "suggestion" not in text(floor.get("/floor/clients?code=F"))
    offered = text(floor.get("/floor/clients?code=f-ab"))
    assert "F-ABCD-1984" in offered and "F-ABEE-1990" in offered and "Sparrow" in offered
    assert "M-ZZZZ-1970" not in offered
    # Anywhere in the code: the letters a nurse remembers find it; codes starting so first.
    make_client(floor.site, code="AB-QQQQ-1980")
    inside = text(floor.get("/floor/clients?code=ab"))
    assert "F-ABCD-1984" in inside and "F-ABEE-1990" in inside and "M-ZZZZ-1970" not in inside
    assert inside.index("AB-QQQQ-1980") < inside.index("F-ABCD-1984")
    assert "F-ABCD-1984" in text(floor.get("/floor/clients?code=1984"))


def test_a_known_clients_flags_show_before_the_visit_starts(floor):
    client = make_client(floor.site, code="F-ABCD-1984", handle="Sparrow")
    client.flag_note = "Prefers booth near the door"
    db.session.commit()
    offered = text(floor.get("/floor/clients?code=F-AB"))
    assert "Note" in offered

    review = floor.post("/floor/check-in", {"code": "F-ABCD-1984"})
    assert review.status_code == 200
    assert "Prefers booth near the door" in text(review)
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == 0, "not yet"
    assert input_value(text(review), "reviewed") == "F-ABCD-1984"

    done = floor.post("/floor/check-in", {"code": "F-ABCD-1984", "reviewed": "F-ABCD-1984"})
    assert done.status_code == 200 and "checked in at" in text(done)
    assert "Prefers booth near the door" in text(done)
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == 1


def test_picking_a_suggestion_opens_the_clients_flags_and_audits_the_read(floor):
    make_client(floor.site, code="F-ABCD-1984", handle="Sparrow")
    panel = floor.get("/floor/check-in?code=F-ABCD-1984")
    body = text(panel)
    assert input_value(body, "code") == "F-ABCD-1984"
    assert input_value(body, "handle") == "Sparrow"
    assert input_value(body, "reviewed") == "F-ABCD-1984"
    db.session.rollback()
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="client_viewed")).scalars().all()


def restricted(site, code="F-ABCD-1984"):
    client = make_client(site, code=code)
    client.restricted_until = date.today() + timedelta(days=7)
    client.restriction_reason = "Threatened staff"
    db.session.commit()
    return client


def test_a_nurse_cannot_check_in_a_restricted_client(floor):
    restricted(floor.site)
    review = floor.post("/floor/check-in", {"code": "F-ABCD-1984"})
    body = text(review)
    assert review.status_code == 200
    assert "Service restriction until" in body and "Threatened staff" in body
    assert "A supervisor must check this client in" in body
    assert 'data-testid="checkin-submit"' not in body
    assert 'name="override_reason"' not in body

    forced = floor.post("/floor/check-in", {"code": "F-ABCD-1984", "reviewed": "F-ABCD-1984",
                                            "override_reason": "I say so"})
    assert forced.status_code == 403
    assert "supervisor" in field_error(text(forced), "code")
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == 0


def test_a_supervisor_overrides_a_restriction_with_a_reason(floor):
    restricted(floor.site)
    supervisor = make_staff(floor.site, role="supervisor")
    floor.sign_in(supervisor)
    review = floor.post("/floor/check-in", {"code": "F-ABCD-1984"})
    assert 'name="override_reason"' in text(review)
    assert "Override and check in" in text(review)

    no_reason = floor.post("/floor/check-in", {"code": "F-ABCD-1984",
                                               "reviewed": "F-ABCD-1984", "handle": "Wren"})
    assert no_reason.status_code == 422
    assert "Say why" in field_error(text(no_reason), "override_reason")
    assert input_value(text(no_reason), "handle") == "Wren"

    done = floor.post("/floor/check-in", {"code": "F-ABCD-1984", "reviewed": "F-ABCD-1984",
                                          "override_reason": "Apology accepted"})
    assert done.status_code == 200, text(done)
    assert "restriction overridden" in text(done)
    visit = db.session.execute(db.select(Visit)).scalar_one()
    assert visit.override_by == supervisor.id


# --- Queue ---------------------------------------------------------------------------------


def test_the_queue_shows_arrival_order_position_and_wait(floor):
    first = floor.waiting("F-ABCD-1984")
    first.arrived_at = utcnow() - timedelta(minutes=7)
    db.session.commit()
    floor.waiting("M-WXYZ-1990")
    body = text(floor.get("/floor/queue"))
    assert body.index("F-ABCD-1984") < body.index("M-WXYZ-1990")
    assert 'data-since="' in body and 'data-format="minutes"' in body
    assert "7 min" in body


def test_leaving_the_queue_needs_a_reason(floor):
    visit = floor.waiting()
    dialog = text(floor.get(f"/floor/visits/{visit.id}/leave"))
    assert "Wait too long" in dialog and 'name="idempotency_key"' in dialog

    no_reason = floor.post(f"/floor/visits/{visit.id}/leave")
    assert no_reason.status_code == 422
    assert "Choose why they left" in field_error(text(no_reason), "reason")
    assert visit_now(visit.id).state == "waiting"

    left = floor.post(f"/floor/visits/{visit.id}/leave", {"reason": "wait_too_long"})
    assert left.status_code == 200
    assert {"queue", "board", "aftercare"} <= oob_fragments(text(left))
    visit = visit_now(visit.id)
    assert (visit.state, visit.departure_reason, visit.consumed) == (
        "departed", "wait_too_long", False)

    again = floor.post(f"/floor/visits/{visit.id}/leave", {"reason": "left"})
    assert_flash(again, 409, "departed")


# --- Booths --------------------------------------------------------------------------------


def test_assign_puts_the_waiting_client_in_the_booth(floor):
    visit = floor.waiting("F-ABCD-1984", handle="Sparrow")
    b1 = floor.booths["B1"]
    response = floor.post(f"/floor/visits/{visit.id}/booth/{b1.id}")
    body = text(response)
    assert response.status_code == 200, body
    assert visit_now(visit.id).state == "in_booth"
    tile = re.search(rf'<article class="tile tile--occupied" data-booth-id="{b1.id}".*?</article>',
                     body, re.S)
    assert tile and "F-ABCD-1984" in tile.group(0) and "Sparrow" in tile.group(0)
    assert 'data-since="' in tile.group(0)


def test_a_taken_booth_is_refused_in_the_flash_naming_who_holds_it(floor):
    floor.in_booth("F-ABCD-1984", booth="B1")
    second = floor.waiting("M-WXYZ-1990")
    response = floor.post(f"/floor/visits/{second.id}/booth/{floor.booths['B1'].id}")
    assert_flash(response, 409, "Booth B1 is already taken by F-ABCD-1984")
    assert visit_now(second.id).state == "waiting"


def test_a_booth_that_needs_cleaning_or_is_out_of_service_is_refused(floor):
    floor.observing("F-ABCD-1984", booth="B1")
    service.set_booth_out_of_service(floor.booths["B2"], reason="Spill", actor=ACTOR,
                                     now=utcnow())
    visit = floor.waiting("M-WXYZ-1990")
    assert_flash(floor.post(f"/floor/visits/{visit.id}/booth/{floor.booths['B1'].id}"), 409,
                 "needs cleaning")
    assert_flash(floor.post(f"/floor/visits/{visit.id}/booth/{floor.booths['B2'].id}"), 409,
                 "out of service")


def test_the_consumption_dialog_offers_only_this_booths_routes(floor):
    visit = floor.in_booth(booth="B1")
    injection = text(floor.get(f"/floor/visits/{visit.id}/consumption"))
    assert 'value="injects"' in injection and 'value="smokes"' not in injection
    for substance in ("fentanyl", "crack", "benzodiazepine"):
        assert f'value="{substance}"' in injection
    smoker = floor.in_booth("M-WXYZ-1990", booth="S1")
    inhalation = text(floor.get(f"/floor/visits/{smoker.id}/consumption"))
    assert 'value="smokes"' in inhalation and 'value="injects"' not in inhalation


def test_the_consumption_dialog_offers_only_the_strip_results_it_takes(floor):
    """The drug-checking service's strips may read "invalid"; a use's strip cannot, and the
    dialog must not offer a choice its form refuses."""
    visit = floor.in_booth(booth="B1")
    dialog = text(floor.get(f"/floor/visits/{visit.id}/consumption"))
    for strip in ("fentanyl_strip", "benzo_strip"):
        offered = re.findall(rf'name="{strip}" value="(\w+)"', dialog)
        assert sorted(offered) == ["negative", "not_done", "positive"], offered


def test_record_consumption_shows_on_the_tile(floor):
    visit = floor.in_booth(booth="B1")
    response = floor.client.post(floor.url(f"/floor/visits/{visit.id}/consumption"), headers=HTMX,
                                 data={"csrf_token": floor.token,
                                       "substances": ["fentanyl", "cocaine"], "route": "injects",
                                       "fentanyl_strip": "positive", "benzo_strip": "negative",
                                       "split_or_shared": "on", "idempotency_key": "k1"})
    body = text(response)
    assert response.status_code == 200, body
    use = db.session.execute(db.select(Consumption)).scalar_one()
    assert (use.substances, use.route, use.fentanyl_strip, use.benzo_strip,
            use.split_or_shared, use.peer_assisted) == (
        ["fentanyl", "cocaine"], "injects", "positive", "negative", True, False)
    assert "Fentanyl, Cocaine · Injects" in body
    assert "Fentanyl strip +" in body and "Split/shared" in body


def test_bad_consumption_is_shown_beside_the_fields_with_the_choices_kept(floor):
    visit = floor.in_booth(booth="B1")
    response = floor.post(f"/floor/visits/{visit.id}/consumption",
                          {"route": "injects", "fentanyl_strip": "positive",
                           "peer_assisted": "on"})
    body = text(response)
    assert response.status_code == 422, body
    assert "Choose at least one substance" in field_error(body, "substances")
    assert re.search(r'value="injects" checked', body)
    assert re.search(r'name="fentanyl_strip" value="positive" checked', body)
    assert re.search(r'name="peer_assisted" value="on" checked', body)
    assert db.session.scalar(db.select(db.func.count(Consumption.id))) == 0


def test_a_route_the_booth_does_not_allow_is_refused_beside_the_field_and_in_the_flash(floor):
    visit = floor.in_booth(booth="B1")
    response = floor.post(f"/floor/visits/{visit.id}/consumption",
                          {"substances": "crack", "route": "smokes"})
    body = text(response)
    assert response.status_code == 422, body
    assert "injection booth" in field_error(body, "route")
    assert 'id="flash" hx-swap-oob="innerHTML"' in body
    assert "not allowed in this booth" in body
    assert re.search(r'value="crack" checked', body)
    assert db.session.scalar(db.select(db.func.count(Consumption.id))) == 0


def test_consumption_for_a_client_no_longer_in_the_booth_is_a_409(floor):
    visit = floor.observing(booth="B1")
    assert_flash(floor.get(f"/floor/visits/{visit.id}/consumption"), 409,
                 "no longer in a booth")
    assert_flash(floor.post(f"/floor/visits/{visit.id}/consumption",
                            {"substances": "heroin", "route": "injects"}), 409, "observing")


def test_leaves_booth_starts_aftercare_with_a_countdown(floor):
    visit = floor.in_booth(booth="B1")
    response = floor.post(f"/floor/visits/{visit.id}/observation")
    body = text(response)
    assert response.status_code == 200
    visit = visit_now(visit.id)
    assert visit.state == "observing"
    assert booth_state(floor.booths["B1"]) == "needs_cleaning"
    aftercare = re.search(r'<section id="aftercare-\d+".*?</section>', body, re.S).group(0)
    assert "F-ABCD-1984" in aftercare and 'data-until="' in aftercare
    assert "15:00 left" in aftercare or "14:59 left" in aftercare
    assert_flash(floor.post(f"/floor/visits/{visit.id}/observation"), 409, "observing")


def test_discharge_from_the_booth_needs_a_reason(floor):
    visit = floor.in_booth(booth="B1")
    dialog = text(floor.get(f"/floor/visits/{visit.id}/discharge"))
    assert "Declined after-care" in dialog
    assert_flash(floor.post(f"/floor/visits/{visit.id}/discharge"), 422, "Say why")
    assert visit_now(visit.id).state == "in_booth"
    bad = floor.post(f"/floor/visits/{visit.id}/discharge", {"reason": "bored"})
    assert bad.status_code == 422 and field_error(text(bad), "reason")

    done = floor.post(f"/floor/visits/{visit.id}/discharge", {"reason": "declined_aftercare"})
    assert done.status_code == 200
    visit = visit_now(visit.id)
    assert (visit.state, visit.departure_reason) == ("departed", "declined_aftercare")
    assert booth_state(floor.booths["B1"]) == "needs_cleaning"


def test_discharge_from_aftercare_and_twice(floor):
    visit = floor.observed(booth="B1")
    done = floor.post(f"/floor/visits/{visit.id}/discharge")
    assert done.status_code == 200
    assert "F-ABCD-1984" not in re.search(r'<section id="aftercare-\d+".*?</section>',
                                          text(done), re.S).group(0)
    assert visit_now(visit.id).departed_at is not None
    assert_flash(floor.post(f"/floor/visits/{visit.id}/discharge"), 409, "departed")


def test_discharge_before_minimum_observation_ends_asks_why_first(floor):
    visit = floor.observing(booth="B1")
    row = re.search(r'<li class="aftercare__item.*?</li>', text(floor.get("/floor/aftercare")),
                    re.S).group(0)
    # Discharge opens a confirmation; it does not discharge on the first tap.
    assert f'hx-get="/sites/east/floor/visits/{visit.id}/discharge"' in row
    assert f'hx-post="/sites/east/floor/visits/{visit.id}/discharge"' not in row
    dialog = text(floor.get(f"/floor/visits/{visit.id}/discharge"))
    assert "Minimum observation is not over: 15 min left" in dialog
    assert "Left against advice" in dialog
    # A tap that skips the question (an older screen) is asked it, and nothing changes.
    asked = floor.post(f"/floor/visits/{visit.id}/discharge")
    assert asked.status_code == 422 and field_error(text(asked), "reason")
    assert visit_now(visit.id).state == "observing"
    done = floor.post(f"/floor/visits/{visit.id}/discharge", {"reason": "left_against_advice"})
    assert done.status_code == 200
    visit = visit_now(visit.id)
    assert (visit.state, visit.departure_reason) == ("departed", "left_against_advice")


def test_clean_frees_the_booth(floor):
    floor.observing(booth="B1")
    b1 = floor.booths["B1"]
    response = floor.post(f"/floor/booths/{b1.id}/clean")
    assert response.status_code == 200
    assert booth_state(b1) == "available"
    assert f'<article class="tile tile--available" data-booth-id="{b1.id}"' in text(response)
    assert_flash(floor.post(f"/floor/booths/{b1.id}/clean"), 409, "already clean")


def test_out_of_service_with_a_reason_and_back(floor):
    b2 = floor.booths["B2"]
    dialog = text(floor.get(f"/floor/booths/{b2.id}/out-of-service"))
    assert "Needle bin full" in dialog

    blank = floor.post(f"/floor/booths/{b2.id}/out-of-service", {"reason": "   "})
    assert blank.status_code == 422
    assert "Say why" in field_error(text(blank), "reason")
    assert input_value(text(blank), "reason") == "   "

    out = floor.post(f"/floor/booths/{b2.id}/out-of-service", {"reason": "Door lock broken"})
    assert out.status_code == 200 and "Door lock broken" in text(out)
    assert booth_state(b2) == "out_of_service"

    back = floor.post(f"/floor/booths/{b2.id}/in-service")
    assert back.status_code == 200
    assert booth_state(b2) == "available"


def test_an_occupied_booth_cannot_go_out_of_service(floor):
    floor.in_booth(booth="B1")
    assert_flash(floor.post(f"/floor/booths/{floor.booths['B1'].id}/out-of-service",
                            {"reason": "Spill"}), 409, "already taken")


def test_a_visit_or_booth_of_another_site_is_404(floor):
    elsewhere = make_site(slug="west")
    booth = make_booth(elsewhere, label="W1")
    visit = floor.waiting()
    assert_flash(floor.post(f"/floor/visits/{visit.id}/booth/{booth.id}"), 404, "no booth")
    assert_flash(floor.post("/floor/visits/99999/observation"), 404, "no visit")


# --- Idempotency ---------------------------------------------------------------------------


def test_a_repeated_check_in_tap_records_once(floor):
    first = floor.post("/floor/check-in", {"code": "F-ABCD-1984"}, key="tap-1")
    again = floor.post("/floor/check-in", {"code": "F-ABCD-1984"}, key="tap-1")
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert text(again) == text(first)
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == 1


def test_a_repeated_consumption_tap_records_once(floor):
    visit = floor.in_booth(booth="B1")
    form = {"substances": "heroin", "route": "injects"}
    for _ in range(2):
        response = floor.post(f"/floor/visits/{visit.id}/consumption", form, key="tap-2")
        assert response.status_code == 200
    assert db.session.scalar(db.select(db.func.count(Consumption.id))) == 1


def test_a_repeated_discharge_tap_answers_the_same_and_not_409(floor):
    visit = floor.observed(booth="B1")
    first = floor.post(f"/floor/visits/{visit.id}/discharge", key="tap-3")
    again = floor.post(f"/floor/visits/{visit.id}/discharge", key="tap-3")
    assert first.status_code == again.status_code == 200
    assert db.session.scalar(db.select(db.func.count(AuditEvent.id)).filter_by(
        action="visit_discharged")) == 1


# --- Supervisor dashboard ------------------------------------------------------------------


def test_the_dashboard_shows_each_sites_figures_board_queue_and_aftercare(floor):
    floor.observing("F-ABCD-1984", booth="B1")
    floor.in_booth("F-EFGH-1984", booth="B2")
    floor.waiting("M-WXYZ-1990")
    west = make_site(name="West End", slug="west", booths=2)
    supervisor = make_staff(roles=[(floor.site, "supervisor"), (west, "supervisor")])
    floor.sign_in(supervisor)
    page = text(floor.client.get("/supervise"))
    assert "East Side" in page and "West End" in page
    for site in (floor.site, west):
        for fragment in ("today", "board", "queue", "aftercare"):
            assert f'id="{fragment}-{site.id}"' in page
    assert "M-WXYZ-1990" in page and "F-EFGH-1984" in page and 'data-until="' in page
    assert "hx-post" not in page, "the dashboard is read-only"
    today = text(floor.client.get(f"/sites/{floor.site.slug}/today"))
    assert re.search(r'data-testid="figure-visits">3<', today)
    assert re.search(r'data-testid="figure-unique">3<', today)
    assert re.search(r'data-testid="figure-waiting">1<', today)
    assert re.search(r'data-testid="figure-in-use">1<small> / 3', today)


def test_an_admin_may_watch_but_not_act(floor):
    visit = floor.waiting()
    floor.sign_in(make_staff(floor.site, role="admin"))
    assert floor.client.get("/supervise").status_code == 200
    assert floor.get("/board").status_code == 200
    assert floor.client.get(floor.url("/floor")).status_code == 403
    response = floor.post(f"/floor/visits/{visit.id}/booth/{floor.booths['B1'].id}")
    assert response.status_code == 403
    assert visit_now(visit.id).state == "waiting"
