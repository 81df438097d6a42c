"""A club's members and the steps before their first supply, its consent texts, linkage
conversations, supply batches, supplies and the members' quarterly surveys.

Quantities are whole milligrams (the controlled-drug register counts whole units: each batch
has its own register line counted in mg); prices are whole cents, sold at cost.
"""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime
from srs.extensions import db
from srs.sites.models import COMPASSION_DEFAULT_ELIGIBILITY, COMPASSION_STEPS

STATES = ("applicant", "active", "suspended", "ended")
# The steps before a first supply (BCCSU 2019), each required unless the site waives it
# (kept with the site's settings, which name them).
STEPS = COMPASSION_STEPS
STEP_KEYS = tuple(key for key, _label in STEPS)
# Eligibility used by DULF and MySafe; the site edits its own list (site.compassion_eligibility).
DEFAULT_ELIGIBILITY = COMPASSION_DEFAULT_ELIGIBILITY
# A linkage conversation ends as a referral offer does.
LINKAGE_OUTCOMES = ("offered", "accepted", "declined", "not_now")
BATCH_STATES = ("untested", "passed", "failed", "blocked", "cleared")
UNITS = ("g", "tablet")
SUPPLY_MODES = ("witnessed", "take_home")
# DULF's quarterly questions.
STREET_SUPPLY = ("none", "less", "same", "more")


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ConsentText(db.Model):
    """The risks a member consents to, in the site's words; a change is a new version."""

    __tablename__ = "compassion_consent_text"
    __table_args__ = (UniqueConstraint("site_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class Member(db.Model):
    """A client (by code) in the club at a site."""

    __tablename__ = "compassion_member"
    __table_args__ = (
        CheckConstraint(_one_of("state", STATES), name="state_known"),
        CheckConstraint("state <> 'suspended' OR suspended_reason IS NOT NULL",
                        name="suspension_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    state: Mapped[str] = mapped_column(String(10), default="applicant")
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # {key: {"met": bool, "note": str | None}} for the site's eligibility list.
    eligibility: Mapped[dict] = mapped_column(JSON, default=dict)
    suspended_reason: Mapped[str | None] = mapped_column(String(200))
    suspended_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_reason: Mapped[str | None] = mapped_column(String(200))
    # Take-home supply for this member, where the site allows it at all.
    take_home_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The legal identity, only where the site's rules need one (site.compassion_identity_
    # required): Fernet tokens (srs.hat.identity), read by prescribers and pharmacists only.
    legal_name_enc: Mapped[str | None] = mapped_column(Text)
    date_of_birth_enc: Mapped[str | None] = mapped_column(Text)
    health_number_enc: Mapped[str | None] = mapped_column(Text)

    client: Mapped["Client"] = relationship()  # noqa: F821
    site: Mapped["Site"] = relationship()  # noqa: F821
    steps: Mapped[list["MembershipStep"]] = relationship(
        back_populates="member", order_by="MembershipStep.at")


class MembershipStep(db.Model):
    """A step before a first supply, with who and when."""

    __tablename__ = "compassion_step"
    __table_args__ = (CheckConstraint(_one_of("step", STEP_KEYS), name="step_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("compassion_member.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # The consent text's version (risk_consent); the naloxone program's session (training).
    consent_text_id: Mapped[int | None] = mapped_column(ForeignKey("compassion_consent_text.id"))
    training_session_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(300))

    member: Mapped[Member] = relationship(back_populates="steps")
    staff: Mapped["Staff | None"] = relationship()  # noqa: F821


class LinkageConversation(db.Model):
    """A conversation about treatment, due every site.compassion_linkage_review_days."""

    __tablename__ = "compassion_linkage"
    __table_args__ = (CheckConstraint(_one_of("outcome", LINKAGE_OUTCOMES),
                                      name="outcome_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("compassion_member.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    outcome: Mapped[str] = mapped_column(String(10))
    # The referral made, when one was (a plain id: referrals sit beside this package).
    referral_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(300))


class SupplyBatch(db.Model):
    """A batch of a substance received for supply, with its drug check and register line."""

    __tablename__ = "compassion_batch"
    __table_args__ = (
        CheckConstraint(_one_of("state", BATCH_STATES), name="state_known"),
        CheckConstraint(_one_of("unit", UNITS), name="unit_known"),
        CheckConstraint("quantity_mg > 0", name="quantity_positive"),
        UniqueConstraint("site_id", "lot"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    substance: Mapped[str] = mapped_column(String(80))
    # What the label says it is (a check finding otherwise blocks the batch).
    label_content: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(120))
    lot: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(10), default="g")
    quantity_mg: Mapped[int] = mapped_column(Integer)
    # The mg in each tablet (unit "tablet"): a supply of tablets is counted in mg by it.
    unit_mg: Mapped[int | None] = mapped_column(Integer)
    cost_cents: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    drug_check_id: Mapped[int | None] = mapped_column(ForeignKey("drug_check.id"))
    # The tested content as printed on each unit's label.
    tested_content: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10), default="untested")
    state_reason: Mapped[str | None] = mapped_column(String(200))
    cleared_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The batch's own line of the controlled-drug register (counted in mg).
    register_drug_id: Mapped[int | None] = mapped_column(ForeignKey("controlled_drug.id"))


class Supply(db.Model):
    """A supply to a member: never edited (a return is a register movement)."""

    __tablename__ = "compassion_supply"
    __table_args__ = (
        CheckConstraint(_one_of("mode", SUPPLY_MODES), name="mode_known"),
        CheckConstraint("quantity_mg > 0", name="quantity_positive"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        Index("ix_compassion_supply_member_at", "member_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("compassion_member.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("compassion_batch.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    quantity_mg: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(10), default="witnessed")
    # For evaluation exports (BC tags safer-supply prescriptions with a program code).
    program_code: Mapped[str | None] = mapped_column(String(40))
    register_entry_id: Mapped[int | None] = mapped_column(Integer)
    visit_id: Mapped[int | None] = mapped_column(Integer)
    label_printed: Mapped[bool] = mapped_column(Boolean, default=False)

    member: Mapped[Member] = relationship()
    batch: Mapped[SupplyBatch] = relationship()


class MemberSurvey(db.Model):
    """The quarterly check-in (DULF's evaluation)."""

    __tablename__ = "compassion_survey"
    __table_args__ = (
        CheckConstraint(_one_of("street_supply", STREET_SUPPLY), name="street_supply_known"),
        CheckConstraint("overdoses_since >= 0", name="overdoses_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("compassion_member.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    overdoses_since: Mapped[int] = mapped_column(Integer)
    street_supply: Mapped[str] = mapped_column(String(10))
    treatment_contact: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(300))
