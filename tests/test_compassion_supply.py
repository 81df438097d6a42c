"""A club's tested batches and its supplies to members: the rolling week at its edges (in the
site's time zone, over a clock change), pickups and caps, pickup windows, batches that may not
be supplied, take-home where allowed, the register's balance and the price at cost, the label,
the API and the pages."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import make_client, make_site, make_staff
from routes import bearer, pdf_text

from srs.audit.models import AuditEvent
from srs.auth.service import Actor
from srs.booths.models import Visit
from srs.compassion import supply as service
from srs.compassion.models import Member, Supply
from srs.controlled.models import ControlledDrug, ControlledEntry
from srs.drugchecks import service as drugchecks
from srs.errors import Invalid
from srs.extensions import db

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in Toronto
EXPIRES = date(2027, 6, 30)


@pytest.fixture
def site(app):
    return make_site(slug="club")


@pytest.fixture
def nurse(site):
    return make_staff(site, role="nurse", username="nell")


@pytest.fixture
def boss(site):
    return make_staff(site, role="supervisor", username="sue")


@pytest.fixture
def member(site):
    client = make_client(site, code="F-CLUB-1975")
    row = Member(site_id=site.id, client_id=client.id, state="active", applied_at=NOW)
    db.session.add(row)
    db.session.commit()
    return row


def check(site, nurse, components, **data):
    return drugchecks.record_check(site, {"methods": ["ftir"], "strips": {},
                                          "components": components, **data},
                                   actor=Actor.of(nurse), now=NOW - timedelta(days=1))


def receive(site, nurse, *, lot="H-1", grams="50", cost="500.00", check_id=None, **data):
    return service.receive_batch(site, {
        "substance": "Heroin", "label_content": "Heroin", "source": "Lab supplier",
        "lot": lot, "unit": "g", "quantity": grams, "cost": cost, "expires_on": EXPIRES,
        "drug_check_id": check_id, **data}, actor=Actor.of(nurse), now=NOW - timedelta(days=20))


@pytest.fixture
def batch(site, nurse):
    tested = check(site, nurse, [{"substance": "Heroin", "percent": 62}])
    return receive(site, nurse, check_id=tested.id)


def supply(site, member, batch, nurse, quantity, *, at=NOW, mode="take_home", **data):
    return service.record_supply(site, member.id, {"batch_id": batch.id, "quantity": quantity,
                                                   "mode": mode, **data},
                                 actor=Actor.of(nurse), actor_roles={"nurse"}, now=at)


def take_home(site, member):
    site.compassion_take_home_allowed = True
    member.take_home_allowed = True
    db.session.commit()


def refusals(member):
    return [e.detail for e in db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "compassion_limit_reached")).scalars()
        if e.detail["member_id"] == member.id]


# --- The rolling week ------------------------------------------------------------------------


def test_a_supply_passing_the_week_by_a_tenth_of_a_gram_is_refused_with_what_is_left(
        site, member, batch, nurse):
    take_home(site, member)
    supply(site, member, batch, nurse, "10.0", at=NOW - timedelta(days=3))
    supply(site, member, batch, nurse, "3.9", at=NOW - timedelta(days=1))
    with pytest.raises(service.LimitReached) as refused:
        supply(site, member, batch, nurse, "0.2")
    assert refused.value.limit == "weekly"
    assert refused.value.remaining_mg == 100
    assert "0.1 g left this week" in refused.value.message
    # It frees up when the first supply leaves the week, 7 days after it.
    assert refused.value.frees_at == NOW + timedelta(days=4)
    assert refusals(member) == [{"member_id": member.id, "limit": "weekly"}]
    # Exactly up to the limit is allowed.
    supply(site, member, batch, nurse, "0.1")
    assert service.allowance(site, member, now=NOW).week_left == 0


def test_the_week_frees_seven_days_later_on_the_site_clock_across_the_clock_change(
        site, member, batch, nurse):
    take_home(site, member)
    # Saturday 31 Oct 2026, 10:00 EDT; the clocks go back on Sunday 1 Nov.
    first = datetime(2026, 10, 31, 14, 0, tzinfo=UTC)
    supply(site, member, batch, nurse, "14.0", at=first)
    # 168 hours later it is 09:00 EST on Saturday 7 Nov: still inside the week.
    with pytest.raises(service.LimitReached) as refused:
        supply(site, member, batch, nurse, "0.1", at=first + timedelta(hours=168, minutes=30))
    assert refused.value.remaining_mg == 0
    assert refused.value.frees_at == datetime(2026, 11, 7, 15, 0, tzinfo=UTC)  # 10:00 EST
    assert service.allowance(site, member, now=first + timedelta(hours=168)).week_left == 0
    # At 10:00 EST, 169 hours on, the week is free again.
    done = supply(site, member, batch, nurse, "14.0", at=datetime(2026, 11, 7, 15, 0,
                                                                    tzinfo=UTC))
    assert done.quantity_mg == 14000


# --- Pickups, caps and windows ---------------------------------------------------------------


def test_pickups_a_day_are_counted_on_the_site_day(site, member, batch, nurse):
    take_home(site, member)
    site.compassion_pickups_per_day = 2
    db.session.commit()
    morning = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)  # 00:30 in Toronto
    supply(site, member, batch, nurse, "0.5", at=datetime(2026, 11, 24, 4, 30, tzinfo=UTC))
    supply(site, member, batch, nurse, "0.5", at=morning)
    supply(site, member, batch, nurse, "0.5", at=morning + timedelta(hours=1))
    with pytest.raises(service.LimitReached) as refused:
        supply(site, member, batch, nurse, "0.5")
    assert refused.value.limit == "pickups"
    assert refused.value.frees_at == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert service.allowance(site, member, now=NOW).pickups_left == 0


def test_the_daily_cap_and_its_rollover_only_where_the_site_allows_it(
        site, member, batch, nurse):
    take_home(site, member)
    site.compassion_daily_limit_mg = 2000
    db.session.commit()
    supply(site, member, batch, nurse, "1.5")
    with pytest.raises(service.LimitReached) as refused:
        supply(site, member, batch, nurse, "0.6", at=NOW + timedelta(hours=1))
    assert (refused.value.limit, refused.value.remaining_mg) == ("daily", 500)
    # Yesterday nothing was taken: a missed day carries nothing unless the site allows it.
    site.compassion_rollover_allowed = True
    db.session.commit()
    assert service.allowance(site, member, now=NOW).today_left == 2500
    supply(site, member, batch, nurse, "2.5", at=NOW + timedelta(hours=1))


def test_a_substance_cap_counts_only_that_substance(site, member, batch, nurse):
    take_home(site, member)
    site.compassion_substance_limits_mg = {"Heroin": 3000}
    db.session.commit()
    coke_check = check(site, nurse, [{"substance": "Cocaine", "percent": 80}],
                       sample_code="S-COKE")
    coke = receive(site, nurse, lot="C-1", substance="Cocaine", label_content="Cocaine",
                   check_id=coke_check.id)
    supply(site, member, coke, nurse, "5.0", at=NOW - timedelta(days=1))
    supply(site, member, batch, nurse, "2.0", at=NOW - timedelta(days=2))
    with pytest.raises(service.LimitReached) as refused:
        supply(site, member, batch, nurse, "1.5")
    assert (refused.value.limit, refused.value.remaining_mg) == ("substance", 1000)
    assert refused.value.frees_at == NOW + timedelta(days=5)
    supply(site, member, batch, nurse, "1.0")


def test_a_supply_outside_the_pickup_windows_is_refused_until_the_next_opens(
        site, member, batch, nurse):
    take_home(site, member)
    site.compassion_pickup_windows = ["08:00-09:30", "12:00-14:00"]
    db.session.commit()
    with pytest.raises(service.LimitReached) as refused:
        supply(site, member, batch, nurse, "1.0")  # 10:00
    assert refused.value.limit == "window"
    assert refused.value.frees_at == datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    assert supply(site, member, batch, nurse, "1.0", at=NOW + timedelta(hours=2)).id


# --- Batches ---------------------------------------------------------------------------------


def test_a_batch_without_a_passing_check_is_not_supplied(site, member, nurse):
    take_home(site, member)
    untested = receive(site, nurse, lot="U-1")
    with pytest.raises(Invalid, match="no drug check"):
        supply(site, member, untested, nurse, "1.0")
    missing = check(site, nurse, [{"substance": "Fentanyl", "percent": 20}], sample_code="S-F")
    service.link_check(site, untested.id, missing.id, actor=Actor.of(nurse), now=NOW)
    assert untested.state == "failed"
    nitazene = check(site, nurse, [{"substance": "Heroin"}, {"substance": "Nitazene"}],
                     sample_code="S-N")
    service.link_check(site, untested.id, nitazene.id, actor=Actor.of(nurse), now=NOW)
    assert (untested.state, untested.state_reason) == ("failed", "On the watch list: Nitazenes.")
    with pytest.raises(Invalid, match="failed its drug check"):
        supply(site, member, untested, nurse, "1.0")


def test_a_finding_the_label_does_not_name_blocks_the_batch_until_a_supervisor_clears_it(
        site, member, nurse, boss):
    take_home(site, member)
    found = check(site, nurse, [{"substance": "Heroin", "percent": 55},
                                {"substance": "Caffeine", "percent": 20}])
    batch = receive(site, nurse, check_id=found.id)
    assert batch.state == "blocked"
    assert "Caffeine" in batch.state_reason
    with pytest.raises(Invalid, match="blocked"):
        supply(site, member, batch, nurse, "1.0")
    with pytest.raises(Invalid):
        service.clear_block(site, batch.id, reason=" ", actor=Actor.of(boss), now=NOW)
    service.clear_block(site, batch.id, reason="Caffeine is a known cut, no harm at this dose",
                        actor=Actor.of(boss), now=NOW)
    assert (batch.state, batch.cleared_by) == ("cleared", boss.id)
    cleared = db.session.execute(db.select(AuditEvent).filter_by(
        action="compassion_batch_cleared")).scalar_one()
    assert cleared.staff_id == boss.id
    assert supply(site, member, batch, nurse, "1.0").quantity_mg == 1000


# --- Supply ----------------------------------------------------------------------------------


def test_take_home_only_where_the_site_and_the_member_allow_it(site, member, batch, nurse):
    with pytest.raises(Invalid, match="witnessed only"):
        supply(site, member, batch, nurse, "1.0")
    site.compassion_take_home_allowed = True
    db.session.commit()
    with pytest.raises(Invalid, match="not allowed here for this member"):
        supply(site, member, batch, nurse, "1.0")
    member.take_home_allowed = True
    db.session.commit()
    assert supply(site, member, batch, nurse, "1.0").mode == "take_home"


def test_a_witnessed_supply_sends_the_member_to_the_floor_queue(site, member, batch, nurse):
    done = supply(site, member, batch, nurse, "1.0", mode="witnessed")
    visit = db.session.get(Visit, done.visit_id)
    assert (visit.client_id, visit.state) == (member.client_id, "waiting")
    # Already on the floor: the same visit is linked, not a second check-in.
    again = supply(site, member, batch, nurse, "0.5", mode="witnessed",
                   at=NOW + timedelta(minutes=5))
    assert again.visit_id == visit.id


def test_the_register_falls_by_what_is_supplied_and_a_refusal_changes_nothing(
        site, member, batch, nurse):
    take_home(site, member)
    line = db.session.get(ControlledDrug, batch.register_drug_id)
    assert (line.name, line.strength, line.unit, line.balance) == (
        "Heroin", "batch H-1", "mg", 50000)
    done = supply(site, member, batch, nurse, "1.3")
    assert db.session.get(ControlledDrug, line.id).balance == 48700
    entry = db.session.get(ControlledEntry, done.register_entry_id)
    assert (entry.kind, entry.delta, entry.client_id) == ("drawn", -1300, member.client_id)
    entries = db.session.scalar(db.select(db.func.count()).select_from(ControlledEntry))
    with pytest.raises(service.LimitReached):
        supply(site, member, batch, nurse, "12.8")
    assert db.session.get(ControlledDrug, line.id).balance == 48700
    assert db.session.scalar(db.select(db.func.count()).select_from(ControlledEntry)) == entries
    assert db.session.scalar(db.select(db.func.count()).select_from(Supply)) == 1


def test_the_price_is_the_batch_cost_per_mg_rounded_to_the_cent(site, member, nurse):
    take_home(site, member)
    tested = check(site, nurse, [{"substance": "Heroin"}])
    batch = receive(site, nurse, grams="30", cost="100.00", check_id=tested.id)
    # 10000 cents / 30000 mg x 1300 mg = 433.33 cents.
    assert supply(site, member, batch, nurse, "1.3").price_cents == 433
    assert supply(site, member, batch, nurse, "0.5", at=NOW + timedelta(minutes=1)) \
        .price_cents == 167  # 166.67


def test_a_batch_of_tablets_is_counted_and_supplied_in_mg(site, member, nurse):
    take_home(site, member)
    tested = check(site, nurse, [{"substance": "Heroin"}])
    with pytest.raises(Invalid, match="mg in each tablet"):
        receive(site, nurse, lot="T-1", unit="tablet", grams="100", check_id=tested.id)
    tablets = receive(site, nurse, lot="T-1", unit="tablet", grams="100", unit_mg=30,
                      cost="60.00", check_id=tested.id)
    assert (tablets.quantity_mg, service.batch_balance(tablets)) == (3000, 3000)
    with pytest.raises(Invalid, match="whole number of tablets"):
        supply(site, member, tablets, nurse, "1.5")
    done = supply(site, member, tablets, nurse, "4")
    assert (done.quantity_mg, done.price_cents, service.batch_balance(tablets)) == (
        120, 240, 2880)


def test_a_member_not_active_is_not_supplied(site, member, batch, nurse):
    take_home(site, member)
    member.state = "applicant"
    db.session.commit()
    with pytest.raises(service.Conflict, match="applicant"):
        supply(site, member, batch, nurse, "1.0")


def test_the_label_carries_the_batch_and_its_test_and_no_client_data(
        site, member, batch, nurse):
    take_home(site, member)
    supply(site, member, batch, nurse, "1.0")
    pdf = service.label_pdf(batch, site, now=NOW)
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    for words in ("Heroin", "H-1", "Heroin 62%", "2026-11-24", "Test result: Passed",
                  "naloxone"):
        assert words in text
    assert "F-CLUB-1975" not in text


# --- API and pages ---------------------------------------------------------------------------


def test_the_api_receives_a_batch_supplies_and_refuses_with_the_allowance(
        app, client, site, member, nurse):
    take_home(site, member)
    tested = check(site, nurse, [{"substance": "Heroin", "percent": 60}])
    headers = bearer(nurse)
    made = client.post(f"/api/v1/sites/{site.id}/club/batches", headers=headers, json={
        "substance": "Heroin", "label_content": "Heroin", "source": "Lab", "lot": "API-1",
        "unit": "g", "quantity": "20.0", "cost": "200.00", "expires_on": "2027-01-31",
        "drug_check_id": tested.id})
    assert made.status_code == 201, made.json
    assert (made.json["state"], made.json["quantity_mg"]) == ("passed", 20000)
    batch_id = made.json["id"]
    url = f"/api/v1/sites/{site.id}/club/members/{member.id}/supplies"
    given = client.post(url, headers=headers, json={"batch_id": batch_id, "quantity": "13.5",
                                                    "mode": "take_home"})
    assert given.status_code == 201, given.json
    assert (given.json["quantity_mg"], given.json["price_cents"]) == (13500, 13500)
    refused = client.post(url, headers=headers, json={"batch_id": batch_id, "quantity": "0.6",
                                                      "mode": "take_home"})
    assert refused.status_code == 409
    assert (refused.json["limit"], refused.json["remaining_mg"]) == ("weekly", 500)
    left = client.get(f"/api/v1/sites/{site.id}/club/members/{member.id}/allowance",
                      headers=headers)
    assert left.status_code == 200
    assert (left.json["week_left_mg"], left.json["pickups_left"]) == (500, 3)


def test_the_supply_page_shows_the_allowance_and_keeps_what_was_typed_on_a_refusal(
        client, auth, site, member, batch, nurse):
    take_home(site, member)
    supply(site, member, batch, nurse, "13.0", at=datetime.now(UTC) - timedelta(hours=1))
    auth.login(nurse.username)
    page = client.get(f"/sites/{site.slug}/club/members/{member.id}/supply")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-testid="supply-allowance"' in text and "1.0 g" in text
    refused = auth.post(f"/sites/{site.slug}/club/members/{member.id}/supply", data={
        "batch_id": batch.id, "quantity": "1.5", "mode": "take_home", "program_code": "DULF-A"})
    assert refused.status_code == 409
    body = refused.get_data(as_text=True)
    assert "1.0 g left this week" in body
    assert 'value="1.5"' in body and 'value="DULF-A"' in body


def test_the_batches_page_receives_a_batch_and_links_its_label(client, auth, site, nurse):
    auth.login(nurse.username)
    page = client.get(f"/sites/{site.slug}/club/batches")
    assert page.status_code == 200
    bad = auth.post(f"/sites/{site.slug}/club/batches", data={
        "substance": "Heroin", "label_content": "Heroin", "source": "Lab", "lot": "P-1",
        "unit": "g", "quantity": "1.25", "cost": "10", "expires_on": "2030-01-01"})
    assert bad.status_code == 422
    assert "one decimal place" in bad.get_data(as_text=True)
    assert 'value="P-1"' in bad.get_data(as_text=True)
    good = auth.post(f"/sites/{site.slug}/club/batches", data={
        "substance": "Heroin", "label_content": "Heroin", "source": "Lab", "lot": "P-1",
        "unit": "g", "quantity": "1.2", "cost": "10", "expires_on": "2030-01-01"})
    assert good.status_code == 200
    body = good.get_data(as_text=True)
    assert "P-1" in body and "label.pdf" in body and "Not tested" in body


def test_a_batch_that_fails_to_be_recorded_leaves_no_register_line(site, nurse, monkeypatch):
    """The register line, its receipt and the batch are one unit of work: a failure while
    judging the check leaves no line with stock nobody can supply."""
    tested = check(site, nurse, [{"substance": "Heroin"}])

    def failing(*args, **kwargs):
        raise RuntimeError("the check could not be read")

    monkeypatch.setattr(service, "_apply_check", failing)
    with pytest.raises(RuntimeError):
        receive(site, nurse, lot="H-9", check_id=tested.id)
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(ControlledDrug.id)).where(
        ControlledDrug.site_id == site.id)) == 0
    assert db.session.scalar(db.select(db.func.count(ControlledEntry.id))) == 0


# --- A label for each supply -----------------------------------------------------------------


def test_a_supply_has_its_own_label_with_its_quantity_and_no_client_data(
        site, member, batch, nurse):
    take_home(site, member)
    given = supply(site, member, batch, nurse, "2.5")
    html = service.supply_label_html(given, site)
    for words in ("Heroin", "H-1", "Heroin 62%", "2.5 g", "2026-11-24", "Test result: Passed",
                  "naloxone"):
        assert words in html
    assert "F-CLUB-1975" not in html
    pdf = service.print_supply_label(site, given.id, actor=Actor.of(nurse), now=NOW)
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    for words in ("Heroin", "H-1", "2.5 g", "Test result: Passed", "naloxone"):
        assert words in text
    assert "F-CLUB-1975" not in text


def test_printing_a_supplys_label_marks_it_printed_and_is_audited(
        client, auth, site, member, batch, nurse):
    take_home(site, member)
    auth.login(nurse.username)
    done = auth.post(f"/sites/{site.slug}/club/members/{member.id}/supply", data={
        "batch_id": batch.id, "quantity": "1.0", "mode": "take_home"})
    assert done.status_code == 200
    given = db.session.execute(db.select(Supply).filter_by(member_id=member.id)).scalar_one()
    url = f"/sites/{site.slug}/club/supplies/{given.id}/label.pdf"
    body = done.get_data(as_text=True)
    assert 'data-testid="supply-done-label"' in body and url in body
    assert body.count(url) == 2  # the notice and the row in recent supplies
    assert not given.label_printed
    label = client.get(url)
    assert label.status_code == 200 and label.mimetype == "application/pdf"
    db.session.refresh(given)
    assert given.label_printed
    audit = db.session.execute(db.select(AuditEvent).filter_by(
        action="compassion_label_printed")).scalar_one()
    assert (audit.entity_id, audit.detail) == (str(given.id), {"batch_id": batch.id})
    assert "Reprint label" in client.get(
        f"/sites/{site.slug}/club/members/{member.id}/supply").get_data(as_text=True)
    other = make_site(slug="elsewhere")
    assert client.get(f"/sites/{other.slug}/club/supplies/{given.id}/label.pdf").status_code \
        in (403, 404)


def test_the_supply_page_shows_the_suggestions_and_a_linkage_conversation_due(
        site, member, batch, nurse, client, auth):
    """The seed's condition: at every supply the referral engine's suggestions show, with
    their reasons, and a linkage conversation due says so (without stopping the supply)."""
    from factories import make_rule

    make_rule(site, key="not-on-oat", service_type="oat",
              condition={"fact": "on_oat", "op": "==", "value": False},
              reason_template="Not on OAT: ask about treatment")
    member.active_since = NOW - timedelta(days=120)
    db.session.commit()
    auth.login("nell")
    page = client.get(f"/sites/{site.slug}/club/members/{member.id}/supply").get_data(
        as_text=True)
    assert 'data-testid="club-suggestion" data-service-type="oat"' in page
    assert "Not on OAT: ask about treatment" in page
    assert 'data-testid="supply-linkage-due"' in page
    assert 'data-testid="supply-submit"' in page
