"""Input schemas for the floor's HTML forms.

HTML forms carry the CSRF token and the idempotency key beside the fields, so
unknown fields are excluded (the JSON API's schemas raise instead). Empty
inputs arrive as empty strings: optional fields read them as "not given".
"""

from marshmallow import ValidationError, fields, pre_load, validate, validates

from srs.booths.models import (
    CHECK_STATUSES,
    DISCHARGE_FROM_BOOTH_REASONS,
    LEFT_QUEUE_REASONS,
    RESPIRATORY_RATE_RANGE,
    ROUTES,
    SPO2_RANGE,
    STRIP_RESULTS,
    SUBSTANCES,
)
from srs.forms import Form


class CheckInForm(Form):
    optional = ("handle", "override_reason", "reviewed")

    code = fields.String(
        required=True, error_messages={"required": "Enter the client's code."},
        validate=[validate.Length(min=1, error="Enter the client's code."),
                  validate.Length(max=40, error="A code has at most 40 characters.")])
    handle = fields.String(load_default=None, validate=validate.Length(
        max=40, error="A handle has at most 40 characters."))
    override_reason = fields.String(load_default=None, validate=validate.Length(
        max=200, error="At most 200 characters."))
    # The code whose flags this screen has already shown: check in without asking again.
    reviewed = fields.String(load_default=None)

    @pre_load
    def _normalise_code(self, data, **_kwargs):
        if isinstance(data.get("code"), str):
            data = {**data, "code": data["code"].strip().upper()}
        return data


class ConsumptionForm(Form):
    substances = fields.List(
        fields.String(validate=validate.OneOf(list(SUBSTANCES),
                                              error="Unknown substance: {input}.")),
        required=True, error_messages={"required": "Choose at least one substance."},
        validate=validate.Length(min=1, error="Choose at least one substance."))
    route = fields.String(
        required=True, error_messages={"required": "Choose how it was used."},
        validate=validate.OneOf(list(ROUTES), error="Choose how it was used."))
    fentanyl_strip = fields.String(load_default="not_done", validate=validate.OneOf(
        list(STRIP_RESULTS), error="Choose positive, negative or not done."))
    benzo_strip = fields.String(load_default="not_done", validate=validate.OneOf(
        list(STRIP_RESULTS), error="Choose positive, negative or not done."))
    split_or_shared = fields.Boolean(load_default=False)
    peer_assisted = fields.Boolean(load_default=False)

    @validates("substances")
    def _each_once(self, value, **_kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Each substance once.")


class LeaveQueueForm(Form):
    reason = fields.String(
        required=True, error_messages={"required": "Choose why they left."},
        validate=validate.OneOf(list(LEFT_QUEUE_REASONS), error="Choose why they left."))


class DischargeForm(Form):
    """From after-care no reason is needed; straight from a booth the service asks for one."""

    optional = ("reason",)

    reason = fields.String(load_default=None, validate=validate.OneOf(
        list(DISCHARGE_FROM_BOOTH_REASONS), error="Choose why they leave."))


class OutOfServiceForm(Form):
    reason = fields.String(
        required=True, error_messages={"required": "Say why the booth is out of service."},
        validate=[validate.Length(min=1, error="Say why the booth is out of service."),
                  validate.Length(max=200, error="At most 200 characters.")])

    @pre_load
    def _strip(self, data, **_kwargs):
        if isinstance(data.get("reason"), str):
            data = {**data, "reason": data["reason"].strip()}
        return data


class CheckForm(Form):
    """A check from the tablet: one tap on a status, vitals if measured."""

    optional = ("spo2", "respiratory_rate")

    status = fields.String(
        required=True, error_messages={"required": "Tap OK, Drowsy or Unresponsive."},
        validate=validate.OneOf(list(CHECK_STATUSES),
                                error="Tap OK, Drowsy or Unresponsive."))
    spo2 = fields.Integer(
        load_default=None, error_messages={"invalid": "SpO2 is a whole number, e.g. 96."},
        validate=validate.Range(*SPO2_RANGE, error=(
            f"SpO2 is a percentage from {SPO2_RANGE[0]} to {SPO2_RANGE[1]}.")))
    respiratory_rate = fields.Integer(
        load_default=None,
        error_messages={"invalid": "Breaths per minute, a whole number, e.g. 14."},
        validate=validate.Range(*RESPIRATORY_RATE_RANGE, error=(
            f"Breaths per minute, from {RESPIRATORY_RATE_RANGE[0]} to "
            f"{RESPIRATORY_RATE_RANGE[1]}.")))
