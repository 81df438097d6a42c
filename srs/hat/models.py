"""Enrolments in heroin-assisted treatment and their prescriptions.

An enrolment is a client (by code) in treatment at a site, with the legal identity the
prescribing law needs stored encrypted (srs.hat.identity) and an eligibility checklist the
prescriber signed. A prescription is never changed: a change is a new version, and the one
in force is the latest version whose dates hold the day.
"""

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime
from srs.extensions import db

STATES = ("enrolled", "on_hold", "ended")
MEDICATIONS = ("diacetylmorphine", "hydromorphone")
# DOMAIN: diacetylmorphine IV, IM or oral tablet; hydromorphone IV, IM or SC.
ROUTES = {"diacetylmorphine": ("iv", "im", "oral"), "hydromorphone": ("iv", "im", "sc")}
ALL_ROUTES = ("iv", "im", "sc", "oral")
TITRATIONS = ("none", "plan", "step_up")
HOLD_REASONS = ("missed_doses", "prescriber")
# POSS (DOMAIN.md): S asleep and easy to rouse, 1 awake and alert, 2 slightly drowsy,
# 3 frequently drowsy, 4 somnolent. Stored as 0 for S.
POSS_SCORES = (0, 1, 2, 3, 4)
# What a pre-dose assessment decided: the dose may go ahead, is withheld (the prescriber is
# told), or the overdose console was opened.
ASSESSMENT_OUTCOMES = ("proceed", "withheld", "console")
# A dose record (HL7 FHIR MedicationAdministration: "not done" instead of an edit).
DOSE_OUTCOMES = ("given", "withheld", "declined", "missed")

# The eligibility checklist: Canada's iOAT guidance, then Switzerland's, then the UK's; a
# site ticks what applies and notes why (no item is required of every site).
ELIGIBILITY = (
    ("severe_oud", "Severe opioid use disorder (Canada)"),
    ("oral_oat_not_responding", "Not responding to oral OAT (Canada; UK: failed optimised "
                                "oral OAT)"),
    ("ongoing_injection", "Ongoing injection use (Canada)"),
    ("age_18", "Aged 18 or over (Switzerland)"),
    ("dependence_2_years", "Dependent on opioids for 2 years or more (Switzerland)"),
    ("failed_treatments_2", "2 or more failed treatments (Switzerland)"),
    ("serious_harm", "Serious health or social harm (Switzerland)"),
)
ELIGIBILITY_KEYS = tuple(key for key, _label in ELIGIBILITY)


class HatEnrolment(db.Model):
    __tablename__ = "hat_enrolment"
    __table_args__ = (
        CheckConstraint("state IN ('enrolled', 'on_hold', 'ended')", name="state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    state: Mapped[str] = mapped_column(String(10), default="enrolled")
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enrolled_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why dosing is held (state "on_hold"): HOLD_REASONS; cleared by a prescriber's review.
    hold_reason: Mapped[str | None] = mapped_column(String(20))
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by the missed-dose job at the re-titration threshold; cleared by a new prescription.
    retitrate_due: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    # Fernet tokens (srs.hat.identity): never the values themselves. None once retention
    # gave an ended treatment's record to a placeholder (srs.clients.retention).
    legal_name_enc: Mapped[str | None] = mapped_column(Text)
    date_of_birth_enc: Mapped[str | None] = mapped_column(Text)
    health_number_enc: Mapped[str | None] = mapped_column(Text)
    # {key: {"met": bool, "note": str | None}} for every key of ELIGIBILITY.
    eligibility: Mapped[dict] = mapped_column(JSON)
    eligibility_signed_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    eligibility_signed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    client: Mapped["Client"] = relationship()  # noqa: F821
    site: Mapped["Site"] = relationship()  # noqa: F821
    prescriptions: Mapped[list["HatPrescription"]] = relationship(
        back_populates="enrolment", order_by="HatPrescription.version")


class HatPrescription(db.Model):
    __tablename__ = "hat_prescription"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "version"),
        CheckConstraint("medication IN ('diacetylmorphine', 'hydromorphone')",
                        name="medication_known"),
        CheckConstraint("route IN ('iv', 'im', 'sc', 'oral')", name="route_known"),
        CheckConstraint("titration IN ('none', 'plan', 'step_up')", name="titration_known"),
        CheckConstraint("dose_mg > 0", name="dose_positive"),
        CheckConstraint("sessions_per_day BETWEEN 1 AND 6", name="sessions_range"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("hat_enrolment.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    medication: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(5))
    dose_mg: Mapped[float] = mapped_column(Float)
    sessions_per_day: Mapped[int] = mapped_column(Integer)
    min_interval_minutes: Mapped[int] = mapped_column(Integer)
    titration: Mapped[str] = mapped_column(String(10), default="none")
    # Dose per session for day 1, 2, ... of a "plan" titration; empty otherwise.
    titration_days: Mapped[list] = mapped_column(JSON, default=list)
    top_up_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    top_up_max_mg: Mapped[float | None] = mapped_column(Float)
    oral_oat: Mapped[str | None] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    signed_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    enrolment: Mapped[HatEnrolment] = relationship(back_populates="prescriptions")
    signer: Mapped["Staff"] = relationship()  # noqa: F821

    def active_on(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)

    def dose_on(self, day: date) -> float:
        """The dose per session the prescription gives on ``day`` (a plan's day, else the
        dose)."""
        if self.titration == "plan" and self.titration_days:
            index = (day - self.starts_on).days
            if 0 <= index < len(self.titration_days):
                return float(self.titration_days[index])
        return self.dose_mg


class HatAssessment(db.Model):
    """The check before a dose: sedation (POSS), signs of intoxication, last use."""

    __tablename__ = "hat_assessment"
    __table_args__ = (
        CheckConstraint("poss BETWEEN 0 AND 4", name="poss_range"),
        CheckConstraint("outcome IN ('proceed', 'withheld', 'console')", name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("hat_enrolment.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    nurse_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    poss: Mapped[int] = mapped_column(Integer)
    # Signs of intoxication seen (short keys, e.g. "pinpoint_pupils"); empty when none.
    intoxication_signs: Mapped[list] = mapped_column(JSON, default=list)
    last_use_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[str | None] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(10))
    # Why the outcome (the gate's words, e.g. "POSS 3: withheld, prescriber told").
    reason: Mapped[str | None] = mapped_column(String(200))
    # The overdose response opened at the console threshold (a plain id: no import upward).
    response_id: Mapped[int | None] = mapped_column(Integer)

    enrolment: Mapped[HatEnrolment] = relationship()
    nurse: Mapped["Staff"] = relationship()  # noqa: F821


class HatDose(db.Model):
    """A session's dose given, or not given and why: never edited."""

    __tablename__ = "hat_dose"
    __table_args__ = (
        CheckConstraint("outcome IN ('given', 'withheld', 'declined', 'missed')",
                        name="outcome_known"),
        CheckConstraint("outcome <> 'given' OR (dose_mg > 0 AND prescription_id IS NOT NULL)",
                        name="given_has_dose"),
        CheckConstraint("outcome = 'given' OR reason IS NOT NULL", name="not_given_has_reason"),
        Index("ix_hat_dose_enrolment_day", "enrolment_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("hat_enrolment.id", ondelete="CASCADE"))
    prescription_id: Mapped[int | None] = mapped_column(ForeignKey("hat_prescription.id"))
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("hat_assessment.id"))
    # The site's local day the dose belongs to (missed-day counting runs on it).
    day: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(10))
    dose_mg: Mapped[float | None] = mapped_column(Float)
    top_up: Mapped[bool] = mapped_column(Boolean, default=False)
    take_home: Mapped[bool] = mapped_column(Boolean, default=False)
    nurse_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    witness_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    # The register line the dose was drawn from and the floor visit it was given in (plain
    # ids: the register and the floor sit beside this package, not under it).
    register_entry_id: Mapped[int | None] = mapped_column(Integer)
    visit_id: Mapped[int | None] = mapped_column(Integer)

    enrolment: Mapped[HatEnrolment] = relationship()
    prescription: Mapped[HatPrescription | None] = relationship()
    nurse: Mapped["Staff | None"] = relationship(foreign_keys=[nurse_id])  # noqa: F821
    witness: Mapped["Staff | None"] = relationship(foreign_keys=[witness_id])  # noqa: F821


# --- Missed doses, holds, urine tests and take-home doses (srs.hat.missed) ---------------------

URINE_RESULTS = ("clear", "positive")


class HatHold(db.Model):
    """One hold of a patient's dosing, from its start to the prescriber's review that lifted
    it (or the end of treatment): the history the take-home rule's "6 months of continuous
    treatment" reads."""

    __tablename__ = "hat_hold"
    __table_args__ = (
        CheckConstraint("reason IN ('missed_doses', 'prescriber')", name="reason_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("hat_enrolment.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    # The prescriber's words for a hold they put on; None for the missed-dose job's.
    note: Mapped[str | None] = mapped_column(String(300))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())
    held_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    lift_note: Mapped[str | None] = mapped_column(String(300))


class HatUrineTest(db.Model):
    """A urine test's result: clear of non-prescribed narcotics, or positive."""

    __tablename__ = "hat_urine_test"
    __table_args__ = (
        CheckConstraint("result IN ('clear', 'positive')", name="result_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("hat_enrolment.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    result: Mapped[str] = mapped_column(String(10))
    recorded_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HatTakeHome(db.Model):
    """Take-home doses a prescriber authorised for ``days`` days from ``first_day``; given
    out once (``given_at``), as one dose row per session and day."""

    __tablename__ = "hat_take_home"
    __table_args__ = (
        CheckConstraint("days BETWEEN 1 AND 7", name="days_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("hat_enrolment.id", ondelete="CASCADE"), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    authorised_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    authorised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    given_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    given_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class HatMissedRun(db.Model):
    """The missed-dose job's run for one site and local day: a day is counted once."""

    __tablename__ = "hat_missed_run"
    __table_args__ = (UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime())
