"""Clients: people known only by an anonymous code, never by name.

Every programme that meets a person (the floor, take-home naloxone, and the clinics to come)
finds them here by code. Callers: every domain package's models and services.

A client belongs to one site: the same code at another site is another person's record, so
no site sees the handle, flags or history another site keeps.
"""

import re
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from srs.common import UTCDateTime, utcnow
from srs.extensions import db

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
    """A person known only by an anonymous code at one site; never a name."""

    __tablename__ = "client"
    # Every lookup is by site and code (or its letters), so this index serves them all.
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    handle: Mapped[str | None] = mapped_column(String(40))
    gender: Mapped[str | None] = mapped_column(String(20))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    restricted_until: Mapped[date | None] = mapped_column(Date)
    restriction_reason: Mapped[str | None] = mapped_column(String(200))
    flag_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Retention (srs.clients.retention) gives the records of a client older than the site's
    # period to a placeholder: the same gender and birth year under a code no one can type,
    # so the reports count what they counted and nothing leads back to the person.
    placeholder: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Some of this client's visits went to a placeholder: they came before, so the monthly
    # report never counts them as new again.
    earlier_visits_retired: Mapped[bool] = mapped_column(Boolean, default=False,
                                                         server_default=false())

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.code and self.gender is None and self.birth_year is None:
            self.gender, self.birth_year = parse_client_code(self.code)

    def __repr__(self) -> str:
        return f"<Client {self.id}>"
