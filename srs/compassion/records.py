"""What the compassion club holds about a client, for their access request: their
memberships (codes only: a legal identity, where the site's rules need one, is read on the
member's page by prescribers and pharmacists, never exported), the steps each took before a
first supply and their treatment-linkage conversations."""

from srs import signals
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.compassion.models import LinkageConversation, Member, MembershipStep
from srs.extensions import db


@signals.client_record.connect
def club_member_records(client: Client) -> list[Section]:
    found = list(db.session.execute(db.select(Member).where(
        Member.client_id == client.id).order_by(Member.applied_at, Member.id)).scalars())
    ids = [m.id for m in found]

    def of_members(model, *order):
        if not ids:
            return []
        return list(db.session.execute(db.select(model).where(
            model.member_id.in_(ids)).order_by(*order)).scalars())

    return [
        section("compassion_member", "Compassion club memberships", found, (
            "id", "site_id", "state", "applied_at", "applied_by", "active_since",
            "eligibility", "suspended_reason", "suspended_until", "ended_at",
            "ended_reason"), audit_entity="compassion_member"),
        section("compassion_step", "Compassion club steps before a first supply",
                of_members(MembershipStep, MembershipStep.at, MembershipStep.id), (
                    "id", "member_id", "step", "at", "by", "consent_text_id",
                    "training_session_id", "note")),
        section("compassion_linkage", "Compassion club treatment-linkage conversations",
                of_members(LinkageConversation, LinkageConversation.at,
                           LinkageConversation.id), (
                    "id", "member_id", "at", "by", "outcome", "referral_id", "note")),
    ]
