"""Schemas of the prescriber's review of a hold, the enrolment's state, urine tests and
take-home doses: the API's (unknown fields raise) and the patient page's forms."""

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from srs.forms import Form
from srs.hat.missed import NOTE_LENGTH, STATE_CHANGES
from srs.hat.models import URINE_RESULTS

_PIN = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=20),
                     metadata={"description": "The prescriber's own PIN: their signature."})
_REASON = fields.String(required=True, validate=validate.Length(min=1, max=NOTE_LENGTH),
                        metadata={"description": "Why: kept with the decision (no names)."})


class HoldReviewSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = _REASON
    pin = _PIN


class EnrolmentStateSchema(Schema):
    class Meta:
        unknown = RAISE

    state = fields.String(required=True, validate=validate.OneOf(STATE_CHANGES), metadata={
        "description": "on_hold holds dosing until a prescriber reviews it; ended ends the "
                       "treatment (the patient leaves the dosing list)."})
    reason = _REASON
    pin = _PIN


class UrineTestInputSchema(Schema):
    class Meta:
        unknown = RAISE

    day = fields.Date(load_default=None, allow_none=True,
                      metadata={"description": "The site's day of the test; today if absent."})
    result = fields.String(required=True, validate=validate.OneOf(URINE_RESULTS), metadata={
        "description": "clear: free of non-prescribed narcotics; positive: not."})


class UrineTestSchema(Schema):
    id = fields.Integer()
    enrolment_id = fields.Integer()
    day = fields.Date()
    result = fields.String()
    recorded_by = fields.Integer()
    recorded_at = fields.DateTime()


class TakeHomeInputSchema(Schema):
    class Meta:
        unknown = RAISE

    days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=7),
                          metadata={"description": "Days of take-home doses: at most the "
                                                   "site's cap (2 unless it sets up to 7)."})
    first_day = fields.Date(load_default=None, allow_none=True,
                            metadata={"description": "The first take-home day; tomorrow if "
                                                     "absent."})
    pin = _PIN


class TakeHomeSchema(Schema):
    id = fields.Integer()
    enrolment_id = fields.Integer()
    first_day = fields.Date()
    days = fields.Integer()
    authorised_by = fields.Integer()
    authorised_at = fields.DateTime()
    given_at = fields.DateTime(allow_none=True)
    given_by = fields.Integer(allow_none=True)


class TakeHomeDoseSchema(Schema):
    id = fields.Integer()
    day = fields.Date()
    dose_mg = fields.Float()
    take_home = fields.Boolean()


# --- The patient page's forms ------------------------------------------------------------------


class HoldReviewForm(Form, HoldReviewSchema):
    class Meta:
        unknown = EXCLUDE

    strip_text = True
    unstripped = ("pin",)


class EnrolmentStateForm(Form, EnrolmentStateSchema):
    class Meta:
        unknown = EXCLUDE

    strip_text = True
    unstripped = ("pin",)


class UrineTestForm(Form, UrineTestInputSchema):
    class Meta:
        unknown = EXCLUDE

    optional = ("day",)


class TakeHomeForm(Form, TakeHomeInputSchema):
    class Meta:
        unknown = EXCLUDE

    optional = ("first_day",)
    unstripped = ("pin",)


class EmptyForm(Form):
    """A button's form: its CSRF token only."""
