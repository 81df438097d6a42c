"""The controlled-drug register: drug lines, their append-only ledger, shift counts.

A line is one drug and strength at a site ("Diacetylmorphine 200 mg vial"); its balance only
ever changes together with a ledger entry, and both refuse to go below zero in the database.
Entries are never changed or deleted (triggers, as on the audit trail); a count that finds a
difference writes an ``adjusted`` entry, the only way a balance is corrected.
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

from srs.auth.models import Role
from srs.common import UTCDateTime
from srs.extensions import append_only, db

# Who may do what. One tuple per permission, so that a role (the pharmacist) joins in one line.
# Read, receive, waste, count:
REGISTER_KEEPERS = (Role.NURSE, Role.PHARMACIST, Role.SUPERVISOR, Role.ADMIN)
# Open a line, export, mark a loss reported:
REGISTER_MANAGERS = (Role.PHARMACIST, Role.SUPERVISOR, Role.ADMIN)

UNITS = {"mg": "mg", "mL": "mL", "vial": "vial", "ampoule": "ampoule", "tablet": "tablet"}
ENTRY_KINDS = {
    "received": "Received",
    "drawn": "Drawn for a dose",
    "wasted": "Wasted",
    "destroyed": "Destroyed",
    "returned": "Returned to supplier",
    "adjusted": "Adjusted by a count",
}
WITNESSED = ("wasted", "destroyed")
# Canada's Narcotic Control Regulations: a loss or theft is reported within 10 days of its
# discovery; the alarm sounds on day 7 if it is not yet marked reported.
LOSS_REPORT_DAYS = 10
LOSS_ALARM_DAYS = 7


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class ControlledDrug(db.Model):
    """One drug and strength at a site, counted in ``unit``, with its running balance."""

    __tablename__ = "controlled_drug"
    __table_args__ = (
        UniqueConstraint("site_id", "name", "strength"),
        CheckConstraint(_one_of("unit", UNITS), name="unit_known"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    strength: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(10))
    balance: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def label(self) -> str:
        return f"{self.name} {self.strength}"

    def __repr__(self) -> str:
        return f"<ControlledDrug {self.id}>"


class ControlledEntry(db.Model):
    """One line of the register: the balance changed by ``delta`` to ``balance_after``."""

    __tablename__ = "controlled_entry"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ENTRY_KINDS), name="kind_known"),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        CheckConstraint("balance_after >= 0", name="balance_not_negative"),
        CheckConstraint("kind <> 'drawn' OR client_id IS NOT NULL", name="drawn_names_client"),
        CheckConstraint("kind NOT IN ('wasted', 'destroyed') OR witness_id IS NOT NULL",
                        name="waste_witnessed"),
        CheckConstraint("kind <> 'adjusted' OR count_id IS NOT NULL",
                        name="adjusted_by_count"),
        Index("ix_controlled_entry_drug_at", "drug_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    drug_id: Mapped[int] = mapped_column(ForeignKey("controlled_drug.id"))
    kind: Mapped[str] = mapped_column(String(12))
    delta: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    supplier: Mapped[str | None] = mapped_column(String(120))
    invoice: Mapped[str | None] = mapped_column(String(60))
    lot_number: Mapped[str | None] = mapped_column(String(40))
    expires_on: Mapped[date | None] = mapped_column(Date)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    dose_mg: Mapped[int | None] = mapped_column(Integer)
    # The dose record of the dosing work, when it draws (a plain id: no import upward).
    dose_id: Mapped[int | None] = mapped_column(Integer)
    identity_checked: Mapped[bool | None] = mapped_column(Boolean)
    witness_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    witness_name: Mapped[str | None] = mapped_column(String(120))
    witness_role: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(200))
    count_id: Mapped[int | None] = mapped_column(ForeignKey("controlled_count.id"))

    drug: Mapped[ControlledDrug] = relationship()
    client: Mapped["Client | None"] = relationship()  # noqa: F821
    staff: Mapped["Staff | None"] = relationship(foreign_keys=[by])  # noqa: F821


class ControlledCount(db.Model):
    """A shift's count of one line by two staff; a difference starts the loss-report clock."""

    __tablename__ = "controlled_count"
    __table_args__ = (
        CheckConstraint("counted >= 0", name="counted_not_negative"),
        CheckConstraint("first_by <> second_by", name="two_people"),
        Index("ix_controlled_count_open_loss", "site_id",
              sqlite_where=db.text("difference <> 0 AND loss_reported_at IS NULL"),
              postgresql_where=db.text("difference <> 0 AND loss_reported_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    drug_id: Mapped[int] = mapped_column(ForeignKey("controlled_drug.id"), index=True)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expected: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)
    difference: Mapped[int] = mapped_column(Integer)
    first_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    second_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    # The incident the discrepancy drafted (a plain id: the incident package answers).
    incident_id: Mapped[int | None] = mapped_column(Integer)
    loss_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    loss_reported_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    loss_reference: Mapped[str | None] = mapped_column(String(80))

    drug: Mapped[ControlledDrug] = relationship()
    first: Mapped["Staff"] = relationship(foreign_keys=[first_by])  # noqa: F821
    second: Mapped["Staff"] = relationship(foreign_keys=[second_by])  # noqa: F821


# Append-only, enforced by the database.
append_only(ControlledEntry.__table__)
