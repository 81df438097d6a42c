"""Naloxone stock, service by service, with a fixed clock: receiving, taking out, kits, the
daily check, and the doses the overdose console draws."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import ledger_balances, make_lot, make_site, make_staff

from srs.auth.service import Actor
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.naloxone import service
from srs.naloxone.models import FORMS_FOR_ROUTE, NaloxoneLot, StockFinding, StockMovement
from srs.overdose.models import ROUTES, Intervention
from srs.overdose.service import monthly_figures, start_response

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


def receive(site, boss, *, at=NOW, **lot):
    return make_lot(site, boss, now=at, **lot)


def dose_entry(site, actor, *, route="im") -> Intervention:
    """A dose on the console's record, not yet drawn from stock."""
    response, _created = start_response(site, kind="opioid", location="Washroom", actor=actor,
                                        now=NOW)
    entry = Intervention(response_id=response.id, kind="naloxone", at=NOW, recorded_at=NOW,
                         recorded_by=actor.staff_id, route=route, dose_mg=0.4)
    db.session.add(entry)
    db.session.flush()
    return entry


def test_receiving_the_same_lot_again_adds_to_it(site, boss):
    first = receive(site, boss, quantity=5)
    again = receive(site, boss, quantity=3)
    assert again.id == first.id and again.quantity == 8
    with pytest.raises(Invalid) as refused:
        receive(site, boss, quantity=1, expires=date(2027, 7, 1))
    assert "expires_on" in refused.value.errors
    assert ledger_balances(site)


def test_stock_received_already_expired_is_refused(site, boss):
    with pytest.raises(Invalid) as refused:
        receive(site, boss, expires=date(2026, 11, 23))
    assert "expires_on" in refused.value.errors
    assert db.session.scalar(db.select(db.func.count(NaloxoneLot.id))) == 0


def test_wasted_expired_and_adjusted_stock_moves_through_the_ledger(site, boss):
    lot = receive(site, boss, quantity=5)
    service.record_movement(lot, kind="wasted", quantity=1, reason="Dropped", actor=boss,
                            now=later(1))
    service.record_movement(lot, kind="adjusted", quantity=-2, reason="Count on shift change",
                            actor=boss, now=later(2))
    with pytest.raises(Invalid):
        service.record_movement(lot, kind="adjusted", quantity=1, reason="", actor=boss,
                                now=later(3))
    with pytest.raises(Conflict):
        service.record_movement(lot, kind="expired", quantity=3, reason=None, actor=boss,
                                now=later(4))
    db.session.expire_all()
    assert db.session.get(NaloxoneLot, lot.id).quantity == 2
    kinds = [m.kind for m in db.session.execute(db.select(StockMovement).order_by(
        StockMovement.id)).scalars()]
    assert kinds == ["received", "wasted", "adjusted"]
    assert ledger_balances(site)


def test_take_home_kits_are_counted_and_drawn_from_stock(site, actor, boss):
    receive(site, boss, form="nasal_spray", lot="NS1", quantity=1)
    kit = service.record_take_home_kit(site, {
        "client_code": "m-kits-1990", "form": "nasal", "number": 2, "replaces_used": True,
        "training_given": True}, actor=actor, now=later(10))
    assert kit.client.code == "M-KITS-1990" and kit.stock_discrepancy, "one short"
    service.record_take_home_kit(site, {"client_code": "M-KITS-1990", "form": "injectable"},
                                 actor=actor, now=later(20))
    with pytest.raises(Invalid) as refused:
        service.record_take_home_kit(site, {"client_code": "Bob", "form": "nasal"},
                                     actor=actor, now=later(30))
    assert "client_code" in refused.value.errors
    figures = monthly_figures(site, start=NOW, end=NOW + timedelta(days=30))
    assert figures["take_home_kits"] == {"injectable": 1, "nasal": 2}
    assert figures["take_home_kits_replacing_used"] == 2
    assert figures["take_home_kits_with_training"] == 2
    assert ledger_balances(site)


def test_the_daily_check_finds_low_stock_and_lots_expiring_within_30_days(site, boss):
    receive(site, boss, lot="SOON", expires=date(2026, 12, 20), quantity=2)
    receive(site, boss, form="nasal_spray", lot="NS", expires=date(2028, 1, 1), quantity=5)
    db.session.execute(db.delete(StockFinding))
    db.session.commit()
    made = service.check_naloxone_stock(now=later(60))
    open_ = {f.kind: f for f in db.session.execute(db.select(StockFinding).filter_by(
        resolved_at=None)).scalars()}
    assert made == 2 and set(open_) == {"low_stock", "expiring"}
    assert "Injectable naloxone: 2 on hand" in open_["low_stock"].detail
    assert service.check_naloxone_stock(now=later(86400)) == 0, "a re-run repeats nothing"
    receive(site, boss, lot="MORE", expires=date(2028, 1, 1), quantity=10, at=later(90000))
    still = {f.kind for f in db.session.execute(db.select(StockFinding).filter_by(
        resolved_at=None)).scalars()}
    assert still == {"expiring"}, "restocking resolves the low-stock finding"


def test_a_finding_another_writer_made_in_the_same_second_is_not_a_failure(site, boss):
    """The daily job and a receipt check the stock at once: both find the same condition in
    the same second. The second writer's receipt used to fail on the finding's unique key."""
    receive(site, boss, lot="LOW", expires=date(2028, 1, 1), quantity=1)
    db.session.execute(db.delete(StockFinding))
    # What the other writer committed a moment before (and someone already dealt with).
    db.session.add(StockFinding(site_id=site.id, kind="low_stock", key=f"low:injectable@"
                                f"{later(60).isoformat(timespec='seconds')}",
                                detail="Injectable naloxone: 1 on hand", found_at=later(60),
                                resolved_at=later(60)))
    db.session.commit()
    lot = receive(site, boss, lot="LOW", expires=date(2028, 1, 1), quantity=1, at=later(60))
    assert lot.quantity == 2, "the receipt is saved"


# --- Doses the console draws ----------------------------------------------------------------

def test_every_route_the_console_offers_draws_from_some_form():
    assert set(FORMS_FOR_ROUTE) == set(ROUTES)


def test_a_dose_draws_first_expiry_first_and_does_not_commit(site, actor, boss):
    late = receive(site, boss, lot="LATE", expires=date(2028, 1, 1), quantity=5)
    soon = receive(site, boss, form="vial", lot="SOON", expires=date(2027, 1, 1), quantity=1)
    entry = dose_entry(site, actor)
    drawn = service.draw_doses(site, route="im", units=2, intervention_id=entry.id,
                               given="IM 0.4 mg", actor=actor, now=later(10))
    assert drawn == service.Drawn(lot_id=soon.id, short=0)
    assert (db.session.get(NaloxoneLot, soon.id).quantity,
            db.session.get(NaloxoneLot, late.id).quantity) == (0, 4)
    assert ledger_balances(site)
    db.session.rollback()
    assert db.session.get(NaloxoneLot, late.id).quantity == 5, "the console commits, not us"


def test_a_dose_with_nothing_on_hand_is_a_discrepancy(site, actor):
    entry = dose_entry(site, actor, route="in")
    drawn = service.draw_doses(site, route="in", intervention_id=entry.id,
                               given="IN 4 mg given in response 1", actor=actor, now=later(10))
    assert drawn == service.Drawn(lot_id=None, short=1)
    finding = db.session.execute(db.select(StockFinding).filter_by(
        kind="discrepancy")).scalar_one()
    assert finding.intervention_id == entry.id
    assert finding.detail == "IN 4 mg given in response 1 with no nasal spray on hand."
    with pytest.raises(Invalid) as refused:
        service.draw_doses(site, route="oral", intervention_id=entry.id, given="",
                           actor=actor, now=later(20))
    assert "route" in refused.value.errors


def test_a_struck_dose_goes_back_to_its_lot(site, actor, boss):
    lot = receive(site, boss, quantity=2)
    entry = dose_entry(site, actor)
    service.draw_doses(site, route="im", intervention_id=entry.id, given="IM 0.4 mg",
                       actor=actor, now=later(10))
    service.return_dose(site, lot.id, intervention_id=entry.id, reason="Tapped twice",
                        actor=actor, now=later(20))
    assert db.session.get(NaloxoneLot, lot.id).quantity == 2
    back = db.session.execute(db.select(StockMovement).order_by(
        StockMovement.id.desc())).scalars().first()
    assert (back.kind, back.delta, back.reason) == ("adjusted", 1, "Tapped twice")
    assert ledger_balances(site)


def test_a_struck_dose_back_on_the_shelf_clears_the_low_stock_it_caused(site, actor, boss):
    lot = receive(site, boss, quantity=site.naloxone_low_stock)
    entry = dose_entry(site, actor)
    service.draw_doses(site, route="im", intervention_id=entry.id, given="IM 0.4 mg",
                       actor=actor, now=later(10))

    def low_stock_open():  # of injectable naloxone (the nasal family has none at all)
        return db.session.execute(db.select(StockFinding).where(
            StockFinding.key.like("low:injectable@%"),
            StockFinding.resolved_at.is_(None))).first() is not None

    assert low_stock_open()
    service.return_dose(site, lot.id, intervention_id=entry.id, reason="Tapped twice",
                        actor=actor, now=later(20))
    assert not low_stock_open()
