"""Booths and clients.

A booth's state is derived, never stored as a flag that can drift: out of
service when it carries a reason, otherwise what its open visit says (visits
arrive with the floor).
"""

import re
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime, utcnow
from srs.extensions import db


class BoothKind(StrEnum):
    INJECTION = "injection"
    INHALATION = "inhalation"


class BoothState(StrEnum):
    AVAILABLE = "available"
    OCCUPIED = "occupied"
    NEEDS_CLEANING = "needs_cleaning"
    OUT_OF_SERVICE = "out_of_service"


class Booth(db.Model):
    __tablename__ = "booth"
    __table_args__ = (
        UniqueConstraint("site_id", "label"),
        CheckConstraint("kind IN ('injection', 'inhalation')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    out_of_service_reason: Mapped[str | None] = mapped_column(String(200))
    out_of_service_since: Mapped[datetime | None] = mapped_column(UTCDateTime())

    site: Mapped["Site"] = relationship(back_populates="booths")  # noqa: F821

    @property
    def state(self) -> BoothState:
        if self.out_of_service_reason:
            return BoothState.OUT_OF_SERVICE
        return BoothState.AVAILABLE

    def __repr__(self) -> str:
        return f"<Booth {self.id} {self.label}>"


# Gender letters of the client code, after Ontario's data set.
GENDERS = {
    "M": "male",
    "F": "female",
    "TM": "trans male",
    "TF": "trans female",
    "X": "other",
}
_CODE_PARTS = re.compile(r"^(?P<gender>[A-Z]{1,2})-(?P<letters>[A-Z]{4})-(?P<year>[0-9]{4})$")


def parse_client_code(code: str) -> tuple[str | None, int | None]:
    """Return (gender, birth year) read from a code like ``F-ABCD-1984``.

    Either part is None when the code does not carry it in the default form
    (a site may use another pattern).
    """
    match = _CODE_PARTS.match(code)
    if not match:
        return None, None
    return GENDERS.get(match["gender"]), int(match["year"])


class Client(db.Model):
    """A person known only by an anonymous code; never a name."""

    __tablename__ = "client"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    handle: Mapped[str | None] = mapped_column(String(40))
    gender: Mapped[str | None] = mapped_column(String(20))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    restricted_until: Mapped[date | None] = mapped_column(Date)
    restriction_reason: Mapped[str | None] = mapped_column(String(200))
    flag_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.code and self.gender is None and self.birth_year is None:
            self.gender, self.birth_year = parse_client_code(self.code)

    def __repr__(self) -> str:
        return f"<Client {self.id}>"
