"""The service directory, care profiles, referral rules (versioned), offers and referrals.

An offer is what the nurse did with one suggestion in one visit: offered, then
accepted, declined or "not now". An accepted offer becomes a referral to a
service in the directory, with consent and a follow-up date; its outcome
(presented for assessment or not) is the one published measure of uptake.
"""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime, utcnow
from srs.extensions import db

# Service types, labelled as staff say them. Health Canada counts wound care and testing as
# services given inside a site and the rest as referrals outside it; a directory entry says
# which it is (``on_site``), since some sites run an OAT clinic of their own.
SERVICE_TYPES = {
    "oat": "Opioid agonist treatment (OAT)",
    "ioat": "Injectable OAT / heroin-assisted treatment",
    "withdrawal": "Withdrawal management (detox)",
    "primary_care": "Primary care",
    "wound_care": "Wound care",
    "testing": "HIV, HCV and STI testing",
    "mental_health": "Mental health",
    "housing": "Housing",
    "income_social": "Income and social services",
    "peer_support": "Peer support",
    "naloxone_training": "Naloxone training and take-home kit",
}

OAT_MEDICATIONS = {
    "none": "Not on OAT",
    "methadone": "Methadone",
    "buprenorphine": "Buprenorphine/naloxone",
    "sr_oral_morphine": "Slow-release oral morphine",
    "injectable": "Injectable OAT (iOAT/HAT)",
    "other": "Other",
}

HOUSING = {
    "unknown": "Not asked",
    "housed": "Housed",
    "unstable": "Unstable (shelter, couch surfing)",
    "no_fixed_address": "No fixed address",
}


class OfferStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_NOW = "not_now"


OFFER_STATUSES = {
    OfferStatus.OFFERED: "Offered",
    OfferStatus.ACCEPTED: "Accepted",
    OfferStatus.DECLINED: "Declined",
    OfferStatus.NOT_NOW: "Not now",
}

FOLLOW_UP_OUTCOMES = {
    "presented": "Presented for assessment",
    "did_not_present": "Did not present",
    "unknown": "Unknown",
}


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Service(db.Model):
    """One entry of a site's service directory."""

    __tablename__ = "referral_service"
    __table_args__ = (
        CheckConstraint(_one_of("service_type", SERVICE_TYPES), name="type_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    service_type: Mapped[str] = mapped_column(String(30))
    on_site: Mapped[bool] = mapped_column(Boolean, default=False)
    contact: Mapped[str | None] = mapped_column(String(200))
    hours: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<Service {self.id} {self.service_type}>"


class CareProfile(db.Model):
    """What the client chose to tell staff about their care; every field is optional."""

    __tablename__ = "care_profile"
    __table_args__ = (
        CheckConstraint(_one_of("oat_medication", OAT_MEDICATIONS), name="oat_known"),
        CheckConstraint(_one_of("housing", HOUSING), name="housing_known"),
        CheckConstraint("failed_oral_oat BETWEEN 0 AND 20", name="failed_oral_oat_range"),
    )

    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"),
                                           primary_key=True)
    oat_medication: Mapped[str] = mapped_column(String(30), default="none")
    failed_oral_oat: Mapped[int] = mapped_column(Integer, default=0)
    last_hiv_test: Mapped[date | None] = mapped_column(Date)
    last_hcv_test: Mapped[date | None] = mapped_column(Date)
    housing: Mapped[str] = mapped_column(String(30), default="unknown")
    wound_noted_on: Mapped[date | None] = mapped_column(Date)
    treatment_interest_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class ReferralRule(db.Model):
    """One version of a site's rule: a condition over the facts, what to suggest and why.

    Editing a rule adds a version and closes the previous one (``superseded_at``);
    offers keep the version that made them. ``key`` names the rule across versions.
    """

    __tablename__ = "referral_rule"
    __table_args__ = (
        UniqueConstraint("site_id", "key", "version"),
        Index("uq_referral_rule_current", "site_id", "key", unique=True,
              sqlite_where=text("superseded_at IS NULL"),
              postgresql_where=text("superseded_at IS NULL")),
        CheckConstraint(_one_of("service_type", SERVICE_TYPES), name="type_known"),
        CheckConstraint("priority BETWEEN 0 AND 100", name="priority_range"),
        CheckConstraint("reoffer_days BETWEEN 0 AND 365", name="reoffer_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(120))
    condition: Mapped[dict] = mapped_column(JSON)
    service_type: Mapped[str] = mapped_column(String(30))
    reason_template: Mapped[str] = mapped_column(String(300))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    reoffer_days: Mapped[int] = mapped_column(Integer, default=30)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<ReferralRule {self.key} v{self.version}>"


class ReferralOffer(db.Model):
    """A suggestion put to a client in one visit, and their answer."""

    __tablename__ = "referral_offer"
    __table_args__ = (
        # One offer per service type per visit: asking twice in a visit is nagging.
        UniqueConstraint("visit_id", "service_type"),
        Index("ix_referral_offer_client_type", "client_id", "service_type"),
        Index("ix_referral_offer_site_offered", "site_id", "offered_at"),
        CheckConstraint(_one_of("status", OfferStatus), name="status_known"),
        CheckConstraint(_one_of("service_type", SERVICE_TYPES), name="type_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("referral_rule.id"))
    service_type: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default=OfferStatus.OFFERED)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    offered_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    rule: Mapped[ReferralRule | None] = relationship()
    referral: Mapped["Referral | None"] = relationship(back_populates="offer")


class Referral(db.Model):
    """An accepted offer: a referral to a service, with consent and a follow-up date."""

    __tablename__ = "referral"
    __table_args__ = (
        Index("ix_referral_site_due", "site_id", "follow_up_due"),
        CheckConstraint("outcome IS NULL OR outcome IN ('presented', 'did_not_present', "
                        "'unknown')", name="outcome_known"),
        CheckConstraint("consent_given", name="consent_given"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    offer_id: Mapped[int] = mapped_column(ForeignKey("referral_offer.id", ondelete="CASCADE"),
                                          unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("referral_service.id"))
    consent_given: Mapped[bool] = mapped_column(Boolean)
    referred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    referred_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    follow_up_due: Mapped[date] = mapped_column(Date)
    # Set by the daily job the first time it lists this follow-up as due.
    follow_up_listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    offer: Mapped[ReferralOffer] = relationship(back_populates="referral")
    service: Mapped[Service] = relationship()
    client: Mapped["Client"] = relationship()  # noqa: F821
