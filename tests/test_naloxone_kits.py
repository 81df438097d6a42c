"""Take-home naloxone kits by serial and lot, with a fixed clock where a rule counts days:
the register, issuing first or replacement, kit-use reports, lot recalls, the expiry
warning at check-in, the monthly figures; then the API and the pages."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import ledger_balances, make_lot, make_site, make_staff
from routes import assert_api_error, bearer

from srs.audit.models import AuditEvent
from srs.auth.service import Actor
from srs.clients.service import client_flags
from srs.common import utcnow
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.incidents import reports
from srs.naloxone import kits, service
from srs.naloxone.models import (
    NaloxoneKit,
    NaloxoneLot,
    StockFinding,
    StockMovement,
    TakeHomeKit,
    Trainee,
)

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in Toronto
HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(app):
    return make_site(slug="east", name="East")


@pytest.fixture
def boss(site):
    return Actor.of(make_staff(site, role="supervisor", username="sam"))


@pytest.fixture
def lot(site, boss):
    return make_lot(site, boss, now=NOW, lot="A1", quantity=10, expires=date(2027, 6, 1))


def add(site, boss, lot, first, last=None, *, now=NOW, **more):
    return kits.add_kits(site, {"lot_id": lot.id, "first_serial": first, "last_serial": last,
                                **more}, actor=boss, now=now)


def issue(site, actor, serial, *, now=NOW, **data):
    return service.issue_kit(site, {"serial": serial, **data}, actor=actor, now=now)


def police(site, *, named=True):
    trainee = Trainee(site_id=site.id, kind="police", organisation="Division 3",
                      named_consent=named, first_name="Ada" if named else None,
                      last_name="Byron" if named else None, created_at=NOW)
    db.session.add(trainee)
    db.session.commit()
    return trainee


def test_a_serial_range_makes_each_kit_once_per_site(site, boss, lot):
    made = add(site, boss, lot, "k-1001", "K-1003")
    assert [k.serial for k in made] == ["K-1001", "K-1002", "K-1003"]
    assert {(k.kind, k.expires_on, k.state) for k in made} == {
        ("injectable", date(2027, 6, 1), "in_stock")}
    with pytest.raises(Invalid) as taken:
        add(site, boss, lot, "K-1003", "K-1004")
    assert "K-1003" in taken.value.errors["first_serial"][0]
    with pytest.raises(Invalid) as backwards:
        add(site, boss, lot, "K-1009", "K-1005")
    assert "last_serial" in backwards.value.errors
    with pytest.raises(Invalid) as outlasts:
        add(site, boss, lot, "K-2000", expires_on=date(2028, 1, 1))
    assert "expires_on" in outlasts.value.errors
    # A nasal lot makes nasal kits; another site has its own serials.
    spray = make_lot(site, boss, now=NOW, form="nasal_spray", lot="N1")
    assert add(site, boss, spray, "N-1", expires_on=date(2027, 1, 1))[0].kind == "nasal"
    west = make_site(slug="west", name="West")
    west_lot = make_lot(west, boss, now=NOW, lot="W1")
    assert add(west, boss, west_lot, "K-1001")[0].serial == "K-1001"


def test_issuing_takes_from_the_kits_lot_and_a_replacement_needs_its_reason(site, boss, lot):
    nurse = Actor.of(make_staff(site, role="nurse", username="nina"))
    add(site, boss, lot, "K-1", "K-4")
    other = make_lot(site, boss, now=NOW, lot="A0", quantity=5, expires=date(2027, 1, 1))
    first = issue(site, nurse, "k-1", client_code="M-KITS-1990", training_given=True)
    assert (first.form, first.number, first.replacement_reason, first.replaces_used) == (
        "injectable", 1, None, False)
    assert first.kit.state == "issued"
    db.session.expire_all()
    # The four kits' units left their own lot when they were made; giving one takes nothing
    # more, from it or from the lot expiring first.
    assert (db.session.get(NaloxoneLot, lot.id).quantity,
            db.session.get(NaloxoneLot, other.id).quantity) == (6, 5)
    assert db.session.execute(db.select(StockMovement).filter_by(
        kit_id=first.id)).scalar_one_or_none() is None
    with pytest.raises(Invalid) as no_reason:
        issue(site, nurse, "K-2", client_code="M-KITS-1990", replacement=True)
    assert "replacement_reason" in no_reason.value.errors
    with pytest.raises(Invalid) as no_note:
        issue(site, nurse, "K-2", client_code="M-KITS-1990", replacement_reason="other")
    assert "replacement_note" in no_note.value.errors
    lost = issue(site, nurse, "K-2", client_code="M-KITS-1990", replacement=True,
                 replacement_reason="lost")
    assert (lost.replacement_reason, lost.replaces_used) == ("lost", False)
    used = issue(site, nurse, "K-3", client_code="M-KITS-1990", replacement_reason="used")
    assert used.replaces_used is True
    with pytest.raises(Conflict):
        issue(site, nurse, "K-1", client_code="M-OTHR-1990")
    with pytest.raises(Invalid) as unknown:
        issue(site, nurse, "K-99", client_code="M-KITS-1990")
    assert "serial" in unknown.value.errors
    officer = police(site)
    to_trainee = issue(site, nurse, "K-4", trainee_id=officer.id)
    assert (to_trainee.client_id, to_trainee.trainee_id) == (None, officer.id)
    figures = kits.monthly_figures(site, start=NOW - timedelta(days=1),
                                   end=NOW + timedelta(days=1))
    assert figures["first_or_replacement"] == {"first": 2, "replacement": 2}
    assert figures["replacements_by_reason"]["lost"] == 1
    assert figures["replacements_by_reason"]["used"] == 1


def quantity(lot) -> int:
    db.session.expire_all()
    return db.session.get(NaloxoneLot, lot.id).quantity


def test_a_kit_takes_its_unit_out_of_the_dose_stock_when_it_is_made(site, boss, lot):
    nurse = Actor.of(make_staff(site, role="nurse", username="nina"))
    add(site, boss, lot, "K-1", "K-3")
    assert quantity(lot) == 7
    made = db.session.execute(db.select(StockMovement).filter_by(
        lot_id=lot.id, kind="take_home")).scalar_one()
    assert (made.delta, made.kit_id, made.reason) == (-3, None, "Made into take-home kits K-1 "
                                                                "to K-3")
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="naloxone_kits_added")).scalar_one()
    assert event.detail["units_taken"] == 3
    assert ledger_balances(site)
    stock = service.list_stock(site, now=NOW)
    assert (stock["on_hand"]["ampoule"], stock["in_kits"]) == (7, {"injectable": 3, "nasal": 0})
    # Giving a kit takes nothing more: no second unit, no discrepancy, no ledger row.
    given = issue(site, nurse, "K-1", client_code="M-KITS-1990")
    assert quantity(lot) == 7 and given.stock_discrepancy is False
    assert db.session.scalar(db.select(db.func.count(StockMovement.id)).filter_by(
        lot_id=lot.id)) == 2  # received, made into kits
    assert db.session.scalar(db.select(db.func.count(StockFinding.id)).filter_by(
        kind="discrepancy")) == 0
    stock = service.list_stock(site, now=NOW)
    assert (stock["on_hand"]["ampoule"], stock["in_kits"]["injectable"]) == (7, 2)
    # The month counts the kit given, not the kits made.
    month = {"start": NOW - timedelta(days=1), "end": NOW + timedelta(days=1)}
    assert service.kit_figures(site, **month)["take_home_kits"] == {"injectable": 1,
                                                                    "nasal": 0}
    assert kits.monthly_figures(site, **month)["first_or_replacement"] == {
        "first": 1, "replacement": 0}
    assert ledger_balances(site)


def test_kits_cannot_be_made_from_units_the_lot_does_not_have(site, boss):
    lot = make_lot(site, boss, now=NOW, lot="A1", quantity=2)
    with pytest.raises(Invalid) as short:
        add(site, boss, lot, "K-1", "K-3")
    assert short.value.errors["lot_id"] == ["Lot A1 has 2 on hand, too few to make 3 kits."]
    db.session.rollback()
    assert quantity(lot) == 2
    assert db.session.scalar(db.select(db.func.count(NaloxoneKit.id))) == 0
    assert len(add(site, boss, lot, "K-1", "K-2")) == 2
    assert quantity(lot) == 0


def test_a_kit_recalled_or_expired_before_it_is_given_never_returns_to_the_dose_stock(
        site, boss, lot):
    today = site.local_date(NOW)
    add(site, boss, lot, "K-1", "K-2")
    add(site, boss, lot, "K-S", expires_on=today + timedelta(days=5))
    assert quantity(lot) == 7
    # Expired in the register: still not on hand, counted apart, and not given.
    later = NOW + timedelta(days=6)
    stock = service.list_stock(site, now=later)
    assert (stock["on_hand"]["ampoule"], stock["in_kits"]["injectable"],
            stock["kits_expired"]) == (7, 2, 1)
    with pytest.raises(Conflict):
        issue(site, boss, "K-S", client_code="M-KITS-1990", now=later)
    # Recalled: the kits in stock are withdrawn, their units go with the lot, not back to it.
    kits.recall_lot(site, lot.id, reason="Manufacturer notice 12", actor=boss, now=later)
    assert quantity(lot) == 7
    stock = service.list_stock(site, now=later)
    assert (stock["in_kits"]["injectable"], stock["kits_expired"]) == (0, 0)
    assert ledger_balances(site)


def test_a_kit_registered_before_units_were_set_aside_still_draws_when_given(site, boss, lot):
    old = NaloxoneKit(site_id=site.id, serial="K-OLD", kind="injectable", lot_id=lot.id,
                      expires_on=lot.expires_on, state="in_stock",
                      added_at=NOW - timedelta(days=30))
    db.session.add(old)
    db.session.commit()
    given = issue(site, boss, "K-OLD", client_code="M-KITS-1990")
    assert quantity(lot) == 9
    assert db.session.execute(db.select(StockMovement).filter_by(
        kit_id=given.id)).scalar_one().delta == -1
    assert ledger_balances(site)


def test_the_short_form_is_still_the_take_home_kit_the_report_counts(site, boss, lot):
    nurse = Actor.of(make_staff(site, role="nurse", username="nina"))
    kit = service.record_take_home_kit(site, {"client_code": "M-KITS-1990", "form": "injectable",
                                              "number": 2, "replaces_used": True,
                                              "training_given": True}, actor=nurse, now=NOW)
    assert (kit.kit_id, kit.replacement_reason, kit.number) == (None, "used", 2)
    counts = service.kit_figures(site, start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1))
    assert counts == {"take_home_kits": {"injectable": 2, "nasal": 0},
                      "take_home_kits_replacing_used": 2, "take_home_kits_with_training": 2}
    figures = kits.monthly_figures(site, start=NOW - timedelta(hours=1),
                                   end=NOW + timedelta(hours=1))
    assert figures["first_or_replacement"] == {"first": 0, "replacement": 2}


def test_a_kit_reported_used_counts_in_its_month(site, boss, lot):
    nurse = Actor.of(make_staff(site, role="nurse", username="nina"))
    add(site, boss, lot, "K-1", "K-2")
    given = issue(site, nurse, "K-1", client_code="M-KITS-1990")
    facts = {"used_on": date(2026, 11, 20), "area": "Downtown east", "doses": 2,
             "route": "im", "called_911": True, "outcome": "hospital"}
    with pytest.raises(Invalid) as future:
        kits.report_use(site, given.kit_id, {**facts, "used_on": date(2026, 11, 25)},
                        actor=nurse, now=NOW)
    assert "used_on" in future.value.errors
    in_stock = kits.kit_by_serial(site, "K-2")
    with pytest.raises(Conflict):
        kits.report_use(site, in_stock.id, facts, actor=nurse, now=NOW)
    use = kits.report_use(site, given.kit_id, facts, actor=nurse, now=NOW)
    assert use.kit.state == "used"
    with pytest.raises(Conflict):
        kits.report_use(site, given.kit_id, facts, actor=nurse, now=NOW)
    november = {f.name: value for f, value in
                reports.monthly_report(site, date(2026, 11, 1))["figures"]}
    assert november["take_home_kits_reported_used"] == 1
    assert november["take_home_kit_use_outcomes"] == {
        "recovered": 0, "hospital": 1, "died": 0, "unknown": 0}
    assert november["take_home_kits_first_or_replacement"] == {"first": 1, "replacement": 0}
    october = {f.name: value for f, value in
               reports.monthly_report(site, date(2026, 10, 1))["figures"]}
    assert october["take_home_kits_reported_used"] == 0
    csv = reports.monthly_csv(reports.monthly_report(site, date(2026, 11, 1)))
    assert "take_home_kit_use_outcomes,Transported to hospital,1" in csv
    assert "take_home_kits_replaced_by_reason,Lost,0" in csv


def test_a_recall_finds_exactly_the_lots_kits_and_who_holds_them(site, boss, lot):
    nurse = Actor.of(make_staff(site, role="nurse", username="nina"))
    other = make_lot(site, boss, now=NOW, lot="B2", quantity=5)
    add(site, boss, lot, "K-1", "K-3")
    add(site, boss, other, "K-10")
    issue(site, nurse, "K-1", client_code="M-KITS-1990")
    officer = police(site)
    issue(site, nurse, "K-2", trainee_id=officer.id)
    issue(site, nurse, "K-10", client_code="M-ELSE-1990")
    # The client had a kit since (the short form): theirs counts as replaced.
    service.record_take_home_kit(site, {"client_code": "M-KITS-1990", "form": "nasal",
                                        "replaces_used": True},
                                 actor=nurse, now=NOW + timedelta(hours=1))
    kits.recall_lot(site, lot.id, reason="Manufacturer notice 12", actor=boss,
                    now=NOW + timedelta(hours=2))
    view = kits.recall_view(site, lot.id, now=NOW)
    rows = {row.serial: (row.state, row.holder, row.replaced) for row in view["kits"]}
    assert rows == {"K-1": ("issued", "M-KITS-1990", True),
                    "K-2": ("issued", "Police · Ada Byron · Division 3", False),
                    "K-3": ("withdrawn", None, False)}
    assert all(row.recalled_at is not None for row in view["kits"])
    assert db.session.execute(db.select(NaloxoneKit).filter_by(
        serial="K-10")).scalar_one().recalled_at is None
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="naloxone_lot_recalled")).scalar_one()
    assert (event.entity, event.entity_id) == ("naloxone_lot", str(lot.id))
    assert "M-KITS" not in str(event.detail)
    with pytest.raises(Conflict):
        kits.recall_lot(site, lot.id, reason="Again", actor=boss, now=NOW)
    with pytest.raises(Conflict):
        issue(site, nurse, "K-3", client_code="M-KITS-1990")
    with pytest.raises(Invalid):
        add(site, boss, lot, "K-50")
    # Stock is never taken from a recalled lot: the short form takes from the next one.
    short = service.record_take_home_kit(site, {"client_code": "M-KITS-1990",
                                                "form": "injectable"}, actor=nurse, now=NOW)
    assert db.session.execute(db.select(StockMovement.lot_id).filter_by(
        kit_id=short.id)).scalar_one() == other.id


def test_kits_expiring_within_the_sites_window_are_listed_for_replacement(site, boss):
    nurse = Actor.of(make_staff(site, role="nurse", username="nina"))
    lot = make_lot(site, boss, now=NOW, lot="A1", quantity=10, expires=date(2027, 6, 1))
    today = site.local_date(NOW)
    add(site, boss, lot, "K-59", expires_on=today + timedelta(days=59))
    add(site, boss, lot, "K-61", expires_on=today + timedelta(days=61))
    add(site, boss, lot, "K-P", expires_on=today + timedelta(days=10))
    soon = issue(site, nurse, "K-59", client_code="M-SOON-1990").client
    later = issue(site, nurse, "K-61", client_code="M-LATE-1990").client
    issue(site, nurse, "K-P", trainee_id=police(site).id)
    assert site.kit_expiry_warning_days == 60
    assert [k.serial for k in kits.kits_to_replace(soon, today=today)] == ["K-59"]
    assert kits.kits_to_replace(later, today=today) == []
    assert kits.kits_to_replace(later, today=today + timedelta(days=2))[0].serial == "K-61"
    assert client_flags(soon, today=today)["kits_to_replace"][0]["serial"] == "K-59"
    # The daily job lists the client's kit once (never the trainee's) and audits it.
    assert kits.warn_expiring_kits(now=NOW) == 1
    assert kits.warn_expiring_kits(now=NOW + timedelta(hours=1)) == 0
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="naloxone_kits_expiring")).scalar_one()
    assert event.detail["kit_expiry_warning_days"] == 60
    # A site that warns 30 days before: 59 days is not yet.
    site.kit_expiry_warning_days = 30
    db.session.commit()
    assert kits.kits_to_replace(soon, today=today) == []
    # Replaced since: no longer to replace.
    site.kit_expiry_warning_days = 60
    service.record_take_home_kit(site, {"client_code": "M-SOON-1990", "form": "injectable",
                                        "replacement_reason": "expired"}, actor=nurse, now=NOW)
    assert kits.kits_to_replace(soon, today=today) == []


def test_check_in_shows_the_kit_to_replace(client, auth, site):
    nurse = make_staff(site, role="nurse", username="nina")
    now, today = utcnow(), site.local_date(utcnow())
    lot = make_lot(site, Actor.of(nurse), now=now, lot="A1", expires=today + timedelta(days=400))
    kits.add_kits(site, {"lot_id": lot.id, "first_serial": "K-7",
                         "expires_on": today + timedelta(days=20)}, actor=Actor.of(nurse),
                  now=now)
    issue(site, Actor.of(nurse), "K-7", client_code="F-ABCD-1984", now=now)
    auth.login("nina")
    panel = client.get(f"/sites/{site.slug}/floor/check-in?code=F-ABCD-1984")
    text = panel.get_data(as_text=True)
    assert 'data-testid="flag-kit-replace"' in text and "K-7" in text
    done = auth.post(f"/sites/{site.slug}/floor/check-in", {"code": "F-ABCD-1984"})
    assert 'data-testid="checkin-done"' in done.get_data(as_text=True)
    assert "K-7" in done.get_data(as_text=True)


# --- The API --------------------------------------------------------------------------------


@pytest.fixture
def api(client, site):
    nurse = make_staff(site, role="nurse", username="nina")
    boss = make_staff(site, role="supervisor", username="sam")
    headers = {"nurse": bearer(nurse), "supervisor": bearer(boss)}
    lot_ = make_lot(site, Actor.of(boss), now=utcnow(), lot="A1", quantity=10,
                    expires=date(2099, 1, 1))

    class Api:
        lot = lot_

        def post(self, path, json=None, who="nurse"):
            return client.post(f"/api/v1/sites/{site.id}{path}", json=json, headers=headers[who])

        def get(self, path, who="nurse"):
            return client.get(f"/api/v1/sites/{site.id}{path}", headers=headers[who])

    return Api()


def test_the_kit_operations_through_the_api(api, site):
    body = {"lot_id": api.lot.id, "first_serial": "K-1", "last_serial": "K-3"}
    assert_api_error(api.post("/naloxone/kits", body), 403)  # stock is the supervisor's
    added = api.post("/naloxone/kits", body, who="supervisor")
    assert added.status_code == 201
    assert [k["serial"] for k in added.get_json()["kits"]] == ["K-1", "K-2", "K-3"]
    assert_api_error(api.post("/naloxone/kits", body, who="supervisor"), 422)

    given = api.post("/naloxone/kits/issue", {"serial": "K-1", "client_code": "m-kits-1990"})
    assert given.status_code == 201
    assert given.get_json()["serial"] == "K-1"
    assert given.get_json()["client_code"] == "M-KITS-1990"
    assert_api_error(api.post("/naloxone/kits/issue", {"serial": "K-1",
                                                        "client_code": "M-KITS-1990"}), 409)
    refused = api.post("/naloxone/kits/issue", {"serial": "K-2", "client_code": "M-KITS-1990",
                                                "replacement": True})
    assert_api_error(refused, 422)
    assert "replacement_reason" in refused.get_json()["errors"]
    short = api.post("/naloxone/kits/issue", {"client_code": "M-KITS-1990", "form": "nasal",
                                              "number": 2, "replacement_reason": "stolen"})
    assert short.status_code == 201 and short.get_json()["serial"] is None
    # recordTakeHomeKit: the short form, unchanged.
    old = api.post("/naloxone/take-home-kits", {"client_code": "M-KITS-1990", "form": "nasal",
                                                "replaces_used": True})
    assert old.status_code == 201 and old.get_json()["replacement_reason"] == "used"

    listed = api.get("/naloxone/kits").get_json()["kits"]
    kit_id = next(k["id"] for k in listed if k["serial"] == "K-1")
    assert next(k for k in listed if k["serial"] == "K-1")["holder"] == "M-KITS-1990"
    use = {"used_on": site.local_date(utcnow()).isoformat(), "doses": 1, "route": "in",
           "called_911": False, "outcome": "recovered"}
    assert_api_error(api.post(f"/naloxone/kits/{kit_id}/use", {**use, "outcome": "fine"}), 422)
    reported = api.post(f"/naloxone/kits/{kit_id}/use", use)
    assert reported.status_code == 201 and reported.get_json()["serial"] == "K-1"
    assert_api_error(api.post(f"/naloxone/kits/{kit_id}/use", use), 409)
    assert_api_error(api.post("/naloxone/kits/99999/use", use), 404)

    assert_api_error(api.post(f"/naloxone/lots/{api.lot.id}/recall", {"reason": "Notice"}), 403)
    recalled = api.post(f"/naloxone/lots/{api.lot.id}/recall", {"reason": "Notice"},
                        who="supervisor")
    assert recalled.status_code == 201
    assert sorted(k["serial"] for k in recalled.get_json()["kits"]) == ["K-1", "K-2", "K-3"]
    assert all(k["recalled"] for k in recalled.get_json()["kits"])
    assert_api_error(api.post(f"/naloxone/lots/{api.lot.id}/recall", {"reason": "Again"},
                              who="supervisor"), 409)
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(TakeHomeKit.id))) == 3


# --- The pages ------------------------------------------------------------------------------


def test_the_register_adds_gives_and_keeps_what_was_typed(client, auth, site):
    boss = make_staff(site, role="supervisor", username="sam")
    lot = make_lot(site, Actor.of(boss), now=utcnow(), lot="A1", expires=date(2099, 1, 1),
                   quantity=20)
    auth.login("sam")
    page = client.get(f"/sites/{site.slug}/naloxone/kits")
    assert page.status_code == 200 and "Add kits made from a lot" in page.get_data(as_text=True)
    added = auth.post(f"/sites/{site.slug}/naloxone/kits/add",
                      {"first_serial": "K-1001", "last_serial": "K-1020", "lot_id": str(lot.id)},
                      headers=HTMX)
    assert added.status_code == 200
    assert added.get_data(as_text=True).count('data-testid="kit"') == 20
    again = auth.post(f"/sites/{site.slug}/naloxone/kits/add",
                      {"first_serial": "K-1020", "last_serial": "K-1021", "lot_id": str(lot.id)},
                      headers=HTMX)
    text = again.get_data(as_text=True)
    assert again.status_code == 422 and "Already in the register: K-1020" in text
    assert 'value="K-1021"' in text, "what was typed stays"
    refused = auth.post(f"/sites/{site.slug}/naloxone/kits/issue",
                        {"serial": "K-1001", "client_code": "M-KITS-1990",
                         "replacement": "on", "replacement_note": "gone"}, headers=HTMX)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Say why this kit replaces another" in text
    assert 'value="M-KITS-1990"' in text and 'value="gone"' in text
    given = auth.post(f"/sites/{site.slug}/naloxone/kits/issue",
                      {"serial": "K-1001", "client_code": "M-KITS-1990"}, headers=HTMX)
    assert given.status_code == 200 and "Kit given." in given.get_data(as_text=True)
    # The lot's 20 ampoules are all in kits: none on hand for a dose, 19 kits still to give.
    stock = client.get(f"/sites/{site.slug}/naloxone").get_data(as_text=True)
    assert "Ampoule: <strong>0</strong>" in stock
    assert "Injectable: <strong>19</strong>" in stock.split('data-testid="kit-totals"')[1]
    none_left = auth.post(f"/sites/{site.slug}/naloxone/kits/add",
                          {"first_serial": "K-2000", "lot_id": str(lot.id)}, headers=HTMX)
    assert none_left.status_code == 422 and "too few to make 1 kit." in none_left.get_data(
        as_text=True)
    used = auth.post(f"/sites/{site.slug}/naloxone/kits/use",
                     {"serial": "K-1001", "used_on": site.local_date(utcnow()).isoformat(),
                      "doses": "2", "route": "in", "outcome": ""}, headers=HTMX)
    assert used.status_code == 422 and "Choose the outcome." in used.get_data(as_text=True)


def test_the_recall_page_lists_exactly_the_lots_kits(client, auth, site):
    boss = make_staff(site, role="supervisor", username="sam")
    make_staff(site, role="nurse", username="nina")
    now = utcnow()
    lot = make_lot(site, Actor.of(boss), now=now, lot="A1", quantity=20,
                   expires=date(2099, 1, 1))
    other = make_lot(site, Actor.of(boss), now=now, lot="B2", quantity=20,
                     expires=date(2099, 1, 1))
    kits.add_kits(site, {"lot_id": lot.id, "first_serial": "K-1", "last_serial": "K-2"},
                  actor=Actor.of(boss), now=now)
    kits.add_kits(site, {"lot_id": other.id, "first_serial": "K-9"}, actor=Actor.of(boss),
                  now=now)
    issue(site, Actor.of(boss), "K-1", client_code="M-KITS-1990", now=now)
    auth.login("sam")
    url = f"/sites/{site.slug}/naloxone/lots/{lot.id}/recall"
    blank = auth.post(url, {"reason": ""}, headers=HTMX)
    assert blank.status_code == 422 and "Say why the lot is recalled" in blank.get_data(
        as_text=True)
    done = auth.post(url, {"reason": "Manufacturer notice"}, headers=HTMX)
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and 'data-testid="recalled"' in text
    assert text.count('data-testid="kit"') == 2
    assert 'data-serial="K-1"' in text and 'data-serial="K-2"' in text
    assert "K-9" not in text and "M-KITS-1990" in text
