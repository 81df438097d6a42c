"""The compassion club's evaluation: a member's survey comes due every 91 days, is recorded
on the tablet or the API; the monthly club report matches hand-made rows (members against
the site's other clients per 1,000 visits), on its page, the monthly CSV and the API, with no
client code; the evaluation export gives program codes, never a client's code."""

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from factories import ACTOR, make_client, make_site, make_staff
from routes import bearer

from srs.auth.models import AuditEvent, Role
from srs.auth.service import Actor, record
from srs.booths.models import Visit
from srs.common import utcnow
from srs.compassion import evaluation
from srs.compassion.models import (
    LinkageConversation,
    Member,
    MemberSurvey,
    Supply,
    SupplyBatch,
)
from srs.errors import Conflict
from srs.extensions import db
from srs.overdose.models import OverdoseResponse


def at(day: date, hour: int = 12) -> datetime:
    """``hour`` o'clock on ``day`` in Toronto (the factories' sites' zone, UTC-5 in winter
    and UTC-4 in summer: good enough at noon), as UTC."""
    return datetime(day.year, day.month, day.day, hour + 5, tzinfo=UTC)


def member(site, letter: str, *, applied: date, active: date | None = None,
           ended: date | None = None, state: str | None = None) -> Member:
    client = make_client(site, code=f"F-CLB{letter}-1985")
    row = Member(site_id=site.id, client_id=client.id, applied_at=at(applied),
                 active_since=at(active) if active else None,
                 ended_at=at(ended) if ended else None,
                 state=state or ("ended" if ended else "active" if active else "applicant"),
                 suspended_reason="Threatened staff" if state == "suspended" else None)
    db.session.add(row)
    db.session.commit()
    return row


def visit(site, client_id: int, day: date) -> Visit:
    row = Visit(site_id=site.id, client_id=client_id, state="departed", arrived_at=at(day, 10),
                departed_at=at(day, 11))
    db.session.add(row)
    db.session.flush()
    return row


def overdose(site, day: date, *, client_id=None, visit_id=None):
    db.session.add(OverdoseResponse(site_id=site.id, client_id=client_id, visit_id=visit_id,
                                    kind="opioid", source="booth", started_at=at(day, 10)))


def supply(site, who: Member, batch: SupplyBatch, day: date, mg: int, code: str,
           mode: str = "witnessed"):
    db.session.add(Supply(site_id=site.id, member_id=who.id, batch_id=batch.id, at=at(day),
                          quantity_mg=mg, price_cents=mg, mode=mode, program_code=code))


def batch(site, substance: str, lot: str) -> SupplyBatch:
    row = SupplyBatch(site_id=site.id, substance=substance, label_content=substance,
                      source="Lab", lot=lot, quantity_mg=100000, cost_cents=1000,
                      received_at=at(date(2026, 9, 1)), state="passed")
    db.session.add(row)
    db.session.flush()
    return row


def survey(who: Member, day: date, overdoses: int, street: str, contact: bool):
    db.session.add(MemberSurvey(member_id=who.id, at=at(day), overdoses_since=overdoses,
                                street_supply=street, treatment_contact=contact))


def talk(who: Member, day: date, outcome: str):
    db.session.add(LinkageConversation(member_id=who.id, at=at(day), outcome=outcome))


def limit_reached(site, who: Member, day: date, limit: str):
    record(ACTOR, "compassion_limit_reached", "compassion_member", who.id, site_id=site.id,
           detail={"member_id": who.id, "limit": limit}, now=at(day))


NOV = date(2026, 11, 1)


@pytest.fixture
def club(app):
    """November 2026 at a club, made by hand (see each row's note)."""
    site = make_site(name="Club", slug="east")
    m = {
        "A": member(site, "A", applied=date(2026, 7, 20), active=date(2026, 8, 1)),
        # Joined mid-November: a visit and an overdose before, a visit after.
        "B": member(site, "B", applied=date(2026, 11, 1), active=date(2026, 11, 15)),
        # Ended on the 10th: a member's visit before, another client's after.
        "C": member(site, "C", applied=date(2026, 5, 1), active=date(2026, 6, 1),
                    ended=date(2026, 11, 10)),
        "D": member(site, "D", applied=date(2026, 11, 3)),  # an applicant
        "E": member(site, "E", applied=date(2026, 8, 20), active=date(2026, 9, 1),
                    state="suspended"),
        "F": member(site, "F", applied=date(2026, 12, 2)),  # December: not in November
    }
    other = make_client(site, code="F-OTHR-1990")
    heroin, cocaine = batch(site, "heroin", "H-1"), batch(site, "cocaine", "C-1")
    supply(site, m["A"], heroin, date(2026, 11, 2), 2000, "BC-SS-1")
    supply(site, m["A"], heroin, date(2026, 11, 9), 1500, "BC-SS-1", "take_home")
    supply(site, m["B"], cocaine, date(2026, 11, 20), 500, "BC-SS-2")
    supply(site, m["A"], heroin, date(2026, 10, 30), 1000, "BC-SS-1")  # October
    supply(site, m["A"], heroin, date(2026, 12, 1), 1000, "BC-SS-1")  # December
    for day in (date(2026, 11, 3), date(2026, 11, 13), date(2026, 11, 23)):
        limit_reached(site, m["A"], day, "weekly")
    limit_reached(site, m["B"], date(2026, 11, 21), "daily")
    limit_reached(site, m["A"], date(2026, 10, 21), "weekly")  # October
    talk(m["A"], date(2026, 11, 2), "offered")
    talk(m["A"], date(2026, 11, 9), "declined")
    talk(m["B"], date(2026, 11, 20), "accepted")
    talk(m["A"], date(2026, 10, 2), "not_now")  # October
    survey(m["A"], date(2026, 11, 2), 2, "less", True)
    survey(m["E"], date(2026, 11, 4), 0, "none", False)
    survey(m["A"], date(2026, 10, 2), 1, "same", True)  # October
    # Members' visits: A 3, B 1 (after joining), C 1 (before ending) = 5.
    for day in (1, 8, 15):
        visit(site, m["A"].client_id, date(2026, 11, day))
    visit(site, m["B"].client_id, date(2026, 11, 5))  # before joining: another client's
    visit(site, m["B"].client_id, date(2026, 11, 20))
    visit(site, m["C"].client_id, date(2026, 11, 5))
    visit(site, m["C"].client_id, date(2026, 11, 20))  # after ending: another client's
    others = [visit(site, other.id, date(2026, 11, day)) for day in (2, 8, 16, 24)]
    visit(site, other.id, date(2026, 10, 24))  # October
    overdose(site, date(2026, 11, 12), client_id=m["A"].client_id)  # a member's
    overdose(site, date(2026, 11, 6), client_id=m["B"].client_id)  # before B joined
    overdose(site, date(2026, 11, 8), visit_id=others[1].id)  # another client's, by visit
    overdose(site, date(2026, 10, 12), client_id=m["A"].client_id)  # October
    db.session.commit()
    return site, m


def test_each_figure_matches_the_hand_count(club):
    site, _m = club
    report = evaluation.month_report(site, NOV)
    assert report.members_by_state == {"applicant": 1, "active": 2, "suspended": 1,
                                       "ended": 1}
    assert report.supplies_by_substance == {
        "cocaine": {"supplies": 1, "quantity_mg": 500},
        "heroin": {"supplies": 2, "quantity_mg": 3500}}
    assert (report.supplies, report.quantity_g) == (3, 4.0)
    assert report.limits_reached == {"daily": 1, "weekly": 3}
    assert report.linkage == {"offered": 1, "accepted": 1, "declined": 1, "not_now": 0}
    assert (report.surveys, report.survey_overdoses, report.treatment_contact) == (2, 2, 1)
    assert report.street_supply == {"none": 1, "less": 1, "same": 0, "more": 0}
    assert (report.member_visits, report.member_overdoses) == (5, 1)
    assert (report.other_visits, report.other_overdoses) == (6, 2)
    assert (report.member_rate, report.other_rate) == (200.0, 333.3)
    october = evaluation.month_report(site, date(2026, 10, 1))
    # A suspension keeps no start: E's counts back to activation (the report says so).
    assert october.members_by_state == {"applicant": 0, "active": 2, "suspended": 1,
                                        "ended": 0}
    assert (october.supplies, october.limits_reached, october.surveys) == (1, {"weekly": 1}, 1)
    assert (october.member_visits, october.member_overdoses, october.other_visits) == (0, 1, 1)


def test_a_survey_comes_due_91_days_after_joining_then_after_the_last(club):
    site, m = club
    joined = date(2026, 9, 1)  # E's activation; A surveyed on 2 Nov, B joined 15 Nov
    assert evaluation.survey_due_on(m["E"], site) == joined + timedelta(days=91)
    # 30 Nov, late evening in Toronto: nobody is due (E surveyed on 4 Nov).
    assert evaluation.members_due(site, now=at(date(2026, 11, 30), 18)) == []
    db.session.execute(db.delete(MemberSurvey).where(MemberSurvey.member_id == m["E"].id))
    db.session.commit()
    late_30th = datetime(2026, 12, 1, 4, 59, tzinfo=UTC)  # 23:59 on the 30th in Toronto
    assert evaluation.members_due(site, now=late_30th) == []
    due = evaluation.members_due(site, now=datetime(2026, 12, 1, 5, 0, tzinfo=UTC))
    assert [(d.member.id, d.due_on, d.last_at) for d in due] == [
        (m["E"].id, date(2026, 12, 1), None)]
    nurse = Actor.of(make_staff(site, role=Role.NURSE))
    recorded = evaluation.record_member_survey(
        site, m["E"].id, {"overdoses_since": 1, "street_supply": "same",
                          "treatment_contact": False},
        actor=nurse, now=datetime(2026, 12, 1, 15, tzinfo=UTC))
    # A (surveyed 2 Nov) and B (joined 15 Nov) come due first; E again 91 days on.
    assert [d.member.id for d in evaluation.members_due(
        site, now=datetime(2027, 3, 1, 17, tzinfo=UTC))] == [m["A"].id, m["B"].id]
    assert [d.member.id for d in evaluation.members_due(
        site, now=datetime(2027, 3, 2, 15, tzinfo=UTC))] == [m["A"].id, m["B"].id, m["E"].id]
    assert evaluation.survey_due_on(m["E"], site, recorded) == date(2027, 3, 2)
    [event] = db.session.scalars(db.select(AuditEvent).filter_by(
        action="compassion_survey_recorded")).all()
    assert (event.entity_id, event.detail) == (str(m["E"].id), {"survey_id": recorded.id})
    # The site's own interval.
    site.compassion_survey_days = 30
    db.session.commit()
    assert evaluation.survey_due_on(m["E"], site, recorded) == date(2026, 12, 31)
    with pytest.raises(Conflict):
        evaluation.record_member_survey(site, m["C"].id, {
            "overdoses_since": 0, "street_supply": "none", "treatment_contact": False},
            actor=nurse, now=datetime(2026, 12, 1, 15, tzinfo=UTC))


def test_the_report_page_monthly_csv_and_api_show_counts_and_no_code(club, client, auth):
    site, m = club
    make_staff(site, role=Role.REVIEWER, username="rev")
    auth.login("rev")
    monthly = client.get("/sites/east/reports/monthly?month=2026-11").get_data(as_text=True)
    assert 'data-testid="club-report-link"' in monthly and "/sites/east/club/report" in monthly
    assert 'data-testid="club-report-link"' in client.get("/").get_data(as_text=True)
    page = client.get("/sites/east/club/report?month=2026-11")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for figure, value in (("members_active", 2), ("members_suspended", 1),
                          ("members_ended", 1), ("members_applicant", 1),
                          ("limits_total", 4), ("linkage_declined", 1), ("surveys", 2),
                          ("survey_overdoses", 2), ("street_less", 1),
                          ("treatment_contact", 1)):
        assert f'data-figure="{figure}">{value}<' in text, figure
    assert re.search(r'data-substance="heroin">.*?data-figure="supplies">2<.*?'
                     r'data-figure="grams">3.5<', text, re.S)
    assert re.search(r'data-group="members">.*?"visits">5<.*?"overdoses">1<.*?"rate">200.0<',
                     text, re.S)
    assert re.search(r'data-group="others">.*?"visits">6<.*?"overdoses">2<.*?"rate">333.3<',
                     text, re.S)
    assert not any(row.client.code in text for row in m.values())

    exported = client.get("/sites/east/reports/monthly.csv?month=2026-11").get_data(
        as_text=True)
    rows = {(r["figure"], r["breakdown"]): r["value"]
            for r in csv.DictReader(io.StringIO(exported))}
    assert rows[("club_members_by_state", "Active")] == "2"
    assert rows[("club_supplies_by_substance", "heroin")] == "2"
    assert rows[("club_mg_by_substance", "heroin")] == "3500"
    assert rows[("club_limits_reached", "weekly")] == "3"
    assert rows[("club_linkage_by_outcome", "Accepted")] == "1"
    assert rows[("club_survey_street_supply", "Less than before")] == "1"
    assert rows[("club_member_overdoses", "")] == "1"
    assert rows[("club_member_rate", "")] == "200"
    assert rows[("club_other_rate", "")] == "333.3"
    assert not any(row.client.code in exported for row in m.values())

    body = client.get(f"/api/v1/sites/{site.id}/club/report?month=2026-11",
                      headers=bearer(make_staff(site, role=Role.SUPERVISOR))).get_json()
    assert body["members_by_state"]["active"] == 2 and body["limits_reached"]["weekly"] == 3
    assert body["supplies_by_substance"] == [
        {"substance": "cocaine", "supplies": 1, "quantity_g": 0.5},
        {"substance": "heroin", "supplies": 2, "quantity_g": 3.5}]
    assert (body["member_rate"], body["other_rate"]) == (200.0, 333.3)
    assert not any(row.client.code in json.dumps(body) for row in m.values())


def test_the_evaluation_export_gives_program_codes_and_no_client_code(club, client, auth):
    site, m = club
    make_staff(site, role=Role.ADMIN, username="ada")
    auth.login("ada")
    response = client.get("/sites/east/club/report/evaluation.csv?month=2026-11")
    assert response.status_code == 200 and "attachment" in response.headers[
        "Content-Disposition"]
    text = response.get_data(as_text=True)
    assert list(csv.reader(io.StringIO(text))) == [
        ["member", "program_code", "date", "substance", "quantity_g", "mode"],
        ["1", "BC-SS-1", "2026-11-02", "heroin", "2", "witnessed"],
        ["1", "BC-SS-1", "2026-11-09", "heroin", "1.5", "take_home"],
        ["2", "BC-SS-2", "2026-11-20", "cocaine", "0.5", "witnessed"]]
    assert not any(row.client.code in text for row in m.values())
    assert str(m["A"].id) not in {r[0] for r in csv.reader(io.StringIO(text))} - {"1", "2"}
    [event] = db.session.scalars(db.select(AuditEvent).filter_by(
        action="compassion_evaluation_exported")).all()
    assert event.detail == {"month": "2026-11", "rows": 3}


def test_who_may_open_the_report(club, client, auth):
    site, _m = club
    make_staff(site, role=Role.NURSE, username="nina")
    auth.login("nina")
    assert client.get("/sites/east/club/report").status_code == 403
    assert client.get("/sites/east/club/report/evaluation.csv").status_code == 403
    assert client.get(f"/api/v1/sites/{site.id}/club/report",
                      headers=bearer(make_staff(site, role=Role.NURSE))).status_code == 403


def test_sites_without_a_club_report_no_club_figures(app):
    from srs.incidents import reports

    site = make_site()
    names = {f.name for f, _v in reports.monthly_report(site, NOV)["figures"]}
    assert "total_visits" in names and not any(n.startswith("club_") for n in names)


@pytest.fixture
def due_member(app):
    """A member who joined 100 days ago, never surveyed: due."""
    site = make_site(name="Club", slug="east")
    client_row = make_client(site, code="F-DUEM-1980")
    row = Member(site_id=site.id, client_id=client_row.id, state="active",
                 applied_at=utcnow() - timedelta(days=101),
                 active_since=utcnow() - timedelta(days=100))
    db.session.add(row)
    db.session.commit()
    make_staff(site, role=Role.NURSE, username="nina")
    return site, row


def test_the_tablet_survey_refuses_with_messages_keeps_what_was_typed_then_saves(
        due_member, client, auth):
    site, row = due_member
    auth.login("nina")
    assert 'data-testid="club-surveys-link"' in client.get("/").get_data(as_text=True)
    listed = client.get("/sites/east/club/surveys").get_data(as_text=True)
    assert "F-DUEM-1980" in listed and f'data-testid="survey-open-{row.id}"' in listed
    url = f"/sites/east/club/members/{row.id}/survey"
    form = client.get(url).get_data(as_text=True)
    assert 'data-testid="survey-street-less"' in form and 'data-busy-label="Saving…"' in form
    refused = auth.post(url, {"overdoses_since": "two", "treatment_contact": "yes",
                              "note": "Moved shelters"})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "Nothing was saved" in html
    assert "a whole number from 0 to 99 (0 if none)" in html
    assert "Choose how much street supply they used" in html
    assert 'value="two"' in html and 'value="Moved shelters"' in html
    assert re.search(r'id="treatment-yes" name="treatment_contact" value="yes" checked', html)
    assert db.session.scalar(db.select(db.func.count(MemberSurvey.id))) == 0
    saved = auth.post(url, {"overdoses_since": "0", "street_supply": "less",
                            "treatment_contact": "no", "note": ""})
    assert saved.status_code == 303
    after = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="survey-saved"' in after and "F-DUEM-1980" not in after
    stored = db.session.scalars(db.select(MemberSurvey)).one()
    assert (stored.overdoses_since, stored.street_supply, stored.treatment_contact,
            stored.note) == (0, "less", False, None)


def test_the_api_records_a_survey_and_lists_who_is_due(due_member, client):
    site, row = due_member
    headers = bearer(make_staff(site, role=Role.NURSE))
    due = client.get(f"/api/v1/sites/{site.id}/club/surveys/due", headers=headers).get_json()
    assert due["survey_days"] == 91
    assert [(d["member_id"], d["client_code"], d["last_at"]) for d in due["due"]] == [
        (row.id, "F-DUEM-1980", None)]
    url = f"/api/v1/sites/{site.id}/club/members/{row.id}/surveys"
    bad = client.post(url, json={"overdoses_since": -1, "street_supply": "lots",
                                 "treatment_contact": "yes"}, headers=headers)
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"overdoses_since", "street_supply",
                                             "treatment_contact"}
    made = client.post(url, json={"overdoses_since": 1, "street_supply": "none",
                                  "treatment_contact": True}, headers=headers)
    assert made.status_code == 201 and made.get_json()["street_supply"] == "none"
    again = client.get(f"/api/v1/sites/{site.id}/club/surveys/due", headers=headers)
    assert again.get_json()["due"] == []
    reviewer = bearer(make_staff(site, role=Role.REVIEWER))
    assert client.post(url, json={"overdoses_since": 1, "street_supply": "none",
                                  "treatment_contact": True},
                       headers=reviewer).status_code == 403


def test_a_members_page_says_when_the_survey_is_due_and_links_it(due_member, client, auth):
    site, row = due_member
    auth.login("nina")
    page = client.get(f"/sites/east/club/members/{row.id}").get_data(as_text=True)
    assert 'data-testid="club-survey-link"' in page and "Survey due" in page
    db.session.add(MemberSurvey(member_id=row.id, at=utcnow(), overdoses_since=0,
                                street_supply="none", treatment_contact=False))
    db.session.commit()
    page = client.get(f"/sites/east/club/members/{row.id}").get_data(as_text=True)
    due_on = site.local_date(utcnow()) + timedelta(days=91)
    assert f"Next survey due {due_on:%d %b %Y}" in page
