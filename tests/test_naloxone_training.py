"""Naloxone training: sessions and their trainees, refreshers, the month's people trained,
through the service (a fixed now), the API and the pages."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from factories import make_client, make_site, make_staff
from routes import assert_api_error, bearer

from srs.auth.models import AuditEvent, Role
from srs.auth.service import Actor
from srs.common import utcnow
from srs.errors import Invalid
from srs.extensions import db
from srs.incidents import reports
from srs.naloxone import training
from srs.naloxone.models import (
    NaloxoneKit,
    SessionTrainee,
    TakeHomeKit,
    Trainee,
    TrainingSession,
)

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 7 December 2026, 10:00 in Toronto
HTMX = {"HX-Request": "true"}


@pytest.fixture
def east(app):
    site = make_site(name="East", slug="east")
    trainer = make_staff(site, role=Role.NURSE, username="tess")
    return site, trainer


def officer(**extra) -> dict:
    return {"kind": "police", "organisation": "City Police", "named_consent": True,
            "first_name": "Olive", "last_name": "Officer", "badge_number": "B-417", **extra}


def session_data(trainer, *trainees, held_on=date(2026, 12, 1), **extra) -> dict:
    return {"held_on": held_on, "place": None, "trainer_id": trainer.id,
            "curriculum": "Take-home naloxone", "curriculum_version": "3.1",
            "format": "standard", "trainees": list(trainees), **extra}


def record(site, trainer, *trainees, now=NOW, **extra):
    return training.record_session(site, session_data(trainer, *trainees, **extra),
                                   actor=Actor.of(trainer), now=now)


def refused(site, trainer, *trainees, **extra) -> dict:
    with pytest.raises(Invalid) as caught:
        record(site, trainer, *trainees, **extra)
    db.session.rollback()
    return caught.value.errors


# --- Recording ------------------------------------------------------------------------------


def test_a_session_records_a_client_a_family_member_and_a_named_officer(east):
    site, trainer = east
    client = make_client(site, code="F-ABCD-1984")
    session = record(site, trainer, {"kind": "person_at_risk", "client_code": "f-abcd-1984",
                                     "post_test_score": 90},
                     {"kind": "family_friend", "at_risk_consented": True},
                     officer(post_test_score=75))
    db.session.expire_all()
    people = [part.trainee for part in session.attendance]
    assert [p.kind for p in people] == ["person_at_risk", "family_friend", "police"]
    assert people[0].client_id == client.id and people[0].first_name is None
    assert people[1].at_risk_consented is True and people[1].client_id is None
    assert (people[2].first_name, people[2].last_name, people[2].badge_number) == (
        "Olive", "Officer", "B-417")
    assert [p.post_test_score for p in session.attendance] == [90, None, 75]
    events = {e.action: e for e in db.session.execute(db.select(AuditEvent)).scalars()}
    recorded = events["naloxone_training_recorded"]
    assert recorded.detail == {"trainees": 3, "clients": 1, "returning": 0,
                               "trainer": trainer.id, "format": "standard"}
    assert "Olive" not in str(recorded.detail) and "B-417" not in str(recorded.detail)
    # The client's record was written to: audited on their record, by id.
    trained = events["naloxone_trained"]
    assert (trained.entity, trained.entity_id) == ("client", str(client.id))


def test_names_only_for_staff_and_police_who_consent(east):
    site, trainer = east
    errors = refused(site, trainer, officer(named_consent=False),
                     {"kind": "fire", "first_name": "Fred"},
                     {"kind": "pharmacist", "named_consent": True},
                     officer(first_name=" ", badge_number=None))
    assert "consent" in errors["trainees"][0]["named_consent"][0]
    assert errors["trainees"][1]["first_name"] == ["Only staff and police who consent may be "
                                                   "named."]
    assert errors["trainees"][2]["named_consent"] == ["Only staff and police may be named."]
    assert set(errors["trainees"][3]) == {"first_name", "badge_number"}
    assert db.session.scalar(db.select(db.func.count(Trainee.id))) == 0
    # Without a name an officer is counted, not named.
    record(site, trainer, {"kind": "police", "organisation": "City Police"})
    assert db.session.execute(db.select(Trainee)).scalar_one().first_name is None


def test_family_and_friends_say_whether_the_person_at_risk_consented(east):
    site, trainer = east
    errors = refused(site, trainer, {"kind": "family_friend"})
    assert "person at risk consented" in errors["trainees"][0]["at_risk_consented"][0]
    record(site, trainer, {"kind": "family_friend", "at_risk_consented": False})
    assert db.session.execute(db.select(Trainee)).scalar_one().at_risk_consented is False


def test_each_session_field_is_checked(east):
    site, trainer = east
    outsider = make_staff(make_site(slug="west"), role=Role.NURSE)
    errors = refused(site, trainer, held_on=date(2026, 12, 8), trainer_id=outsider.id,
                     curriculum=" ", format="lecture")
    assert set(errors) == {"held_on", "trainer_id", "curriculum", "format", "trainees"}
    assert errors["trainees"] == ["Add at least one person trained."]
    errors = refused(site, trainer, {"kind": "police", "client_code": "F-ABCD-1984"},
                     {"kind": "person_at_risk", "client_code": "F-NONE-1990"},
                     {"kind": "peer", "post_test_score": 101}, {"kind": "juggler"})
    assert "client code" in errors["trainees"][0]["client_code"][0]
    assert "No client with code F-NONE-1990" in errors["trainees"][1]["client_code"][0]
    assert errors["trainees"][2] == {"post_test_score": [
        "A whole number from 0 to 100, or leave it blank."]}
    assert "kind" in errors["trainees"][3]
    assert db.session.scalar(db.select(db.func.count(TrainingSession.id))) == 0


def test_a_returning_officer_is_the_same_trainee(east):
    site, trainer = east
    first = record(site, trainer, officer(), held_on=date(2025, 11, 3))
    again = record(site, trainer, officer(first_name="Olivia", last_name="OFFICER",
                                          badge_number="b-417"), held_on=date(2026, 11, 20))
    assert first.attendance[0].trainee_id == again.attendance[0].trainee_id
    assert db.session.scalar(db.select(db.func.count(Trainee.id))) == 1
    # Another site's officer with that badge is another trainee.
    west = make_site(slug="west")
    record(west, make_staff(west, role=Role.NURSE), officer())
    assert db.session.scalar(db.select(db.func.count(Trainee.id))) == 2
    # Twice in one session is refused.
    errors = refused(site, trainer, officer(), officer())
    assert errors["trainees"] == {1: {"badge_number": ["This person is already in this "
                                                       "session."]}}


# --- Refreshers -----------------------------------------------------------------------------


def test_a_refresher_comes_due_twelve_months_after_the_last_session(east):
    site, trainer = east
    record(site, trainer, officer(), {"kind": "staff_volunteer"}, {"kind": "peer"},
           held_on=date(2025, 12, 20))
    [olive, staff] = training.refreshers(site, now=NOW)
    assert (olive.due_on, staff.due_on) == (date(2026, 12, 20), date(2026, 12, 20))
    assert olive.status == "due_soon" and olive.sessions == 1
    due = training.refreshers_due([site], now=NOW)
    assert [r.trainee.kind for r in due.due] == ["police", "staff_volunteer"]
    assert due.counts == {"overdue": 0, "due_soon": 2, "later": 0, "unnamed_due": 1}
    later = training.refreshers_due([site], now=NOW + timedelta(days=14))
    assert later.counts["overdue"] == 2

    # A second session moves it on: due 12 months after that one.
    record(site, trainer, officer(), held_on=date(2026, 12, 5))
    [staff, olive] = training.refreshers(site, now=NOW)
    assert olive.due_on == date(2027, 12, 5) and olive.sessions == 2
    assert [r.trainee.kind for r in training.refreshers_due([site], now=NOW).due] == [
        "staff_volunteer"]

    # A site of 6 months.
    site.refresher_months = 6
    db.session.commit()
    assert [r.due_on for r in training.refreshers(site, now=NOW)] == [
        date(2026, 6, 20), date(2027, 6, 5)]
    assert training.add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)


def test_the_training_officers_csv_holds_only_those_who_consented(east):
    site, trainer = east
    record(site, trainer, officer(), {"kind": "police", "organisation": "City Police"},
           officer(first_name="Sam", last_name="Sergeant", badge_number="=9",
                   organisation="Transit Police"), {"kind": "staff_volunteer"},
           held_on=date(2026, 3, 2))
    rows = list(csv.reader(io.StringIO(training.refreshers_csv(
        site, actor=Actor.of(trainer), now=NOW))))
    assert rows[0] == list(training.EXPORT_COLUMNS)
    assert rows[1:] == [["Olive", "Officer", "B-417", "City Police", "Police", "2026-03-02",
                         "2027-03-02"],
                        ["Sam", "Sergeant", "'=9", "Transit Police", "Police", "2026-03-02",
                         "2027-03-02"]]
    one = list(csv.reader(io.StringIO(training.refreshers_csv(
        site, actor=Actor.of(trainer), now=NOW, organisation="city police"))))
    assert [row[0] for row in one[1:]] == ["Olive"]
    exports = db.session.execute(db.select(AuditEvent).filter_by(
        action="naloxone_refreshers_exported")).scalars().all()
    assert [e.detail for e in exports] == [{"rows": 2, "organisation_filter": False},
                                           {"rows": 1, "organisation_filter": True}]


# --- The monthly report ---------------------------------------------------------------------


def test_the_monthly_report_counts_people_trained_by_kind_each_once(east):
    site, trainer = east
    make_client(site, code="F-ABCD-1984")
    record(site, trainer, officer(), {"kind": "person_at_risk", "client_code": "F-ABCD-1984"},
           {"kind": "fire"}, held_on=date(2026, 11, 3))
    record(site, trainer, officer(), {"kind": "person_at_risk", "client_code": "F-ABCD-1984"},
           {"kind": "police"}, held_on=date(2026, 11, 30))
    record(site, trainer, officer(), held_on=date(2026, 12, 1))
    report = reports.monthly_report(site, date(2026, 11, 1))
    figure = dict((f.name, value) for f, value in report["figures"])["people_trained_by_kind"]
    assert figure == {"person_at_risk": 1, "family_friend": 0, "peer": 0,
                      "staff_volunteer": 0, "police": 2, "fire": 1,
                      "other_first_responder": 0, "pharmacist": 0, "other": 0}
    lines = [row for row in csv.reader(io.StringIO(reports.monthly_csv(report)))
             if row[2] == "people_trained_by_kind"]
    assert ["east", "2026-11", "people_trained_by_kind", "Police", "2"] in lines
    december = reports.monthly_report(site, date(2026, 12, 1))
    assert dict((f.name, v) for f, v in december["figures"])["people_trained_by_kind"][
        "police"] == 1


# --- The API --------------------------------------------------------------------------------


@pytest.fixture
def api(client, east):
    site, trainer = east
    boss = make_staff(site, role=Role.SUPERVISOR, username="sam")
    reviewer = make_staff(site, role=Role.REVIEWER, username="rita")
    headers = {"nurse": bearer(trainer), "supervisor": bearer(boss),
               "reviewer": bearer(reviewer)}

    class Api:
        def post(self, path, json=None, who="nurse", **headers_extra):
            return client.post(f"/api/v1/sites/{site.id}{path}", json=json,
                               headers={**headers[who], **headers_extra})

        def get(self, path, who="nurse"):
            return client.get(f"/api/v1/sites/{site.id}{path}", headers=headers[who])

    Api.site, Api.trainer = site, trainer
    return Api()


def test_the_api_records_lists_and_refuses(api):
    today = api.site.local_date(utcnow())
    body = {"held_on": (today - timedelta(days=370)).isoformat(), "trainer_id": api.trainer.id,
            "curriculum": "Take-home naloxone", "format": "brief",
            "trainees": [officer(), {"kind": "family_friend", "at_risk_consented": True,
                                     "post_test_score": 80}]}
    made = api.post("/naloxone/training-sessions", body, **{"Idempotency-Key": "k1"})
    assert made.status_code == 201, made.get_json()
    session = made.get_json()
    assert [t["kind"] for t in session["trainees"]] == ["police", "family_friend"]
    assert session["trainees"][0]["last_name"] == "Officer" and session["place"] is None
    again = api.post("/naloxone/training-sessions", body, **{"Idempotency-Key": "k1"})
    assert again.get_json()["id"] == session["id"]
    assert db.session.scalar(db.select(db.func.count(TrainingSession.id))) == 1

    month = body["held_on"][:7]
    listed = api.get(f"/naloxone/training-sessions?month={month}").get_json()
    assert listed["month"] == month and [s["id"] for s in listed["sessions"]] == [session["id"]]
    assert api.get("/naloxone/training-sessions").get_json()["sessions"] == []
    assert_api_error(api.get("/naloxone/training-sessions?month=2026-13"), 422, "month")

    due = api.get("/naloxone/refreshers", who="supervisor").get_json()
    assert [(r["last_name"], r["status"]) for r in due["refreshers"]] == [("Officer",
                                                                            "overdue")]
    assert due["counts"]["overdue"] == 1
    assert_api_error(api.get("/naloxone/refreshers"), 403)  # nurses record, do not list
    assert_api_error(api.post("/naloxone/training-sessions", body, who="reviewer"), 403)

    unnamed = {**body, "trainees": [officer(named_consent=False)]}
    refused = api.post("/naloxone/training-sessions", unnamed)
    assert_api_error(refused, 422, "trainees")
    assert refused.get_json()["errors"]["trainees"][0].startswith("Item 1: named_consent: ")
    assert_api_error(api.post("/naloxone/training-sessions", {**body, "trainees": []}), 422,
                     "trainees")
    assert_api_error(api.post("/naloxone/training-sessions", {**body, "format": "x"}), 422,
                     "format")
    assert_api_error(api.post("/naloxone/training-sessions",
                              {**body, "trainees": [{"kind": "peer", "post_test_score": 101}]}),
                     422, "trainees")
    assert db.session.scalar(db.select(db.func.count(SessionTrainee.id))) == 2


# --- The pages ------------------------------------------------------------------------------


def page_rows(html: str) -> list[str]:
    return re.findall(r'data-testid="trainee-row" data-kind="([a-z_]+)"', html)


def row_token(html: str) -> str:
    return re.search(r'id="row-([a-z0-9]+)"', html).group(1)


def test_the_form_adds_rows_by_kind_and_a_refusal_keeps_every_row(client, auth, east):
    site, trainer = east
    make_client(site, code="F-ABCD-1984")
    auth.login("tess")
    page = client.get("/sites/east/naloxone/training")
    assert page.status_code == 200 and 'data-testid="add-police"' in page.get_data(True)
    rows = {}
    for kind, mode in (("person_at_risk", "client"), ("family_friend", "outside"),
                       ("police", "outside")):
        fragment = client.get(f"/sites/east/naloxone/training/row?kind={kind}&mode={mode}")
        assert page_rows(fragment.get_data(True)) == [kind]
        rows[kind] = row_token(fragment.get_data(True))
    c, f, p = rows["person_at_risk"], rows["family_friend"], rows["police"]
    # The code autocomplete offers the known code; a tap puts it in the row.
    offered = client.get(f"/sites/east/naloxone/training/codes?row={c}"
                         f"&t-{c}-client_code=ab&t-{c}-kind=person_at_risk")
    assert "F-ABCD-1984" in offered.get_data(True)
    filled = client.get(f"/sites/east/naloxone/training/row?kind=person_at_risk&mode=client"
                        f"&row={c}&code=F-ABCD-1984&t-{c}-mode=client"
                        f"&t-{c}-kind=person_at_risk&t-{c}-post_test_score=88")
    assert 'value="F-ABCD-1984"' in filled.get_data(True)
    assert 'value="88"' in filled.get_data(True)

    form = {"held_on": "2026-12-01", "trainer_id": str(trainer.id),
            "curriculum": "Take-home naloxone", "format": "standard",
            f"t-{c}-mode": "client", f"t-{c}-kind": "person_at_risk",
            f"t-{c}-client_code": "F-ABCD-1984", f"t-{c}-post_test_score": "88",
            f"t-{f}-mode": "outside", f"t-{f}-kind": "family_friend",
            f"t-{f}-organisation": "",
            f"t-{p}-mode": "outside", f"t-{p}-kind": "police",
            f"t-{p}-organisation": "City Police", f"t-{p}-named_consent": "1",
            f"t-{p}-first_name": "Olive", f"t-{p}-last_name": "", f"t-{p}-badge_number": "B-417"}
    answer = auth.post("/sites/east/naloxone/training", form, headers=HTMX)
    html = answer.get_data(True)
    assert answer.status_code == 422
    assert page_rows(html) == ["person_at_risk", "family_friend", "police"]
    assert 'value="F-ABCD-1984"' in html and 'value="Olive"' in html and 'value="B-417"' in html
    assert 'value="City Police"' in html and 'value="88"' in html and 'checked' in html
    assert f'id="t-{f}-at_risk_consented-error"' in html
    assert f'id="t-{p}-last_name-error"' in html
    assert "person at risk consented" in html and "Give the last name" in html
    assert db.session.scalar(db.select(db.func.count(TrainingSession.id))) == 0

    form.update({f"t-{f}-at_risk_consented": "yes", f"t-{p}-last_name": "Officer"})
    done = auth.post("/sites/east/naloxone/training", form, headers=HTMX)
    assert done.status_code == 200 and "3 people trained" in done.get_data(True)
    assert page_rows(done.get_data(True)) == []  # a fresh form for the next session
    db.session.rollback()
    assert [p.trainee.kind for p in db.session.execute(
        db.select(TrainingSession)).scalar_one().attendance] == [
        "person_at_risk", "family_friend", "police"]


def test_unticking_consent_leaves_an_officer_unnamed(client, auth, east):
    site, trainer = east
    auth.login("tess")
    t = "ab12"
    done = auth.post("/sites/east/naloxone/training", {
        "held_on": "2026-12-01", "trainer_id": str(trainer.id), "curriculum": "THN",
        "format": "brief", f"t-{t}-mode": "outside", f"t-{t}-kind": "police",
        f"t-{t}-first_name": "Olive", f"t-{t}-last_name": "Officer"}, headers=HTMX)
    assert done.status_code == 200, done.get_data(True)
    db.session.rollback()
    assert db.session.execute(db.select(Trainee)).scalar_one().last_name is None


def test_the_sessions_and_refreshers_pages(client, auth, east):
    site, trainer = east
    boss = make_staff(site, role=Role.SUPERVISOR, username="sam")
    today = site.local_date(utcnow())
    held = today - timedelta(days=370)
    record(site, trainer, officer(), {"kind": "police", "organisation": "Transit"},
           {"kind": "peer"}, held_on=held, now=utcnow())
    auth.login("tess")
    listed = client.get(f"/sites/east/naloxone/training/sessions?month={held:%Y-%m}")
    html = listed.get_data(True)
    assert listed.status_code == 200 and html.count('data-testid="attendee"') == 3
    assert "Olive Officer" in html and "Police <strong>2</strong>" in html
    assert client.get("/sites/east/naloxone/refreshers").status_code == 403
    auth.logout()

    auth.login("sam")
    page = client.get("/sites/east/naloxone/refreshers").get_data(True)
    assert page.count('data-testid="refresher"') == 2 and "Olive Officer" in page
    assert "Not named (no consent)" in page and "Overdue" in page
    exported = client.get("/sites/east/naloxone/refreshers.csv")
    assert exported.mimetype == "text/csv" and exported.headers["Cache-Control"] == "no-store"
    assert [row[0] for row in csv.reader(io.StringIO(exported.get_data(True)))][1:] == ["Olive"]
    del boss


def test_the_organisation_sees_every_sites_refreshers(client, auth, east):
    site, trainer = east
    west = make_site(name="West", slug="west")
    held = site.local_date(utcnow()) - timedelta(days=360)
    record(site, trainer, officer(), held_on=held, now=utcnow())
    record(west, make_staff(west, role=Role.NURSE), officer(last_name="Other"), held_on=held,
           now=utcnow())
    boss = make_staff(site, role=Role.SUPERVISOR, username="sam")
    boss.org_admin = True
    db.session.commit()
    auth.login("sam")
    page = client.get("/org/naloxone/refreshers").get_data(True)
    assert page.count('data-testid="refresher"') == 2 and "West" in page


def test_a_clients_training_is_in_their_access_request_and_on_their_page(east):
    from srs.clients.export import gather
    from srs.clients.service import client_summary

    site, trainer = east
    client = make_client(site, code="F-ABCD-1984")
    session = record(site, trainer, {"kind": "peer", "client_code": "F-ABCD-1984",
                                     "post_test_score": 70}, officer())
    sections = {s.record_type: s for s in gather(site, client)}
    [row] = sections["naloxone_training"].rows
    assert (row["id"], row["trained_as"], row["post_test_score"]) == (session.id, "peer", 70)
    assert "Olive" not in str(sections["naloxone_training"].rows)
    assert "naloxone_training_recorded" in {r["action"] for r in sections["audit_event"].rows}
    assert client_summary(client)["Naloxone training sessions"] == 1
    # The month's list showed their code: that read is in their access request too.
    training.list_sessions(site, date(2026, 12, 1), actor=Actor.of(trainer), now=NOW)
    audit = gather(site, client)[-1].rows
    assert [r["detail"] for r in audit if r["action"] == "naloxone_training_listed"] == [
        {"shown": [session.id]}]


# --- Kits given with the training -----------------------------------------------------------


def stocked(site, trainer, first="K-1", last="K-3", *, now=NOW):
    """A lot and kits made from it in the register."""
    from factories import make_lot

    from srs.naloxone import kits

    lot = make_lot(site, Actor.of(trainer), now=now, lot="A1", quantity=10,
                   expires=date(2027, 6, 1))
    kits.add_kits(site, {"lot_id": lot.id, "first_serial": first, "last_serial": last},
                  actor=Actor.of(trainer), now=now)
    return lot


def kit_states() -> dict:
    return dict(db.session.execute(db.select(NaloxoneKit.serial, NaloxoneKit.state)).all())


def test_kits_go_with_the_training_to_the_client_or_the_trainee(east):
    site, trainer = east
    client = make_client(site, code="F-ABCD-1984")
    lot = stocked(site, trainer)
    session = record(site, trainer,
                     {"kind": "person_at_risk", "client_code": "F-ABCD-1984",
                      "kit_serial": " k-1 "},
                     officer(kit_serial="K-2"), {"kind": "peer", "kit_serial": ""})
    assert session.kits_given == ["K-1", "K-2"]
    db.session.expire_all()
    assert kit_states() == {"K-1": "issued", "K-2": "issued", "K-3": "in_stock"}
    given = {k.kit.serial: k for k in db.session.execute(db.select(TakeHomeKit)).scalars()}
    police = session.attendance[1].trainee
    assert (given["K-1"].client_id, given["K-1"].trainee_id) == (client.id, None)
    assert (given["K-2"].client_id, given["K-2"].trainee_id) == (None, police.id)
    assert all(k.training_given and k.replacement_reason is None for k in given.values())
    # The three kits' units left the lot when they were made; giving two takes no more.
    assert db.session.get(type(lot), lot.id).quantity == 7
    # Audited as issuing is: on the client's record, on the trainee; the session counts them.
    actions = [(e.action, e.entity_id) for e in db.session.execute(
        db.select(AuditEvent).order_by(AuditEvent.id)).scalars()]
    assert ("take_home_kit_given", str(client.id)) in actions
    assert ("take_home_kit_given_trainee", str(police.id)) in actions
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="naloxone_training_recorded")).scalar_one().detail["kits"] == 2

    # Back for a refresher still holding K-2: a kit now is a replacement, from the register.
    errors = refused(site, trainer, officer(kit_serial="K-3"), held_on=date(2026, 12, 6))
    assert errors["trainees"][0]["kit_serial"] == [
        "They already hold kit K-2: give them this one from the kit register, as a "
        "replacement with its reason."]
    assert kit_states()["K-3"] == "in_stock"


def test_a_serial_the_register_refuses_refuses_the_whole_session(east):
    site, trainer = east
    make_client(site, code="F-ABCD-1984")
    stocked(site, trainer)
    errors = refused(site, trainer,
                     {"kind": "person_at_risk", "client_code": "F-ABCD-1984",
                      "kit_serial": "K-1"},
                     {"kind": "family_friend", "at_risk_consented": True, "kit_serial": "K-9"},
                     {"kind": "peer", "kit_serial": "K-1"})
    assert errors["trainees"] == {
        1: {"kit_serial": ["No kit K-9 in this site's register."]},
        2: {"kit_serial": ["This kit is already given to another person in this session."]}}
    assert db.session.scalar(db.select(db.func.count(TrainingSession.id))) == 0
    assert db.session.scalar(db.select(db.func.count(TakeHomeKit.id))) == 0
    assert set(kit_states().values()) == {"in_stock"}
    record(site, trainer, {"kind": "peer", "kit_serial": "K-2"})
    errors = refused(site, trainer, {"kind": "peer", "kit_serial": "K-2"})
    assert errors["trainees"][0]["kit_serial"] == ["Kit K-2 is not in stock (it is issued)."]
    assert db.session.scalar(db.select(db.func.count(TrainingSession.id))) == 1


def test_the_form_refuses_a_bad_serial_under_its_row_and_keeps_everything(client, auth, east):
    site, trainer = east
    stocked(site, trainer)
    auth.login("tess")
    form = {"held_on": "2026-12-01", "trainer_id": str(trainer.id), "curriculum": "THN",
            "format": "brief",
            "t-a1-mode": "outside", "t-a1-kind": "peer", "t-a1-kit_serial": "K-1",
            "t-b2-mode": "outside", "t-b2-kind": "police", "t-b2-organisation": "City Police",
            "t-b2-kit_serial": "K-99"}
    answer = auth.post("/sites/east/naloxone/training", form, headers=HTMX)
    html = answer.get_data(True)
    assert answer.status_code == 422 and page_rows(html) == ["peer", "police"]
    assert re.search(r'id="t-b2-kit_serial-error"[^>]*>No kit K-99 in this site', html)
    assert 'value="K-1"' in html and 'value="K-99"' in html and 'value="City Police"' in html
    assert "t-a1-kit_serial-error" not in html
    assert db.session.scalar(db.select(db.func.count(TrainingSession.id))) == 0
    assert set(kit_states().values()) == {"in_stock"}

    form["t-b2-kit_serial"] = "k-2"
    done = auth.post("/sites/east/naloxone/training", form, headers=HTMX)
    assert done.status_code == 200 and "Kits given: " in done.get_data(True)
    assert "K-1, K-2" in done.get_data(True)
    db.session.rollback()
    assert kit_states() == {"K-1": "issued", "K-2": "issued", "K-3": "in_stock"}


def test_the_api_gives_a_kit_with_each_trainee(api):
    stocked(api.site, api.trainer, now=utcnow())
    body = {"held_on": api.site.local_date(utcnow()).isoformat(),
            "trainer_id": api.trainer.id, "curriculum": "THN", "format": "brief",
            "trainees": [officer(kit_serial="K-1"),
                         {"kind": "family_friend", "at_risk_consented": True,
                          "kit_serial": "K-404"}]}
    refused = api.post("/naloxone/training-sessions", body)
    assert_api_error(refused, 422, "trainees")
    assert refused.get_json()["errors"]["trainees"] == [
        "Item 2: kit_serial: No kit K-404 in this site's register."]
    assert db.session.scalar(db.select(db.func.count(TakeHomeKit.id))) == 0
    body["trainees"][1]["kit_serial"] = "K-2"
    made = api.post("/naloxone/training-sessions", body)
    assert made.status_code == 201, made.get_json()
    db.session.rollback()
    holders = {k.kit.serial: k.trainee.kind for k in db.session.execute(
        db.select(TakeHomeKit)).scalars()}
    assert holders == {"K-1": "police", "K-2": "family_friend"}
