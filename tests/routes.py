"""The route table and the floor that the authorization, CSRF, API and header tests share."""

import functools
import re
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from conftest import app_config
from factories import (
    ACTOR,
    PASSWORD,
    PIN,
    make_booth,
    make_controlled_drug,
    make_site,
    make_staff,
)
from sqlalchemy import inspect

from srs import create_app
from srs.alerts import service as alerts
from srs.api.access import GATEWAY
from srs.auth import service as auth_service
from srs.auth.access import ANY_STAFF, ORG_ADMIN
from srs.auth.models import DISPLAY, Role, Staff
from srs.auth.service import Actor, issue_token
from srs.booths import checks
from srs.booths import service as floor_service
from srs.common import utcnow
from srs.compassion.models import Member
from srs.drugchecks.outbox import new_gateway_token
from srs.extensions import db
from srs.hat import identity
from srs.hat.models import (
    HatDose,
    HatEnrolment,
    HatHold,
    HatPrescription,
    HatTakeHome,
    HatUrineTest,
)
from srs.incidents import service as incident_service
from srs.incidents.models import ReviewPacket
from srs.naloxone import service as naloxone_service
from srs.naloxone.models import NaloxoneKit
from srs.overdose import service as overdose_service

PUBLIC = "public"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ERROR_KEYS = {"code", "status", "message", "errors"}

# Flask's and flask-smorest's own endpoints: they cannot carry a declaration, and both are open
# to anyone (the API's description is public; the operations behind it are not).
UNDECLARED_PUBLIC = {"static", "api-docs.openapi_json"}

# What a page may answer a caller it lets in, besides 200, 204 and a redirect: the health
# check says 503 while a part is down, and no scheduler beats beside these tests.
ALSO_ANSWERS = {"health.health": {503}}

ANONYMOUS = "anonymous"
OTHER_SITE = "every role at another site"
# A device, not a person: signed in by the floor's display link, with no API token.
WALL_DISPLAY = "wall display"
# The organisation admin flag and no role at any site.
ORG_ADMIN_ONLY = "organisation admin, no role at a site"
PRINCIPALS = (ANONYMOUS, *(role.value for role in Role), OTHER_SITE, WALL_DISPLAY,
              ORG_ADMIN_ONLY)

# A username the login form signs in as (the floor's own nurse).
FLOOR_NURSE = "floor-nurse"

# What a form post sends besides its CSRF token, so that an allowed caller gets the route's
# normal answer rather than a validation error; a callable gets the floor (``page_form``).
PAGE_FORMS = {
    "auth.login": {"username": FLOOR_NURSE, "password": PASSWORD},
    "auth.unlock": {"pin": PIN},
    "auth.switch": {"pin": PIN},
    "alerts.acknowledge_at_lock": {"pin": PIN},
    "sites.register_display": {"name": "Hall wall"},
    "sites.add_staff": {"username": "newperson", "roles": "nurse"},
    "sites.change_roles": {"roles": ["nurse", "reviewer"]},
    "sites.save_settings": {"lock_after_seconds-min": "10", "lock_after_seconds-sec": "0",
                            "overdose_locations": "Washroom"},
    # Unconfirmed: the answer is the confirmation stating what the period would change.
    "retention.save": {"retention_days": "730"},
    "booths.check_in": {"code": "M-NEWC-1990"},
    "booths.leave_queue": {"reason": "left"},
    "booths.record_consumption": {"substances": "fentanyl", "route": "injects"},
    "booths.set_out_of_service": {"reason": "Needle bin full"},
    "booths.add_booth": {"label": "B9", "kind": "inhalation"},
    "booths.update_booth": {"label": "B9"},
    "booths.booth_admin_out_of_service": {"reason": "Needle bin full"},
    "booths.record_check": {"status": "ok"},
    # Before minimum observation ends the tablet says why (the kept visit arrived just now).
    "booths.discharge": {"reason": "declined_aftercare"},
    "overdose.start": {"kind": "opioid", "location": "Washroom"},
    "overdose.record_intervention": {"kind": "stimulation"},
    "overdose.record_dose": {"route": "im"},
    "overdose.change_kind": {"kind": "stimulant"},
    "overdose.amend": {"amend_reason": "Entered twice", "struck": "true"},
    "overdose.close": {"outcome": "recovered_on_site"},
    "naloxone.receive": {"product": "Naloxone", "form": "ampoule", "strength": "0.4 mg/mL",
                         "lot_number": "R1", "expires_on": "2099-01-01", "quantity": "5"},
    "naloxone.record_movement": {"kind": "wasted", "quantity": "1", "reason": "Dropped"},
    "naloxone.record_kit": {"client_code": "F-KITS-1990", "form": "nasal"},
    "naloxone.add_kits": lambda floor: {"first_serial": "K-9001", "last_serial": "K-9003",
                                        "lot_id": str(floor.url_values["lot_id"])},
    "naloxone.issue_kit": lambda floor: {"serial": make_kit(floor).serial,
                                         "client_code": "F-KITS-1990"},
    "naloxone.report_kit_use": lambda floor: {
        "serial": make_kit(floor, issued=True).serial,
        "used_on": floor.site.local_date(utcnow()).isoformat(),
        "doses": "1", "route": "in", "outcome": "recovered"},
    "naloxone.recall_lot": {"reason": "Manufacturer's notice"},
    "controlled.create_drug": {"name": "Hydromorphone", "strength": "100 mg/mL", "unit": "mL"},
    "controlled.receive": lambda floor: {**_controlled_receipt(floor), "quantity": "5"},
    "controlled.waste": lambda floor: _controlled_waste(floor),
    "controlled.count": lambda floor: _controlled_count(floor),
    "controlled.return_stock": lambda floor: {
        **_controlled_waste(floor), "supplier": "Pharma Ltd"},
    "controlled.loss_reported": {"reference": "HC-4000-1"},
    "club_supply.receive_batch": lambda floor: {**_club_batch_body(), "quantity": "10.0",
                                                "cost": "100"},
    "club_supply.link_check": lambda floor: {"drug_check_id": str(_club_check(floor.site).id)},
    "club_supply.clear_batch": {"reason": "Caffeine is a known cut"},
    "club_supply.record_supply": lambda floor: {"batch_id": str(club_batch(floor.site).id),
                                                "quantity": "0.5", "mode": "witnessed"},
    # The trainer is whoever records it; one person from outside, by kind.
    "training.record": {"held_on": (date.today() - timedelta(days=1)).isoformat(),
                        "curriculum": "Take-home naloxone", "format": "brief",
                        "t-row1-mode": "outside", "t-row1-kind": "fire"},
    "drugchecks.record_check": {"expected": "Heroin", "strip-fentanyl": "positive"},
    "drugchecks.add_substance": {"name": "Bromazepam", "family": "benzodiazepine"},
    "drugchecks.add_watch_item": {"substance": "Nitrous"},
    "drugchecks.create_alert": {"kind": "drug_alert", "found": "Blue pills, not oxycodone"},
    "drugchecks.edit_alert": {"area": "Downtown", "evidence": "reported", "audience": "staff"},
    "drugchecks.retract_alert": {"reason": "Wrong batch"},
    "earlywarning.report_bad_batch": {"site": "east", "what_happened": "Out cold after one hit"},
    "referrals.record_offer": {"service_type": "peer_support", "status": "offered"},
    "referrals.record_outcome": {"outcome": "presented"},
    "referrals.create_service": {"name": "Peer circle", "service_type": "peer_support"},
    "referrals.update_service": {"name": "Peer circle", "service_type": "peer_support"},
    "referrals.create_rule": {
        "name": "Often here", "service_type": "peer_support", "reason_template": "{visits} visits",
        "cond-0-fact": "visits", "cond-0-days": "30", "cond-0-op": ">=", "cond-0-value": "8",
        "priority": "30", "reoffer_days": "30", "active": "on"},
    "referrals.update_rule": {
        "name": "Often here", "service_type": "peer_support", "reason_template": "{visits} visits",
        "cond-0-fact": "visits", "cond-0-days": "30", "cond-0-op": ">=", "cond-0-value": "8",
        "priority": "30", "reoffer_days": "30", "active": "on"},
    "incidents.autosave": {"narrative": "Client slipped in the waiting room."},
    "incidents.submit": {"narrative": "Client fell in the waiting room.",
                         "immediate_actions": "Checked for injury.", "area": "Waiting room"},
    "incidents.amend": {"amendment_reason": "Time corrected", "narrative": "Amended."},
    "incidents.review": {"decision": "start_review"},
    "incidents.add_factor": {"label": "Door alarm"},
    "incidents.toggle_factor": {"active": "0"},
    "clients.restrict": {"reason": "violence",
                         "until": (date.today() + timedelta(days=7)).isoformat()},
    "clients.note": {"flag_note": "Prefers the booth by the door"},
    "org.create_site": {"name": "North", "slug": "north", "timezone": "America/Toronto",
                        "injection_booths": "2", "inhalation_booths": "1",
                        "admin_username": "north-admin"},
    "org.update_site": {"name": "East End", "timezone": "America/Vancouver"},
    "org.grant_org_admin": {"username": FLOOR_NURSE},
    "org.give_site_role": {"username": FLOOR_NURSE, "role": "reviewer"},
    "hat.enrol": {"code": "F-WAIT-1982", "legal_name": "Test Patient",
                  "date_of_birth": "1982-03-04", "met_severe_oud": "on", "pin": PIN},
    "hat.prescribe": {"medication": "hydromorphone", "route": "iv", "dose_mg": "100",
                      "sessions_per_day": "3", "starts_on": date.today().isoformat(),
                      "pin": PIN},
    "hat_dosing.assess": {"poss": "1"},
    "hat_dosing.dose": lambda floor: {k: str(v) for k, v in _hat_dose(floor).items()},
    "hat_dosing.not_given": {"outcome": "declined", "reason": "Not today"},
    "hat.review_hold": lambda floor: {**_hat_held(floor), "reason": "Reviewed", "pin": PIN},
    "hat.change_state": {"state": "on_hold", "reason": "Review bloods", "pin": PIN},
    "hat.record_urine_test": {"result": "clear"},
    "hat.authorise_take_home": lambda floor: {**_take_home_ready(floor), "days": "1",
                                              "pin": PIN},
    "club.enrol": {"code": "F-WAIT-1982", "met_current_use": "on"},
    "club.record_step": {"step": "linkage_consent"},
    "club.record_linkage": {"outcome": "declined"},
    "club.suspend": {"reason": "Threats to staff",
                     "until": (date.today() + timedelta(days=7)).isoformat()},
    "club.end": {"reason": "Moved away"},
    "club.write_consent": {"text": "Supply from the club carries risks: start low."},
    "club_eval.record_survey": {"overdoses_since": "0", "street_supply": "less",
                                "treatment_contact": "no"},
}

# A valid minimal JSON body for every state-changing API operation.
# A valid minimal JSON body for every state-changing API operation; a callable gets the floor.
API_BODIES = {
    "api_sites.update_site_settings": {"lock_after_seconds": 600},
    "api_booths.set_booth_out_of_service": {"reason": "Needle bin full"},
    "api_booths.check_in_client": {"code": "M-NEWC-1990"},
    "api_booths.assign_booth": lambda floor: {"booth_id": floor.free_booth.id},
    "api_booths.record_consumption": {"substances": ["fentanyl"], "route": "injects"},
    "api_booths.start_observation": None,
    "api_booths.discharge_visit": {},
    "api_booths.mark_booth_clean": None,
    "api_booths.create_booth": {"label": "B9", "kind": "inhalation"},
    "api_booths.update_booth": {"label": "B9"},
    "api_alerts.record_observation_check": {"status": "ok"},
    "api_alerts.acknowledge_alert": None,
    "api_overdose.start_overdose_response": lambda floor: {
        "kind": "opioid", "visit_id": floor.visits["observing"].id},
    "api_overdose.record_intervention": {"kind": "spo2", "spo2": 91},
    "api_overdose.close_overdose_response": {"outcome": "recovered_on_site"},
    "api_naloxone.receive_naloxone_stock": {
        "product": "Naloxone", "form": "ampoule", "strength": "0.4 mg/mL", "lot_number": "R1",
        "expires_on": "2099-01-01", "quantity": 5},
    "api_naloxone.record_take_home_kit": {"client_code": "F-KITS-1990", "form": "nasal"},
    "api_naloxone.add_naloxone_kits": lambda floor: {
        "lot_id": floor.url_values["lot_id"], "first_serial": "K-9001", "last_serial": "K-9003"},
    "api_naloxone.issue_naloxone_kit": lambda floor: {"serial": make_kit(floor).serial,
                                                      "client_code": "F-KITS-1990"},
    "api_naloxone.report_kit_use": {"used_on": "2026-01-02", "doses": 1, "route": "in",
                                    "called_911": True, "outcome": "recovered"},
    "api_naloxone.recall_naloxone_lot": {"reason": "Manufacturer's notice"},
    "api_controlled.create_controlled_drug": {"name": "Hydromorphone", "strength": "100 mg/mL",
                                              "unit": "mL"},
    "api_controlled.receive_controlled_stock": lambda floor: _controlled_receipt(floor),
    "api_controlled.record_controlled_waste": lambda floor: _controlled_waste(floor, api=True),
    "api_controlled.record_stock_count": lambda floor: _controlled_count(floor, api=True),
    "api_controlled.mark_controlled_loss_reported": {"reference": "HC-4000-1"},
    "api_compassion_supply.receive_supply_batch": lambda floor: {
        **_club_batch_body(), "quantity": 10.0, "cost": 100,
        "drug_check_id": _club_check(floor.site).id},
    "api_compassion_supply.record_supply": lambda floor: {
        "batch_id": club_batch(floor.site).id, "quantity": 0.5, "mode": "witnessed"},
    "api_training.record_training_session": lambda floor: {
        "held_on": (date.today() - timedelta(days=1)).isoformat(),
        "trainer_id": floor_nurse_id(), "curriculum": "Take-home naloxone", "format": "brief",
        "trainees": [{"kind": "police", "organisation": "City Police"}]},
    "api_drugchecks.record_drug_check": {
        "expected": "Heroin", "methods": ["fentanyl_strip"], "strips": {"fentanyl": "positive"}},
    "api_drugchecks.create_drug_alert": {"kind": "drug_alert", "found": "Blue pills"},
    "api_drugchecks.validate_drug_alert": None,
    "api_drugchecks.publish_drug_alert": None,
    "api_drugchecks.retract_drug_alert": {"reason": "Wrong batch"},
    "api_earlywarning.submit_drug_report": {"site": "east", "what_happened": "Out cold"},
    "api_earlywarning.mark_outbox_messages_sent": lambda floor: {
        "ids": [queued_text(floor.site)]},
    "api_earlywarning.receive_text_message": {"from": "+15550100100", "text": "JOIN"},
    "api_referrals.record_referral": {"service_type": "peer_support", "status": "offered"},
    "api_referrals.record_referral_outcome": {"outcome": "presented"},
    "api_referrals.create_referral_rule": {
        "name": "Often here", "service_type": "peer_support", "reason_template": "{visits} visits",
        "condition": {"fact": "visits", "days": 30, "op": ">=", "value": 8},
        "priority": 30, "reoffer_days": 30},
    "api_referrals.update_referral_rule": {
        "name": "Often here", "service_type": "peer_support", "reason_template": "{visits} visits",
        "condition": {"fact": "visits", "days": 30, "op": ">=", "value": 10},
        "priority": 30, "reoffer_days": 30},
    "api_incidents.create_incident": {"type": "other"},
    "api_incidents.update_incident": {"narrative": "Client slipped in the waiting room."},
    "api_incidents.submit_incident": {},
    "api_incidents.review_incident": {"decision": "start_review"},
    "api_displays.register_display": {"name": "Hall wall"},
    "api_displays.revoke_display": None,
    "api_tokens.revoke_api_token": None,
    "api_staff.create_staff": {"username": "newperson", "roles": ["nurse"]},
    "api_staff.update_staff": {"roles": ["nurse", "reviewer"]},
    "api_staff.reset_staff_credentials": {"pin": True},
    "api_clients.update_client_flags": {"flag_note": "Prefers the booth by the door"},
    "api_org.create_site": {"name": "North", "slug": "north", "timezone": "America/Toronto",
                            "booths": {"injection": 2}, "admin": {"username": "north-admin"}},
    "api_org.update_site": {"name": "East End"},
    "api_org.grant_org_admin": None,
    "api_org.remove_org_admin": None,
    "api_hat.enrol_patient": {"code": "F-WAIT-1982", "legal_name": "Test Patient",
                              "date_of_birth": "1982-03-04",
                              "eligibility": {"severe_oud": {"met": True}}, "pin": PIN},
    "api_hat.create_prescription": {"medication": "hydromorphone", "route": "iv",
                                    "dose_mg": 100, "sessions_per_day": 3,
                                    "starts_on": date.today().isoformat(), "pin": PIN},
    "api_hat.record_pre_dose_assessment": {"poss": 1},
    "api_hat.record_dose": lambda floor: _hat_dose(floor),
    "api_hat.record_dose_not_given": {"outcome": "declined", "reason": "Not today"},
    "api_hat.review_dosing_hold": lambda floor: {**_hat_held(floor), "reason": "Reviewed",
                                                 "pin": PIN},
    "api_hat.update_enrolment_state": {"state": "on_hold", "reason": "Review bloods",
                                       "pin": PIN},
    "api_hat.record_urine_test": {"result": "clear"},
    "api_hat.authorise_take_home": lambda floor: {**_take_home_ready(floor), "days": 1,
                                                  "pin": PIN},
    "api_hat.give_take_home_doses": None,
    "api_club_members.enrol_member": {"code": "F-WAIT-1982",
                                      "eligibility": {"current_use": {"met": True}}},
    "api_club_members.record_membership_step": {"step": "linkage_consent"},
    "api_club_members.record_linkage_conversation": {"outcome": "declined"},
    "api_compassion_eval.record_member_survey": {"overdoses_since": 0, "street_supply": "less",
                                                 "treatment_contact": True},
}


def _hat_dose(floor) -> dict:
    """A dose the floor's treatment patient may be given now: a prescription in force (made
    when none is), a pre-dose assessment that lets it go ahead and a register line of the
    medication holding some."""
    from srs.hat import dosing
    from srs.hat.models import HatPrescription

    enrolment = db.session.get(HatEnrolment, floor.url_values["enrolment_id"])
    nurse = floor_nurse_id()
    if not enrolment.prescriptions:
        db.session.add(HatPrescription(
            enrolment=enrolment, version=1, medication="hydromorphone", route="iv",
            dose_mg=100.0, sessions_per_day=3, min_interval_minutes=180,
            starts_on=date.today() - timedelta(days=2), signed_by=nurse, signed_at=utcnow()))
        db.session.commit()
    dosing.record_assessment(floor.site, enrolment.id, {"poss": 1},
                             actor=Actor.of(db.session.get(Staff, nurse)), now=utcnow())
    drug = make_controlled_drug(floor.site, name=f"Hydromorphone {make_staff().id}",
                                balance=3)
    return {"dose_mg": 100, "drug_id": drug.id, "quantity": 1}



def _hat_held(floor) -> dict:
    """The floor's treatment patient with dosing held after missed days (nothing to send)."""
    enrolment = db.session.get(HatEnrolment, floor.url_values["enrolment_id"])
    enrolment.state, enrolment.hold_reason, enrolment.held_at = "on_hold", "missed_doses", \
        utcnow()
    db.session.add(HatHold(enrolment_id=enrolment.id, reason="missed_doses",
                           held_at=utcnow()))
    db.session.commit()
    return {}


def _take_home_ready(floor) -> dict:
    """The floor's treatment patient meeting every take-home condition at a site allowing
    them: 7 months in treatment, two clear urine tests, on site 3 days of each of 4 weeks."""
    site, now = floor.site, utcnow()
    today = site.local_date(now)
    site.hat_take_home_allowed = True
    enrolment = db.session.get(HatEnrolment, floor.url_values["enrolment_id"])
    enrolment.enrolled_at = now - timedelta(days=214)
    prescription = HatPrescription(
        enrolment=enrolment, version=1, medication="hydromorphone", route="iv", dose_mg=100,
        sessions_per_day=3, min_interval_minutes=180, starts_on=today - timedelta(days=214),
        signed_by=enrolment.enrolled_by, signed_at=now - timedelta(days=214))
    db.session.add(prescription)
    db.session.flush()
    for back in (1, 5):
        db.session.add(HatUrineTest(enrolment_id=enrolment.id, day=today - timedelta(days=back),
                                    result="clear", recorded_by=enrolment.enrolled_by,
                                    recorded_at=now))
    for back in range(28):
        if back % 7 in (0, 2, 4):
            db.session.add(HatDose(
                site_id=site.id, enrolment_id=enrolment.id, prescription_id=prescription.id,
                day=today - timedelta(days=back), at=now, outcome="given", dose_mg=100))
    db.session.commit()
    return {}


def make_take_home(floor) -> HatTakeHome:
    """Take-home doses authorised for the floor's treatment patient, to give out."""
    _take_home_ready(floor)
    enrolment = db.session.get(HatEnrolment, floor.url_values["enrolment_id"])
    grant = HatTakeHome(
        enrolment_id=enrolment.id, first_day=floor.site.local_date(utcnow()) + timedelta(days=1),
        days=1, authorised_by=enrolment.enrolled_by, authorised_at=utcnow())
    db.session.add(grant)
    db.session.commit()
    return grant

def _club_batch_body() -> dict:
    return {"substance": "Heroin", "label_content": "Heroin", "source": "Lab supplier",
            "lot": f"Z-{make_staff().id}", "unit": "g", "expires_on": "2099-01-01"}


def _club_check(site, *components: str):
    """A drug check of a sample of a club batch: FTIR found heroin (and ``components``)."""
    from srs.drugchecks import service as drugchecks

    return drugchecks.record_check(site, {
        "methods": ["ftir"], "strips": {}, "sample_code": f"CLUB-{make_staff().id}",
        "components": [{"substance": name} for name in ("Heroin", *components)]},
        actor=ACTOR, now=utcnow())


def club_batch(site, *, blocked: bool = False):
    """A club batch of 10 g, received with a passing check (or one a finding blocked)."""
    from srs.compassion import supply

    check = _club_check(site, *(("Caffeine",) if blocked else ()))
    return supply.receive_batch(site, {**_club_batch_body(), "quantity": "10.0", "cost": "100",
                                       "expires_on": date(2099, 1, 1),
                                       "drug_check_id": check.id}, actor=ACTOR, now=utcnow())


def club_supply(site):
    """A take-home supply to the site's club member from a new batch (its label prints)."""
    from srs.compassion.models import Supply

    supply = Supply(site_id=site.id, member_id=club_member(site).id,
                    batch_id=club_batch(site).id, at=utcnow(), quantity_mg=1000,
                    price_cents=1000, mode="take_home")
    db.session.add(supply)
    db.session.commit()
    return supply


def club_member(site):
    """The site's active club member (one client code, made once)."""
    from srs.clients.models import Client
    from srs.compassion.models import Member

    client = db.session.execute(db.select(Client).filter_by(
        site_id=site.id, code="F-CLUB-1970")).scalar_one_or_none()
    if client is None:
        client = Client(site_id=site.id, code="F-CLUB-1970")
        db.session.add(client)
        db.session.flush()
    member = db.session.execute(db.select(Member).filter_by(
        site_id=site.id, client_id=client.id)).scalar_one_or_none()
    if member is None:
        member = Member(site_id=site.id, client_id=client.id, state="active",
                        applied_at=utcnow())
        db.session.add(member)
    db.session.commit()
    return member


def _controlled_receipt(floor) -> dict:
    drug = make_controlled_drug(floor.site, name=f"Diacetylmorphine {make_staff().id}")
    return {"drug_id": drug.id, "supplier": "Pharma Ltd", "invoice": "INV-1",
            "lot_number": "L1", "expires_on": "2099-01-01", "quantity": 5}


def _controlled_waste(floor, *, api: bool = False) -> dict:
    """A unit wasted from a line holding some, witnessed by a new member of the site."""
    drug = make_controlled_drug(floor.site, name=f"Diacetylmorphine {make_staff().id}",
                                balance=3)
    witness = make_staff(floor.site, role=Role.NURSE)
    return {"drug_id": drug.id, "kind": "wasted", "quantity": 1 if api else "1",
            "reason": "Dropped", "witness_id": witness.id if api else str(witness.id),
            "witness_pin": PIN}


def _controlled_count(floor, *, api: bool = False) -> dict:
    drug = make_controlled_drug(floor.site, name=f"Diacetylmorphine {make_staff().id}",
                                balance=3)
    first, second = (make_staff(floor.site, role=Role.NURSE) for _ in range(2))
    as_sent = (lambda v: v) if api else str
    return {"drug_id": as_sent(drug.id), "counted": as_sent(3), "first_id": as_sent(first.id),
            "first_pin": PIN, "second_id": as_sent(second.id), "second_pin": PIN}


def floor_nurse_id() -> int:
    """The floor's own nurse (a staff member of its site: a session's trainer)."""
    return db.session.execute(db.select(Staff.id).filter_by(username=FLOOR_NURSE)).scalar_one()


# Which report a route's ``incident_id`` names: one the caller wrote (a draft, or submitted)
# or, by default, one the floor's nurse submitted (what a reviewer works on).
INCIDENT_FOR = {
    "incidents.show": "own_submitted",
    "incidents.autosave": "own_draft",
    "incidents.submit": "own_draft",
    "incidents.amend": "own_submitted",
    "api_incidents.update_incident": "own_draft",
    "api_incidents.submit_incident": "own_draft",
    "api_incidents.get_incident": "own_draft",
}

# The query a route's URL carries, where what the route declares holds only with it: every
# role lists its own incident reports (without ``mine``, reviewers and admins alone).
QUERY_FOR = {"api_incidents.list_incidents": "mine=true",
             "training.trainee_row": "kind=police"}

# Which open visit a route's ``visit_id`` names (the state its action starts from).
VISIT_STATE_FOR = {
    "api_alerts.record_observation_check": "in_booth",
    "booths.check_dialog": "in_booth",
    "booths.record_check": "in_booth",
    "api_booths.record_consumption": "in_booth",
    "api_booths.start_observation": "in_booth",
    "api_booths.discharge_visit": "observing",
    "booths.consumption_dialog": "in_booth",
    "booths.record_consumption": "in_booth",
    "booths.start_observation": "in_booth",
    "booths.discharge_dialog": "in_booth",
    "booths.visit_dialog": "in_booth",
    "booths.discharge": "observing",
}

# Which state the drug alert a route's ``drug_alert_id`` names is in (else a draft that SRS
# drafted, which any supervisor may validate).
DRUG_ALERT_STATE_FOR = {
    "api_drugchecks.publish_drug_alert": "validated",
    "drugchecks.publish_alert": "validated",
    "drugchecks.renew_alert": "published",
    "drugchecks.read_alert": "published",
    "drugchecks.tell_client": "published",
    "drugchecks.hear_alert": "urgent",
    "earlywarning.poster": "published",
    "api_earlywarning.get_drug_alert_poster": "published",
}

# Which booth a route's ``booth_id`` names when not ``floor.booth`` (the one that needs cleaning).
BOOTH_FOR = {"booths.assign_booth": "free_booth"}


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str
    method: str
    arguments: frozenset

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"

    @property
    def is_api(self) -> bool:
        return self.rule.startswith("/api/")

    @property
    def at_one_site(self) -> bool:
        """True when the URL names a site, so roles count only at that site."""
        return bool(self.arguments & {"slug", "site_id"})

    @property
    def changes_state(self) -> bool:
        return self.method in STATE_CHANGING


@functools.cache
def routes() -> tuple[Route, ...]:
    """Every (rule, method) pair of the app, read from a throw-away app's url_map."""
    app = create_app(app_config("sqlite://"))
    return tuple(
        Route(rule.endpoint, rule.rule, method, frozenset(rule.arguments))
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
        for method in sorted(rule.methods)
    )


def make_floor() -> SimpleNamespace:
    """A site with its own nurse, a visit in each open state, a free booth, a booth that
    needs cleaning (``booth``, the one URLs name) and a second site for the outsider."""
    site = make_site(name="East", slug="east")
    booth = make_booth(site, label="B1", position=0)
    free_booth = make_booth(site, label="B2", position=1)
    busy_booth = make_booth(site, label="B3", position=2)
    nurse = make_staff(site, role=Role.NURSE, username=FLOOR_NURSE)
    actor, now = Actor.of(nurse), utcnow()

    def arrive(code):
        return floor_service.check_in(site, code=code, handle=None, actor=actor,
                                      actor_roles={"nurse"}, now=now)

    observing = floor_service.assign_booth(arrive("F-OBSV-1980"), booth, actor=actor, now=now)
    floor_service.start_observation(observing, actor=actor, now=now)  # B1 now needs cleaning
    in_booth = floor_service.assign_booth(arrive("F-BOTH-1981"), busy_booth, actor=actor,
                                          now=now)
    waiting = arrive("F-WAIT-1982")
    # An unresponsive client: a high alarm (the console's first entry below takes it).
    checks.record_check(in_booth, {"status": "unresponsive", "spo2": None,
                                   "respiratory_rate": None}, actor=actor, now=now)
    other_site = make_site(name="West", slug="west")
    # An emergency under way in the busy booth: a dose given with no nasal spray on hand
    # (a stock finding) and a lot of ampoules on the shelf.
    lot = naloxone_service.receive_stock(site, {
        "product": "Naloxone", "form": "ampoule", "strength": "0.4 mg/mL", "lot_number": "A1",
        "expires_on": date(2099, 1, 1), "quantity": 10}, actor=actor, now=now)
    response, _ = overdose_service.start_response(site, kind="opioid", visit=in_booth,
                                                  actor=actor, now=now)
    dose = overdose_service.record_intervention(response, {"kind": "naloxone", "route": "in"},
                                                actor=actor, now=now)
    finding = next(f for f in naloxone_service.list_stock(site, now=now)["findings"]
                   if f.kind == "discrepancy")
    # An after-care check due that nobody owns yet: the alert URLs' alert.
    alert = alerts.raise_alert(site=site, kind="observation_check_due", due_at=now, now=now,
                               visit=observing)
    incident = _report(site, nurse, submitted=True)
    packet = ReviewPacket(site_id=site.id, week_start=date(2026, 11, 16), created_at=now,
                          pdf=b"%PDF-1.4 kept", csv="id\n")
    db.session.add(packet)
    db.session.commit()
    factor = incident_service.factors_for(site)[0]
    # A patient in heroin-assisted treatment: the client in after-care.
    enrolment = HatEnrolment(
        site_id=site.id, client_id=observing.client_id, enrolled_at=now, enrolled_by=nurse.id,
        legal_name_enc=identity.encrypt("Floor Patient"),
        date_of_birth_enc=identity.encrypt("1980-01-02"), health_number_enc=None,
        eligibility={"severe_oud": {"met": True, "note": None}},
        eligibility_signed_by=nurse.id, eligibility_signed_at=now)
    db.session.add(enrolment)
    # A compassion-club member, active: the client in a booth.
    member = Member(site_id=site.id, client_id=in_booth.client_id, state="active",
                    applied_at=now, applied_by=nurse.id, active_since=now,
                    eligibility={"current_use": {"met": True, "note": None}})
    db.session.add(member)
    db.session.commit()
    # The site's wall display: the token is its sign-in link's, and the display principal's.
    display, display_token = auth_service.register_display(site, "Waiting room wall",
                                                           actor=actor, now=now)
    return SimpleNamespace(site=site, booth=booth, free_booth=free_booth, other_site=other_site,
                           alert=alert, visits={"waiting": waiting, "in_booth": in_booth,
                                                "observing": observing},
                           url_values={"response_id": response.id, "lot_id": lot.id,
                                       "intervention_id": dose.id, "finding_id": finding.id,
                                       "display_id": display.id, "token": display_token,
                                       "enrolment_id": enrolment.id,
                                       "member_id": member.id},
                           incident=incident, packet=packet, factor=factor, principal=None)


class _Ref:
    """A record by class and primary key, to be read again in another test's session."""

    def __init__(self, record):
        self.model = type(record)
        self.id = inspect(record).identity[0]  # no refresh: the key outlives expiry

    def load(self):
        return db.session.get(self.model, self.id)


def _keep(value):
    if isinstance(value, db.Model):
        return _Ref(value)
    if isinstance(value, dict):
        return {key: _keep(item) for key, item in value.items()}
    return value


def _load(value):
    if isinstance(value, _Ref):
        return value.load()
    if isinstance(value, dict):
        return {key: _load(item) for key, item in value.items()}
    return value


class KeptFloor:
    """``make_floor()`` built once for a module, with a staff member and an API token for
    every principal (none for the wall display: ``display_token`` signs it in) and one person
    holding every role at the floor's site and the organisation admin flag (``everyone``).

    Build it inside a module's ``rolled_back`` transaction; each test, in its savepoint of
    that transaction, reads its own copy with ``load()``.
    """

    def __init__(self):
        floor = make_floor()
        self._staff = {principal: make_principal(floor, principal) for principal in PRINCIPALS}
        self.tokens = {principal: bearer(staff) if staff else {}
                       for principal, staff in self._staff.items()}
        floor.principal = None
        floor.everyone = make_staff(roles=[(floor.site, role.value) for role in Role])
        floor.everyone.org_admin = True  # and the organisation's pages and operations
        db.session.commit()
        self.everyone_token = bearer(floor.everyone)
        # The SMS gateway's token: its operations open to it alone.
        self.gateway_token = {"Authorization": "Bearer " + new_gateway_token(
            actor=ACTOR, now=utcnow())}
        self.display_token = floor.url_values["token"]
        self._floor = _keep(vars(floor))
        self._staff = _keep(self._staff)

    def load(self, principal: str | None = None) -> SimpleNamespace:
        """This test's floor; with ``principal``, ``floor.principal`` is that staff member
        (None for anonymous), as ``make_principal`` leaves it."""
        floor = SimpleNamespace(**_load(self._floor))
        if principal is not None:
            floor.principal = _load(self._staff[principal])
        return floor


def _report(site, staff, *, submitted: bool):
    """A complete incident report written by ``staff``, submitted or still a draft."""
    actor, now = Actor.of(staff), utcnow()
    incident = incident_service.create_incident(site, {
        "type": "other", "area": "Waiting room", "harm": "none",
        "narrative": "Client fell in the waiting room.",
        "immediate_actions": "Checked for injury."}, actor=actor, now=now)
    if submitted:
        incident_service.submit_incident(incident, actor=actor, now=now)
    return incident


def make_principal(floor, principal: str):
    """The staff member behind ``principal`` (None for anonymous and the wall display)."""
    if principal in (ANONYMOUS, WALL_DISPLAY):
        return None
    if principal == OTHER_SITE:
        floor.principal = make_staff(roles=[(floor.other_site, role.value) for role in Role])
    elif principal == ORG_ADMIN_ONLY:
        floor.principal = auth_service.create_staff(
            "org-admin", display_name=None, password=PASSWORD, pin=PIN, roles=[], actor=ACTOR,
            org_admin=True)
    else:
        floor.principal = make_staff(floor.site, role=principal)
    return floor.principal


def url_of(route: Route, floor, **overrides) -> str:
    """The route's URL at the floor's site and booth (``overrides`` replace parameters)."""
    visit = floor.visits[VISIT_STATE_FOR.get(route.endpoint, "waiting")]
    booth = getattr(floor, BOOTH_FOR.get(route.endpoint, "booth"))
    values = {"slug": floor.site.slug, "site_id": floor.site.id, "booth_id": booth.id,
              "visit_id": visit.id, "alert_id": floor.alert.id, "filename": "srs.js",
              "packet_id": floor.packet.id, "factor_id": floor.factor.id,
              **getattr(floor, "url_values", {}), **named_records(route, floor),
              **overrides}
    if route.endpoint in JUST_STARTED and "response_id" not in overrides:
        # "Started by mistake" answers only within 30 s of the start: a response of this test.
        values["response_id"] = _just_started(floor.site).id
    if "<int:incident_id>" in route.rule and "incident_id" not in overrides:
        wanted = INCIDENT_FOR.get(route.endpoint)
        if wanted and getattr(floor, "principal", None) is not None:
            values["incident_id"] = _report(floor.site, floor.principal,
                                            submitted=wanted == "own_submitted").id
        else:
            values["incident_id"] = floor.incident.id

    def fill(match):
        name = match.group(1)
        assert name in values, f"{route}: no test value for URL parameter {name!r}"
        return str(values[name])

    url = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", fill, route.rule)
    return f"{url}?{QUERY_FOR[route.endpoint]}" if route.endpoint in QUERY_FOR else url


# Routes that take the organisation admin flag from the person their ``staff_id`` names.
TAKES_THE_FLAG = {"org.remove_org_admin", "api_org.remove_org_admin"}

# Routes on a response that must have started moments ago.
JUST_STARTED = {"overdose.cancel"}


def _just_started(site):
    response, _ = overdose_service.start_response(
        site, kind="opioid", location=site.overdose_locations[0], actor=ACTOR, now=utcnow())
    return response


def named_records(route: Route, floor) -> dict:
    """Records of the floor's site that only some URLs name, made for those routes alone."""
    from factories import (
        make_client,
        make_controlled_loss,
        make_referral,
        make_rule,
        make_service,
    )

    values = {}
    if "service_type" in route.arguments:
        values["service_type"] = "oat"
    if "service_id" in route.arguments:
        values["service_id"] = make_service(floor.site, service_type="peer_support").id
    if "rule_id" in route.arguments:
        values["rule_id"] = make_rule(floor.site).id
    if "referral_id" in route.arguments:
        values["referral_id"] = make_referral(floor.visits["observing"]).id
    if "staff_id" in route.arguments:
        # A nurse of the floor's site, new for this test: any admin change may befall them.
        person = make_staff(floor.site, role=Role.NURSE)
        if route.endpoint in TAKES_THE_FLAG:  # someone whose flag there is to take
            person.org_admin = True
            db.session.commit()
        values["staff_id"] = person.id
    if "client_id" in route.arguments:
        # A client of the site under a restriction, which any route of theirs may lift.
        client = make_client(floor.site)
        client.restricted_until = date.today() + timedelta(days=7)
        client.restriction_reason = "Violence or threats"
        db.session.commit()
        values["client_id"] = client.id
    if "kit_id" in route.arguments:  # a kit given out, whose use can be reported
        values["kit_id"] = make_kit(floor, issued=True).id
    if "drug_alert_id" in route.arguments:
        values["drug_alert_id"] = make_drug_alert(
            floor.site, DRUG_ALERT_STATE_FOR.get(route.endpoint, "draft")).id
    if "count_id" in route.arguments:  # a controlled-drug count that found a loss
        values["count_id"] = make_controlled_loss(floor.site).id
    if "member_id" in route.arguments:  # the site's active club member
        values["member_id"] = club_member(floor.site).id
    if "batch_id" in route.arguments:  # a club batch (blocked, for clearing)
        values["batch_id"] = club_batch(
            floor.site, blocked=route.endpoint == "club_supply.clear_batch").id
    if "supply_id" in route.arguments:  # a club supply, for its label
        values["supply_id"] = club_supply(floor.site).id
    if "take_home_id" in route.arguments:  # take-home doses authorised, to give out
        values["take_home_id"] = make_take_home(floor).id
    if "what" in route.arguments:  # which secret a reset replaces
        values["what"] = "pin"
    if "token_id" in route.arguments:
        # A token of the caller's own, which anyone may revoke; with no caller, one of the
        # floor's nurse, which the site's admin may revoke.
        holder = getattr(floor, "principal", None) or db.session.execute(
            db.select(Staff).filter_by(username=FLOOR_NURSE)).scalar_one()
        issue_token(holder, actor=ACTOR)
        values["token_id"] = auth_service.tokens_of(holder)[0].id
    return values


def page_form(route: Route, floor) -> dict:
    """The form a post to a page sends besides its CSRF token (PAGE_FORMS)."""
    form = PAGE_FORMS.get(route.endpoint, {})
    return form(floor) if callable(form) else form


def make_kit(floor, *, issued: bool = False):
    """A take-home kit of the floor's site made from its ampoule lot: in stock, or given to
    a client (a kit whose use can be reported)."""
    from srs.naloxone import kits

    site = floor.site
    serial = f"K-{db.session.scalar(db.select(db.func.count(NaloxoneKit.id))) + 1:05d}"
    kit = kits.add_kits(site, {"lot_id": floor.url_values["lot_id"], "first_serial": serial},
                        actor=ACTOR, now=utcnow())[0]
    if issued:
        naloxone_service.issue_kit(site, {"serial": kit.serial, "client_code": "F-KITS-1990"},
                                   actor=ACTOR, now=utcnow())
    return kit


def make_drug_alert(site, state: str = "draft"):
    """A drug alert covering ``site`` drafted by SRS itself, taken to ``state`` (``urgent``:
    published, and sounding until someone acknowledges it)."""
    from srs.drugchecks import service as drugchecks

    now = utcnow()
    alert = drugchecks.create_alert(site, {"found": "Blue pills", "urgent": state == "urgent"},
                                    actor=ACTOR, now=now)
    if state in ("validated", "published", "urgent"):
        drugchecks.validate_alert(alert, site, actor=ACTOR, now=now)
    if state in ("published", "urgent"):
        drugchecks.publish_alert(alert, site, actor=ACTOR, now=now)
    return alert


def queued_text(site) -> int:
    """The id of a text queued for a new subscriber about a new public alert of ``site``."""
    from srs.drugchecks import inbound, outbox
    from srs.drugchecks import service as drugchecks

    inbound.receive_text("+15550100199", "JOIN", now=utcnow())
    alert = make_drug_alert(site, "validated")
    alert.audience = "public"
    drugchecks.publish_alert(alert, site, actor=ACTOR, now=utcnow())
    return db.session.execute(db.select(outbox.OutboxMessage.id).filter_by(
        drug_alert_id=alert.id)).scalar_one()


def bearer(staff) -> dict:
    """The Authorization header of a fresh API token for ``staff``."""
    return {"Authorization": f"Bearer {issue_token(staff, actor=ACTOR)}"}


def api_body(route: Route, floor=None):
    """The JSON body a call to ``route`` sends (None for reads and bodiless actions)."""
    if not route.changes_state:
        return None
    if route.endpoint not in API_BODIES:
        pytest.fail(f"{route} ({route.endpoint}) changes state but API_BODIES has no valid "
                    f"minimal body for it: add one in tests/routes.py")
    body = API_BODIES[route.endpoint]
    return body(floor) if callable(body) else body


def field_error(body: str, field: str) -> str:
    """The message a page shows beside ``field`` (fails when there is none)."""
    match = re.search(rf'<p class="field-error"[^>]*data-error-for="{field}">(.*?)</p>', body,
                      re.S)
    assert match, f"no message beside {field!r}"
    return match.group(1).strip()


def pdf_text(data: bytes) -> str:
    """The words a PDF holds, read back with pdftotext (``make test`` installs poppler-utils:
    a machine without it fails here rather than skipping what the PDF must say)."""
    assert data.startswith(b"%PDF")
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


def input_value(body: str, name: str) -> str:
    """What a page's input ``name`` holds: what was typed, kept after a refusal."""
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', body)
    assert match, f"no input {name!r}"
    return match.group(1)


def assert_api_error(response, status: int, *fields: str) -> dict:
    """Assert the API's error shape with ``status``; each of ``fields`` has a message."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", text
    body = response.get_json()
    assert ERROR_KEYS <= body.keys(), body
    assert body["status"] == status
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["errors"], dict), body
    for field in fields:
        assert body["errors"].get(field), f"no message on {field!r}: {body}"
    return body


def redirect_path(response) -> str:
    return urlsplit(response.headers["Location"]).path


def declared_roles(app, endpoint: str):
    if endpoint in UNDECLARED_PUBLIC:
        return PUBLIC
    view = app.view_functions[endpoint]
    if not hasattr(view, "srs_roles"):
        pytest.fail(f"{endpoint} declares no srs_roles: protect it with public, "
                    f"staff_required, site_role_required, any_site_role_required, "
                    f"org_admin_required, token_required or org_admin_token_required")
    return view.srs_roles


def may_call(declared, principal: str, route: Route) -> bool:
    if declared == GATEWAY:  # the SMS gateway's own token, which no principal here holds
        return False
    if route.is_api and declared == PUBLIC:  # no token at all: anyone, a device too
        return True
    if principal == WALL_DISPLAY:
        # Reads the pages that declare it, and the public ones; acts on nothing, not even a
        # public form (signing in or out); holds no API token.
        if route.changes_state:
            return False
        return declared == PUBLIC or (not route.is_api and isinstance(declared, frozenset)
                                      and DISPLAY in declared)
    if declared == PUBLIC:
        return True
    if principal == ANONYMOUS:
        return False
    if declared == ANY_STAFF:
        return True
    if declared == ORG_ADMIN:
        return principal == ORG_ADMIN_ONLY
    if principal == ORG_ADMIN_ONLY:  # the flag holds no role at any site
        return False
    if principal == OTHER_SITE:
        # Holds every role, but elsewhere: enough only where the URL names no site.
        return not route.at_one_site
    return principal in declared
