"""The overdose record, service by service, with a fixed clock; a dose draws from naloxone
stock."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import ledger_balances, make_booth, make_lot, make_site, make_staff

from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.clients import service as clients
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.naloxone import service as naloxone
from srs.naloxone.models import NaloxoneLot, StockFinding
from srs.overdose import service
from srs.overdose.models import Intervention, OverdoseResponse

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in Toronto


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.fixture
def site(app):
    return make_site(slug="east", naloxone_redose_seconds=150, naloxone_low_stock=3)


@pytest.fixture
def actor(site):
    return Actor.of(make_staff(site, role="nurse", username="nina"), "10.0.0.5")


@pytest.fixture
def boss(site):
    return Actor.of(make_staff(site, role="supervisor", username="sam"))


@pytest.fixture
def visit(site, actor):
    booth = make_booth(site, label="B1")
    waiting = floor.check_in(site, code="F-ABCD-1984", handle=None, actor=actor,
                             actor_roles={"nurse"}, now=NOW - timedelta(minutes=10))
    return floor.assign_booth(waiting, booth, actor=actor, now=NOW - timedelta(minutes=5))


def receive(site, boss, *, at=NOW, **lot):
    return make_lot(site, boss, now=at, **lot)


def start(site, actor, visit=None, *, kind="opioid", at=NOW, **kwargs):
    response, created = service.start_response(site, kind=kind, visit=visit, actor=actor,
                                               now=at, **kwargs)
    return response


def dose(response, actor, *, route="im", at=NOW, **extra):
    return service.record_intervention(response, {"kind": "naloxone", "route": route, **extra},
                                       actor=actor, now=at)


# --- Starting -------------------------------------------------------------------------------

def test_a_tap_on_a_booth_opens_a_response_for_its_client(site, actor, visit):
    response, created = service.start_response(site, kind="opioid", visit=visit, actor=actor,
                                               now=NOW)
    assert created
    assert (response.site_id, response.visit_id, response.client_id) == (
        site.id, visit.id, visit.client_id)
    assert (response.source, response.location, response.started_at) == (
        "booth", "Booth B1", NOW)
    assert service.active_responses(site) == [response]
    again, created = service.start_response(site, kind="opioid", visit=visit, actor=actor,
                                            now=later(3))
    assert again.id == response.id and not created, "a second tap opens the same console"


def test_someone_not_checked_in_is_found_at_a_place_from_the_site_list(site, actor):
    response = start(site, actor, location="Washroom")
    assert (response.source, response.location, response.client_id) == (
        "not_checked_in", "Washroom", None)
    with pytest.raises(Invalid) as refused:
        start(site, actor, location="The moon")
    assert "location" in refused.value.errors


def test_up_to_two_emergencies_per_visit(site, actor, visit):
    first = start(site, actor, visit)
    service.close_response(first, outcome="recovered_on_site", note=None, actor=actor,
                           now=later(60))
    floor.start_observation(visit, actor=actor, now=later(70))
    second = start(site, actor, visit, kind="stimulant", at=later(80))
    assert (second.source, second.visit_seq) == ("aftercare", 2)
    service.close_response(second, outcome="recovered_on_site", note=None, actor=actor,
                           now=later(90))
    with pytest.raises(Conflict, match="2 emergencies"):
        start(site, actor, visit, at=later(100))


def test_an_unknown_kind_is_refused_on_the_field(site, actor, visit):
    with pytest.raises(Invalid) as refused:
        start(site, actor, visit, kind="cannabis")
    assert "kind" in refused.value.errors
    assert db.session.scalar(db.select(db.func.count(OverdoseResponse.id))) == 0


# --- The timeline ---------------------------------------------------------------------------

def test_the_timeline_keeps_who_did_what_and_when(site, actor, boss, visit):
    receive(site, boss)
    response = start(site, actor, visit)
    steps = [({"kind": "stimulation"}, 5), ({"kind": "rescue_breaths"}, 10),
             ({"kind": "oxygen_on", "oxygen_lpm": 10}, 20), ({"kind": "spo2", "spo2": 88}, 30),
             ({"kind": "naloxone", "route": "im"}, 40), ({"kind": "ems_called"}, 45),
             ({"kind": "note", "note": "Pupils pinpoint"}, 50)]
    for data, seconds in steps:
        service.record_intervention(response, data, actor=actor, now=later(seconds))
    service.close_response(response, outcome="recovered_on_site", note=None, actor=boss,
                           now=later(300))
    timeline = service.response_timeline(response)
    assert [e["what"] for e in timeline] == [
        "started", "stimulation", "rescue_breaths", "oxygen_on", "spo2", "naloxone",
        "ems_called", "note", "closed"]
    assert timeline[4]["detail"] == "SpO2 88%"
    assert timeline[5]["detail"] == "Naloxone 0.4 mg IM, lot A1"
    assert timeline[3]["detail"] == "Oxygen on, 10 L/min"
    assert {e["who"] for e in timeline[:-1]} == {"nina"} and timeline[-1]["who"] == "sam"
    assert timeline[6]["time"] == later(45).isoformat(timespec="seconds")
    actions = list(db.session.execute(db.select(AuditEvent.action).filter_by(
        entity="overdose_response", entity_id=str(response.id))).scalars())
    assert actions == ["overdose_started", *["intervention_recorded"] * 7, "overdose_closed"]


def test_closing_writes_a_draft_that_answers_ontarios_questions(site, actor, visit):
    response = start(site, actor, visit)
    for data, seconds in [({"kind": "oxygen_on"}, 10), ({"kind": "naloxone", "route": "in"}, 20),
                          ({"kind": "naloxone", "route": "im"}, 200),
                          ({"kind": "ems_called"}, 30)]:
        service.record_intervention(response, data, actor=actor, now=later(seconds))
    service.close_response(response, outcome="transferred_to_hospital", note=None,
                           actor=actor, now=later(600))
    db.session.expire_all()
    draft = db.session.get(OverdoseResponse, response.id).report_draft
    assert draft["type"] == "overdose" and draft["status"] == "draft"
    assert draft["client_code"] == "F-ABCD-1984" and draft["outcome"] == "transferred_to_hospital"
    summary = draft["summary"]
    assert summary["oxygen"] and not summary["stimulation"] and not summary["rescue_breaths"]
    assert (summary["naloxone"], summary["naloxone_doses"], summary["naloxone_total_mg"]) == (
        True, 2, 4.4)
    assert summary["ems_called"] and summary["ems_called_at"] == later(30).isoformat(
        timespec="seconds")
    assert summary["stock_discrepancy"], "no stock was received"
    assert len(draft["timeline"]) == 6


def test_an_entry_on_a_closed_response_is_refused(site, actor, visit):
    response = start(site, actor, visit)
    service.close_response(response, outcome="recovered_on_site", note=None, actor=actor,
                           now=later(60))
    with pytest.raises(Conflict) as refused:
        service.record_intervention(response, {"kind": "cpr"}, actor=actor, now=later(70))
    assert refused.value.status == 409 and refused.value.detail["current_state"] == "closed"
    with pytest.raises(Conflict):
        service.close_response(response, outcome="death", note=None, actor=actor,
                               now=later(80))
    assert db.session.get(OverdoseResponse, response.id).outcome == "recovered_on_site"


@pytest.mark.parametrize("outcome, note, field", [(None, None, "outcome"),
                                                  ("", None, "outcome"),
                                                  ("better", None, "outcome"),
                                                  ("other", "  ", "note")])
def test_closing_needs_an_outcome(site, actor, visit, outcome, note, field):
    response = start(site, actor, visit)
    with pytest.raises(Invalid) as refused:
        service.close_response(response, outcome=outcome, note=note, actor=actor,
                               now=later(60))
    assert field in refused.value.errors
    db.session.rollback()
    assert db.session.get(OverdoseResponse, response.id).closed_at is None


@pytest.mark.parametrize("data, field", [
    ({"kind": "naloxone", "route": "im", "dose_mg": 0.03}, "dose_mg"),
    ({"kind": "naloxone", "route": "iv", "dose_mg": 10.5}, "dose_mg"),
    ({"kind": "naloxone", "route": "iv"}, "dose_mg"),
    ({"kind": "naloxone"}, "route"),
    ({"kind": "spo2", "spo2": 49}, "spo2"),
    ({"kind": "spo2", "spo2": 101}, "spo2"),
    ({"kind": "spo2"}, "spo2"),
    ({"kind": "note"}, "note"),
    ({"kind": "cpr", "spo2": 90}, "spo2"),
    ({"kind": "dance"}, "kind"),
])
def test_bad_readings_are_refused_on_the_field_and_nothing_is_saved(site, actor, boss, visit,
                                                                   data, field):
    lot_id = receive(site, boss).id
    response = start(site, actor, visit)
    with pytest.raises(Invalid) as refused:
        service.record_intervention(response, data, actor=actor, now=later(10))
    assert field in refused.value.errors
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Intervention.id))) == 0
    assert db.session.get(NaloxoneLot, lot_id).quantity == 5


# --- The re-dose prompt ---------------------------------------------------------------------

def due_redose(now: datetime) -> list[int]:
    """The responses the alert scan would prompt to reassess at ``now``."""
    return [due["subject_id"] for due in service.due_redose_alerts(now=now)]


def test_a_dose_sets_the_reassess_time_from_the_site_interval(site, actor, visit):
    response = start(site, actor, visit)
    dose(response, actor, at=later(30))
    assert response.redose_due_at == later(30 + 150)
    assert due_redose(later(179)) == []
    assert due_redose(later(180)) == [response.id]
    dose(response, actor, at=later(200))
    assert response.redose_due_at == later(350), "the next dose restarts the interval"
    service.record_intervention(response, {"kind": "reassessed"}, actor=actor, now=later(360))
    assert response.redose_due_at is None
    assert due_redose(later(400)) == []


def test_the_interval_is_a_site_setting(site, actor, visit):
    site.naloxone_redose_seconds = 10
    db.session.commit()
    response = start(site, actor, visit)
    dose(response, actor, route="in", at=later(5))
    assert response.redose_due_at == later(15)


def test_closing_ends_the_prompt(site, actor, visit):
    response = start(site, actor, visit)
    dose(response, actor, at=later(5))
    service.close_response(response, outcome="recovered_on_site", note=None, actor=actor,
                           now=later(30))
    assert due_redose(later(1000)) == []


# --- Doses drawn from stock ------------------------------------------------------------------

def test_a_dose_takes_the_lot_that_expires_first(site, actor, boss, visit):
    late = receive(site, boss, lot="LATE", expires=date(2028, 1, 1), quantity=5)
    soon = receive(site, boss, lot="SOON", expires=date(2027, 1, 1), quantity=1)
    vial = receive(site, boss, form="vial", lot="VIAL", expires=date(2027, 3, 1), quantity=2)
    nasal = receive(site, boss, form="nasal_spray", lot="NS", expires=date(2026, 12, 31),
                    quantity=2)
    response = start(site, actor, visit)
    first = dose(response, actor, at=later(10))
    second = dose(response, actor, at=later(20))
    third = dose(response, actor, route="in", at=later(30))
    assert (first.lot_id, second.lot_id, third.lot_id) == (soon.id, vial.id, nasal.id)
    db.session.expire_all()
    assert [lot.quantity for lot in (soon, vial, late, nasal)] == [0, 1, 5, 1]
    assert ledger_balances(site)


def test_an_expired_lot_is_never_taken(site, actor, boss, visit):
    lot = receive(site, boss, lot="OLD", expires=date(2026, 11, 30), quantity=2)
    response = start(site, actor, visit)
    entry = dose(response, actor, at=datetime(2026, 12, 2, 15, tzinfo=UTC))
    assert entry.lot_id is None and entry.stock_discrepancy
    assert db.session.get(NaloxoneLot, lot.id).quantity == 2


def test_a_dose_never_takes_a_unit_sealed_in_a_take_home_kit(site, actor, boss, visit):
    from srs.naloxone import kits

    lot = receive(site, boss, lot="A1", quantity=2)
    kits.add_kits(site, {"lot_id": lot.id, "first_serial": "K-1", "last_serial": "K-2"},
                  actor=boss, now=NOW)
    assert naloxone.list_stock(site, now=NOW)["on_hand"]["ampoule"] == 0
    response = start(site, actor, visit)
    entry = dose(response, actor, at=later(10))
    assert entry.lot_id is None and entry.stock_discrepancy, "the kits' units are not on hand"
    db.session.expire_all()
    assert db.session.get(NaloxoneLot, lot.id).quantity == 0
    # The kit still goes out whole, with no discrepancy of its own.
    given = naloxone.issue_kit(site, {"serial": "K-1", "client_code": "M-KITS-1990"},
                               actor=actor, now=later(60))
    assert given.stock_discrepancy is False
    assert [f.intervention_id for f in db.session.execute(db.select(StockFinding).filter_by(
        kind="discrepancy")).scalars()] == [entry.id]
    assert ledger_balances(site)


def test_a_dose_with_no_stock_is_recorded_and_flagged(site, actor, visit):
    response = start(site, actor, visit)
    entry = dose(response, actor, at=later(10))
    assert entry.id and entry.stock_discrepancy and entry.lot_id is None
    assert response.redose_due_at == later(160), "care comes first: the timer still runs"
    finding = db.session.execute(db.select(StockFinding).filter_by(
        kind="discrepancy")).scalar_one()
    assert finding.intervention_id == entry.id and "no ampoule or vial" in finding.detail
    stock = naloxone.list_stock(site, now=later(20))
    assert finding in stock["findings"]


# --- Amendments -----------------------------------------------------------------------------

def test_a_correction_is_a_new_row_with_a_reason(site, actor, boss, visit):
    response = start(site, actor, visit)
    reading = service.record_intervention(response, {"kind": "spo2", "spo2": 98}, actor=actor,
                                          now=later(30))
    with pytest.raises(Invalid) as refused:
        service.record_intervention(response, {"amends_id": reading.id, "spo2": 88},
                                    actor=boss, now=later(40))
    assert "amend_reason" in refused.value.errors
    fixed = service.record_intervention(response, {
        "amends_id": reading.id, "spo2": 88, "amend_reason": "Misread the oximeter",
        "at": later(25)}, actor=boss, now=later(40))
    db.session.expire_all()
    assert db.session.get(Intervention, reading.id).spo2 == 98, "the original stays"
    assert (fixed.kind, fixed.spo2, fixed.amends_id, fixed.at) == (
        "spo2", 88, reading.id, later(25))
    timeline = service.response_timeline(db.session.get(OverdoseResponse, response.id))
    entry = timeline[1]
    assert entry["detail"] == "SpO2 88%" and entry["who"] == "nina"
    assert entry["amendments"] == [{
        "time": later(40).isoformat(timespec="seconds"), "who": "sam",
        "reason": "Misread the oximeter", "struck": False, "was": "SpO2 98%",
        "was_time": later(30).isoformat(timespec="seconds")}]
    with pytest.raises(Conflict, match="latest"):
        service.record_intervention(response, {
            "amends_id": reading.id, "spo2": 90, "amend_reason": "again"}, actor=boss,
            now=later(50))


def test_striking_a_dose_returns_its_unit_and_moves_the_prompt(site, actor, boss, visit):
    lot = receive(site, boss, quantity=2)
    response = start(site, actor, visit)
    dose(response, actor, at=later(10))
    mistake = dose(response, actor, at=later(20))
    assert response.redose_due_at == later(170)
    service.record_intervention(response, {
        "amends_id": mistake.id, "struck": True, "amend_reason": "Tapped twice"},
        actor=actor, now=later(30))
    db.session.expire_all()
    response = db.session.get(OverdoseResponse, response.id)
    assert response.redose_due_at == later(160)
    assert db.session.get(NaloxoneLot, lot.id).quantity == 1
    assert service.response_summary(response)["naloxone_doses"] == 1
    assert ledger_balances(site)


def test_an_amendment_after_closing_rewrites_the_draft(site, actor, visit):
    response = start(site, actor, visit)
    step = service.record_intervention(response, {"kind": "ems_called"}, actor=actor,
                                       now=later(60))
    service.close_response(response, outcome="recovered_declined_ems", note=None, actor=actor,
                           now=later(600))
    service.record_intervention(response, {
        "amends_id": step.id, "at": later(45), "amend_reason": "Phone log says 45 s"},
        actor=actor, now=later(900))
    db.session.expire_all()
    draft = db.session.get(OverdoseResponse, response.id).report_draft
    assert draft["summary"]["ems_called_at"] == later(45).isoformat(timespec="seconds")
    assert draft["timeline"][1]["amendments"][0]["reason"] == "Phone log says 45 s"


# --- Flags at check-in ----------------------------------------------------------------------

def test_check_in_flags_an_overdose_in_the_last_30_days(site, actor, visit):
    client = visit.client
    assert not clients.client_flags(client, today=NOW.date())["recent_overdose"]
    start(site, actor, visit)
    assert clients.client_flags(client, today=NOW.date())["recent_overdose"]
    assert not clients.client_flags(client, today=(NOW + timedelta(days=32)).date())[
        "recent_overdose"]
