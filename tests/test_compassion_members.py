"""Compassion-club membership: the steps before a first supply (each required unless the site
waives it, the screening by a prescriber or screener only), the consent text's versions, the
naloxone training linked from the naloxone program, suspension and its end, and treatment
linkage (due every 90 days, declining never blocking anything, the referral engine's
suggestions on the member's page)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import make_client, make_rule, make_site, make_staff
from routes import assert_api_error, bearer

from srs.audit.models import AuditEvent
from srs.audit.service import client_records
from srs.auth.models import Role, Staff
from srs.auth.service import Actor
from srs.clients.export import gather
from srs.common import utcnow
from srs.compassion import members
from srs.compassion.models import Member
from srs.errors import Forbidden, Invalid
from srs.extensions import db
from srs.naloxone.models import SessionTrainee, Trainee, TrainingSession

# Noon in Toronto (the factories' sites' zone).
NOW = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
CHECKLIST = {"current_use": {"met": True, "note": "Daily"},
             "overdose_risk": {"met": True, "note": "Two overdoses this year"}}


@pytest.fixture
def club(app):
    site = make_site(name="Crosstown")
    nurse = make_staff(site, role=Role.NURSE, username="nina")
    screener = make_staff(site, role=Role.SCREENER, username="sam")
    supervisor = make_staff(site, role=Role.SUPERVISOR, username="sue")
    client = make_client(site, code="F-CLUB-1980", handle="Jo")
    members.write_consent_text(site, {"text": "Tested supply still carries risks."},
                               actor=Actor.of(supervisor), now=NOW)
    member = members.enrol_member(site, {"code": client.code, "eligibility": CHECKLIST},
                                  actor=Actor.of(nurse), now=NOW)
    return site, nurse, screener, supervisor, client, member


def _step(site, member, step, who, now=NOW, **extra):
    return members.record_step(site, member.id, {"step": step, **extra},
                               actor=Actor.of(who), now=now)


def _active(club):
    site, nurse, screener, _supervisor, _client, member = club
    _step(site, member, "screening", screener)
    for step in ("risk_consent", "naloxone_training", "linkage_consent"):
        _step(site, member, step, nurse)
    return member


def test_every_step_is_required_before_a_member_is_active(club):
    site, nurse, screener, _supervisor, _client, member = club
    assert member.state == "applicant"
    assert member.eligibility["current_use"] == {"met": True, "note": "Daily"}
    assert member.eligibility["age_19"] == {"met": False, "note": None}
    _step(site, member, "screening", screener)
    _step(site, member, "risk_consent", nurse)
    _step(site, member, "naloxone_training", nurse)
    assert member.state == "applicant"
    assert members.steps_missing(site, member) == ["linkage_consent"]
    _step(site, member, "linkage_consent", nurse, now=NOW + timedelta(minutes=5))
    assert member.state == "active" and member.active_since == NOW + timedelta(minutes=5)
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="club_member_activated", entity_id=str(member.id))).scalar_one()


def test_a_step_the_site_waives_is_not_needed(app):
    site = make_site(compassion_waived_steps=["naloxone_training"])
    screener = make_staff(site, role=Role.SCREENER)
    client = make_client(site)
    member = members.enrol_member(site, {"code": client.code}, actor=Actor.of(screener),
                                  now=NOW)
    for step in ("screening", "linkage_consent"):
        _step(site, member, step, screener)
    assert member.state == "applicant"  # no consent text, no consent: still missing
    members.write_consent_text(site, {"text": "Risks."}, actor=Actor.of(screener), now=NOW)
    _step(site, member, "risk_consent", screener)
    assert member.state == "active"
    assert not any(s.step == "naloxone_training" for s in member.steps)


def test_only_a_prescriber_or_screener_records_the_screening(club):
    site, nurse, _screener, supervisor, _client, member = club
    for who in (nurse, supervisor, make_staff(site, role=Role.ADMIN)):
        with pytest.raises(Forbidden):
            _step(site, member, "screening", who)
    assert member.steps == []
    _step(site, member, "screening", make_staff(site, role=Role.PRESCRIBER))
    assert [s.step for s in member.steps] == ["screening"]


def test_the_risk_consent_names_the_version_in_force(club):
    site, nurse, _screener, supervisor, _client, member = club
    second = members.write_consent_text(site, {"text": "Risks, reworded."},
                                        actor=Actor.of(supervisor), now=NOW)
    assert second.version == 2
    step = _step(site, member, "risk_consent", nurse)
    assert step.consent_text_id == second.id
    assert [t.version for t in members.consent_texts(site)] == [2, 1]  # both kept
    members.write_consent_text(site, {"text": "A third version."},
                               actor=Actor.of(supervisor), now=NOW)
    assert step.consent_text_id == second.id


def test_training_links_the_clients_session_from_the_naloxone_program(club):
    site, nurse, _screener, _supervisor, client, member = club

    def session_of(someone):
        trainee = Trainee(site_id=site.id, kind="person_at_risk", client_id=someone.id,
                          created_at=NOW)
        session = TrainingSession(site_id=site.id, held_on=date(2026, 12, 1), trainer_id=nurse.id,
                                  curriculum="Take-home naloxone", format="brief",
                                  recorded_at=NOW)
        db.session.add_all([trainee, session])
        db.session.flush()
        db.session.add(SessionTrainee(session_id=session.id, trainee_id=trainee.id))
        db.session.commit()
        return session

    theirs, someone_elses = session_of(client), session_of(make_client(site))
    assert members.training_sessions(site, member) == [theirs]
    with pytest.raises(Invalid) as refused:
        _step(site, member, "naloxone_training", nurse, training_session_id=someone_elses.id)
    assert "training_session_id" in refused.value.errors
    step = _step(site, member, "naloxone_training", nurse, training_session_id=theirs.id)
    assert step.training_session_id == theirs.id


def test_a_suspension_ends_when_its_until_passes(club):
    site, _nurse, _screener, supervisor, _client, member = club
    _active(club)
    until = NOW + timedelta(days=3)
    members.suspend_member(site, member.id, {"reason": "Threats to staff", "until": until},
                           actor=Actor.of(supervisor), now=NOW)
    assert member.state == "suspended"
    read = members.get_member(site, member.id, actor=Actor.of(supervisor),
                              now=until - timedelta(seconds=1))
    assert read.state == "suspended"
    listed = members.list_members(site, state="active", actor=Actor.of(supervisor), now=until)
    assert listed == [member] and member.state == "active"
    assert member.suspended_reason is None and member.suspended_until is None
    with pytest.raises(Invalid):
        members.suspend_member(site, member.id, {"reason": "Again", "until": NOW},
                               actor=Actor.of(supervisor), now=until)


def test_the_job_ends_lapsed_suspensions(club):
    from srs.jobs import JOBS

    assert next(j for j in JOBS if j.id == "club_suspensions").func is members.lapse_suspensions
    site, _nurse, _screener, supervisor, _client, member = club
    _active(club)
    members.suspend_member(site, member.id, {"reason": "Threats", "until": NOW + timedelta(
        hours=1)}, actor=Actor.of(supervisor), now=NOW)
    assert members.lapse_suspensions(now=NOW + timedelta(hours=2)) == 1
    assert db.session.get(Member, member.id).state == "active"


def test_declining_linkage_keeps_the_member_active(club):
    site, nurse, _screener, _supervisor, _client, member = club
    _active(club)
    for outcome in ("offered", "declined", "not_now", "declined"):
        members.record_linkage(site, member.id, {"outcome": outcome}, actor=Actor.of(nurse),
                               now=NOW + timedelta(days=1))
    assert member.state == "active"
    assert [c.outcome for c in members.linkage_history(member)].count("declined") == 2


def test_a_linkage_conversation_is_due_90_days_after_the_last(club):
    site, nurse, _screener, _supervisor, _client, member = club
    _active(club)
    assert members.linkage_due_at(site, member) == NOW + timedelta(days=90)
    assert not members.linkage_due(site, member, now=NOW + timedelta(days=89))
    assert members.linkage_due(site, member, now=NOW + timedelta(days=90))
    talked = NOW + timedelta(days=95)
    members.record_linkage(site, member.id, {"outcome": "declined"}, actor=Actor.of(nurse),
                           now=talked)
    assert members.linkage_due_at(site, member) == talked + timedelta(days=90)
    assert not members.linkage_due(site, member, now=talked + timedelta(days=1))
    site.compassion_linkage_review_days = 30
    assert members.linkage_due(site, member, now=talked + timedelta(days=30))


def test_an_accepted_referral_without_a_visit_is_refused_with_a_reason(club, app):
    from factories import make_service

    site, nurse, _screener, _supervisor, _client, member = club
    service = make_service(site, service_type="oat")
    with pytest.raises(Invalid) as refused:
        members.record_linkage(site, member.id, {"outcome": "accepted",
                                                 "service_id": service.id},
                               actor=Actor.of(nurse), now=NOW)
    assert "service_id" in refused.value.errors
    assert members.linkage_history(member) == []


def test_an_accepted_conversation_refers_through_the_engine_during_a_visit(club):
    from factories import make_service

    from srs.booths import service as floor
    from srs.referrals.models import Referral

    site, nurse, _screener, _supervisor, client, member = club
    service = make_service(site, service_type="oat")
    floor.check_in(site, code=client.code, handle=None, actor=Actor.of(nurse),
                   actor_roles={"nurse"}, now=NOW)
    talked = members.record_linkage(site, member.id, {
        "outcome": "accepted", "service_id": service.id, "note": "Wants methadone"},
        actor=Actor.of(nurse), now=NOW)
    referral = db.session.get(Referral, talked.referral_id)
    assert (referral.client_id, referral.service_id) == (client.id, service.id)
    assert referral.offer.status == "accepted"


# --- Pages -----------------------------------------------------------------------------------


def test_the_member_page_shows_steps_and_the_suggestions_with_their_reasons(club, client, auth):
    site, _nurse, screener, _supervisor, _client, member = club
    make_rule(site, key="not-on-oat", service_type="oat",
              condition={"fact": "on_oat", "op": "==", "value": False},
              reason_template="Not on OAT: ask about treatment")
    auth.login("sam")
    url = f"/sites/{site.slug}/club/members/{member.id}"
    done = auth.post(f"{url}/steps", {"step": "screening", "note": "Seen today"})
    assert done.status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="club-step-screening" data-done="yes"' in page
    assert "by sam" in page and "Seen today" in page
    assert 'data-testid="club-suggestion" data-service-type="oat"' in page
    assert "Not on OAT: ask about treatment" in page
    assert 'data-testid="club-record-risk_consent"' in page


def test_a_nurse_sees_no_screening_button_and_a_refused_post_keeps_the_note(club, client, auth):
    site, _nurse, _screener, _supervisor, _client, member = club
    auth.login("nina")
    url = f"/sites/{site.slug}/club/members/{member.id}"
    assert 'data-testid="club-record-screening"' not in client.get(url).get_data(as_text=True)
    refused = auth.post(f"{url}/steps", {"step": "naloxone_training",
                                         "training_session_id": "999999",
                                         "note": "Typed by hand"})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "Choose a session this client took part in." in body
    assert 'value="Typed by hand"' in body


def test_enrol_page_refuses_an_unknown_code_as_typed_and_enrols_a_known_one(app, client,
                                                                             auth):
    site = make_site()
    make_staff(site, role=Role.SCREENER, username="sandy")
    known = make_client(site, code="F-KNOW-1990")
    auth.login("sandy")
    refused = auth.post(f"/sites/{site.slug}/club/enrol", {
        "code": "F-NOPE-1990", "met_current_use": "on", "note_current_use": "Daily use"})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "No client with this code." in body and 'value="Daily use"' in body
    done = auth.post(f"/sites/{site.slug}/club/enrol", {"code": known.code,
                                                          "met_current_use": "on"})
    assert done.status_code == 303
    listed = client.get(f"/sites/{site.slug}/club").get_data(as_text=True)
    assert known.code in listed and 'data-state="applicant"' in listed


def test_the_enrol_form_offers_known_codes_as_check_in_does(app, client, auth):
    site = make_site()
    make_staff(site, role=Role.NURSE, username="nell")
    make_client(site, code="F-KNOW-1990", handle="Kim")
    auth.login("nell")
    found = client.get(f"/sites/{site.slug}/club/enrol/codes?code=know").get_data(as_text=True)
    assert "F-KNOW-1990" in found and "Kim" in found
    field = client.get(f"/sites/{site.slug}/club/enrol/code?code=F-KNOW-1990")
    assert 'value="F-KNOW-1990"' in field.get_data(as_text=True)


def test_suspend_page_and_consent_page(club, client, auth):
    site, _nurse, _screener, _supervisor, _client, member = club
    _active(club)
    auth.login("sue")
    url = f"/sites/{site.slug}/club/members/{member.id}"
    refused = auth.post(f"{url}/suspend", {"reason": "Threats", "until": ""})
    assert refused.status_code == 422 and 'value="Threats"' in refused.get_data(as_text=True)
    until = (site.local_date(utcnow()) + timedelta(days=7)).isoformat()
    assert auth.post(f"{url}/suspend", {"reason": "Threats", "until": until}).status_code == 303
    assert db.session.get(Member, member.id).state == "suspended"
    consent = f"/sites/{site.slug}/club/consent"
    assert auth.post(consent, {"text": "Version two of the risks."}).status_code == 303
    page = client.get(consent).get_data(as_text=True)
    assert "Version 2 is in force" in page and page.count('data-testid="club-consent-version"') == 2


# --- API, records ----------------------------------------------------------------------------


def test_api_enrol_steps_get_and_list(app, client):
    site = make_site()
    nurse = make_staff(site, role=Role.NURSE)
    screener = make_staff(site, role=Role.SCREENER)
    code = make_client(site).code
    base = f"/api/v1/sites/{site.id}/club/members"
    made = client.post(base, json={"code": code, "eligibility": {
        "current_use": {"met": True}}}, headers=bearer(nurse))
    assert made.status_code == 201, made.get_json()
    member_id = made.get_json()["id"]
    assert made.get_json()["state"] == "applicant" and made.get_json()["code"] == code
    assert_api_error(client.post(base, json={"code": code}, headers=bearer(nurse)), 409)
    assert_api_error(client.post(f"{base}/{member_id}/steps", json={"step": "screening"},
                                 headers=bearer(nurse)), 403)
    assert client.post(f"{base}/{member_id}/steps", json={"step": "screening"},
                       headers=bearer(screener)).status_code == 201
    got = client.get(f"{base}/{member_id}", headers=bearer(nurse)).get_json()
    assert got["steps_missing"] == ["risk_consent", "naloxone_training", "linkage_consent"]
    assert got["member"]["steps"][0]["by"] == screener.id
    listed = client.get(f"{base}?state=applicant", headers=bearer(nurse)).get_json()
    assert [m["id"] for m in listed["members"]] == [member_id]
    assert client.get(f"{base}?state=active", headers=bearer(nurse)).get_json() == {
        "members": []}


def test_the_membership_is_in_the_access_export_and_the_audit_viewers_records(club):
    site, nurse, _screener, _supervisor, client, member = club
    members.record_linkage(site, member.id, {"outcome": "declined", "note": "Not ready"},
                           actor=Actor.of(nurse), now=NOW)
    sections = {s.record_type: s for s in gather(site, client)}
    assert [r["id"] for r in sections["compassion_member"].rows] == [member.id]
    assert sections["compassion_linkage"].rows[0]["outcome"] == "declined"
    assert client_records(site, client)["compassion_member"] == [member.id]


# --- A legal identity only where the site's rules need one -----------------------------------

NAME = "Marguerite Quillfeather"


def _identity_site(**settings):
    site = make_site(name="Named", slug="named", compassion_identity_required=True, **settings)
    make_staff(site, role=Role.NURSE, username="nora")
    make_staff(site, role=Role.PRESCRIBER, username="priya")
    make_client(site, code="F-NAME-1970", handle="Mags")
    return site


def test_where_the_site_needs_no_identity_enrolment_asks_none_and_refuses_one(app, client,
                                                                              auth):
    site = make_site()
    nurse = make_staff(site, role=Role.NURSE, username="nils")
    known = make_client(site, code="F-NONE-1990")
    auth.login("nils")
    page = client.get(f"/sites/{site.slug}/club/enrol").get_data(as_text=True)
    assert 'data-testid="club-identity-fields"' not in page and 'name="legal_name"' not in page
    refused = client.post(f"/api/v1/sites/{site.id}/club/members", headers=bearer(nurse),
                          json={"code": known.code, "legal_name": NAME,
                                "date_of_birth": "1970-01-02"})
    assert_api_error(refused, 422, "legal_name")
    assert "keeps no legal identity" in refused.get_json()["message"]
    assert NAME not in refused.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Member.id))) == 0
    done = auth.post(f"/sites/{site.slug}/club/enrol", {"code": known.code,
                                                        "legal_name": NAME})
    assert done.status_code == 303  # the page has no such field: a stray one is not kept
    assert db.session.execute(db.select(Member)).scalar_one().legal_name_enc is None


def test_where_the_site_needs_one_enrolment_refuses_without_name_and_birth_date(
        app, client, auth):
    site = _identity_site()
    auth.login("nora")
    url = f"/sites/{site.slug}/club/enrol"
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="club-identity-fields"' in page
    refused = auth.post(url, {"code": "F-NAME-1970", "legal_name": NAME,
                              "health_number": "9876 543 210"})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "need the member&#39;s legal name and date of birth" in body
    assert "Give the date of birth" in body
    assert 'value="F-NAME-1970"' in body and f'value="{NAME}"' in body
    assert db.session.scalar(db.select(db.func.count(Member.id))) == 0
    nurse = db.session.execute(db.select(Staff).filter_by(username="nora")).scalar_one()
    api = f"/api/v1/sites/{site.id}/club/members"
    assert_api_error(client.post(api, headers=bearer(nurse), json={"code": "F-NAME-1970"}),
                     422, "legal_name")
    assert_api_error(client.post(api, headers=bearer(nurse), json={
        "code": "F-NAME-1970", "legal_name": NAME, "date_of_birth": "2099-01-01"}),
        422, "date_of_birth")
    done = auth.post(url, {"code": "F-NAME-1970", "legal_name": NAME,
                           "date_of_birth": "1970-03-04", "health_number": "9876 543 210"})
    assert done.status_code == 303
    member = db.session.execute(db.select(Member)).scalar_one()
    assert NAME not in member.legal_name_enc and "1970" not in member.date_of_birth_enc
    assert members.identity_held(member)


def _named_member(site):
    nurse = db.session.execute(db.select(Staff).filter_by(username="nora")).scalar_one()
    return nurse, members.enrol_member(site, {
        "code": "F-NAME-1970", "legal_name": NAME, "date_of_birth": date(1970, 3, 4),
        "health_number": "9876 543 210"}, actor=Actor.of(nurse), now=NOW)


def test_only_a_prescriber_or_pharmacist_reads_the_identity_and_nowhere_else(
        app, client, auth, caplog):
    caplog.set_level("DEBUG")
    site = _identity_site()
    nurse, member = _named_member(site)
    base = f"/sites/{site.slug}/club"
    auth.login("nora")
    nurse_page = client.get(f"{base}/members/{member.id}").get_data(as_text=True)
    assert 'data-testid="club-identity-held"' in nurse_page and NAME not in nurse_page
    with pytest.raises(Forbidden):
        members.read_identity(site, member, actor=Actor.of(nurse), now=NOW)
    api = f"/api/v1/sites/{site.id}/club/members"
    for answer in (client.get(api, headers=bearer(nurse)),
                   client.get(f"{api}/{member.id}", headers=bearer(nurse))):
        assert answer.status_code == 200 and NAME not in answer.get_data(as_text=True)
        assert "9876" not in answer.get_data(as_text=True)
    auth.logout()
    auth.login("priya")
    page = client.get(f"{base}/members/{member.id}").get_data(as_text=True)
    assert f'data-testid="club-identity-name">{NAME}<' in page
    assert "04 Mar 1970" in page and "9876 543 210" in page
    reads = list(db.session.execute(db.select(AuditEvent).filter_by(
        action="club_identity_read")).scalars())
    assert [(r.entity_id, r.detail) for r in reads] == [
        (str(member.id), {"client_id": member.client_id})]
    assert NAME not in client.get(base).get_data(as_text=True)  # the members list
    pharmacist = make_staff(site, role=Role.PHARMACIST)
    assert members.read_identity(site, member, actor=Actor.of(pharmacist),
                                 now=NOW).legal_name == NAME
    every = " ".join(str(e.detail) for e in db.session.execute(
        db.select(AuditEvent)).scalars())
    assert NAME not in every and "1970-03-04" not in every
    exported = " ".join(str(row) for s in gather(site, member.client) for row in s.rows)
    assert member.client.code in exported and NAME not in exported
    assert NAME not in caplog.text and "9876" not in caplog.text


def test_retention_clears_an_ended_members_identity_with_its_placeholder(app):
    from srs.clients import retention

    site = _identity_site(retention_days=730)
    nurse, member = _named_member(site)
    client_id = member.client_id
    member.state, member.ended_at = "ended", NOW - timedelta(days=800)
    member.ended_reason, member.applied_at = "Moved away", NOW - timedelta(days=1000)
    db.session.commit()
    done = retention.apply_retention(now=NOW)[site.id]
    db.session.expire_all()
    assert done["compassion_members"] == 1
    assert member.client_id != client_id and member.client.placeholder
    assert (member.legal_name_enc, member.date_of_birth_enc, member.health_number_enc) == (
        None, None, None)


def test_the_identity_setting_is_off_by_default_and_an_admin_turns_it_on(app, client):
    site = make_site()
    admin = make_staff(site, role=Role.ADMIN)
    url = f"/api/v1/sites/{site.id}/settings"
    assert client.get(url, headers=bearer(admin)).get_json()[
        "compassion_identity_required"] is False
    changed = client.patch(url, headers=bearer(admin),
                           json={"compassion_identity_required": True})
    assert changed.status_code == 200, changed.get_json()
    db.session.expire_all()
    assert db.session.get(type(site), site.id).compassion_identity_required is True
