"""The dosing session of heroin-assisted treatment: today's list, the POSS gate before each
dose, the dose drawn from the register and given in one unit of work (refused without an
assessment, while held, above a cap, too soon, outside the top-up and first-day rules),
the floor's injection window and after-care times, a dose not given, and no identity on
any of it."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import PIN, make_booth, make_client, make_controlled_drug, make_site, make_staff
from routes import assert_api_error, bearer, field_error

from srs import live
from srs.audit.models import AuditEvent
from srs.auth.models import Role
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.controlled.models import ControlledDrug, ControlledEntry
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.hat import dosing, service
from srs.hat.models import HatDose
from srs.overdose.models import OverdoseResponse

# Noon in Toronto (the factories' sites' zone), a Monday.
NOW = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
TODAY = date(2026, 12, 7)
NAME = "Morgan Verity Sample"
DOSERS = (Role.NURSE, Role.PRESCRIBER, Role.PHARMACIST, Role.SUPERVISOR)


def rx(**extra):
    return {"medication": "hydromorphone", "route": "iv", "dose_mg": 100.0,
            "sessions_per_day": 3, "min_interval_minutes": None, "titration": "none",
            "titration_days": [], "top_up_allowed": False, "top_up_max_mg": None,
            "starts_on": TODAY - timedelta(days=10), "ends_on": None, "pin": PIN, **extra}


class Clinic:
    def __init__(self):
        self.site = make_site(name="Crosstown")
        self.prescriber = make_staff(self.site, role=Role.PRESCRIBER)
        self.nurse = make_staff(self.site, role=Role.NURSE)
        self.client = make_client(self.site, code="F-DOSE-1980", handle="Jo")
        self.enrolment = service.enrol(self.site, {
            "code": self.client.code, "legal_name": NAME, "date_of_birth": date(1980, 5, 6),
            "health_number": "1234-567-890", "eligibility": {"severe_oud": {"met": True}},
            "pin": PIN}, actor=Actor.of(self.prescriber), now=NOW - timedelta(days=10))
        self.drug = make_controlled_drug(self.site, name="Hydromorphone", strength="100 mg/mL",
                                         unit="mL", balance=50)

    def prescribe(self, **extra):
        prescription, _ = service.create_prescription(
            self.site, self.enrolment.id, rx(**extra), actor=Actor.of(self.prescriber),
            now=NOW - timedelta(days=10))
        return prescription

    def assess(self, poss=1, *, at=NOW, by=None, **extra):
        return dosing.record_assessment(self.site, self.enrolment.id, {"poss": poss, **extra},
                                        actor=Actor.of(by or self.nurse), now=at)

    def dose(self, mg=100.0, *, at=NOW, by=None, assess=True, drug=None, **extra):
        if assess:
            self.assess(at=at - timedelta(minutes=2))
        data = {"dose_mg": mg, "drug_id": (drug or self.drug).id, "quantity": 1,
                "identity_checked": True, **extra}
        return dosing.record_dose(self.site, self.enrolment.id, data,
                                  actor=Actor.of(by or self.nurse), now=at)

    def balance(self, drug=None):
        return db.session.get(ControlledDrug, (drug or self.drug).id).balance


@pytest.fixture
def clinic(app):
    clinic = Clinic()
    clinic.prescribe()
    return clinic


def _doses(outcome=None):
    query = db.select(HatDose)
    if outcome:
        query = query.where(HatDose.outcome == outcome)
    return list(db.session.execute(query).scalars())


# --- The POSS gate -------------------------------------------------------------------------


def test_poss_3_withholds_the_dose_and_tells_the_prescriber(clinic):
    assessed = clinic.assess(3, intoxication_signs=["nodding"])
    assert assessed.outcome == "withheld" and "POSS 3" in assessed.reason
    assert assessed.response_id is None
    withheld = _doses("withheld")
    assert len(withheld) == 1 and withheld[0].assessment_id == assessed.id
    assert "POSS 3" in withheld[0].reason
    assert dosing.withheld_today(clinic.site, now=NOW) == withheld
    assert db.session.scalar(db.select(db.func.count(OverdoseResponse.id))) == 0
    row = dosing.dosing_today(clinic.site, now=NOW)[0]
    assert "withheld_today" in row.flags
    with pytest.raises(Conflict, match="withheld the dose"):
        clinic.dose(assess=False)


def test_poss_4_opens_the_overdose_console_for_the_client(clinic):
    assessed = clinic.assess(4)
    assert assessed.outcome == "console" and "console" in assessed.reason
    response = db.session.get(OverdoseResponse, assessed.response_id)
    assert response.client_id == clinic.client.id and response.closed_at is None
    assert _doses("withheld")[0].reason == assessed.reason
    actions = set(db.session.execute(db.select(AuditEvent.action)).scalars())
    assert {"hat_assessment_recorded", "hat_dose_not_given", "overdose_started"} <= actions


def test_poss_4_in_a_booth_opens_the_console_for_the_visit(clinic):
    booth = make_booth(clinic.site, label="B1")
    actor = Actor.of(clinic.nurse)
    visit = floor.check_in(clinic.site, code=clinic.client.code, handle=None, actor=actor,
                           actor_roles={"nurse"}, now=NOW - timedelta(minutes=10))
    floor.assign_booth(visit, booth, actor=actor, now=NOW - timedelta(minutes=5))
    assessed = clinic.assess(4)
    assert db.session.get(OverdoseResponse, assessed.response_id).visit_id == visit.id


def test_the_gate_is_the_sites_own(clinic):
    clinic.site.hat_poss_withhold, clinic.site.hat_poss_console = 2, 3
    assert clinic.assess(2).outcome == "withheld"
    assert clinic.assess(3).outcome == "console"
    clinic.site.hat_poss_withhold, clinic.site.hat_poss_console = 4, 4
    assert clinic.assess(3).outcome == "proceed"
    assert clinic.assess(4).outcome == "console"


# --- The dose's refusals ------------------------------------------------------------------------


def test_no_dose_without_a_recent_assessment_and_nothing_saved(clinic):
    with pytest.raises(Conflict, match="pre-dose assessment"):
        clinic.dose(assess=False)
    clinic.assess(1, at=NOW - timedelta(minutes=61))
    with pytest.raises(Conflict, match="pre-dose assessment"):
        clinic.dose(assess=False)
    assert _doses() == [] and clinic.balance() == 50
    # One assessment, one dose: the next needs its own.
    clinic.dose(at=NOW)
    with pytest.raises(Conflict, match="assess the patient again"):
        clinic.dose(at=NOW + timedelta(minutes=30), assess=False)


def test_no_dose_while_held(clinic):
    clinic.enrolment.state, clinic.enrolment.hold_reason = "on_hold", "missed_doses"
    db.session.commit()
    with pytest.raises(Conflict, match="held until a prescriber reviews"):
        clinic.dose()
    assert _doses("given") == [] and clinic.balance() == 50


@pytest.mark.parametrize("role", DOSERS)
def test_a_dose_above_the_single_or_daily_cap_is_refused_for_every_role(clinic, role):
    doser = make_staff(clinic.site, role=role)
    clinic.dose(at=NOW - timedelta(hours=7), by=doser)
    clinic.dose(at=NOW - timedelta(hours=4), by=doser)
    clinic.site.hat_max_single_dose_mg = 80
    with pytest.raises(Invalid, match="largest single dose of 80 mg") as refused:
        clinic.dose(by=doser)
    assert refused.value.code == "cap_exceeded"
    clinic.site.hat_max_single_dose_mg = 100
    clinic.site.hat_cap_hydromorphone_mg_day = 250
    with pytest.raises(Invalid, match="hard cap of 250 mg") as refused:
        clinic.dose(by=doser)
    assert refused.value.code == "cap_exceeded"
    assert len(_doses("given")) == 2 and clinic.balance() == 48


def test_a_dose_too_soon_is_refused_until_the_interval_passed(clinic):
    clinic.dose(at=NOW - timedelta(hours=2, minutes=59))
    with pytest.raises(Invalid, match="Too soon"):
        clinic.dose()
    row = dosing.dosing_today(clinic.site, now=NOW)[0]
    assert row.next_at == NOW + timedelta(minutes=1) and row.sessions_given == 1
    assert clinic.dose(at=NOW + timedelta(minutes=1)).outcome == "given"


def test_no_more_sessions_than_prescribed_a_day(clinic):
    for hours in (9, 6, 3):
        clinic.dose(at=NOW - timedelta(hours=hours))
    with pytest.raises(Invalid, match="All 3 sessions"):
        clinic.dose()


def test_top_ups_wait_20_minutes_are_capped_and_count_toward_the_day(app):
    clinic = Clinic()
    clinic.prescribe(top_up_allowed=True, top_up_max_mg=30.0)
    clinic.site.hat_max_single_dose_mg = 100
    start = NOW - timedelta(hours=4)
    clinic.dose(at=start)
    with pytest.raises(Invalid, match="not before 20 minutes"):
        clinic.dose(30.0, at=start + timedelta(minutes=10), top_up=True)
    with pytest.raises(Invalid, match="top-up is at most 30 mg"):
        clinic.dose(40.0, at=start + timedelta(minutes=20), top_up=True)
    top_up = clinic.dose(30.0, at=start + timedelta(minutes=20), top_up=True)
    assert top_up.top_up
    with pytest.raises(Invalid, match="One top-up a session"):
        clinic.dose(10.0, at=start + timedelta(minutes=45), top_up=True)
    # 100 + 30 today: a 100 mg session passes a 220 mg day only without the top-up.
    clinic.site.hat_cap_hydromorphone_mg_day = 220
    with pytest.raises(Invalid, match="130 mg given today"):
        clinic.dose(at=NOW)
    clinic.site.hat_cap_hydromorphone_mg_day = 230
    assert clinic.dose(at=NOW).outcome == "given"


def test_no_top_up_after_signs_of_intoxication(app):
    clinic = Clinic()
    clinic.prescribe(top_up_allowed=True, top_up_max_mg=30.0)
    clinic.dose(at=NOW - timedelta(minutes=30))
    clinic.assess(1, intoxication_signs=["pinpoint_pupils"])
    with pytest.raises(Invalid, match="signs of intoxication"):
        clinic.dose(20.0, top_up=True, assess=False)


def test_diaphins_first_day(app):
    clinic = Clinic()
    clinic.drug = make_controlled_drug(clinic.site, name="Diacetylmorphine", balance=20)
    clinic.prescribe(medication="diacetylmorphine", dose_mg=60.0, titration="step_up",
                     starts_on=TODAY)
    start = NOW - timedelta(hours=2)
    with pytest.raises(Invalid, match="the first dose is at most 15 mg"):
        clinic.dose(20.0, at=start)
    clinic.dose(15.0, at=start)
    with pytest.raises(Invalid, match="the second dose is at most 15 mg"):
        clinic.dose(20.0, at=start + timedelta(minutes=3))
    clinic.dose(15.0, at=start + timedelta(minutes=3))  # one further 15 mg at once
    with pytest.raises(Invalid, match="at least 30 minutes"):
        clinic.dose(30.0, at=start + timedelta(minutes=20))
    with pytest.raises(Invalid, match="each dose is at most 30 mg"):
        clinic.dose(40.0, at=start + timedelta(minutes=33))
    clinic.dose(30.0, at=start + timedelta(minutes=33))
    # More doses than the prescription's sessions on day 1: the first-day rule sets them.
    assert clinic.dose(30.0, at=start + timedelta(minutes=63)).outcome == "given"
    # Day 2: the interval and the step-up rule (half of day 1's 90 mg) hold again.
    with pytest.raises(Invalid, match="Step-up rule"):
        clinic.dose(50.0, at=NOW + timedelta(days=1))
    assert clinic.dose(45.0, at=NOW + timedelta(days=1)).outcome == "given"


def test_hydromorphone_step_up_has_no_first_day_rule(app):
    clinic = Clinic()
    clinic.prescribe(titration="step_up", starts_on=TODAY)
    assert clinic.dose(100.0).outcome == "given"


# --- The register -----------------------------------------------------------------------------


def test_the_dose_is_drawn_from_the_register_in_the_same_unit_of_work(clinic):
    witness = make_staff(clinic.site, role=Role.NURSE)
    given = clinic.dose(quantity=2, waste_quantity=1, waste_reason="Left in the syringe",
                        waste_witness_id=witness.id, waste_witness_pin=PIN,
                        witness_id=witness.id, witness_pin=PIN)
    assert clinic.balance() == 47
    entries = db.session.execute(db.select(ControlledEntry).where(
        ControlledEntry.drug_id == clinic.drug.id).order_by(ControlledEntry.id)).scalars().all()
    drawn, wasted = entries[-2:]
    assert (drawn.kind, drawn.delta, drawn.dose_id, drawn.client_id) == (
        "drawn", -2, given.id, clinic.client.id)
    assert (wasted.kind, wasted.delta, wasted.witness_id) == ("wasted", -1, witness.id)
    assert given.register_entry_id == drawn.id and given.witness_id == witness.id
    assert given.nurse_id == clinic.nurse.id


def test_a_refused_dose_leaves_the_register_and_the_record_unchanged(clinic):
    witness = make_staff(clinic.site, role=Role.NURSE)
    with pytest.raises(Invalid, match="Wrong PIN"):
        clinic.dose(quantity=2, waste_quantity=1, waste_reason="Spilt",
                    waste_witness_id=witness.id, waste_witness_pin="000000")
    with pytest.raises(Conflict, match="only 50 mL"):
        clinic.dose(quantity=60)
    other = make_controlled_drug(clinic.site, name="Diacetylmorphine", balance=5)
    with pytest.raises(Invalid, match="register line of hydromorphone"):
        clinic.dose(drug=other)
    clinic.site.hat_max_single_dose_mg = 50
    with pytest.raises(Invalid):
        clinic.dose()
    assert clinic.balance() == 50 and clinic.balance(other) == 5
    assert _doses("given") == []


# --- The floor's timers -----------------------------------------------------------------------


def _on_the_floor(clinic):
    booth = make_booth(clinic.site, label="B1")
    actor = Actor.of(clinic.nurse)
    visit = floor.check_in(clinic.site, code=clinic.client.code, handle=None, actor=actor,
                           actor_roles={"nurse"}, now=NOW - timedelta(minutes=10))
    return visit, booth, actor


@pytest.mark.parametrize(("titration", "minutes"), [("none", 15), ("step_up", 20)])
def test_the_dose_sets_the_injection_window_and_after_care(app, titration, minutes):
    clinic = Clinic()
    clinic.site.booth_time_limit_seconds = 30 * 60
    clinic.site.min_observation_seconds = 30 * 60
    clinic.prescribe(titration=titration)
    visit, booth, actor = _on_the_floor(clinic)
    given = clinic.dose(at=NOW)
    assert given.visit_id == visit.id
    floor.assign_booth(visit, booth, actor=actor, now=NOW + timedelta(minutes=1))
    assert visit.booth_due_at == NOW + timedelta(minutes=8)
    floor.start_observation(visit, actor=actor, now=NOW + timedelta(minutes=6))
    assert visit.observation_ends_at == NOW + timedelta(minutes=6 + minutes)


def test_a_visit_without_a_dose_keeps_the_sites_times(app):
    clinic = Clinic()
    clinic.site.booth_time_limit_seconds = 30 * 60
    visit, booth, actor = _on_the_floor(clinic)
    floor.assign_booth(visit, booth, actor=actor, now=NOW)
    assert visit.booth_due_at == NOW + timedelta(minutes=30)


def test_a_dose_given_in_the_booth_restarts_its_window(clinic):
    visit, booth, actor = _on_the_floor(clinic)
    floor.assign_booth(visit, booth, actor=actor, now=NOW - timedelta(minutes=5))
    clinic.dose(at=NOW)
    assert visit.booth_due_at == NOW + timedelta(minutes=7)


# --- Not given -----------------------------------------------------------------------------------


def test_a_dose_not_given_needs_its_reason(clinic):
    with pytest.raises(Invalid, match="Say why"):
        dosing.record_not_given(clinic.site, clinic.enrolment.id, {"outcome": "declined",
                                                                   "reason": " "},
                                actor=Actor.of(clinic.nurse), now=NOW)
    with pytest.raises(Invalid, match="Choose withheld"):
        dosing.record_not_given(clinic.site, clinic.enrolment.id, {"outcome": "lost",
                                                                   "reason": "x"},
                                actor=Actor.of(clinic.nurse), now=NOW)
    made = dosing.record_not_given(clinic.site, clinic.enrolment.id,
                                   {"outcome": "declined", "reason": "Felt unwell"},
                                   actor=Actor.of(clinic.nurse), now=NOW)
    assert (made.outcome, made.reason, made.day) == ("declined", "Felt unwell", TODAY)


# --- The pages, the API and the socket: codes, never an identity ------------------------------


def test_dosing_list_api_and_socket_name_no_one(clinic, client, auth, socket_client):
    auth.login(clinic.nurse.username)
    screen = socket_client()
    screen.get_received()
    base = f"/api/v1/sites/{clinic.site.id}/hat"
    headers = bearer(clinic.nurse)
    assessed = client.post(f"{base}/patients/{clinic.enrolment.id}/assessments",
                           json={"poss": 1}, headers=headers)
    assert assessed.status_code == 201, assessed.get_json()
    given = client.post(f"{base}/patients/{clinic.enrolment.id}/doses", headers=headers,
                        json={"dose_mg": 100, "drug_id": clinic.drug.id, "quantity": 1})
    assert given.status_code == 201, given.get_json()
    listed = client.get(f"{base}/dosing", headers=headers)
    assert listed.status_code == 200
    row = listed.get_json()["patients"][0]
    assert (row["code"], row["handle"], row["sessions_given"]) == ("F-DOSE-1980", "Jo", 1)
    assert row["next_at"] is not None and row["last_assessment"]["outcome"] == "proceed"
    page = client.get(f"/sites/{clinic.site.slug}/hat/dosing")
    assert page.status_code == 200 and "F-DOSE-1980" in page.get_data(as_text=True)
    panel = client.get(f"/sites/{clinic.site.slug}/hat/dosing/{clinic.enrolment.id}")
    assert panel.status_code == 200
    assert live.wait_until_published()
    heard = screen.get_received()
    assert "hat" in [e["args"][0].get("topic") for e in heard if e["name"] == "changed"]
    for text in (listed.get_data(as_text=True), given.get_data(as_text=True),
                 page.get_data(as_text=True), panel.get_data(as_text=True), str(heard)):
        assert NAME not in text and "Morgan" not in text and "1234-567-890" not in text
        assert "1980-05-06" not in text


def test_api_refusals(clinic, client):
    base = f"/api/v1/sites/{clinic.site.id}/hat/patients/{clinic.enrolment.id}"
    headers = bearer(clinic.nurse)
    body = {"dose_mg": 100, "drug_id": clinic.drug.id, "quantity": 1}
    assert_api_error(client.post(f"{base}/doses", json=body, headers=headers), 409)
    assert client.post(f"{base}/assessments", json={"poss": 1},
                       headers=headers).status_code == 201
    capped = client.post(f"{base}/doses", json={**body, "dose_mg": 400}, headers=headers)
    assert assert_api_error(capped, 422, "dose_mg")["code"] == "cap_exceeded"
    assert_api_error(client.post(f"{base}/doses-not-given", json={"outcome": "missed"},
                                 headers=headers), 422, "reason")
    reviewer = make_staff(clinic.site, role=Role.REVIEWER)
    assert_api_error(client.post(f"{base}/assessments", json={"poss": 1},
                                 headers=bearer(reviewer)), 403)
    assert clinic.balance() == 50


def test_the_tablet_keeps_what_was_typed_on_a_refusal(clinic, client, auth):
    auth.login(clinic.nurse.username)
    url = f"/sites/{clinic.site.slug}/hat/dosing/{clinic.enrolment.id}"
    refused = auth.post(f"{url}/dose", {
        "dose_mg": "100", "drug_id": str(clinic.drug.id), "quantity": "", "witness_pin": "1"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Give how many units were drawn" in field_error(body, "quantity")
    assert 'value="100"' in body and 'name="witness_pin" type="password"' in body
    refused = auth.post(f"{url}/dose", {
        "dose_mg": "100", "drug_id": str(clinic.drug.id), "quantity": "1"})
    assert refused.status_code == 409
    assert "pre-dose assessment" in refused.get_data(as_text=True)
    assessed = auth.post(f"{url}/assessment", {"poss": "3", "notes": "Drifting off",
                                                      "last_use_at": "25:15"})
    assert assessed.status_code == 422
    assert "A time like 07:30" in field_error(assessed.get_data(as_text=True), "last_use_at")
    assert 'value="Drifting off"' in assessed.get_data(as_text=True)
    assessed = auth.post(f"{url}/assessment", {"poss": "3", "notes": "Drifting off",
                                                      "last_use_at": "00:00"})
    assert assessed.status_code == 200 and "POSS 3" in assessed.get_data(as_text=True)
    noted = auth.post(f"{url}/not-given", {"outcome": "declined", "reason": ""})
    assert noted.status_code == 422
    assert "Say why" in field_error(noted.get_data(as_text=True), "reason")


def test_the_prescriber_sees_the_dose_withheld_today(clinic, client, auth):
    from srs.common import utcnow
    clinic.assess(3, at=utcnow())
    auth.login(clinic.prescriber.username)
    for url in (f"/sites/{clinic.site.slug}/hat",
                f"/sites/{clinic.site.slug}/hat/patients/{clinic.enrolment.id}"):
        page = client.get(url).get_data(as_text=True)
        assert 'data-testid="hat-withheld-row"' in page and "POSS 3" in page, url
