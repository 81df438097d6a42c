"""Schemas of what comes from outside: an anonymous report (the public form and
``submitDrugReport``), a text to the gateway, and the gateway's outbox."""

from datetime import date, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from srs.forms import Form

WHAT_HAPPENED_MAX = 2000


def _text(length: int, **kwargs):
    return fields.String(validate=validate.Length(min=1, max=length,
                                                  error=f"At most {length} characters."),
                         **kwargs)


class _ReportFields(Schema):
    """What a person reporting a bad batch may say (BC's text service: date, place,
    appearance, packaging, what it was sold as, what happened). Nothing about who they are."""

    occurred_on = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "When it happened (a date; no time needed)."},
        error_messages={"invalid": "A date, as the calendar gives it."})
    area = _text(120, load_default=None, allow_none=True, metadata={
        "description": "Where (a neighbourhood, a street)."})
    appearance = _text(200, load_default=None, allow_none=True, metadata={
        "description": "Colour, form, how it looked."})
    packaging = _text(200, load_default=None, allow_none=True, metadata={
        "description": "Bag, stamp, wrap."})
    sold_as = _text(120, load_default=None, allow_none=True, metadata={
        "description": "What it was sold as."})
    what_happened = fields.String(required=True, validate=validate.Length(
        min=3, max=WHAT_HAPPENED_MAX,
        error=f"Say what happened, in at most {WHAT_HAPPENED_MAX} characters."),
        error_messages={"required": "Say what happened."})

    @validates("occurred_on")
    def _not_future(self, value, **_kwargs):
        if value is not None and value > date.today() + timedelta(days=1):
            raise ValidationError("That date is still to come.")
        if value is not None and value < date(2000, 1, 1):
            raise ValidationError("A date from 2000 on.")


class DrugReportInputSchema(_ReportFields):
    class Meta:
        unknown = RAISE

    site = fields.String(required=True, validate=validate.Length(min=1, max=120), metadata={
        "description": "The site whose staff should hear of it: its slug or its name."})


class DrugReportForm(Form, _ReportFields):
    every_blank_absent = True
    strip_text = True

    site = fields.String(required=True, error_messages={
        "required": "Choose the site whose staff should hear of it."})


class ReportReceivedSchema(Schema):
    received = fields.Boolean(metadata={"description": "Always true: staff will see it."})


class InboundTextSchema(Schema):
    class Meta:
        unknown = RAISE

    sender = fields.String(required=True, data_key="from", validate=validate.Length(
        min=1, max=40), metadata={"description": "The sender's number (E.164)."})
    text = fields.String(required=True, validate=validate.Length(max=1600), metadata={
        "description": "JOIN [site], STOP, or OD and a report."})


class InboundReplySchema(Schema):
    reply = fields.String(metadata={"description": "A text the gateway may send back."})


class OutboxMessageSchema(Schema):
    id = fields.Integer()
    to = fields.String(metadata={"description": "The subscriber's number."})
    body = fields.String(metadata={"description": "At most 160 characters."})
    drug_alert_id = fields.Integer()
    queued_at = fields.AwareDateTime()


class MarkSentSchema(Schema):
    class Meta:
        unknown = RAISE

    ids = fields.List(fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1)),
                      required=True, validate=validate.Length(max=1000))


class MarkedSchema(Schema):
    marked = fields.Integer(metadata={"description": "How many queued messages became sent."})
