"""Missed doses in heroin-assisted treatment: the daily job counts missed days on the site's
own days (across its midnight and a DST change), holds dosing at 3 until a prescriber
reviews it, prompts re-titration at 5, and counts a day once; the prescriber's review, hold
and end; take-home doses only where the site allows them and the Swiss conditions hold."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import PIN, make_client, make_site, make_staff
from routes import assert_api_error, bearer

from srs.audit.models import AuditEvent
from srs.auth.models import Role
from srs.auth.service import Actor
from srs.clients.service import client_flags
from srs.errors import Conflict, Forbidden, Invalid
from srs.extensions import db
from srs.hat import missed, service
from srs.hat.models import HatDose, HatEnrolment, HatHold, HatMissedRun, HatUrineTest

ZURICH = ZoneInfo("Europe/Zurich")  # DST ends 25 Oct 2026: that day has 25 hours


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Zurich wall-clock moment, in UTC."""
    return datetime.combine(day, time(hour, minute), ZURICH).astimezone(UTC)


def d(day: int, month: int = 10) -> date:
    return date(2026, month, day)


def rx(**extra):
    return {"medication": "hydromorphone", "route": "iv", "dose_mg": 100.0,
            "sessions_per_day": 3, "min_interval_minutes": None, "titration": "none",
            "titration_days": [], "top_up_allowed": False, "top_up_max_mg": None,
            "starts_on": d(20), "ends_on": None, "pin": PIN, **extra}


def enrol(site, prescriber, code, *, when: datetime, starts_on: date, **prescription):
    client = make_client(site, code=code)
    enrolment = service.enrol(site, {
        "code": code, "legal_name": "Test Patient", "date_of_birth": date(1980, 1, 2),
        "eligibility": {"severe_oud": {"met": True}}, "pin": PIN},
        actor=Actor.of(prescriber), now=when)
    service.create_prescription(site, enrolment.id, rx(starts_on=starts_on, **prescription),
                                actor=Actor.of(prescriber), now=when)
    return client, enrolment


def dose(enrolment, day: date, outcome: str = "given", *, take_home: bool = False,
         hour: int = 12, minute: int = 0) -> HatDose:
    row = HatDose(site_id=enrolment.site_id, enrolment_id=enrolment.id,
                  prescription_id=enrolment.prescriptions[-1].id, day=day,
                  at=at(day, hour, minute), outcome=outcome, take_home=take_home,
                  dose_mg=100.0 if outcome == "given" else None,
                  reason=None if outcome == "given" else "POSS 3: withheld")
    db.session.add(row)
    db.session.commit()
    return row


def missed_days(enrolment) -> list[date]:
    return sorted(db.session.scalars(db.select(HatDose.day).where(
        HatDose.enrolment_id == enrolment.id, HatDose.outcome == "missed")))


def actions(enrolment, action: str) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.entity_id == str(enrolment.id)))


@pytest.fixture
def clinic(app):
    site = make_site(name="Zurich HAT")
    site.timezone = "Europe/Zurich"
    db.session.commit()
    prescriber = make_staff(site, role=Role.PRESCRIBER, username="dr-z")
    client, enrolment = enrol(site, prescriber, "F-MISS-1980", when=at(d(19), 10),
                              starts_on=d(20))
    for day in range(20, 24):
        dose(enrolment, d(day))
    return site, prescriber, client, enrolment


def test_missed_days_count_on_the_sites_own_days_across_midnight_and_dst(clinic, client,
                                                                         auth):
    site, prescriber, patient, enrolment = clinic
    dose(enrolment, d(23), hour=23, minute=30)  # the site's 23 Oct, already 21:30 UTC
    assert missed.run_missed_dose_job(now=at(d(24), 0, 5)) == 0
    # The site's 24 Oct has not ended at 23:55 local (21:55 UTC).
    missed.run_missed_dose_job(now=at(d(24), 23, 55))
    assert missed_days(enrolment) == []
    # At 00:05 local on the 25th it has, though UTC still says the 24th.
    moment = at(d(25), 0, 5)
    assert moment.date() == d(24)
    assert missed.run_missed_dose_job(now=moment) == 1
    row = db.session.execute(db.select(HatDose).where(
        HatDose.enrolment_id == enrolment.id, HatDose.outcome == "missed")).scalar_one()
    assert (row.day, row.reason) == (d(24), "No dose on 2026-10-24")
    # The 25th has 25 hours: at 23:30 local (22:30 UTC) it has not ended.
    missed.run_missed_dose_job(now=at(d(25), 23, 30))
    assert missed_days(enrolment) == [d(24)]
    missed.run_missed_dose_job(now=at(d(26), 0, 5))  # 25 Oct 23:05 UTC
    assert missed_days(enrolment) == [d(24), d(25)]
    assert db.session.get(HatEnrolment, enrolment.id).state == "enrolled"
    # A withheld dose is no dose: the 26th is the third missed day.
    dose(enrolment, d(26), "withheld")
    now = at(d(27), 0, 5)
    missed.run_missed_dose_job(now=now)
    held = db.session.get(HatEnrolment, enrolment.id)
    assert missed_days(enrolment) == [d(24), d(25), d(26)]
    assert (held.state, held.hold_reason, held.held_at) == ("on_hold", "missed_doses", now)
    assert actions(enrolment, "hat_dosing_held") == 1
    assert client_flags(patient, today=d(27))["treatment_held"] is True

    # The floor sees the flag at check-in by the code only.
    nurse = make_staff(site, role=Role.NURSE, username="floor-z")
    auth.login(nurse.username)
    panel = client.get(f"/sites/{site.slug}/floor/check-in?code={patient.code}")
    text = panel.get_data(as_text=True)
    assert "Treatment held: prescriber review" in text and "missed_doses" not in text


def test_a_dose_given_on_site_or_taken_home_breaks_the_run(clinic):
    site, _prescriber, _patient, enrolment = clinic
    dose(enrolment, d(25), take_home=True)
    dose(enrolment, d(24), "declined")
    for day in (25, 26, 27):
        missed.run_missed_dose_job(now=at(d(day), 0, 5))
    # 24 declined (missed), 25 a take-home dose, 26 missed: never 3 in a row.
    assert missed_days(enrolment) == [d(24), d(26)]
    assert missed.missed_run(enrolment, d(26)) == 1
    assert db.session.get(HatEnrolment, enrolment.id).state == "enrolled"


def run_days(first: date, last: date) -> None:
    day = first
    while day <= last:
        missed.run_missed_dose_job(now=at(day + timedelta(days=1), 0, 5))
        day += timedelta(days=1)


def test_re_titration_is_prompted_at_5_and_cleared_by_a_new_prescription(clinic, client,
                                                                         auth):
    site, prescriber, _patient, enrolment = clinic
    run_days(d(24), d(27))
    assert db.session.get(HatEnrolment, enrolment.id).retitrate_due is False
    run_days(d(28), d(28))  # the fifth day without a dose
    due = db.session.get(HatEnrolment, enrolment.id)
    assert due.retitrate_due is True and actions(enrolment, "hat_retitration_due") == 1

    auth.login(prescriber.username)
    listed = client.get(f"/sites/{site.slug}/hat").get_data(as_text=True)
    assert 'data-testid="hat-retitrate-badge"' in listed and "Held: prescriber review" in listed
    page = client.get(f"/sites/{site.slug}/hat/patients/{enrolment.id}").get_data(as_text=True)
    assert 'data-testid="hat-retitrate"' in page and "Re-titration due" in page

    service.create_prescription(site, enrolment.id, rx(starts_on=d(30), titration="step_up",
                                                       dose_mg=30.0),
                                actor=Actor.of(prescriber), now=at(d(29), 9))
    assert db.session.get(HatEnrolment, enrolment.id).retitrate_due is False
    run_days(d(29), d(30))  # still no dose: the new version was the re-titration
    assert db.session.get(HatEnrolment, enrolment.id).retitrate_due is False
    assert actions(enrolment, "hat_retitration_due") == 1


def test_the_job_counts_a_day_once(clinic):
    _site, _prescriber, _patient, enrolment = clinic
    for minute in (5, 5, 10, 55):
        missed.run_missed_dose_job(now=at(d(27), 0, minute))
    assert missed_days(enrolment) == [d(24), d(25), d(26)]
    assert actions(enrolment, "hat_dosing_held") == 1
    # Even with its runs forgotten, a day's missed row is never written twice.
    db.session.execute(db.delete(HatMissedRun))
    db.session.commit()
    assert missed.run_missed_dose_job(now=at(d(27), 1)) == 0
    assert missed_days(enrolment) == [d(24), d(25), d(26)]
    assert actions(enrolment, "hat_dosing_held") == 1


def test_only_a_prescriber_with_a_reason_and_their_pin_lifts_a_hold(clinic, client, auth):
    site, prescriber, _patient, enrolment = clinic
    run_days(d(24), d(26))
    assert db.session.get(HatEnrolment, enrolment.id).state == "on_hold"
    now = at(d(27), 9)
    for role in (Role.NURSE, Role.PHARMACIST):
        other = make_staff(site, role=role)
        with pytest.raises(Forbidden):
            missed.review_hold(site, enrolment.id, {"reason": "Seen", "pin": PIN},
                               actor=Actor.of(other), now=now)
    with pytest.raises(Invalid) as wrong:
        missed.review_hold(site, enrolment.id, {"reason": "Seen", "pin": "999999"},
                           actor=Actor.of(prescriber), now=now)
    assert "pin" in wrong.value.errors
    with pytest.raises(Invalid) as bare:
        missed.review_hold(site, enrolment.id, {"reason": " ", "pin": PIN},
                           actor=Actor.of(prescriber), now=now)
    assert "reason" in bare.value.errors
    assert db.session.get(HatEnrolment, enrolment.id).state == "on_hold"

    nurse = make_staff(site, role=Role.NURSE, username="nurse-z")
    auth.login(nurse.username)
    url = f"/sites/{site.slug}/hat/patients/{enrolment.id}/hold-review"
    assert auth.post(url, {"reason": "Seen", "pin": PIN}).status_code == 403
    auth.logout()
    auth.login(prescriber.username)
    refused = auth.post(url, {"reason": "Came in, well", "pin": "999999"})
    assert refused.status_code == 422 and 'value="Came in, well"' in refused.get_data(
        as_text=True)
    missed.review_hold(site, enrolment.id, {"reason": "Came in, well", "pin": PIN},
                       actor=Actor.of(prescriber), now=now)
    lifted = db.session.get(HatEnrolment, enrolment.id)
    assert (lifted.state, lifted.hold_reason) == ("enrolled", None)
    hold = db.session.execute(db.select(HatHold)).scalar_one()
    assert hold.lifted_by == prescriber.id and hold.lift_note == "Came in, well"
    assert actions(enrolment, "hat_hold_lifted") == 1
    with pytest.raises(Conflict):
        missed.review_hold(site, enrolment.id, {"reason": "Again", "pin": PIN},
                           actor=Actor.of(prescriber), now=now)

    # The days before the review count towards no new hold; three more days do.
    run_days(d(27), d(28))
    assert db.session.get(HatEnrolment, enrolment.id).state == "enrolled"
    run_days(d(29), d(29))
    assert db.session.get(HatEnrolment, enrolment.id).state == "on_hold"


def test_a_prescriber_holds_and_ends_treatment_and_an_ended_one_is_not_counted(clinic):
    site, prescriber, patient, enrolment = clinic
    now = at(d(24), 9)
    with pytest.raises(Invalid):
        missed.update_state(site, enrolment.id, {"state": "on_hold", "reason": "", "pin": PIN},
                            actor=Actor.of(prescriber), now=now)
    missed.update_state(site, enrolment.id, {"state": "on_hold", "reason": "Review bloods",
                                             "pin": PIN}, actor=Actor.of(prescriber), now=now)
    held = db.session.get(HatEnrolment, enrolment.id)
    assert (held.state, held.hold_reason) == ("on_hold", "prescriber")
    assert client_flags(patient, today=d(24))["treatment_held"] is True
    missed.update_state(site, enrolment.id, {"state": "ended", "reason": "Moved away",
                                             "pin": PIN}, actor=Actor.of(prescriber), now=now)
    ended = db.session.get(HatEnrolment, enrolment.id)
    assert (ended.state, ended.ended_at) == ("ended", now)
    assert "treatment_held" not in client_flags(patient, today=d(24))
    assert actions(enrolment, "hat_treatment_ended") == 1
    run_days(d(24), d(28))
    assert missed_days(enrolment) == []
    with pytest.raises(Conflict):
        missed.update_state(site, enrolment.id, {"state": "on_hold", "reason": "x",
                                                 "pin": PIN}, actor=Actor.of(prescriber),
                            now=now)


def test_api_holds_reviews_and_records_a_urine_test(app, client):
    site = make_site()
    prescriber = make_staff(site, role=Role.PRESCRIBER)
    nurse = make_staff(site, role=Role.NURSE)
    now = datetime.now(UTC)
    _patient, enrolment = enrol(site, prescriber, "M-APIH-1970", when=now,
                                starts_on=site.local_date(now))
    base = f"/api/v1/sites/{site.id}/hat/patients/{enrolment.id}"
    body = {"state": "on_hold", "reason": "Review", "pin": PIN}
    assert_api_error(client.post(f"{base}/state", json=body, headers=bearer(nurse)), 403)
    held = client.post(f"{base}/state", json=body, headers=bearer(prescriber))
    assert held.status_code == 200 and held.get_json()["state"] == "on_hold"
    assert held.get_json()["hold_reason"] == "prescriber"
    review = {"reason": "Reviewed", "pin": PIN}
    assert_api_error(client.post(f"{base}/hold-review", json={**review, "pin": "999999"},
                                 headers=bearer(prescriber)), 422, "pin")
    lifted = client.post(f"{base}/hold-review", json=review, headers=bearer(prescriber))
    assert lifted.status_code == 200 and lifted.get_json()["state"] == "enrolled"
    assert_api_error(client.post(f"{base}/hold-review", json=review,
                                 headers=bearer(prescriber)), 409)
    test = client.post(f"{base}/urine-tests", json={"result": "clear"}, headers=bearer(nurse))
    assert test.status_code == 201 and test.get_json()["result"] == "clear"
    assert_api_error(client.post(f"{base}/urine-tests", json={"result": "maybe"},
                                 headers=bearer(nurse)), 422, "result")


# --- Take-home doses ---------------------------------------------------------------------------

NOW = at(d(7, 12), 12)  # Monday 7 Dec 2026, noon in Zurich
TODAY = d(7, 12)


@pytest.fixture
def veteran(app):
    """Seven months in treatment, two clear urine tests, on site 3 days of every week."""
    site = make_site(name="Take-home", hat_take_home_allowed=True)
    site.timezone = "Europe/Zurich"
    db.session.commit()
    prescriber = make_staff(site, role=Role.PRESCRIBER, username="dr-t")
    nurse = make_staff(site, role=Role.NURSE, username="nurse-t")
    _patient, enrolment = enrol(site, prescriber, "F-HOME-1975", when=at(d(1, 5), 10),
                                starts_on=d(1, 5))
    for back in range(0, 28):
        if back % 7 in (0, 2, 4):
            dose(enrolment, TODAY - timedelta(days=back), hour=9)
    for back in (20, 6):
        missed.record_urine_test(site, enrolment.id, {
            "day": TODAY - timedelta(days=back), "result": "clear"},
            actor=Actor.of(nurse), now=NOW)
    return site, prescriber, nurse, enrolment


def authorise(site, prescriber, enrolment, days=2, **extra):
    return missed.authorise_take_home(site, enrolment.id, {"days": days, "pin": PIN, **extra},
                                      actor=Actor.of(prescriber), now=NOW)


def refusal(site, prescriber, enrolment, days=2) -> missed.TakeHomeRefused:
    with pytest.raises(missed.TakeHomeRefused) as refused:
        authorise(site, prescriber, enrolment, days)
    return refused.value


def test_take_home_doses_are_refused_where_the_site_does_not_allow_them(veteran):
    site, prescriber, _nurse, enrolment = veteran
    site.hat_take_home_allowed = False
    db.session.commit()
    assert "does not allow take-home" in refusal(site, prescriber, enrolment).message


def test_take_home_days_above_the_sites_cap_are_refused(veteran):
    site, prescriber, _nurse, enrolment = veteran
    assert "At most 2 days" in refusal(site, prescriber, enrolment, days=3).message
    site.hat_take_home_max_days = 7
    db.session.commit()
    assert authorise(site, prescriber, enrolment, days=3).days == 3


def _recent(site, enrolment):
    enrolment.enrolled_at = at(d(1, 8), 10)


def _held_in_the_window(site, enrolment):
    db.session.add(HatHold(enrolment_id=enrolment.id, reason="missed_doses",
                           held_at=at(d(1, 10), 0), lifted_at=at(d(3, 10), 9),
                           lift_note="Reviewed"))


def _positive(site, enrolment):
    db.session.add(HatUrineTest(enrolment_id=enrolment.id, day=TODAY, result="positive",
                                recorded_by=enrolment.enrolled_by, recorded_at=NOW))


def _one_test(site, enrolment):
    db.session.execute(db.delete(HatUrineTest).where(HatUrineTest.day < TODAY - timedelta(
        days=10)))


def _one_visit_a_week(site, enrolment):
    db.session.execute(db.delete(HatDose).where(
        HatDose.enrolment_id == enrolment.id, HatDose.day > TODAY - timedelta(days=7),
        HatDose.day < TODAY - timedelta(days=1)))


@pytest.mark.parametrize(("breach", "named"), [
    (_recent, "6 months of continuous treatment"),
    (_held_in_the_window, "6 months of continuous treatment"),
    (_positive, "one of them was positive"),
    (_one_test, "only 1 recorded"),
    (_one_visit_a_week, "Contact at least twice a week"),
])
def test_take_home_doses_name_each_unmet_swiss_condition(veteran, breach, named):
    site, prescriber, _nurse, enrolment = veteran
    breach(site, enrolment)
    db.session.commit()
    refused = refusal(site, prescriber, enrolment)
    assert len(refused.errors["conditions"]) == 1
    assert named in refused.errors["conditions"][0] and named in refused.message


def test_take_home_doses_are_suspended_while_a_patient_restarts(veteran):
    site, prescriber, _nurse, enrolment = veteran
    enrolment.retitrate_due = True
    db.session.commit()
    assert "re-titration is due" in refusal(site, prescriber, enrolment).message
    enrolment.retitrate_due = False
    enrolment.state = "on_hold"
    db.session.commit()
    assert "dosing is on hold" in refusal(site, prescriber, enrolment).message
    enrolment.state = "enrolled"
    db.session.commit()
    service.create_prescription(site, enrolment.id, rx(
        starts_on=TODAY - timedelta(days=2), titration="step_up", dose_mg=30.0),
        actor=Actor.of(prescriber), now=NOW - timedelta(days=2))
    assert "first days of a titration" in refusal(site, prescriber, enrolment).message


def test_take_home_doses_are_authorised_given_and_count_as_doses(veteran):
    site, prescriber, nurse, enrolment = veteran
    grant = authorise(site, prescriber, enrolment)
    assert (grant.first_day, grant.days) == (TODAY + timedelta(days=1), 2)
    rows = missed.give_take_home(site, enrolment.id, grant.id, actor=Actor.of(nurse), now=NOW)
    assert len(rows) == 6 and all(r.take_home and r.outcome == "given" for r in rows)
    assert {r.day for r in rows} == {TODAY + timedelta(days=1), TODAY + timedelta(days=2)}
    assert actions(enrolment, "hat_take_home_authorised") == 1
    assert actions(enrolment, "hat_take_home_given") == 1
    with pytest.raises(Conflict):  # given out once
        missed.give_take_home(site, enrolment.id, grant.id, actor=Actor.of(nurse), now=NOW)
    db.session.add(HatMissedRun(site_id=site.id, day=TODAY - timedelta(days=1), ran_at=NOW))
    db.session.commit()
    for back in (1, 2, 3):
        missed.run_missed_dose_job(now=at(TODAY + timedelta(days=back), 0, 5))
    assert missed_days(enrolment) == []  # today on site, then two days at home


def test_take_home_doses_are_held_to_the_daily_cap(veteran):
    site, prescriber, nurse, enrolment = veteran
    for hour in (9, 13, 17):  # tomorrow's sessions on site: 300 mg of the 500 mg cap
        dose(enrolment, TODAY + timedelta(days=1), hour=hour)
    grant = authorise(site, prescriber, enrolment, days=1)
    with pytest.raises(service.CapExceeded) as capped:
        missed.give_take_home(site, enrolment.id, grant.id, actor=Actor.of(nurse), now=NOW)
    assert "hard cap of 500 mg" in capped.value.message
    assert not db.session.scalars(db.select(HatDose).where(HatDose.take_home.is_(True))).all()


def test_the_page_refuses_take_home_naming_each_condition(veteran, client, auth):
    site, prescriber, _nurse, enrolment = veteran
    _positive(site, enrolment)
    db.session.commit()
    auth.login(prescriber.username)
    answer = auth.post(f"/sites/{site.slug}/hat/patients/{enrolment.id}/take-home",
                       {"days": "2", "pin": PIN})
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'data-testid="hat-take-home-refused"' in text
    assert "one of them was positive" in text and 'value="2"' in text


def test_the_patient_page_offers_the_review_to_a_prescriber_only(clinic, client, auth):
    site, prescriber, _patient, enrolment = clinic
    run_days(d(24), d(26))
    url = f"/sites/{site.slug}/hat/patients/{enrolment.id}"
    auth.login(prescriber.username)
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="hat-held"' in page and 'data-testid="hat-lift"' in page
    auth.logout()
    pharmacist = make_staff(site, role=Role.PHARMACIST, username="pharm-z")
    auth.login(pharmacist.username)
    seen = client.get(url).get_data(as_text=True)
    assert 'data-testid="hat-held"' in seen and 'data-testid="hat-lift"' not in seen
    assert 'data-testid="hat-take-home-off"' in seen
