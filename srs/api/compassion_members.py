"""Compassion club members: enrol a client (by code) with the site's eligibility checklist,
record the steps before a first supply, read a member and list the club's members, and
record a treatment-linkage conversation. Codes and handles only: a legal identity is taken
at enrolment where the site's rules need one (refused elsewhere) and never returned.

Every state-changing operation accepts an ``Idempotency-Key`` header: a repeat returns the
first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.common import utcnow
from srs.compassion import members
from srs.compassion.member_schemas import (
    EnrolMemberSchema,
    LinkageInputSchema,
    LinkageSchema,
    MemberListQuerySchema,
    MemberListSchema,
    MemberRecordSchema,
    MemberSchema,
    MembershipStepInputSchema,
    StepSchema,
)
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_club_members", __name__, url_prefix="/api/v1",
                description="Compassion club: members, the steps before a first supply and "
                            "treatment-linkage conversations")
CONFLICT = {409: {"description": "The client is a member already, the step is recorded "
                                 "already, or the membership has ended."}}
SCREENING = {403: {"description": "The screening step by someone who is no prescriber or "
                                  "screener at the site."}}


def member_record(site, member, now) -> dict:
    return {"member": member, "steps_missing": members.steps_missing(site, member),
            "linkage": members.linkage_history(member),
            "linkage_due_at": members.linkage_due_at(site, member)}


@blp.post("/sites/<int:site_id>/club/members")
@blp.doc(operationId="enrolMember", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*members.CLUB)
@idempotent
@blp.arguments(EnrolMemberSchema)
@blp.response(201, MemberSchema)
def enrol_member(data, site_id):
    """Enrol a client the site knows (by code) in the club as an applicant, with the site's
    eligibility checklist (each item met or not, with a note). Every step is then required
    before the member is active, but those the site waives."""
    return members.enrol_member(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.get("/sites/<int:site_id>/club/members")
@blp.doc(operationId="listMembers", security=SECURITY)
@token_required(*members.CLUB)
@blp.arguments(MemberListQuerySchema, location="query")
@blp.response(200, MemberListSchema)
def list_members(query, site_id):
    """The club's members by code (``state``: only those). A suspension whose end has
    passed is over at this read."""
    return {"members": members.list_members(get_site(site_id), state=query["state"],
                                            actor=api_actor(), now=utcnow())}


@blp.get("/sites/<int:site_id>/club/members/<int:member_id>")
@blp.doc(operationId="getMember", security=SECURITY)
@token_required(*members.CLUB)
@blp.response(200, MemberRecordSchema)
def get_member(site_id, member_id):
    """A member with their steps (who and when), the steps still missing, their linkage
    conversations and when the next is due."""
    site, now = get_site(site_id), utcnow()
    member = members.get_member(site, member_id, actor=api_actor(), now=now)
    return member_record(site, member, now)


@blp.post("/sites/<int:site_id>/club/members/<int:member_id>/steps")
@blp.doc(operationId="recordMembershipStep", security=SECURITY,
         responses={**CONFLICT, **SCREENING}, **IDEMPOTENCY)
@token_required(*members.CLUB)
@idempotent
@blp.arguments(MembershipStepInputSchema)
@blp.response(201, StepSchema)
def record_membership_step(data, site_id, member_id):
    """Record a step before a first supply: screening (a prescriber or screener only),
    risk_consent (the site's consent text in force, by version; 422 when it has none),
    naloxone_training (the client's session of the naloxone program, or training given
    now), linkage_consent. Once every step the site requires is done the member is active."""
    return members.record_step(get_site(site_id), member_id, data, actor=api_actor(),
                               now=utcnow())


@blp.post("/sites/<int:site_id>/club/members/<int:member_id>/linkage")
@blp.doc(operationId="recordLinkageConversation", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*members.CLUB)
@idempotent
@blp.arguments(LinkageInputSchema)
@blp.response(201, LinkageSchema)
def record_linkage_conversation(data, site_id, member_id):
    """A treatment-linkage conversation: offered, accepted, declined or not_now. Declining
    never changes the membership. With ``accepted``, ``service_id`` refers the member
    through the referral engine during their open visit (422 without one)."""
    return members.record_linkage(get_site(site_id), member_id, data, actor=api_actor(),
                                  now=utcnow())
