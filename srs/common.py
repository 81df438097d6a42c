"""Small pieces every package shares: UTC time, the UTC column type, and record ids."""

from datetime import UTC, date, datetime

from marshmallow import fields, validate
from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, ValidationError

# Every id column is an INTEGER: PostgreSQL's holds at most this. A larger id names no
# record, and must never reach the database (an overflow there is a server error).
MAX_ID = 2**31 - 1


class RecordIdConverter(IntegerConverter):
    """``<int:...>`` in every URL: an id beyond ``MAX_ID`` matches no route (404)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> int:
        # Werkzeug answers a converter's refusal with 405 when another method's rule shares
        # the path (POST /sites/<huge>/booths beside GET): the record does not exist, 404.
        try:
            return super().to_python(value)
        except ValidationError:
            raise NotFound() from None


def RecordId(**kwargs) -> fields.Integer:  # noqa: N802 - a field, named as fields are
    """An id in a body or a query: a whole number from 1 to ``MAX_ID`` (else a 422)."""
    kwargs.setdefault("strict", True)
    return fields.Integer(validate=validate.Range(
        1, MAX_ID, error="No such record: an id is a whole number from 1 to {max}."), **kwargs)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, PostgreSQL keeps ``timestamptz``; both hand back an
    aware UTC datetime, so comparisons never mix naive and aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use srs.common.utcnow()")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# --- A report's month ---------------------------------------------------------------------------

MONTH_RANGE_NOTICE = "Months can be shown from 2000 to 2100: this is the last full month."


def month_asked(value: str | None, last_full: date) -> tuple[date, str | None]:
    """The month a report page was asked for (``YYYY-MM``), else ``last_full``; with the
    notice the page shows when the month asked for cannot be shown."""
    if not value:
        return last_full, None
    try:
        month = datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        month = None
    if month is None or not 2000 <= month.year <= 2100:
        return last_full, MONTH_RANGE_NOTICE
    return month, None
