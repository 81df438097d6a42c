"""The floor's rules, service by service, with a fixed clock."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import make_booth, make_client, make_site, make_staff
from sqlalchemy import event, exc

from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import service
from srs.booths.models import BoothState, Visit, VisitState
from srs.clients.models import Client
from srs.errors import Conflict, Forbidden, Invalid
from srs.extensions import db

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in Toronto
NURSE = {"nurse"}
SUPERVISOR = {"supervisor"}


@pytest.fixture
def floor(app):
    site = make_site(slug="east", min_observation_seconds=900)
    nurse = make_staff(site, role="nurse", username="nina")
    return {
        "site": site,
        "actor": Actor.of(nurse, "10.0.0.5"),
        "b1": make_booth(site, label="B1", kind="injection", position=0),
        "b2": make_booth(site, label="B2", kind="injection", position=1),
        "s1": make_booth(site, label="S1", kind="inhalation", position=2),
    }


def check_in(floor, code="F-ABCD-1984", *, at=NOW, roles=NURSE, **kwargs):
    return service.check_in(floor["site"], code=code, handle=kwargs.pop("handle", None),
                            actor=floor["actor"], actor_roles=roles, now=at, **kwargs)


def in_booth(floor, booth="b1", code="F-ABCD-1984", at=NOW):
    visit = check_in(floor, code, at=at)
    return service.assign_booth(visit, floor[booth], actor=floor["actor"],
                                now=at + timedelta(minutes=4))


def actions(entity_id=None) -> list[str]:
    query = db.select(AuditEvent.action).order_by(AuditEvent.id)
    if entity_id is not None:
        query = query.filter_by(entity_id=str(entity_id))
    return list(db.session.execute(query).scalars())


# --- Check-in ------------------------------------------------------------------------------

def test_a_new_code_creates_the_client_and_a_waiting_visit(floor):
    visit = check_in(floor, "tm-wxyz-1990", handle="Sparrow")
    assert visit.state == VisitState.WAITING and visit.arrived_at == NOW
    client = visit.client
    assert (client.code, client.handle, client.gender, client.birth_year) == (
        "TM-WXYZ-1990", "Sparrow", "trans male", 1990)
    assert actions()[-2:] == ["client_created", "visit_checked_in"]


def test_a_known_code_reuses_the_client_and_audits_the_read(floor):
    known = make_client(floor["site"], code="F-ABCD-1984")
    visit = check_in(floor, "F-ABCD-1984")
    assert visit.client_id == known.id
    assert "client_viewed" in actions(known.id)
    assert db.session.execute(db.select(db.func.count(Client.id))).scalar() == 1


@pytest.mark.parametrize("code", ["ABCD1984", "F-ABC-1984", "Q-ABCD-1984", "F-ABCD-84", ""])
def test_a_code_not_in_the_site_form_is_refused_on_the_field(floor, code):
    with pytest.raises(Invalid) as refused:
        check_in(floor, code)
    assert "code" in refused.value.errors
    assert db.session.execute(db.select(db.func.count(Visit.id))).scalar() == 0


def test_the_code_form_is_a_site_setting(floor):
    floor["site"].client_code_pattern = r"^[0-9]{6}$"
    db.session.commit()
    assert check_in(floor, "123456").client.code == "123456"
    with pytest.raises(Invalid):
        check_in(floor, "F-ABCD-1984")


@pytest.mark.parametrize("handle", ["Jane Smith", "555-123-4567", "(604) 555 0199"])
def test_a_handle_cannot_be_a_name_or_a_phone_number(floor, handle):
    with pytest.raises(Invalid) as refused:
        check_in(floor, handle=handle)
    assert "handle" in refused.value.errors


def test_a_client_already_on_the_floor_is_not_checked_in_twice(floor):
    check_in(floor)
    with pytest.raises(Conflict) as refused:
        check_in(floor, at=NOW + timedelta(minutes=1))
    assert "already checked in" in refused.value.message


def test_a_restricted_client_needs_a_supervisor(floor):
    make_client(floor["site"], code="F-ABCD-1984").restricted_until = date(2026, 12, 1)
    db.session.commit()
    with pytest.raises(Forbidden) as refused:
        check_in(floor)
    assert "until 01 Dec 2026" in refused.value.message
    with pytest.raises(Invalid) as no_reason:
        check_in(floor, roles=SUPERVISOR)
    assert "override_reason" in no_reason.value.errors
    visit = check_in(floor, roles=SUPERVISOR, override_reason="Agreed at case conference")
    assert visit.override_by == floor["actor"].staff_id
    assert "restriction_overridden" in actions()


def test_a_restriction_that_ended_does_not_stop_check_in(floor):
    make_client(floor["site"], code="F-ABCD-1984").restricted_until = date(2026, 11, 23)
    db.session.commit()
    assert check_in(floor).state == VisitState.WAITING


# --- Queue and booths ----------------------------------------------------------------------

def test_leaving_the_queue_needs_a_reason_and_ends_the_visit(floor):
    visit = check_in(floor)
    with pytest.raises(Invalid):
        service.discharge(visit, reason=None, actor=floor["actor"], now=NOW)
    service.discharge(visit, reason="wait_too_long", actor=floor["actor"], now=NOW)
    assert (visit.state, visit.consumed, visit.departure_reason) == (
        VisitState.DEPARTED, False, "wait_too_long")


def test_assigning_a_booth(floor):
    visit = in_booth(floor)
    assert (visit.state, visit.booth_id) == (VisitState.IN_BOOTH, floor["b1"].id)
    assert visit.booth_at == NOW + timedelta(minutes=4)


def test_a_taken_booth_is_refused_naming_the_booth_and_who_holds_it(floor):
    in_booth(floor)
    other = check_in(floor, "M-WXYZ-1977")
    with pytest.raises(service.BoothTaken) as refused:
        service.assign_booth(other, floor["b1"], actor=floor["actor"], now=NOW)
    assert refused.value.message == "Booth B1 is already taken by F-ABCD-1984."
    assert refused.value.detail["booth"] == "B1"
    assert other.state == VisitState.WAITING


def test_a_booth_taken_between_the_check_and_the_write_is_refused_not_a_failure(
        floor, monkeypatch):
    """Twenty nurses tap one booth: another takes it after this one checked it was free.
    The booth's time asks other packages (a treatment dose sets its own window) before the
    write; that read flushed the half-made assignment, and the database's refusal came out
    there as a server error instead of "taken"."""
    in_booth(floor)
    other = check_in(floor, "M-WXYZ-1977")
    monkeypatch.setattr(service, "holder_of", lambda booth: None)  # the check saw it free
    with pytest.raises(service.BoothTaken):
        service.assign_booth(other, floor["b1"], actor=floor["actor"], now=NOW)


@pytest.mark.parametrize(("setup", "words"), [
    ("out_of_service", "out of service"), ("needs_cleaning", "needs cleaning")])
def test_a_booth_that_is_not_free_is_refused(floor, setup, words):
    booth = floor["b2"]
    if setup == "out_of_service":
        service.set_booth_out_of_service(booth, reason="Light broken", actor=floor["actor"],
                                         now=NOW)
    else:
        booth.needs_cleaning_since = NOW
        db.session.commit()
    with pytest.raises(service.BoothTaken) as refused:
        service.assign_booth(check_in(floor), booth, actor=floor["actor"], now=NOW)
    assert words in refused.value.message


@pytest.mark.parametrize("state", ["in_booth", "departed"])
def test_only_a_waiting_visit_gets_a_booth(floor, state):
    visit = in_booth(floor)
    if state == "departed":
        service.discharge(visit, reason="did_not_consume", actor=floor["actor"], now=NOW)
    with pytest.raises(service.VisitStateConflict) as refused:
        service.assign_booth(visit, floor["b2"], actor=floor["actor"], now=NOW)
    assert refused.value.detail["current_state"] == state


def test_the_database_refuses_two_visits_in_one_booth(floor):
    first, second = in_booth(floor), check_in(floor, "M-WXYZ-1977")
    second.state, second.booth_id, second.booth_at = VisitState.IN_BOOTH, first.booth_id, NOW
    with pytest.raises(exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


# --- Consumption, after-care, discharge, cleaning ------------------------------------------

CONSUMPTION = {"substances": ["fentanyl"], "route": "injects", "fentanyl_strip": "positive",
               "benzo_strip": "negative", "split_or_shared": False, "peer_assisted": True}


def test_recording_consumption(floor):
    visit = in_booth(floor)
    entry = service.record_consumption(visit, CONSUMPTION, actor=floor["actor"], now=NOW)
    assert (entry.route, entry.substances, entry.peer_assisted) == ("injects", ["fentanyl"], True)
    assert visit.consumed is True


def test_a_route_the_booth_kind_does_not_allow_is_refused(floor):
    visit = in_booth(floor, "b1")
    with pytest.raises(Invalid) as refused:
        service.record_consumption(visit, {**CONSUMPTION, "route": "smokes"},
                                   actor=floor["actor"], now=NOW)
    assert "injection booth" in refused.value.errors["route"][0]
    smoker = in_booth(floor, "s1", code="M-WXYZ-1977")
    entry = service.record_consumption(smoker, {**CONSUMPTION, "route": "smokes"},
                                       actor=floor["actor"], now=NOW)
    assert entry.route == "smokes"


def test_consumption_only_in_a_booth(floor):
    with pytest.raises(service.VisitStateConflict):
        service.record_consumption(check_in(floor), CONSUMPTION, actor=floor["actor"], now=NOW)


def test_leaving_the_booth_starts_the_observation_clock(floor):
    visit = in_booth(floor)
    later = NOW + timedelta(minutes=10)
    service.start_observation(visit, actor=floor["actor"], now=later)
    assert visit.state == VisitState.OBSERVING
    assert visit.observation_ends_at == later + timedelta(seconds=900)
    assert floor["b1"].state_with(None) is BoothState.NEEDS_CLEANING


def test_discharge_from_after_care(floor):
    visit = in_booth(floor)
    service.start_observation(visit, actor=floor["actor"], now=NOW)
    service.discharge(visit, reason=None, actor=floor["actor"], now=NOW + timedelta(minutes=20))
    assert (visit.state, visit.departed_at) == (VisitState.DEPARTED, NOW + timedelta(minutes=20))
    with pytest.raises(service.VisitStateConflict) as twice:
        service.discharge(visit, reason=None, actor=floor["actor"], now=NOW)
    assert twice.value.detail["current_state"] == "departed"


def test_straight_from_the_booth_needs_a_reason(floor):
    visit = in_booth(floor)
    with pytest.raises(Invalid) as refused:
        service.discharge(visit, reason=None, actor=floor["actor"], now=NOW)
    assert "reason" in refused.value.errors
    service.discharge(visit, reason="declined_aftercare", actor=floor["actor"], now=NOW)
    assert visit.state == VisitState.DEPARTED
    assert floor["b1"].needs_cleaning_since == NOW


def test_cleaning_frees_the_booth_once(floor):
    visit = in_booth(floor)
    service.start_observation(visit, actor=floor["actor"], now=NOW)
    service.mark_booth_clean(floor["b1"], actor=floor["actor"], now=NOW)
    assert floor["b1"].state_with(None) is BoothState.AVAILABLE
    with pytest.raises(Conflict):
        service.mark_booth_clean(floor["b1"], actor=floor["actor"], now=NOW)


def test_an_occupied_booth_cannot_go_out_of_service(floor):
    in_booth(floor)
    with pytest.raises(service.BoothTaken):
        service.set_booth_out_of_service(floor["b1"], reason="Leak", actor=floor["actor"],
                                         now=NOW)


# --- The board -----------------------------------------------------------------------------

def test_the_board_shows_states_queue_aftercare_and_todays_figures(floor):
    first = in_booth(floor, "b1", "F-AAAA-1980", at=NOW)           # waited 4 minutes
    second = in_booth(floor, "b2", "F-BBBB-1981", at=NOW)          # waited 4 minutes
    service.start_observation(second, actor=floor["actor"], now=NOW + timedelta(minutes=9))
    third = check_in(floor, "M-CCCC-1982", at=NOW + timedelta(minutes=1))
    fourth = check_in(floor, "M-DDDD-1983", at=NOW + timedelta(minutes=2))
    service.set_booth_out_of_service(floor["s1"], reason="Fan broken", actor=floor["actor"],
                                     now=NOW)
    board = service.site_board(floor["site"], now=NOW + timedelta(minutes=10))
    states = {view.label: view.state for view in board["booths"]}
    assert states == {"B1": BoothState.OCCUPIED, "B2": BoothState.NEEDS_CLEANING,
                      "S1": BoothState.OUT_OF_SERVICE}
    assert board["booths"][0].visit.id == first.id
    assert [v.id for v in board["queue"]] == [third.id, fourth.id]
    assert [v.id for v in board["aftercare"]] == [second.id]
    assert board["today"] == {"visits": 4, "unique_clients": 4, "waiting_now": 2,
                              "average_wait_minutes": 4.0, "booths_in_use": 1,
                              "booths_total": 3}


def test_each_part_of_the_board_read_alone_matches_the_whole_board(floor):
    """A change reads only the parts of the board its fragments show (a check-in: the queue
    and today's figures); each part must read as it does in the whole board, today's booths
    in use too, counted without reading the booths (a retired booth not among them)."""
    in_booth(floor, "b1", "F-AAAA-1980", at=NOW)
    second = in_booth(floor, "b2", "F-BBBB-1981", at=NOW)
    service.start_observation(second, actor=floor["actor"], now=NOW + timedelta(minutes=9))
    check_in(floor, "M-CCCC-1982", at=NOW + timedelta(minutes=1))
    spare = make_booth(floor["site"], label="X9", kind="injection", position=3)
    spare.retired_at = NOW
    db.session.commit()
    later = NOW + timedelta(minutes=10)
    whole = service.site_board(floor["site"], now=later)
    assert whole["today"]["booths_in_use"] == 1 and whole["today"]["booths_total"] == 3
    for part in service.BOARD_PARTS:
        alone = service.site_board(floor["site"], now=later, parts=(part,))
        assert set(alone) == {"site", "generated_at", part} | (
            {"counts"} if part == "booths" else set())
        if part == "booths":
            assert [(v.label, v.state, v.visit and v.visit.id) for v in alone[part]] == [
                (v.label, v.state, v.visit and v.visit.id) for v in whole[part]]
        elif part == "today":
            assert alone[part] == whole[part]
        else:
            assert [v.id for v in alone[part]] == [v.id for v in whole[part]]


def test_the_board_read_loads_all_its_fragments_show(floor):
    """Screens' fragments are rendered after the board is read under the site's lock: what
    they show (each tile's client, last use and checks; each after-care row's client and
    the booth it came from) is read with it, not loaded on the way."""
    first = in_booth(floor, "b1", "F-AAAA-1980", at=NOW)
    service.record_consumption(first, CONSUMPTION, actor=floor["actor"], now=NOW)
    second = in_booth(floor, "b2", "F-BBBB-1981", at=NOW)
    service.start_observation(second, actor=floor["actor"], now=NOW + timedelta(minutes=9))
    db.session.commit()
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.session.get_bind()
    for parts in (service.BOARD_PARTS, ("booths", "aftercare"), ("aftercare",)):
        db.session.expire_all()  # read afresh, as by the publisher's own session
        board = service.site_board(floor["site"], now=NOW + timedelta(minutes=10), parts=parts)
        event.listen(engine, "before_cursor_execute", seen)
        try:
            shown = [(b.visit.client.code, [c.substances for c in b.visit.consumptions],
                      len(b.visit.checks)) for b in board.get("booths", ()) if b.visit]
            shown += [(v.client.code, v.booth.label, len(v.checks))
                      for v in board["aftercare"]]
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert ("F-BBBB-1981", "B2", 0) in shown
        assert statements == [], parts


def test_todays_figures_start_at_local_midnight(floor):
    check_in(floor, "F-AAAA-1980", at=datetime(2026, 11, 24, 4, 59, tzinfo=UTC))  # 23:59 local
    check_in(floor, "F-BBBB-1981", at=datetime(2026, 11, 24, 5, 1, tzinfo=UTC))   # 00:01 local
    board = service.site_board(floor["site"], now=NOW)
    assert board["today"]["visits"] == 1


def test_a_restriction_ends_at_local_midnight_not_utc(floor):
    make_client(floor["site"], code="F-ABCD-1984").restricted_until = date(2026, 11, 24)
    db.session.commit()
    # 02:00 UTC on the 25th is still 21:00 on the 24th in Toronto: restricted.
    with pytest.raises(Forbidden):
        check_in(floor, at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    # 05:30 UTC on the 25th is 00:30 local on the 25th: the restriction has ended.
    assert check_in(floor, at=datetime(2026, 11, 25, 5, 30, tzinfo=UTC)).state == "waiting"
