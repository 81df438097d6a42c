"""The controlled-drug register: its balance never below zero, every movement kept, waste
witnessed by another person with their PIN, two-person counts whose difference drafts an
incident and starts the loss-report clock (the alarm on day 7), the export, the API and the
page."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from factories import PIN, make_client, make_controlled_drug, make_site, make_staff
from routes import assert_api_error, bearer
from sqlalchemy import event
from sqlalchemy.exc import DatabaseError

from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.audit.models import AuditEvent
from srs.auth.service import Actor
from srs.controlled import service
from srs.controlled.models import ControlledDrug, ControlledEntry
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.incidents.models import Incident

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in Toronto


@pytest.fixture
def site(app):
    return make_site(slug="east")


@pytest.fixture
def nurse(site):
    return make_staff(site, role="nurse", username="nina")


@pytest.fixture
def other(site):
    return make_staff(site, role="supervisor", username="sam")


@pytest.fixture
def drug(site):
    return make_controlled_drug(site, balance=10, now=NOW)


def draw(site, drug, nurse, quantity, *, at=NOW, code="F-DOSE-1980", checked=True):
    return service.record_draw(site, {"drug_id": drug.id, "client_code": code,
                                      "quantity": quantity, "dose_mg": 200 * quantity,
                                      "identity_checked": checked},
                               actor=Actor.of(nurse), now=at)


def count(site, drug, nurse, other, counted, *, at=NOW, **extra):
    return service.record_count(site, {"drug_id": drug.id, "counted": counted,
                                       "first_id": nurse.id, "first_pin": PIN,
                                       "second_id": other.id, "second_pin": PIN, **extra},
                                actor=Actor.of(nurse), now=at)


def waste(site, drug, nurse, witness_id, *, pin=PIN, quantity=1, at=NOW):
    return service.record_waste(site, {"drug_id": drug.id, "kind": "wasted",
                                       "quantity": quantity, "reason": "Dropped vial",
                                       "witness_id": witness_id, "witness_pin": pin},
                                actor=Actor.of(nurse), now=at)


# --- The balance and the ledger ---------------------------------------------------------------


def test_a_draw_beyond_the_balance_is_refused_and_the_balance_never_goes_negative(
        site, drug, nurse):
    entry = draw(site, drug, nurse, 4)
    assert (entry.delta, entry.balance_after) == (-4, 6)
    with pytest.raises(Conflict, match="only 6 vial"):
        draw(site, drug, nurse, 7, at=NOW + timedelta(minutes=1))
    db.session.rollback()
    assert db.session.get(ControlledDrug, drug.id).balance == 6
    assert db.session.scalar(db.select(db.func.count(ControlledEntry.id))) == 2
    # The database refuses a negative balance whatever the code path.
    with pytest.raises(DatabaseError):
        db.session.execute(db.update(ControlledDrug).where(ControlledDrug.id == drug.id)
                           .values(balance=-1))
    db.session.rollback()


def test_every_movement_is_kept_the_database_refuses_updates_and_deletes(site, drug, nurse):
    entry_id = draw(site, drug, nurse, 1).id
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(db.update(ControlledEntry).where(ControlledEntry.id == entry_id)
                           .values(delta=-2))
    db.session.rollback()
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(db.delete(ControlledEntry).where(ControlledEntry.id == entry_id))
    db.session.rollback()
    assert db.session.get(ControlledEntry, entry_id).delta == -1


def test_receiving_needs_supplier_invoice_lot_and_an_unexpired_date(site, drug, nurse):
    data = {"drug_id": drug.id, "supplier": "Pharma Ltd", "invoice": "INV-2",
            "lot_number": "L2", "expires_on": date(2099, 1, 1), "quantity": 5}
    for name in ("supplier", "invoice", "lot_number"):
        with pytest.raises(Invalid) as refused:
            service.receive(site, {**data, name: " "}, actor=Actor.of(nurse), now=NOW)
        assert name in refused.value.errors
    with pytest.raises(Invalid) as refused:
        service.receive(site, {**data, "expires_on": date(2020, 1, 1)}, actor=Actor.of(nurse),
                        now=NOW)
    assert "expires_on" in refused.value.errors
    entry = service.receive(site, data, actor=Actor.of(nurse), now=NOW)
    assert (entry.balance_after, entry.supplier, entry.lot_number) == (15, "Pharma Ltd", "L2")


def test_a_draw_locks_the_line_with_a_guarded_update(site, drug, nurse):
    """Two draws at once are applied one after the other: the UPDATE that checks the
    balance is the one that changes it (and takes the row's lock), never a read then a
    write."""
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        draw(site, drug, nurse, 1)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    guarded = [s for s in statements if s.startswith("UPDATE controlled_drug")]
    assert len(guarded) == 1
    changes, condition = guarded[0].split(" WHERE ")
    assert "balance + " in changes and "balance + " in condition and ">=" in condition


# --- Waste -------------------------------------------------------------------------------------


def test_waste_needs_another_person_as_witness_with_their_valid_pin(site, drug, nurse, other):
    with pytest.raises(Invalid, match="another person"):
        waste(site, drug, nurse, nurse.id)
    with pytest.raises(Invalid, match="Wrong PIN"):
        waste(site, drug, nurse, other.id, pin="000000")
    outsider = make_staff(make_site(), role="nurse")
    with pytest.raises(Invalid, match="this site's staff"):
        waste(site, drug, nurse, outsider.id)
    assert db.session.scalars(db.select(AuditEvent.entity_id).filter_by(
        action="controlled_pin_wrong")).all() == [str(other.id)]
    entry = waste(site, drug, nurse, other.id, quantity=2)
    assert (entry.kind, entry.balance_after) == ("wasted", 8)
    assert (entry.witness_name, entry.witness_role) == (other.display_name, "supervisor")
    with pytest.raises(Conflict):
        waste(site, drug, nurse, other.id, quantity=9)


def test_five_wrong_pins_for_one_person_refuse_their_pin_for_fifteen_minutes(
        site, drug, nurse, other):
    for _ in range(5):
        with pytest.raises(Invalid, match="Wrong PIN"):
            waste(site, drug, nurse, other.id, pin="000000")
    with pytest.raises(Invalid, match="Too many wrong PINs"):
        waste(site, drug, nurse, other.id)  # the right PIN, too late
    assert waste(site, drug, nurse, other.id, at=NOW + timedelta(minutes=16)).balance_after == 9


# --- Counts and the loss-report clock -------------------------------------------------------


def test_a_matching_count_is_recorded_and_changes_nothing(site, drug, nurse, other):
    matched = count(site, drug, nurse, other, 10)
    assert (matched.expected, matched.difference, matched.incident_id) == (10, 0, None)
    assert db.session.scalar(db.select(db.func.count(Incident.id))) == 0
    with pytest.raises(Invalid, match="Two different people"):
        service.record_count(site, {"drug_id": drug.id, "counted": 10, "first_id": nurse.id,
                                    "first_pin": PIN, "second_id": nurse.id,
                                    "second_pin": PIN}, actor=Actor.of(nurse), now=NOW)
    with pytest.raises(Invalid, match="Wrong PIN"):
        count(site, drug, nurse, other, 10, second_pin="111111")


def test_a_discrepancy_adjusts_drafts_an_incident_and_alarms_on_day_seven_not_before(
        site, drug, nurse, other):
    found = count(site, drug, nurse, other, 8)
    assert (found.expected, found.difference) == (10, -2)
    adjusted = db.session.execute(db.select(ControlledEntry).filter_by(
        count_id=found.id)).scalar_one()
    assert (adjusted.kind, adjusted.delta, adjusted.balance_after) == ("adjusted", -2, 8)
    incident = db.session.get(Incident, found.incident_id)
    assert incident.site_id == site.id and incident.stage == "draft"
    assert "counted 8" in incident.narrative and incident.reported_by == nurse.id

    def loss_alerts():
        return db.session.scalars(db.select(Alert).filter_by(
            kind=service.LOSS_ALERT, site_id=site.id)).all()

    alerts.scan(now=NOW + timedelta(days=7) - timedelta(seconds=1))
    assert loss_alerts() == []
    alerts.scan(now=NOW + timedelta(days=7))
    assert [a.due_at for a in loss_alerts()] == [NOW + timedelta(days=7)]
    alerts.scan(now=NOW + timedelta(days=7, seconds=1))  # raised once
    assert len(loss_alerts()) == 1
    register = service.register(site, now=NOW + timedelta(days=7))
    assert register["open_losses"][0]["report_by"] == NOW + timedelta(days=10)
    boss = Actor.of(other)
    service.mark_loss_reported(site, found.id, {"reference": "HC-4000-123"}, actor=boss,
                               now=NOW + timedelta(days=8))
    assert loss_alerts()[0].resolved_at is not None
    assert service.register(site, now=NOW + timedelta(days=8))["open_losses"] == []
    with pytest.raises(Conflict):
        service.mark_loss_reported(site, found.id, {"reference": "again"}, actor=boss,
                                   now=NOW + timedelta(days=8))


def test_a_loss_reported_before_day_seven_never_alarms(site, drug, nurse, other):
    found = count(site, drug, nurse, other, 9)
    service.mark_loss_reported(site, found.id, {"reference": "R1"}, actor=Actor.of(other),
                               now=NOW + timedelta(days=2))
    alerts.scan(now=NOW + timedelta(days=8))
    assert db.session.scalars(db.select(Alert).filter_by(kind=service.LOSS_ALERT)).all() == []


# --- Export -----------------------------------------------------------------------------------


def test_the_export_holds_every_movement_of_the_period_in_order_with_running_balances(
        site, drug, nurse, other):
    make_client(site, code="F-DOSE-1980")
    draw(site, drug, nurse, 3, at=NOW + timedelta(hours=1))
    waste(site, drug, nurse, other.id, at=NOW + timedelta(hours=2))
    count(site, drug, nurse, other, 5, at=NOW + timedelta(hours=3))
    draw(site, drug, nurse, 1, at=NOW + timedelta(days=40))  # after the period
    text = service.register_csv(site, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                actor=Actor.of(other), now=NOW + timedelta(days=41))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["Movement"], r["Quantity"], r["Balance"]) for r in rows] == [
        ("Received", "10", "10"), ("Drawn for a dose", "-3", "7"), ("Wasted", "-1", "6"),
        ("Adjusted by a count", "-1", "5")]
    drawn = rows[1]
    assert drawn["Supplier or person supplied"] == "F-DOSE-1980"
    assert drawn["Identity checked"] == "yes" and drawn["Legal name"] == ""
    assert rows[0]["Supplier or person supplied"] == "Pharma Ltd"
    assert db.session.scalars(db.select(AuditEvent).filter_by(
        action="controlled_register_exported")).one().detail["format"] == "csv"


# --- API ----------------------------------------------------------------------------------------


@pytest.fixture
def api(client, site, nurse, other):
    headers = {"nurse": bearer(nurse), "supervisor": bearer(other)}

    class Api:
        def post(self, path, json=None, who="nurse"):
            return client.post(f"/api/v1/sites/{site.id}{path}", json=json,
                               headers=headers[who])

        def get(self, path, who="nurse"):
            return client.get(f"/api/v1/sites/{site.id}{path}", headers=headers[who])

    return Api()


def test_api_each_operation_and_its_refusals(api, site, nurse, other):
    line = {"name": "Hydromorphone", "strength": "100 mg/mL", "unit": "mL"}
    assert_api_error(api.post("/controlled/drugs", line), 403)  # a nurse opens no line
    created = api.post("/controlled/drugs", line, who="supervisor")
    assert created.status_code == 201, created.get_json()
    drug_id = created.get_json()["id"]
    assert_api_error(api.post("/controlled/drugs", line, who="supervisor"), 422, "strength")
    receipt = {"drug_id": drug_id, "supplier": "Pharma Ltd", "invoice": "INV-9",
               "lot_number": "H1", "expires_on": "2099-01-01", "quantity": 20}
    received = api.post("/controlled/receipts", receipt)
    assert received.status_code == 201 and received.get_json()["balance_after"] == 20
    assert_api_error(api.post("/controlled/receipts", {**receipt, "quantity": 0}), 422,
                     "quantity")
    wasted = {"drug_id": drug_id, "kind": "wasted", "quantity": 2, "reason": "Spilled",
              "witness_id": other.id, "witness_pin": PIN}
    answer = api.post("/controlled/waste", wasted)
    assert answer.status_code == 201 and answer.get_json()["witness_name"] == other.display_name
    assert "witness_pin" not in answer.get_json()
    assert_api_error(api.post("/controlled/waste", {**wasted, "witness_id": nurse.id}), 422,
                     "witness_id")
    assert_api_error(api.post("/controlled/waste", {**wasted, "witness_pin": "000000"}), 422,
                     "witness_pin")
    assert_api_error(api.post("/controlled/waste", {**wasted, "quantity": 99}), 409)
    counted = {"drug_id": drug_id, "counted": 17, "first_id": nurse.id, "first_pin": PIN,
               "second_id": other.id, "second_pin": PIN}
    result = api.post("/controlled/counts", counted)
    assert result.status_code == 201
    assert result.get_json()["difference"] == -1 and result.get_json()["incident_id"]
    assert_api_error(api.post("/controlled/counts", {**counted, "first_pin": "1"}), 422,
                     "first_pin")
    listed = api.get("/controlled").get_json()
    assert listed["lines"][0]["drug"]["balance"] == 17
    assert [e["kind"] for e in listed["lines"][0]["entries"]] == ["adjusted", "wasted",
                                                                 "received"]
    assert listed["open_losses"][0]["count"]["id"] == result.get_json()["id"]
    count_id = result.get_json()["id"]
    assert_api_error(api.post(f"/controlled/counts/{count_id}/reported", {"reference": "R"}),
                     403)
    reported = api.post(f"/controlled/counts/{count_id}/reported", {"reference": "R"},
                        who="supervisor")
    assert reported.status_code == 200 and reported.get_json()["loss_reference"] == "R"
    assert_api_error(api.post(f"/controlled/counts/{count_id}/reported", {"reference": "R"},
                              who="supervisor"), 409)
    assert_api_error(api.post("/controlled/receipts", {**receipt, "drug_id": 99999}), 404)


# --- The page ------------------------------------------------------------------------------------


def test_the_page_shows_balances_keeps_typed_values_on_a_refusal_and_exports(
        client, auth, site, nurse, other):
    make_controlled_drug(site, balance=4, now=NOW)
    auth.login("sam")
    page = client.get("/sites/east/controlled")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-testid="balance">4<' in text and "Witness&#39;s PIN" in text
    assert 'data-busy-label' in text and "register.csv" in text
    drug_id = db.session.scalars(db.select(ControlledDrug.id)).one()
    refused = auth.post("/sites/east/controlled/waste", {
        "drug_id": drug_id, "kind": "wasted", "quantity": "1", "reason": "Dropped it",
        "witness_id": str(other.id), "witness_pin": PIN})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "another person" in body and 'value="Dropped it"' in body and PIN not in body
    done = auth.post("/sites/east/controlled/waste", {
        "drug_id": drug_id, "kind": "wasted", "quantity": "1", "reason": "Dropped it",
        "witness_id": str(nurse.id), "witness_pin": PIN})
    assert done.status_code == 200 and 'data-testid="balance">3<' in done.get_data(as_text=True)
    returned = auth.post("/sites/east/controlled/return", {
        "drug_id": drug_id, "supplier": "Pharma Ltd", "quantity": "5", "reason": "Recall"})
    assert returned.status_code == 409 and 'value="Recall"' in returned.get_data(as_text=True)
    returned = auth.post("/sites/east/controlled/return", {
        "drug_id": drug_id, "supplier": "Pharma Ltd", "quantity": "1", "reason": "Recall"})
    assert 'data-testid="balance">2<' in returned.get_data(as_text=True)
    exported = client.get("/sites/east/controlled/register.csv?start=2026-11-01&end=2026-12-31")
    assert exported.status_code == 200 and "Wasted" in exported.get_data(as_text=True)
    pdf = client.get("/sites/east/controlled/register.pdf?start=2026-11-01&end=2026-12-31")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get("/sites/east/controlled/register.csv?start=x").status_code == 422
    home = client.get("/").get_data(as_text=True)
    assert 'data-testid="controlled-link"' in home
