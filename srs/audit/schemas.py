"""The audit trail's filters: the page's query string and the API's, one field set for both.

The page's form excludes what it does not know and reads a blank input as "not given";
the API refuses unknown parameters.
"""

from datetime import date

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from srs.audit.models import ENTITIES, AuditEvent
from srs.clients.models import Client
from srs.common import RecordId
from srs.forms import Form


class _FilterFields(Schema):
    person = RecordId(strict=False, metadata={
        "description": "Only what this staff member did (their id)."})
    action = fields.String(validate=validate.Length(
        max=AuditEvent.action.type.length, error="No such action."), metadata={
        "description": "Only this action (its name, e.g. client_viewed)."})
    client = fields.String(validate=validate.Length(
        max=Client.code.type.length, error="That is longer than any client code."), metadata={
        "description": "A client code of the site: what anyone did to or read of that "
                       "client's record, visits, overdose responses, referrals and "
                       "incident reports. The read is itself audited."})
    entity = fields.String(validate=validate.OneOf(
        list(ENTITIES), error="Choose what the events are about from the list."), metadata={
        "description": "Only events about this kind of record."})
    entity_id = fields.String(validate=validate.Length(
        min=1, max=AuditEvent.entity_id.type.length, error="Not a record id."), metadata={
        "description": "With entity: only events about this record."})
    since = fields.Date(data_key="from", metadata={
        "description": "From this date (the site's own calendar), inclusive."})
    until = fields.Date(data_key="to", metadata={
        "description": "To this date (the site's own calendar), inclusive."})

    @validates_schema(skip_on_field_errors=False)
    def _dates_in_order(self, data, **_kwargs):
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            raise ValidationError("The end date is before the start date.", "to")
        for name, day in (("from", since), ("to", until)):
            if day is not None and not date(2000, 1, 1) <= day <= date(2100, 12, 31):
                raise ValidationError("Give a date between 2000 and 2100.", name)

    @validates_schema(skip_on_field_errors=False)
    def _entity_with_its_id(self, data, **_kwargs):
        if data.get("entity_id") and not data.get("entity"):
            raise ValidationError("Choose what the id is of.", "entity")


class AuditFilterForm(Form, _FilterFields):
    """The page's filters (a GET form), with the page cursor."""

    every_blank_absent = True
    strip_text = True

    before = RecordId(strict=False)
    after = RecordId(strict=False)


class AuditQuerySchema(_FilterFields):
    """``listAuditEvents``'s query."""

    class Meta:
        unknown = RAISE

    before = RecordId(strict=False, metadata={
        "description": "The next (older) page: the id of the last event of this one."})
    after = RecordId(strict=False, metadata={
        "description": "The previous (newer) page: the id of the first event of this one."})
    per_page = fields.Integer(load_default=50, validate=validate.Range(
        1, 200, error="Ask for 1 to 200 events a page."))


class AuditEventSchema(Schema):
    """One event, readable."""

    id = fields.Integer()
    at = fields.DateTime(metadata={"description": "In the site's time zone, with its offset."})
    staff_id = fields.Integer(allow_none=True)
    person = fields.String(metadata={"description": "The staff member's display name, or "
                                                    "what acted (the scheduler, a display)."})
    action = fields.String()
    action_words = fields.String()
    entity = fields.String()
    entity_id = fields.String(allow_none=True)
    origin = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True, metadata={
        "description": "Ids and setting names only, never client codes or free text."})


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema))
    newer = fields.Integer(allow_none=True, metadata={
        "description": "Pass as ``after`` for the newer page; null on the newest."})
    older = fields.Integer(allow_none=True, metadata={
        "description": "Pass as ``before`` for the older page; null on the oldest."})
