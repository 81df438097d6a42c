"""Schemas for sites and their settings."""

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from srs.common import RecordId
from srs.sites.models import NALOXONE_LOW_STOCK_MAX, TIMER_SETTINGS


class SiteSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    slug = fields.String()
    timezone = fields.String()


def _timer_field(setting):
    return fields.Integer(
        strict=True,
        validate=validate.Range(
            min=setting.minimum, max=setting.maximum,
            error=f"Must be between {setting.minimum} and {setting.maximum} seconds."),
        metadata={"description": f"{setting.label}, in seconds (default {setting.default})."},
    )


_TimerFields = Schema.from_dict({s.name: _timer_field(s) for s in TIMER_SETTINGS},
                                name="TimerFields")


class SiteSettingsSchema(_TimerFields):
    """Every timer in seconds with its allowed range, plus the client code pattern."""

    class Meta:
        unknown = RAISE
    timezone = fields.String(validate=validate.Length(min=1, max=60),
                             metadata={"description": "IANA zone, e.g. America/Toronto."})
    client_code_pattern = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Regular expression a client code must match."})
    naloxone_low_stock = fields.Integer(
        strict=True, validate=validate.Range(
            min=0, max=NALOXONE_LOW_STOCK_MAX,
            error=f"Must be between 0 and {NALOXONE_LOW_STOCK_MAX}."),
        metadata={"description": "Usable naloxone doses of a kind (injectable, nasal) under "
                                 "which the daily stock check flags low stock."})
    overdose_locations = fields.List(
        fields.String(validate=validate.Length(min=1, max=80)),
        validate=validate.Length(min=1, max=20, error="Give 1 to 20 places."),
        metadata={"description": "Places where someone not checked in may be found "
                                 "(washroom, doorway...): the console's start list."})

    opening_hours = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=120),
        metadata={"description": "The site's opening hours as stated to clients, e.g. "
                                 "\"Daily 09:00-21:00\"; the monthly report gives them."})

    on_call_staff_id = RecordId(
        allow_none=True,
        metadata={"description": "Staff id of the supervisor a level-3 alarm reaches by name; "
                                 "null for nobody."})

    @validates("timezone")
    def _known_zone(self, value, **_kwargs):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"{value!r} is not a known time zone.") from None

    @validates("overdose_locations")
    def _distinct_places(self, value, **_kwargs):
        names = [v.strip() for v in value]
        if any(not n for n in names) or len(set(names)) != len(names):
            raise ValidationError("Each place once, with a name.")

    @validates("client_code_pattern")
    def _compiles(self, value, **_kwargs):
        try:
            re.compile(value)
        except re.error as err:
            raise ValidationError(f"Not a valid pattern: {err}.") from None

    @validates_schema
    def _not_empty(self, data, partial=None, **_kwargs):
        if not data and partial:
            raise ValidationError("Give at least one setting to change.")


class SiteSettingsChangeSchema(SiteSettingsSchema):
    """A partial change of settings: any subset, at least one."""

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)
