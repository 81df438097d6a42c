"""What referrals hold about a client, for their page and their access request: the offers
put to them, the referrals they accepted and what became of each, their care profile."""

from srs import signals
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.extensions import db
from srs.referrals.models import CareProfile, Referral, ReferralOffer


@signals.client_summary.connect
def count_referrals(client: Client) -> dict[str, int]:
    return {"Referrals": db.session.scalar(
        db.select(db.func.count(Referral.id)).where(Referral.client_id == client.id))}


@signals.client_record.connect
def referral_records(client: Client) -> list[Section]:
    offers = db.session.execute(db.select(ReferralOffer).where(
        ReferralOffer.client_id == client.id).order_by(ReferralOffer.offered_at,
                                                       ReferralOffer.id)).scalars()
    referrals = list(db.session.execute(db.select(Referral).where(
        Referral.client_id == client.id).order_by(Referral.referred_at, Referral.id)).scalars())
    made = section("referral", "Referrals and outcomes", referrals, (
        "id", "offer_id", "service_id", "consent_given", "referred_at", "referred_by",
        "follow_up_due", "outcome", "outcome_at", "outcome_by"), audit_entity="referral")
    made.columns = (*made.columns[:3], "service_name", *made.columns[3:])
    for row, referral in zip(made.rows, referrals, strict=True):
        row["service_name"] = referral.service.name
    profile = db.session.get(CareProfile, client.id)
    return [
        section("referral_offer", "Referral offers", offers, (
            "id", "visit_id", "service_type", "reason", "status", "offered_at", "offered_by",
            "decided_at", "decided_by"), audit_entity="referral_offer"),
        made,
        section("care_profile", "Care profile", [profile] if profile else [], (
            "oat_medication", "failed_oral_oat", "last_hiv_test", "last_hcv_test", "housing",
            "wound_noted_on", "treatment_interest_on", "updated_at", "updated_by")),
    ]
