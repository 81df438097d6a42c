"""Incident reports through their stages: who may move them, and what is refused."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import make_booth, make_client, make_site, make_staff

from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.errors import Conflict, Forbidden, Invalid
from srs.extensions import db
from srs.incidents import service
from srs.incidents.models import IncidentHistory, Stage

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
COMPLETE = {"type": "violence", "area": "Waiting room", "harm": "low",
            "narrative": "F-ABCD-1984 shouted at another client and threw a chair.",
            "immediate_actions": "De-escalated; the client left calmly."}


@pytest.fixture
def people(app):
    site = make_site(booths=2)
    return {"site": site, "nurse": make_staff(site, role="nurse"),
            "other_nurse": make_staff(site, role="nurse"),
            "reviewer": make_staff(site, role="reviewer"),
            "second_reviewer": make_staff(site, role="reviewer"),
            "reviewing_nurse": make_staff(roles=[(site, "nurse"), (site, "reviewer")])}


def actor(staff):
    return Actor.of(staff)


def roles(site, staff):
    return staff.roles_at(site.id)


def submitted(people, author="nurse"):
    site, staff = people["site"], people[author]
    incident = service.create_incident(site, COMPLETE, actor=actor(staff), now=NOW)
    return service.submit_incident(incident, actor=actor(staff), now=NOW)


def review(people, incident, who, now=NOW, **data):
    staff = people[who]
    return service.review_incident(incident, data, actor=actor(staff),
                                   roles=roles(people["site"], staff), now=now)


def test_a_report_goes_from_draft_to_closed_with_a_visible_history(people):
    site, nurse = people["site"], people["nurse"]
    incident = service.create_incident(site, {"type": "overdose"}, actor=actor(nurse), now=NOW)
    assert incident.stage == Stage.DRAFT
    service.update_incident(incident, COMPLETE, actor=actor(nurse), roles={"nurse"}, now=NOW)
    service.submit_incident(incident, actor=actor(nurse), now=NOW)
    assert incident.stage == Stage.SUBMITTED and incident.submitted_at == NOW

    review(people, incident, "reviewer", decision="start_review")
    assert incident.stage == Stage.UNDER_REVIEW and incident.reviewer_id == people["reviewer"].id
    factor = service.factors_for(site)[1]
    review(people, incident, "reviewer", factor_ids=[factor.id], lessons_learned="Call sooner.",
           feedback="Good de-escalation.", new_actions=[{
               "description": "Move the chairs", "owner_id": nurse.id,
               "due_on": date(2026, 11, 25)}])
    review(people, incident, "reviewer", decision="request_approval")
    assert incident.stage == Stage.AWAITING_APPROVAL
    review(people, incident, "second_reviewer", decision="approve")
    assert incident.stage == Stage.CLOSED
    assert incident.closed_by == people["second_reviewer"].id
    assert [f.id for f in incident.factors] == [factor.id]
    assert incident.actions[0].owner_id == nurse.id
    stages = [(h.stage_from, h.stage_to) for h in incident.history if h.kind == "stage"]
    assert stages == [("draft", "submitted"), ("submitted", "under_review"),
                      ("under_review", "awaiting_approval"), ("awaiting_approval", "closed")]
    actions = set(db.session.execute(db.select(AuditEvent.action).filter_by(
        entity="incident", entity_id=str(incident.id))).scalars())
    assert {"incident_created", "incident_submitted", "incident_approve"} <= actions


def test_only_reviewers_review(people):
    incident = submitted(people)
    with pytest.raises(Forbidden):
        review(people, incident, "other_nurse", decision="start_review")
    assert incident.stage == Stage.SUBMITTED


def test_a_reviewer_cannot_approve_a_report_they_wrote(people):
    incident = submitted(people, author="reviewing_nurse")
    review(people, incident, "reviewing_nurse", decision="start_review")
    review(people, incident, "reviewing_nurse", feedback="Thanks.")
    review(people, incident, "reviewing_nurse", decision="request_approval")
    with pytest.raises(Forbidden, match="another reviewer"):
        review(people, incident, "reviewing_nurse", decision="approve")
    db.session.rollback()
    assert incident.stage == Stage.AWAITING_APPROVAL
    review(people, incident, "reviewer", decision="approve")
    assert incident.stage == Stage.CLOSED


def test_stages_cannot_be_skipped_or_repeated(people):
    incident = submitted(people)
    with pytest.raises(Conflict) as refused:
        review(people, incident, "reviewer", decision="approve")
    assert refused.value.detail["current_stage"] == "submitted"
    with pytest.raises(Conflict):
        service.submit_incident(incident, actor=actor(people["nurse"]), now=NOW)
    with pytest.raises(Conflict):
        review(people, incident, "reviewer", feedback="Too early")


def test_approval_needs_feedback_for_the_reporter(people):
    incident = submitted(people)
    review(people, incident, "reviewer", decision="start_review")
    with pytest.raises(Invalid) as refused:
        review(people, incident, "reviewer", decision="request_approval")
    assert "feedback" in refused.value.errors


def test_only_the_reporter_edits_or_submits_a_draft(people):
    site = people["site"]
    incident = service.create_incident(site, COMPLETE, actor=actor(people["nurse"]), now=NOW)
    with pytest.raises(Forbidden):
        service.update_incident(incident, {"narrative": "x"}, actor=actor(people["other_nurse"]),
                                roles={"nurse"}, now=NOW)
    with pytest.raises(Forbidden):
        service.submit_incident(incident, actor=actor(people["other_nurse"]), now=NOW)


def test_an_incomplete_draft_is_not_submitted(people):
    site, nurse = people["site"], people["nurse"]
    incident = service.create_incident(site, {"type": "threat"}, actor=actor(nurse), now=NOW)
    with pytest.raises(Invalid) as refused:
        service.submit_incident(incident, actor=actor(nurse), now=NOW)
    assert set(refused.value.errors) == {"narrative", "immediate_actions", "area"}


def test_a_closed_report_changes_only_by_amendment_with_a_reason(people):
    incident = submitted(people)
    review(people, incident, "reviewer", decision="start_review")
    review(people, incident, "reviewer", feedback="Noted.", decision="request_approval")
    review(people, incident, "second_reviewer", decision="approve")
    nurse = people["nurse"]
    with pytest.raises(Invalid) as refused:
        service.update_incident(incident, {"harm": "moderate"}, actor=actor(nurse),
                                roles={"nurse"}, now=NOW)
    assert "amendment_reason" in refused.value.errors
    db.session.rollback()
    assert incident.harm == "low"

    later = NOW + timedelta(days=2)
    service.update_incident(incident, {"harm": "moderate"}, actor=actor(nurse),
                            roles={"nurse"}, now=later,
                            amendment_reason="The client's injury was worse than first seen.")
    assert incident.harm == "moderate" and incident.stage == Stage.CLOSED
    amendment = db.session.execute(db.select(IncidentHistory).filter_by(
        incident_id=incident.id, kind="amendment")).scalar_one()
    assert amendment.changes == {"harm": ["low", "moderate"]}
    assert amendment.reason.startswith("The client's injury")
    assert amendment.staff_id == nurse.id and amendment.at == later


def test_someone_else_cannot_amend(people):
    incident = submitted(people)
    with pytest.raises(Forbidden):
        service.update_incident(incident, {"harm": "severe"}, actor=actor(people["other_nurse"]),
                                roles={"nurse"}, now=NOW, amendment_reason="Because")


@pytest.mark.parametrize("text, found", [
    ("Shawn Miller took a second dose.", "Shawn Miller"),
    ("Client gave her number 604-555-0199 to staff.", "604-555-0199"),
    ("Call +41 44 123 45 67 for the shelter.", "+41 44 123 45 67"),
    ("Sparky fell asleep in booth 2.", "Sparky"),
])
def test_the_identifier_check_flags_likely_identifiers(people, text, found):
    make_client(people["site"], code="M-SPRK-1990", handle="Sparky")
    findings = service.identifier_findings(text, site=people["site"])
    assert any(found in f for f in findings), findings


@pytest.mark.parametrize("text", [
    "F-ABCD-1984 was found unresponsive in booth B2 at 14:32 on 2026-11-18.",
    "The Client was given Naloxone twice; EMS arrived at 14:50.",
    "Nurse gave oxygen. Client recovered in After-care.",
])
def test_the_identifier_check_leaves_codes_times_and_ordinary_words(people, text):
    make_client(people["site"], code="M-SPRK-1990", handle="Sparky")
    assert service.identifier_findings(text, site=people["site"]) == []


def test_submission_asks_the_reporter_to_replace_identifiers(people):
    site, nurse = people["site"], people["nurse"]
    incident = service.create_incident(site, {**COMPLETE, "narrative": "Shawn Miller fell."},
                                       actor=actor(nurse), now=NOW)
    with pytest.raises(Invalid) as refused:
        service.submit_incident(incident, actor=actor(nurse), now=NOW)
    assert any("Shawn Miller" in m for m in refused.value.errors["narrative"])
    db.session.rollback()
    assert incident.stage == Stage.DRAFT
    # The reporter checked: "Shawn Miller" is the name of a street here, say.
    service.submit_incident(incident, actor=actor(nurse), now=NOW, identifiers_checked=True)
    assert incident.stage == Stage.SUBMITTED


def test_clients_are_named_by_code_and_unknown_codes_refused(people):
    site, nurse = people["site"], people["nurse"]
    client = make_client(people["site"], code="F-WXYZ-1990")
    incident = service.create_incident(site, {"client_codes": ["f-wxyz-1990"]},
                                       actor=actor(nurse), now=NOW)
    assert incident.clients == [client]
    with pytest.raises(Invalid) as refused:
        service.update_incident(incident, {"client_codes": ["M-NONE-2000"]},
                                actor=actor(nurse), roles={"nurse"}, now=NOW)
    assert "client_codes" in refused.value.errors


def test_the_overdose_console_starts_a_draft_for_its_response(people):
    site, nurse = people["site"], people["nurse"]
    booth = make_booth(site, label="B9")
    client = make_client(site)
    incident = service.draft_incident(
        site, type="overdose", occurred_at=NOW - timedelta(minutes=20), location="B9",
        narrative="Unresponsive after injecting; naloxone x2.", client_ids=[client.id],
        actor=actor(nurse), now=NOW, response_id=41)
    assert incident.stage == Stage.DRAFT and incident.response_id == 41
    assert incident.booth_id == booth.id and incident.clients == [client]
    assert incident.reported_by == nurse.id
    elsewhere = service.draft_incident(
        site, type="overdose", occurred_at=NOW, location="Washroom", narrative="",
        client_ids=[], actor=actor(nurse), now=NOW)
    assert elsewhere.booth_id is None and elsewhere.area == "Washroom"


def test_the_admin_edits_the_two_level_factor_list(people):
    site = people["site"]
    admin = make_staff(site, role="admin")
    tree = service.factor_tree(site)
    assert len(tree) == 5 and all(items for _group, items in tree)
    group = tree[0][0]
    added = service.add_factor(site, label="Door alarm", parent_id=group.id,
                               actor=actor(admin), now=NOW)
    assert added.full_label == f"{group.label}: Door alarm"
    with pytest.raises(Invalid):
        service.add_factor(site, label="Nested", parent_id=added.id, actor=actor(admin),
                           now=NOW)
    service.set_factor_active(site, added.id, active=False, actor=actor(admin), now=NOW)
    assert added.id not in {f.id for f in service.factors_for(site)}


def test_overdue_actions_are_the_open_ones_past_their_date(people):
    incident = submitted(people)
    review(people, incident, "reviewer", decision="start_review")
    owner = people["nurse"].id
    review(people, incident, "reviewer", new_actions=[
        {"description": "Late", "owner_id": owner, "due_on": date(2026, 11, 10)},
        {"description": "Not yet", "owner_id": owner, "due_on": date(2026, 11, 30)},
        {"description": "Done late", "owner_id": owner, "due_on": date(2026, 11, 9)}])
    done = [a for a in incident.actions if a.description == "Done late"][0]
    review(people, incident, "reviewer", done_action_ids=[done.id])
    overdue = service.overdue_actions(people["site"], today=date(2026, 11, 18))
    assert [a.description for a in overdue] == ["Late"]
