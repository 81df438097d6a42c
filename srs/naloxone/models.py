"""Naloxone stock by lot and expiry, its ledger, take-home kits and stock findings.

Stock is a quantity per lot that only ever changes together with a ``StockMovement`` row,
so the quantity on hand always equals the sum of the lot's ledger. A movement or finding
that an overdose dose caused names its entry by ``intervention_id`` (the console's table);
nothing here imports the console.
"""

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime
from srs.extensions import db


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


FORMS = {"ampoule": "Ampoule", "vial": "Vial", "nasal_spray": "Nasal spray"}
# Which forms a dose given by a route draws from: injectables for IM and IV, the spray for
# IN. The console owns the routes and their standard doses; which product can go in by which
# route is a fact about the stock (a new form is added here alone).
FORMS_FOR_ROUTE = {"im": ("ampoule", "vial"), "iv": ("ampoule", "vial"),
                   "in": ("nasal_spray",)}

MOVEMENTS = {
    "received": "Received",
    "administered": "Administered",
    "take_home": "Take-home kit",
    "expired": "Expired",
    "wasted": "Wasted",
    "adjusted": "Adjusted",
}

KIT_FORMS = {"injectable": "Injectable", "nasal": "Nasal"}
FORMS_FOR_KIT = {"injectable": ("ampoule", "vial"), "nasal": ("nasal_spray",)}
# Why a kit replaces an earlier one (BC's take-home programme, and a recall of its lot).
REPLACEMENT_REASONS = {
    "used": "Used",
    "lost": "Lost",
    "stolen": "Stolen",
    "confiscated": "Confiscated",
    "expired": "Expired",
    "recalled": "Recalled",
    "other": "Other",
}

FINDINGS = {
    "low_stock": "Low stock",
    "expiring": "Expiring within 30 days",
    "expired": "Expired, still on hand",
    "discrepancy": "Given with no stock on hand",
}


class NaloxoneLot(db.Model):
    """Naloxone of one product, form and lot number at a site, with its expiry."""

    __tablename__ = "naloxone_lot"
    __table_args__ = (
        UniqueConstraint("site_id", "form", "lot_number"),
        CheckConstraint(_one_of("form", FORMS), name="form_known"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        Index("ix_naloxone_lot_site_expiry", "site_id", "expires_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    product: Mapped[str] = mapped_column(String(80))
    form: Mapped[str] = mapped_column(String(20))
    strength: Mapped[str] = mapped_column(String(40))
    lot_number: Mapped[str] = mapped_column(String(40))
    expires_on: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())

    movements: Mapped[list["StockMovement"]] = relationship(
        back_populates="lot", order_by="StockMovement.id")

    def __repr__(self) -> str:
        return f"<NaloxoneLot {self.id} {self.form}>"


class StockMovement(db.Model):
    """One line of the ledger: a lot's quantity changed by ``delta``, why, by whom."""

    __tablename__ = "stock_movement"
    __table_args__ = (
        CheckConstraint(_one_of("kind", MOVEMENTS), name="kind_known"),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        CheckConstraint("kind <> 'adjusted' OR reason IS NOT NULL", name="adjusted_has_reason"),
        Index("ix_stock_movement_site_at", "site_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("naloxone_lot.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    delta: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    intervention_id: Mapped[int | None] = mapped_column(ForeignKey("intervention.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("take_home_kit.id"))

    lot: Mapped[NaloxoneLot] = relationship(back_populates="movements")
    staff: Mapped["Staff | None"] = relationship()  # noqa: F821


class TakeHomeKit(db.Model):
    """Naloxone kits handed out to take away (Ontario counts them by form): to a client, or
    to a trainee; one kit by serial (``kit_id``) or, in the short form, ``number`` kits of a
    form. A replacement says why (``replacement_reason``); ``replaces_used`` is the reason
    ``used``, which the monthly report has always counted."""

    __tablename__ = "take_home_kit"
    __table_args__ = (
        CheckConstraint(_one_of("form", KIT_FORMS), name="form_known"),
        CheckConstraint("number BETWEEN 1 AND 20", name="number_range"),
        CheckConstraint("client_id IS NOT NULL OR trainee_id IS NOT NULL", name="has_holder"),
        CheckConstraint("replacement_reason IS NULL OR "
                        + _one_of("replacement_reason", REPLACEMENT_REASONS),
                        name="reason_known"),
        Index("ix_take_home_kit_site_given", "site_id", "given_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    trainee_id: Mapped[int | None] = mapped_column(ForeignKey("naloxone_trainee.id"),
                                                   index=True)
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("naloxone_kit.id"), index=True)
    replacement_reason: Mapped[str | None] = mapped_column(String(20))
    replacement_note: Mapped[str | None] = mapped_column(String(200))
    form: Mapped[str] = mapped_column(String(20))
    number: Mapped[int] = mapped_column(Integer, default=1)
    replaces_used: Mapped[bool] = mapped_column(Boolean, default=False)
    training_given: Mapped[bool] = mapped_column(Boolean, default=False)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime())
    given_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    stock_discrepancy: Mapped[bool] = mapped_column(Boolean, default=False)

    client: Mapped["Client | None"] = relationship()  # noqa: F821
    trainee: Mapped["Trainee | None"] = relationship()
    kit: Mapped["NaloxoneKit | None"] = relationship()


class StockFinding(db.Model):
    """Something about naloxone stock a supervisor must see: low, expiring, or a discrepancy.

    The daily stock check writes one row per finding per day (the unique key makes a re-run
    harmless); a dose given with no stock writes a discrepancy at once.
    """

    __tablename__ = "stock_finding"
    __table_args__ = (
        CheckConstraint(_one_of("kind", FINDINGS), name="kind_known"),
        UniqueConstraint("site_id", "key"),
        Index("ix_stock_finding_site_open", "site_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    # What makes a finding the same one when the check runs again.
    key: Mapped[str] = mapped_column(String(120))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("naloxone_lot.id"))
    intervention_id: Mapped[int | None] = mapped_column(ForeignKey("intervention.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("take_home_kit.id"))
    detail: Mapped[str] = mapped_column(String(300))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    lot: Mapped[NaloxoneLot | None] = relationship()


# --- Training (DOMAIN.md "Naloxone training and kits") ---------------------------------------

TRAINEE_KINDS = {
    "person_at_risk": "Person at risk",
    "family_friend": "Family or friend",
    "peer": "Peer",
    "staff_volunteer": "Staff or volunteer",
    "police": "Police",
    "fire": "Fire",
    "other_first_responder": "Other first responder",
    "pharmacist": "Pharmacist",
    "other": "Other",
}
# Only these may be recorded by name, and only with their consent: for refresher tracking.
NAMED_KINDS = ("staff_volunteer", "police")
TRAINING_FORMATS = {
    "brief": "Brief (10-15 min)",
    "standard": "Standard (about 30 min)",
    "trainer_of_trainers": "Trainer of trainers",
    "online": "Online",
}


class Trainee(db.Model):
    """A person trained in naloxone at a site: a client (by their record, so by code), or
    someone outside the site by kind and an optional organisation. A name and badge or
    employee number only for staff and police who consent to it (refresher tracking)."""

    __tablename__ = "naloxone_trainee"
    __table_args__ = (
        CheckConstraint(_one_of("kind", TRAINEE_KINDS), name="kind_known"),
        CheckConstraint(f"(first_name IS NULL AND last_name IS NULL AND badge_number IS NULL) "
                        f"OR (named_consent AND {_one_of('kind', NAMED_KINDS)})",
                        name="named_only_with_consent"),
        Index("ix_naloxone_trainee_site_kind", "site_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    organisation: Mapped[str | None] = mapped_column(String(120))
    named_consent: Mapped[bool] = mapped_column(Boolean, default=False,
                                                server_default=db.false())
    first_name: Mapped[str | None] = mapped_column(String(60))
    last_name: Mapped[str | None] = mapped_column(String(60))
    badge_number: Mapped[str | None] = mapped_column(String(40))
    # Family and friends (Scotland): whether the person at risk consented to their training.
    at_risk_consented: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    client: Mapped["Client | None"] = relationship()  # noqa: F821

    def __repr__(self) -> str:
        return f"<Trainee {self.id} {self.kind}>"


class TrainingSession(db.Model):
    """One naloxone training: when, where, by whom, in what, and who took part."""

    __tablename__ = "naloxone_training_session"
    __table_args__ = (
        CheckConstraint(_one_of("format", TRAINING_FORMATS), name="format_known"),
        Index("ix_naloxone_training_session_site_held", "site_id", "held_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    held_on: Mapped[date] = mapped_column(Date)
    # Empty: at the site itself; otherwise the outreach place ("Police division 3").
    place: Mapped[str | None] = mapped_column(String(120))
    trainer_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    curriculum: Mapped[str] = mapped_column(String(120))
    curriculum_version: Mapped[str | None] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(30))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    trainer: Mapped["Staff"] = relationship(foreign_keys=[trainer_id])  # noqa: F821
    attendance: Mapped[list["SessionTrainee"]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="SessionTrainee.id")


class SessionTrainee(db.Model):
    """A trainee's part in a session, with their post-test score if one was taken."""

    __tablename__ = "naloxone_session_trainee"
    __table_args__ = (
        UniqueConstraint("session_id", "trainee_id"),
        CheckConstraint("post_test_score IS NULL OR post_test_score BETWEEN 0 AND 100",
                        name="score_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("naloxone_training_session.id", ondelete="CASCADE"))
    trainee_id: Mapped[int] = mapped_column(ForeignKey("naloxone_trainee.id"), index=True)
    post_test_score: Mapped[int | None] = mapped_column(Integer)

    session: Mapped[TrainingSession] = relationship(back_populates="attendance")
    trainee: Mapped[Trainee] = relationship()


# --- Take-home kits by serial (DOMAIN.md "Naloxone training and kits") -----------------------

# One vocabulary with the take-home count (``KIT_FORMS``): an injectable kit is BC's IM kit.
KIT_CONTENTS = {"injectable": "IM, 3 x 0.4 mg ampoules", "nasal": "Nasal, 2 x 4 mg"}
KIT_STATES = {
    "in_stock": "In stock",
    "issued": "Issued",
    "used": "Reported used",
    "withdrawn": "Withdrawn",
}
USE_ROUTES = {"im": "IM", "in": "Nasal"}
USE_OUTCOMES = {
    "recovered": "Recovered",
    "hospital": "Transported to hospital",
    "died": "Died",
    "unknown": "Unknown",
}


class NaloxoneKit(db.Model):
    """A take-home kit by serial, made from one lot; its expiry is the lot's unless the kit
    says otherwise. Occupational stock is the lots themselves: a kit is take-home only, and
    its unit leaves the lot's quantity (a take-home ledger row) when the kit is made."""

    __tablename__ = "naloxone_kit"
    __table_args__ = (
        UniqueConstraint("site_id", "serial"),
        CheckConstraint(_one_of("kind", KIT_FORMS), name="kind_known"),
        CheckConstraint(_one_of("state", KIT_STATES), name="state_known"),
        Index("ix_naloxone_kit_site_state_expiry", "site_id", "state", "expires_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    serial: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    lot_id: Mapped[int] = mapped_column(ForeignKey("naloxone_lot.id"), index=True)
    expires_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20), default="in_stock")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    added_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # Set by a recall of its lot, whatever the kit's state then.
    recalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the daily job listed it for replacement at its holder's next visit.
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    lot: Mapped[NaloxoneLot] = relationship()

    def __repr__(self) -> str:
        return f"<NaloxoneKit {self.id} {self.state}>"


class KitUse(db.Model):
    """A kit reported used: when, where, how many doses by which route, whether 911 was
    called and what became of the person."""

    __tablename__ = "naloxone_kit_use"
    __table_args__ = (
        CheckConstraint(_one_of("route", USE_ROUTES), name="route_known"),
        CheckConstraint(_one_of("outcome", USE_OUTCOMES), name="outcome_known"),
        CheckConstraint("doses BETWEEN 1 AND 10", name="doses_range"),
        Index("ix_naloxone_kit_use_site_used", "site_id", "used_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    kit_id: Mapped[int] = mapped_column(ForeignKey("naloxone_kit.id"), unique=True)
    used_on: Mapped[date] = mapped_column(Date)
    area: Mapped[str | None] = mapped_column(String(120))
    doses: Mapped[int] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(10))
    called_911: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(20))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    kit: Mapped[NaloxoneKit] = relationship()


class LotRecall(db.Model):
    """A lot recalled: every kit made from it is marked, wherever it is."""

    __tablename__ = "naloxone_lot_recall"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("naloxone_lot.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(200))
    recalled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recalled_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    lot: Mapped[NaloxoneLot] = relationship()
