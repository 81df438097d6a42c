"""Schemas for referrals: the admin's forms, the tablet's offers, and the JSON API.

HTML forms carry the CSRF token and idempotency key beside the fields, so their schemas
exclude unknown fields; the API's raise on them.
"""

from marshmallow import RAISE, Schema, fields, validate

from srs.common import RecordId
from srs.forms import Form
from srs.referrals.models import (
    FOLLOW_UP_OUTCOMES,
    HOUSING,
    OAT_MEDICATIONS,
    SERVICE_TYPES,
    OfferStatus,
)
from srs.referrals.rules import RuleSchema


class _Form(Form):
    # Text is trimmed; a rule's condition is JSON, kept as typed for its error positions.
    strip_text = True
    unstripped = ("condition",)


_TYPE = validate.OneOf(list(SERVICE_TYPES), error="Choose a service type.")


def _text(max_length: int):
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=max_length, error=f"At most {max_length} characters."))


class ServiceForm(_Form):
    optional = ("contact", "hours", "notes")

    name = fields.String(required=True, error_messages={"required": "Name the service."},
                         validate=validate.Length(min=1, max=120,
                                                  error="A name of 1 to 120 characters."))
    service_type = fields.String(required=True, validate=_TYPE,
                                 error_messages={"required": "Choose a service type."})
    on_site = fields.Boolean(load_default=False)
    contact = _text(200)
    hours = _text(200)
    notes = _text(1000)
    active = fields.Boolean(load_default=False)


class ServiceSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    service_type = fields.String()
    on_site = fields.Boolean()
    contact = fields.String(allow_none=True)
    hours = fields.String(allow_none=True)
    active = fields.Boolean()


class ServiceQuerySchema(Schema):
    """``listServices``' filter."""

    class Meta:
        unknown = RAISE

    service_type = fields.String(load_default=None, validate=validate.OneOf(
        list(SERVICE_TYPES), error="Unknown service type: {input}."), metadata={
            "description": f"Only this type: one of {', '.join(SERVICE_TYPES)}."})


class RuleForm(_Form, RuleSchema):
    """The admin's rule form: the condition arrives as JSON text."""

    active = fields.Boolean(load_default=False)


class CareProfileForm(_Form):
    optional = ("last_hiv_test", "last_hcv_test", "wound_noted_on", "treatment_interest_on")

    oat_medication = fields.String(load_default="none", validate=validate.OneOf(
        list(OAT_MEDICATIONS), error="Choose one."))
    failed_oral_oat = fields.Integer(load_default=0, validate=validate.Range(
        min=0, max=20, error="0 to 20 attempts."))
    last_hiv_test = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})
    last_hcv_test = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})
    housing = fields.String(load_default="unknown", validate=validate.OneOf(
        list(HOUSING), error="Choose one."))
    wound_noted_on = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})
    treatment_interest_on = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})


_STATUS = validate.OneOf(list(OfferStatus), error="Choose offered, accepted, declined or "
                                                  "not_now.")


class OfferForm(_Form):
    optional = ("rule_id", "service_id", "follow_up_days")

    service_type = fields.String(required=True, validate=_TYPE)
    status = fields.String(required=True, validate=_STATUS,
                           error_messages={"required": "Choose what the client said."})
    rule_id = RecordId(load_default=None, strict=False)
    service_id = RecordId(load_default=None, strict=False)
    consent = fields.Boolean(load_default=False)
    follow_up_days = fields.Integer(load_default=None, validate=validate.Range(
        min=1, max=90, error="Follow up in 1 to 90 days."))


class OfferSchema(Schema):
    """recordReferral's body: one step of an offer; ``accepted`` makes the referral."""

    class Meta:
        unknown = RAISE

    service_type = fields.String(required=True, validate=_TYPE, metadata={
        "description": f"One of: {', '.join(SERVICE_TYPES)}."})
    status = fields.String(required=True, validate=_STATUS, metadata={
        "description": "offered, then accepted, declined or not_now (or one of those "
                       "straight away)."})
    rule_id = RecordId(load_default=None, allow_none=True, metadata={
        "description": "The rule version whose suggestion this answers (from "
                       "listReferralSuggestions)."})
    service_id = RecordId(load_default=None, allow_none=True, metadata={
        "description": "accepted only: the directory entry referred to."})
    consent = fields.Boolean(load_default=False, metadata={
        "description": "accepted only: the client agreed to be referred (must be true)."})
    follow_up_days = fields.Integer(load_default=None, allow_none=True, strict=True,
                                    validate=validate.Range(min=1, max=90), metadata={
        "description": "accepted only: follow up in this many days (default 7)."})


class OutcomeForm(_Form):
    referral_id = RecordId(required=True, strict=False)
    outcome = fields.String(required=True, validate=validate.OneOf(
        list(FOLLOW_UP_OUTCOMES), error="Choose what happened."),
        error_messages={"required": "Choose what happened."})


class OutcomeSchema(Schema):
    class Meta:
        unknown = RAISE

    outcome = fields.String(required=True, validate=validate.OneOf(list(FOLLOW_UP_OUTCOMES)),
                            metadata={"description": ", ".join(FOLLOW_UP_OUTCOMES)})


class ReferralSchema(Schema):
    id = fields.Integer()
    service = fields.Nested(ServiceSchema)
    consent_given = fields.Boolean()
    referred_at = fields.AwareDateTime()
    follow_up_due = fields.Date()
    outcome = fields.String(allow_none=True)
    outcome_at = fields.AwareDateTime(allow_none=True)


class OfferDumpSchema(Schema):
    id = fields.Integer()
    visit_id = fields.Integer()
    service_type = fields.String()
    rule_id = fields.Integer(allow_none=True)
    rule_version = fields.Function(lambda o: o.rule.version if o.rule else None)
    reason = fields.String(allow_none=True)
    status = fields.String()
    offered_at = fields.AwareDateTime()
    decided_at = fields.AwareDateTime(allow_none=True)
    referral = fields.Nested(ReferralSchema, allow_none=True)


class SuggestionSchema(Schema):
    service_type = fields.String()
    label = fields.String()
    reason = fields.String(metadata={"description": "Why, from the facts the rule looked at."})
    priority = fields.Integer()
    rule_id = fields.Function(lambda s: s.rule.id if s.rule else None)
    rule_key = fields.Function(lambda s: s.rule.key if s.rule else None)
    rule_version = fields.Function(lambda s: s.rule.version if s.rule else None)
    status = fields.String(allow_none=True, metadata={
        "description": "null until offered in this visit; then offered."})
    offer_id = fields.Function(lambda s: s.offer.id if s.offer else None)


class SuggestionsSchema(Schema):
    suggestions = fields.List(fields.Nested(SuggestionSchema))
    answered = fields.List(fields.Nested(OfferDumpSchema), metadata={
        "description": "Offers already answered in this visit."})

