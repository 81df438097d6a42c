"""A client belongs to one site: another site's nurse finds nothing of them, and the same code
at another site starts another record, without the first site's handle, flags or history."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import make_site, make_staff

from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.clients import service as clients
from srs.common import utcnow
from srs.errors import Forbidden, Invalid
from srs.extensions import db
from srs.incidents import service as incidents
from srs.naloxone import service as naloxone
from srs.overdose.models import OverdoseResponse
from srs.referrals import facts
from srs.referrals.models import CareProfile

CODE = "F-ABCD-1984"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def east(app):
    """East's client F-ABCD-1984 ("Sparrow"): a note, on OAT, an overdose two days ago. West
    has never seen them."""
    east, west = make_site(slug="east"), make_site(slug="west")
    nurses = {"east": make_staff(east, role="nurse", username="erin"),
              "west": make_staff(west, role="nurse", username="wes")}
    visit = floor.check_in(east, code=CODE, handle="Sparrow", actor=Actor.of(nurses["east"]),
                           actor_roles={"nurse"}, now=NOW - timedelta(days=7))
    floor.discharge(visit, reason="wait_too_long", actor=Actor.of(nurses["east"]),
                    now=NOW - timedelta(days=7))
    client = visit.client
    client.flag_note = "Prefers the booth by the door"
    db.session.add(CareProfile(client_id=client.id, oat_medication="methadone",
                               failed_oral_oat=0, housing="no_fixed_address"))
    db.session.add(OverdoseResponse(site_id=east.id, client_id=client.id, kind="opioid",
                                    source="booth", started_at=utcnow() - timedelta(days=2),
                                    closed_at=utcnow() - timedelta(days=2),
                                    outcome="recovered_on_site"))
    db.session.commit()
    return {"site": east, "west": west, "client": client, "nurses": nurses}


def west_actor(east) -> Actor:
    return Actor.of(east["nurses"]["west"])


def test_autocomplete_and_the_check_in_panel_at_another_site_show_nothing_of_the_client(
        client, auth, east):
    auth.login("wes")
    offered = client.get("/sites/west/floor/clients?code=F-AB").get_data(as_text=True)
    assert CODE not in offered and "Sparrow" not in offered
    panel = client.get(f"/sites/west/floor/check-in?code={CODE}").get_data(as_text=True)
    for shown in ('value="Sparrow"', "Overdose in the last 30 days", "Prefers the booth"):
        assert shown not in panel, shown
    db.session.rollback()
    assert db.session.execute(db.select(AuditEvent).filter_by(
        entity="client", entity_id=str(east["client"].id),
        site_id=east["west"].id)).scalars().all() == []
    # East's own nurse still finds them.
    auth.logout()
    auth.login("erin")
    assert CODE in client.get("/sites/east/floor/clients?code=F-AB").get_data(as_text=True)


def test_the_same_code_at_another_site_is_a_new_record_without_the_first_sites_flags(east):
    visit = floor.check_in(east["west"], code=CODE.lower(), handle="Birdie",
                           actor=west_actor(east), actor_roles={"nurse"}, now=NOW)
    mine = visit.client
    assert clients.client_flags(mine, today=utcnow().date()) == {
        "restricted": False, "restricted_until": None, "restriction_reason": None,
        "note": None, "recent_overdose": False}
    assert mine.id != east["client"].id
    assert (mine.site_id, mine.code, mine.handle) == (east["west"].id, CODE, "Birdie")
    assert east["client"].handle == "Sparrow"
    created = db.session.execute(db.select(AuditEvent).filter_by(
        action="client_created", entity_id=str(mine.id))).scalar_one()
    assert created.site_id == east["west"].id


def test_a_restriction_at_one_site_does_not_hold_at_another(east):
    east["client"].restricted_until = date(2026, 12, 31)
    db.session.commit()
    visit = floor.check_in(east["west"], code=CODE, handle=None, actor=west_actor(east),
                           actor_roles={"nurse"}, now=NOW)
    assert visit.override_by is None, "no supervisor override needed"
    with pytest.raises(Forbidden):
        floor.check_in(east["site"], code=CODE, handle=None,
                       actor=Actor.of(east["nurses"]["east"]), actor_roles={"nurse"}, now=NOW)


def test_a_take_home_kit_at_another_site_goes_to_that_sites_record(east):
    kit = naloxone.record_take_home_kit(east["west"], {
        "client_code": CODE, "form": "nasal", "number": 1, "replaces_used": False,
        "training_given": True}, actor=west_actor(east), now=NOW)
    assert kit.client_id != east["client"].id
    assert kit.client.site_id == east["west"].id


def test_referral_facts_at_another_site_hold_none_of_the_first_sites_records(east):
    visit = floor.check_in(east["west"], code=CODE, handle=None, actor=west_actor(east),
                           actor_roles={"nurse"}, now=utcnow())
    known = facts.gather(visit, east["west"], now=utcnow(), windows={("overdoses", 30)})
    assert (known["on_oat"], known["oat_medication"], known["housing"]) == (
        False, "none", "unknown")
    assert (known["first_visit"], known["last_overdose"], known["overdoses@30"]) == (
        True, None, 0)


def test_an_incident_report_at_another_site_knows_neither_the_code_nor_the_handle(east):
    west = east["west"]
    assert incidents.identifier_findings("Sparrow slept in the hall.", site=west) == []
    with pytest.raises(Invalid) as refused:
        incidents.create_incident(west, {"client_codes": [CODE]}, actor=west_actor(east),
                                  now=NOW)
    assert "client_codes" in refused.value.errors
    # At East, the handle is flagged and the code named.
    found = incidents.identifier_findings("Sparrow slept in the hall.", site=east["site"])
    assert any(CODE in f for f in found)
