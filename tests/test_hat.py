"""Heroin-assisted treatment: enrolment with the legal identity encrypted and read only by
prescribers and pharmacists (every read audited), versioned prescriptions signed with a PIN
under the site's hard caps, and the dose check the dosing session will call."""

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from factories import PIN, make_client, make_site, make_staff
from routes import assert_api_error, bearer, field_error
from sqlalchemy import text

from srs.audit.models import AuditEvent
from srs.auth.models import Role
from srs.auth.service import Actor
from srs.errors import Forbidden, Invalid
from srs.extensions import db
from srs.hat import service
from srs.hat.models import HatEnrolment, HatPrescription

# Noon in Toronto (the factories' sites' zone), a Monday.
NOW = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
TODAY = date(2026, 12, 7)
NAME = "Jordan Quintessa Example"
HEALTH = "9876-543-210"


def enrolment_data(code, **extra):
    return {"code": code, "legal_name": NAME, "date_of_birth": date(1980, 5, 6),
            "health_number": HEALTH, "eligibility": {
                "severe_oud": {"met": True, "note": "Injecting daily"},
                "oral_oat_not_responding": {"met": True, "note": None}},
            "pin": PIN, **extra}


def rx(**extra):
    return {"medication": "hydromorphone", "route": "iv", "dose_mg": 100.0,
            "sessions_per_day": 3, "min_interval_minutes": None, "titration": "none",
            "titration_days": [], "top_up_allowed": False, "top_up_max_mg": None,
            "starts_on": TODAY, "ends_on": None, "pin": PIN, **extra}


@pytest.fixture
def clinic(app):
    site = make_site(name="Crosstown")
    prescriber = make_staff(site, role=Role.PRESCRIBER, username="dr-p")
    client = make_client(site, code="F-HATT-1980", handle="Jo")
    enrolment = service.enrol(site, enrolment_data(client.code), actor=Actor.of(prescriber),
                              now=NOW)
    return site, prescriber, client, enrolment


# --- Identity -------------------------------------------------------------------------------


def test_identity_is_encrypted_in_the_row_and_read_only_by_prescriber_and_pharmacist(clinic):
    site, prescriber, _client, enrolment = clinic
    row = db.session.execute(text("SELECT * FROM hat_enrolment WHERE id = :id"),
                             {"id": enrolment.id}).mappings().one()
    stored = " ".join(str(value) for value in row.values())
    assert NAME not in stored and "Jordan" not in stored and HEALTH not in stored
    assert "1980-05-06" not in stored

    pharmacist = make_staff(site, role=Role.PHARMACIST)
    for reader in (prescriber, pharmacist):
        found = service.read_identity(site, enrolment, actor=Actor.of(reader), now=NOW)
        assert (found.legal_name, found.date_of_birth, found.health_number) == (
            NAME, date(1980, 5, 6), HEALTH)
    for role in (Role.NURSE, Role.SUPERVISOR, Role.ADMIN, Role.REVIEWER):
        with pytest.raises(Forbidden):
            service.read_identity(site, enrolment, actor=Actor.of(make_staff(site, role=role)),
                                  now=NOW)
    reads = db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "patient_identity_read")).scalars().all()
    assert sorted(e.staff_id for e in reads) == sorted([prescriber.id, pharmacist.id])
    assert all(e.entity_id == str(enrolment.id) for e in reads)


def test_identity_is_in_no_audit_detail_and_no_list(clinic, client, auth):
    site, prescriber, _client, enrolment = clinic
    service.create_prescription(site, enrolment.id, rx(), actor=Actor.of(prescriber), now=NOW)
    service.read_identity(site, enrolment, actor=Actor.of(prescriber), now=NOW)
    for event in db.session.execute(db.select(AuditEvent)).scalars():
        said = f"{event.detail} {event.entity_id}"
        assert "Jordan" not in said and HEALTH not in said and "F-HATT" not in said

    auth.login("dr-p")
    page = client.get(f"/sites/{site.slug}/hat").get_data(as_text=True)
    assert "F-HATT-1980" in page and "Jo" in page
    assert "Jordan" not in page and HEALTH not in page
    reads_before = db.session.scalar(db.select(db.func.count()).where(
        AuditEvent.action == "patient_identity_read"))
    shown = client.get(f"/sites/{site.slug}/hat/patients/{enrolment.id}")
    assert shown.status_code == 200 and NAME in shown.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).where(
        AuditEvent.action == "patient_identity_read")) == reads_before + 1


def test_a_nurse_may_not_open_the_patient_page(clinic, client, auth):
    site, _prescriber, _client, enrolment = clinic
    make_staff(site, role=Role.NURSE, username="nina")
    auth.login("nina")
    answer = client.get(f"/sites/{site.slug}/hat/patients/{enrolment.id}")
    assert answer.status_code == 403 and NAME not in answer.get_data(as_text=True)


# --- Signatures ------------------------------------------------------------------------------


def test_signing_needs_the_prescribers_own_pin(app):
    site = make_site()
    prescriber = make_staff(site, role=Role.PRESCRIBER)
    client = make_client(site)
    with pytest.raises(Invalid) as refused:
        service.enrol(site, enrolment_data(client.code, pin="000000"),
                      actor=Actor.of(prescriber), now=NOW)
    assert "pin" in refused.value.errors
    assert db.session.scalar(db.select(db.func.count(HatEnrolment.id))) == 0
    nurse = make_staff(site, role=Role.NURSE)
    with pytest.raises(Forbidden):
        service.enrol(site, enrolment_data(client.code), actor=Actor.of(nurse), now=NOW)
    enrolment = service.enrol(site, enrolment_data(client.code), actor=Actor.of(prescriber),
                              now=NOW)
    with pytest.raises(Invalid) as refused:
        service.create_prescription(site, enrolment.id, rx(pin="111111"),
                                    actor=Actor.of(prescriber), now=NOW)
    assert "pin" in refused.value.errors
    assert enrolment.prescriptions == []


def test_versions_are_kept_and_the_latest_in_force_is_current(clinic):
    site, prescriber, _client, enrolment = clinic
    actor = Actor.of(prescriber)
    first, _ = service.create_prescription(site, enrolment.id, rx(dose_mg=60.0), actor=actor,
                                           now=NOW)
    second, _ = service.create_prescription(site, enrolment.id, rx(dose_mg=80.0), actor=actor,
                                            now=NOW + timedelta(hours=1))
    later, _ = service.create_prescription(
        site, enrolment.id, rx(dose_mg=90.0, starts_on=TODAY + timedelta(days=7)),
        actor=actor, now=NOW + timedelta(hours=2))
    rows = db.session.execute(db.select(HatPrescription).order_by(
        HatPrescription.version)).scalars().all()
    assert [(p.version, p.dose_mg) for p in rows] == [(1, 60.0), (2, 80.0), (3, 90.0)]
    assert service.current_prescription(enrolment, TODAY) is second
    assert service.current_prescription(enrolment, TODAY + timedelta(days=7)) is later
    assert first.dose_mg == 60.0  # never overwritten


# --- Hard caps ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_a_prescription_above_a_hard_cap_is_refused_for_every_role(clinic, role):
    site, prescriber, _client, enrolment = clinic
    # Whoever asks, with every role the site has: no override exists.
    person = make_staff(roles=[(site, r) for r in sorted({role, "prescriber"})])
    with pytest.raises(service.CapExceeded) as refused:
        service.create_prescription(site, enrolment.id, rx(dose_mg=200.0, sessions_per_day=3),
                                    actor=Actor.of(person), now=NOW)
    assert "hard cap" in refused.value.message and "500 mg" in str(refused.value.errors)
    with pytest.raises(service.CapExceeded):
        service.create_prescription(site, enrolment.id, rx(
            medication="diacetylmorphine", dose_mg=400.0, sessions_per_day=3),
            actor=Actor.of(person), now=NOW)
    assert enrolment.prescriptions == []


def test_the_cap_is_the_sites_own_and_a_big_iv_total_signs_with_a_warning(clinic):
    site, prescriber, _client, enrolment = clinic
    actor = Actor.of(prescriber)
    _, warnings = service.create_prescription(site, enrolment.id, rx(
        medication="diacetylmorphine", dose_mg=250.0), actor=actor, now=NOW)
    assert warnings and "750 mg a day IV" in warnings[0]
    _, warnings = service.create_prescription(site, enrolment.id, rx(
        medication="diacetylmorphine", route="im", dose_mg=250.0), actor=actor, now=NOW)
    assert warnings == []
    site.hat_cap_diacetylmorphine_mg_day = 600
    with pytest.raises(service.CapExceeded):
        service.create_prescription(site, enrolment.id, rx(
            medication="diacetylmorphine", dose_mg=250.0), actor=actor, now=NOW)
    with pytest.raises(Invalid, match="At most 3 sessions"):
        service.create_prescription(site, enrolment.id, rx(dose_mg=10.0, sessions_per_day=4),
                                    actor=actor, now=NOW)
    with pytest.raises(Invalid, match="not given SC"):
        service.create_prescription(site, enrolment.id, rx(
            medication="diacetylmorphine", route="sc", dose_mg=10.0), actor=actor, now=NOW)


def test_a_plan_that_steps_up_faster_than_half_the_day_before_is_refused(clinic):
    site, prescriber, _client, enrolment = clinic
    actor = Actor.of(prescriber)
    # Day 1: 3 x 30 = 90 mg, so day 2's single dose is at most 45 mg.
    with pytest.raises(Invalid, match="Day 2"):
        service.create_prescription(site, enrolment.id, rx(
            medication="diacetylmorphine", dose_mg=30.0, titration="plan",
            titration_days=[30.0, 50.0]), actor=actor, now=NOW)
    prescription, _ = service.create_prescription(site, enrolment.id, rx(
        medication="diacetylmorphine", dose_mg=30.0, titration="plan",
        titration_days=[30.0, 45.0, 60.0]), actor=actor, now=NOW)
    assert prescription.dose_on(TODAY + timedelta(days=1)) == 45.0


# --- The dose check --------------------------------------------------------------------------


@pytest.fixture
def prescribed(clinic):
    site, prescriber, _client, enrolment = clinic
    prescription, _ = service.create_prescription(
        site, enrolment.id, rx(dose_mg=140.0, top_up_allowed=True, top_up_max_mg=20.0,
                         starts_on=TODAY - timedelta(days=1)),
        actor=Actor.of(prescriber), now=NOW - timedelta(days=1))
    return prescription


def test_doses_wait_the_minimum_interval(prescribed):
    last = NOW - timedelta(hours=2, minutes=59)
    early = service.check_dose(prescribed, 140.0, 140.0, last, NOW)
    assert not early.allowed and early.earliest_at == last + timedelta(hours=3)
    assert "Too soon" in early.reasons[0]
    assert service.check_dose(prescribed, 140.0, 140.0, NOW - timedelta(hours=3), NOW).allowed
    assert service.check_dose(prescribed, 140.0, 0.0, None, NOW).allowed
    above = service.check_dose(prescribed, 150.0, 0.0, None, NOW)
    assert not above.allowed and "above the prescribed 140 mg" in above.reasons[0]


def test_a_dose_above_a_cap_is_refused(prescribed):
    # 140 x 3 + 20 x 2 = 460; another 140 would pass 500 mg a day.
    over = service.check_dose(prescribed, 140.0, 460.0, NOW - timedelta(hours=4), NOW)
    assert not over.allowed and "hard cap of 500 mg" in over.reasons[0]
    single = service.check_dose(prescribed, 200.0, 0.0, None, NOW)
    assert not single.allowed and "largest single dose" in single.reasons[0]


def test_a_top_up_waits_20_minutes_and_is_at_most_its_amount(prescribed):
    dosed = NOW - timedelta(minutes=19)
    early = service.check_dose(prescribed, 20.0, 140.0, dosed, NOW, top_up=True)
    assert not early.allowed and early.earliest_at == dosed + timedelta(minutes=20)
    assert service.check_dose(prescribed, 20.0, 140.0, NOW - timedelta(minutes=20), NOW,
                              top_up=True).allowed
    big = service.check_dose(prescribed, 30.0, 140.0, NOW - timedelta(minutes=30), NOW,
                             top_up=True)
    assert not big.allowed and "at most 20 mg" in big.reasons[0]
    prescribed.top_up_allowed = False
    assert not service.check_dose(prescribed, 20.0, 140.0, NOW - timedelta(minutes=30), NOW,
                                  top_up=True).allowed


def test_the_step_up_rule_holds_a_dose_to_half_the_day_befores_total(prescribed):
    prescribed.titration = "step_up"
    # Yesterday 280 mg: today's single dose at most 140 mg.
    assert service.check_dose(prescribed, 140.0, 0.0, None, NOW,
                              previous_day_total_mg=280.0).allowed
    held = service.check_dose(prescribed, 140.0, 0.0, None, NOW, previous_day_total_mg=200.0)
    assert not held.allowed and "Step-up rule" in held.reasons[0]
    # Day 1 (the prescription's first day) is not held to it.
    prescribed.starts_on = TODAY
    assert service.check_dose(prescribed, 140.0, 0.0, None, NOW,
                              previous_day_total_mg=200.0).allowed


# --- The API and the pages -------------------------------------------------------------------


def test_api_enrol_get_and_prescribe(app, client):
    site = make_site()
    prescriber = make_staff(site, role=Role.PRESCRIBER)
    pharmacist = make_staff(site, role=Role.PHARMACIST)
    nurse = make_staff(site, role=Role.NURSE)
    make_client(site, code="M-APIP-1975")
    body = {"code": "M-APIP-1975", "legal_name": NAME, "date_of_birth": "1975-01-02",
            "health_number": HEALTH, "eligibility": {"severe_oud": {"met": True}}, "pin": PIN}
    base = f"/api/v1/sites/{site.id}/hat/patients"
    assert_api_error(client.post(base, json={**body, "pin": "000000"},
                                 headers=bearer(prescriber)), 422, "pin")
    assert_api_error(client.post(base, json=body, headers=bearer(nurse)), 403)
    made = client.post(base, json=body, headers=bearer(prescriber))
    assert made.status_code == 201, made.get_json()
    assert NAME not in made.get_data(as_text=True)
    patient_id = made.get_json()["id"]
    assert_api_error(client.post(base, json=body, headers=bearer(prescriber)), 409)

    signed = client.post(f"{base}/{patient_id}/prescriptions", headers=bearer(prescriber), json={
        "medication": "hydromorphone", "route": "iv", "dose_mg": 100, "starts_on": "2026-01-01",
        "pin": PIN})
    assert signed.status_code == 201, signed.get_json()
    assert signed.get_json()["prescription"]["version"] == 1
    assert signed.get_json()["prescription"]["sessions_per_day"] == 3
    capped = client.post(f"{base}/{patient_id}/prescriptions", headers=bearer(prescriber), json={
        "medication": "hydromorphone", "route": "iv", "dose_mg": 200, "starts_on": "2026-01-01",
        "pin": PIN})
    assert assert_api_error(capped, 422, "dose_mg")["code"] == "cap_exceeded"

    for reader in (prescriber, pharmacist):
        got = client.get(f"{base}/{patient_id}", headers=bearer(reader))
        assert got.status_code == 200
        assert got.get_json()["identity"]["legal_name"] == NAME
        assert got.get_json()["current"]["version"] == 1
    refused = client.get(f"{base}/{patient_id}", headers=bearer(nurse))
    assert_api_error(refused, 403)
    assert NAME not in refused.get_data(as_text=True)


def test_prescription_page_signs_a_version_and_keeps_what_was_typed_on_refusal(clinic, client,
                                                                                auth):
    site, _prescriber, _client, enrolment = clinic
    auth.login("dr-p")
    url = f"/sites/{site.slug}/hat/patients/{enrolment.id}/prescriptions"
    form = {"medication": "hydromorphone", "route": "iv", "dose_mg": "300",
            "sessions_per_day": "3", "starts_on": TODAY.isoformat(), "oral_oat": "SROM 200 mg",
            "pin": PIN}
    refused = auth.post(url, form)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "hard cap" in field_error(body, "dose_mg")
    assert 'value="SROM 200 mg"' in body and PIN not in body
    signed = auth.post(url, {**form, "dose_mg": "100"})
    assert signed.status_code == 200 and 'data-testid="hat-signed"' in signed.get_data(
        as_text=True)
    assert [p.version for p in enrolment.prescriptions] == [1]
    again = client.get(url).get_data(as_text=True)
    assert again.count('data-testid="hat-version"') == 1 and 'value="100"' in again
    assert auth.post(url, {**form, "dose_mg": "120"}).status_code == 200
    listed = client.get(url).get_data(as_text=True)
    assert listed.count('data-testid="hat-version"') == 2 and "120 mg" in listed


def test_enrol_page_refuses_an_unknown_code_as_typed(app, client, auth):
    site = make_site()
    make_staff(site, role=Role.PRESCRIBER, username="dr-q")
    auth.login("dr-q")
    answer = auth.post(f"/sites/{site.slug}/hat/enrol", {
        "code": "F-NONE-1990", "legal_name": NAME, "date_of_birth": "1990-01-01",
        "met_severe_oud": "on", "pin": PIN})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "No client" in field_error(body, "code")
    assert f'value="{NAME}"' in body


def test_enrol_page_refuses_a_checklist_note_the_api_refuses(app, client, auth):
    """A note beyond the API's 300 characters is refused beside the checklist, as typed,
    and nobody is enrolled."""
    site = make_site()
    make_staff(site, role=Role.PRESCRIBER, username="dr-n")
    make_client(site, code="F-NOTE-1980")
    auth.login("dr-n")
    answer = auth.post(f"/sites/{site.slug}/hat/enrol", {
        "code": "F-NOTE-1980", "legal_name": NAME, "date_of_birth": "1980-01-01",
        "met_severe_oud": "on", "note_severe_oud": "x" * 301, "pin": PIN})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "300" in field_error(body, "eligibility")
    assert 'value="F-NOTE-1980"' in body
    assert db.session.execute(db.select(HatEnrolment)).first() is None


def test_no_table_holds_the_identity_in_plain_text(app, client, auth):
    """Enrolled through the page (refused once, as typed) and read back: the name and health
    number are nowhere in the database but as ciphertext (not in a stored answer either)."""
    site = make_site()
    make_staff(site, role=Role.PRESCRIBER, username="dr-r")
    make_client(site, code="F-PLAI-1970")
    auth.login("dr-r")
    form = {"code": "F-PLAI-1970", "legal_name": NAME, "date_of_birth": "1970-01-01",
            "health_number": HEALTH, "met_severe_oud": "on"}
    # Sent with a key, as a keyed form would send it: no refusal is kept as rendered.
    assert auth.post(f"/sites/{site.slug}/hat/enrol", {
        **form, "pin": "000000", "idempotency_key": "a4b0c1d2-0000-4000-8000-000000000001"}
    ).status_code == 422
    done = auth.post(f"/sites/{site.slug}/hat/enrol", {**form, "pin": PIN})
    assert done.status_code == 303
    assert NAME in client.get(done.headers["Location"]).get_data(as_text=True)
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(table.select()).all():
            said = " ".join(str(value) for value in row)
            assert NAME not in said and HEALTH not in said, table.name


def test_the_site_sets_its_caps_through_the_settings_api_and_they_hold(clinic, client):
    site, prescriber, _client, enrolment = clinic
    admin = bearer(make_staff(site, role=Role.ADMIN))
    url = f"/api/v1/sites/{site.id}/settings"
    settings = client.get(url, headers=admin).get_json()
    assert (settings["hat_max_sessions_per_day"], settings["hat_min_interval_minutes"],
            settings["hat_cap_hydromorphone_mg_day"], settings["hat_cap_diacetylmorphine_mg_day"],
            settings["hat_warn_iv_mg_day"], settings["hat_max_single_dose_mg"]) == (
        3, 180, 500, 1000, 600, None)
    assert_api_error(client.patch(url, headers=admin, json={
        "hat_cap_hydromorphone_mg_day": 0}), 422, "hat_cap_hydromorphone_mg_day")
    changed = client.patch(url, headers=admin, json={"hat_max_single_dose_mg": 50,
                                                     "hat_min_interval_minutes": 240})
    assert changed.status_code == 200, changed.get_json()
    with pytest.raises(service.CapExceeded, match="largest single dose of 50 mg"):
        service.create_prescription(site, enrolment.id, rx(dose_mg=60.0),
                                    actor=Actor.of(prescriber), now=NOW)
    prescription, _ = service.create_prescription(site, enrolment.id, rx(dose_mg=50.0),
                                                  actor=Actor.of(prescriber), now=NOW)
    assert prescription.min_interval_minutes == 240  # the site's, when none is given


def test_retention_gives_an_ended_treatment_to_a_placeholder_without_its_identity(clinic):
    """The enrolment is a treatment record: kept whole while the patient is in treatment or
    on hold; once ended before the retention cutoff, it goes to a placeholder, and the legal
    identity that named the patient goes with no one."""
    from srs.clients import retention

    site, prescriber, client, enrolment = clinic
    other = make_client(site, code="M-STAY-1985")
    staying = service.enrol(site, enrolment_data(other.code), actor=Actor.of(prescriber),
                            now=NOW - timedelta(days=1500))
    enrolment.state, enrolment.ended_at = "ended", NOW - timedelta(days=800)
    enrolment.enrolled_at = NOW - timedelta(days=1000)
    site.retention_days = 730
    db.session.commit()
    done = retention.apply_retention(now=NOW)[site.id]
    db.session.expire_all()
    assert done["hat_enrolments"] == 1
    assert enrolment.client_id != client.id and enrolment.client.placeholder
    assert enrolment.legal_name_enc is None and enrolment.health_number_enc is None
    assert enrolment.eligibility["severe_oud"]["met"]  # the treatment record stays
    assert staying.client_id == other.id and staying.legal_name_enc is not None
    pharmacist = make_staff(site, role=Role.PHARMACIST)
    assert service.read_identity(site, enrolment, actor=Actor.of(pharmacist),
                                 now=NOW).legal_name is None


def test_five_wrong_signing_pins_lock_the_account(clinic):
    site, prescriber, _client, enrolment = clinic
    for _ in range(5):
        with pytest.raises(Invalid):
            service.create_prescription(site, enrolment.id, rx(pin="000000"),
                                        actor=Actor.of(prescriber), now=NOW)
    with pytest.raises(Forbidden, match="locked"):
        service.create_prescription(site, enrolment.id, rx(), actor=Actor.of(prescriber),
                                    now=NOW)
    assert db.session.scalar(db.select(db.func.count()).where(
        AuditEvent.action == "hat_signature_refused")) == 5
    later = NOW + timedelta(minutes=16)
    prescription, _ = service.create_prescription(site, enrolment.id, rx(),
                                                  actor=Actor.of(prescriber), now=later)
    assert prescription.version == 1


def test_a_privacy_officer_finds_every_read_of_a_patients_identity_under_their_code(clinic):
    """The audit viewer's "who has looked at this client" takes in the treatment records."""
    from srs.audit import service as audit

    site, prescriber, client, enrolment = clinic
    other = make_client(site, code="M-HATO-1975")
    prescription, _warnings = service.create_prescription(site, enrolment.id, rx(),
                                                          actor=Actor.of(prescriber), now=NOW)
    pharmacist = make_staff(site, role=Role.PHARMACIST, username="ph")
    service.read_identity(site, enrolment, actor=Actor.of(pharmacist), now=NOW)
    found = db.session.execute(db.select(AuditEvent).where(
        audit.events_for_client(site, client))).scalars().all()
    actions = {(e.action, e.staff_id) for e in found}
    assert ("hat_patient_enrolled", prescriber.id) in actions
    assert ("patient_identity_read", pharmacist.id) in actions
    assert ("hat_prescription_signed", prescriber.id) in actions
    assert any(e.entity_id == str(prescription.id) for e in found)
    assert db.session.execute(db.select(AuditEvent).where(
        audit.events_for_client(site, other))).scalars().all() == []


def test_the_identity_is_in_no_log_line(app, client, auth, caplog, monkeypatch):
    """Enrolment refused, accepted and failing unexpectedly with the identity in the error's
    own words, then read through the API and the page: what the app logs, at any level,
    never holds the legal name, date of birth or health number."""
    caplog.set_level(logging.DEBUG)
    site = make_site()
    prescriber = make_staff(site, role=Role.PRESCRIBER, username="dr-log")
    make_client(site, code="M-LOGS-1975")
    base = f"/api/v1/sites/{site.id}/hat/patients"
    body = {"code": "M-LOGS-1975", "legal_name": NAME, "date_of_birth": "1975-01-02",
            "health_number": HEALTH, "eligibility": {"severe_oud": {"met": True}}, "pin": PIN}
    client.post(base, json={**body, "date_of_birth": "not a date"}, headers=bearer(prescriber))
    client.post(base, json={**body, "code": "M-NONE-1975"}, headers=bearer(prescriber))

    def failing(value):
        raise ValueError(f"cannot encrypt {value!r}")

    with monkeypatch.context() as patch:
        patch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
        patch.setattr("srs.hat.service.identity.encrypt", failing)
        assert client.post(base, json=body, headers=bearer(prescriber)).status_code == 500
    made = client.post(base, json=body, headers=bearer(prescriber))
    assert made.status_code == 201
    patient_id = made.get_json()["id"]
    assert client.get(f"{base}/{patient_id}", headers=bearer(prescriber)).status_code == 200
    auth.login("dr-log")
    page = client.get(f"/sites/{site.slug}/hat/patients/{patient_id}")
    assert NAME in page.get_data(as_text=True)  # the page a prescriber reads shows it
    auth.post(f"/sites/{site.slug}/hat/enrol", {"code": "M-LOGS-1975", "legal_name": NAME,
                                                 "date_of_birth": "1975-01-02",
                                                 "health_number": HEALTH, "pin": PIN})
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures, "the failing enrolment was logged"
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in (NAME, HEALTH, "1975-01-02"):
        assert secret not in logged
