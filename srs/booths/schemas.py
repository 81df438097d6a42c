"""Schemas for the floor: every floor action's input, the board and visits.

Each record the floor takes in has one field set, declared once with the messages a nurse
reads. The JSON API's schema (unknown fields raise) and the tablet's form (unknown fields,
like the CSRF token and the idempotency key, are left out; an input left empty is "not
given") each inherit it and add only what differs.
"""

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates

from srs.booths.models import (
    BOOTH_KIND_LABELS,
    BOOTH_LABEL_LENGTH,
    CHECK_STATUSES,
    DISCHARGE_FROM_BOOTH_REASONS,
    EARLY_DISCHARGE_REASONS,
    LEFT_QUEUE_REASONS,
    RESPIRATORY_RATE_RANGE,
    ROUTES,
    SPO2_RANGE,
    STRIP_RESULTS,
    SUBSTANCES,
    BoothState,
)
from srs.common import RecordId
from srs.forms import Form
from srs.sites.schemas import SiteSchema

# --- One field set per record ---------------------------------------------------------------


class _CheckInFields(Schema):
    code = fields.String(
        required=True, error_messages={"required": "Enter the client's code."},
        validate=[validate.Length(min=1, error="Enter the client's code."),
                  validate.Length(max=40, error="A code has at most 40 characters.")],
        metadata={"description": "Client code, e.g. F-ABCD-1984."})
    handle = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Length(max=40, error="A handle has at most 40 characters."),
        metadata={"description": "Optional nickname; never a name."})
    override_reason = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Length(max=200, error="At most 200 characters."),
        metadata={"description": "Supervisors only: why a service restriction is overridden."})


# A drug-check strip's result (fentanyl, benzodiazepines).
def _strip_result_field():
    return fields.String(load_default="not_done", validate=validate.OneOf(
        list(STRIP_RESULTS), error="Choose positive, negative or not done."))


class _ConsumptionFields(Schema):
    substances = fields.List(
        fields.String(validate=validate.OneOf(list(SUBSTANCES),
                                              error="Unknown substance: {input}.")),
        required=True, error_messages={"required": "Choose at least one substance."},
        validate=validate.Length(min=1, error="Choose at least one substance."),
        metadata={"description": f"Any of: {', '.join(SUBSTANCES)}."})
    route = fields.String(
        required=True, error_messages={"required": "Choose how it was used."},
        validate=validate.OneOf(list(ROUTES), error="Choose how it was used."),
        metadata={"description": f"One of: {', '.join(ROUTES)} (the booth's kind limits it)."})
    fentanyl_strip = _strip_result_field()
    benzo_strip = _strip_result_field()
    split_or_shared = fields.Boolean(load_default=False)
    peer_assisted = fields.Boolean(load_default=False)

    @validates("substances")
    def _each_once(self, value, **_kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Each substance once.")


class _OutOfServiceFields(Schema):
    # null puts the booth back in service: only the API sends one (the tablet has a button).
    reason = fields.String(
        required=True, allow_none=True,
        error_messages={"required": "Say why the booth is out of service."},
        validate=[validate.Length(min=1, error="Say why the booth is out of service."),
                  validate.Length(max=200, error="At most 200 characters.")],
        metadata={"description": "Why the booth is out of service; null puts it back in "
                                 "service."})


# A booth as its admin keeps it. The API's position is strict (a JSON number); the admin
# page's arrives as the text of its Up and Down buttons.
def _position_field(**kwargs):
    return fields.Integer(
        error_messages={"invalid": "A position is a whole number, 0 for the first booth."},
        validate=validate.Range(min=0, error="A position is 0 (the first booth) or more."),
        metadata={"description": "Place on the board, 0 first; the others move up or down "
                                 "to make room."}, **kwargs)


class _BoothFields(Schema):
    label = fields.String(
        required=True, error_messages={"required": "Enter a label, e.g. B9."},
        validate=[validate.Length(min=1, error="Enter a label, e.g. B9."),
                  validate.Length(max=BOOTH_LABEL_LENGTH, error=(
                      f"A label has at most {BOOTH_LABEL_LENGTH} characters."))],
        metadata={"description": "What the board calls the booth, e.g. B9; one booth per "
                                 "label at a site, retired ones included."})
    kind = fields.String(
        required=True, error_messages={"required": "Choose injection or inhalation."},
        validate=validate.OneOf(list(BOOTH_KIND_LABELS),
                                error="Choose injection or inhalation."),
        metadata={"description": "injection or inhalation; changes only while no client is "
                                 "in the booth."})


class _BoothChangeFields(_BoothFields):
    position = _position_field(strict=True)
    retired = fields.Boolean(metadata={
        "description": "true retires the booth (off the board, never assigned again, its "
                       "history kept; refused while a client is in it); false reinstates it."})


# The vitals a check may carry. The API's are strict (a JSON number); the tablet's arrive as
# typed text, so its form declares them again without ``strict``.
def _spo2_field(**kwargs):
    return fields.Integer(
        load_default=None, error_messages={"invalid": "SpO2 is a whole number, e.g. 96."},
        validate=validate.Range(*SPO2_RANGE, error=(
            f"SpO2 is a percentage from {SPO2_RANGE[0]} to {SPO2_RANGE[1]}.")),
        metadata={"description": "Oxygen saturation, %, optional."}, **kwargs)


def _respiratory_rate_field(**kwargs):
    return fields.Integer(
        load_default=None,
        error_messages={"invalid": "Breaths per minute, a whole number, e.g. 14."},
        validate=validate.Range(*RESPIRATORY_RATE_RANGE, error=(
            f"Breaths per minute, from {RESPIRATORY_RATE_RANGE[0]} to "
            f"{RESPIRATORY_RATE_RANGE[1]}.")),
        metadata={"description": "Breaths per minute, optional."}, **kwargs)


class _CheckFields(Schema):
    status = fields.String(
        required=True, error_messages={"required": "Tap OK, Drowsy or Unresponsive."},
        validate=validate.OneOf(list(CHECK_STATUSES),
                                error="Tap OK, Drowsy or Unresponsive."))
    spo2 = _spo2_field(strict=True, allow_none=True)
    respiratory_rate = _respiratory_rate_field(strict=True, allow_none=True)


# --- The API's input ------------------------------------------------------------------------


class CheckInSchema(_CheckInFields):
    class Meta:
        unknown = RAISE


class AssignBoothSchema(Schema):
    class Meta:
        unknown = RAISE

    booth_id = RecordId(required=True)


class ConsumptionSchema(_ConsumptionFields):
    """A consumption to record; the same schema answers with it."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    recorded_at = fields.AwareDateTime(dump_only=True)


class DischargeSchema(Schema):
    """Any way a visit ends, so not the tablet's field: its dialog offers only the reasons
    for leaving straight from a booth (the queue has its own)."""

    class Meta:
        unknown = RAISE

    reason = fields.String(
        load_default=None, allow_none=True,
        validate=validate.OneOf([*LEFT_QUEUE_REASONS, *DISCHARGE_FROM_BOOTH_REASONS,
                                 "discharged"]),
        metadata={"description": "Needed from the queue (left-queue reasons) or straight "
                                 "from a booth; optional from after-care."})


class OutOfServiceSchema(_OutOfServiceFields):
    """Take a booth out of service (a reason) or put it back (``reason: null``)."""

    class Meta:
        unknown = RAISE


class NewBoothSchema(_BoothFields):
    """A booth to add: it goes at the end of the board."""

    class Meta:
        unknown = RAISE


class BoothChangeSchema(_BoothChangeFields):
    """Any of a booth's label, kind, position and retirement; load with ``partial=True``."""

    class Meta:
        unknown = RAISE


class CheckSchema(_CheckFields):
    """A check on a client in a booth or in after-care."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    visit_id = fields.Integer(dump_only=True)
    recorded_at = fields.AwareDateTime(dump_only=True)
    phase = fields.String(dump_only=True, metadata={"description": "in_booth or observing"})
    # The tablet's message names its buttons; an API client sends the lower-case codes.
    status = fields.String(required=True, validate=validate.OneOf(
        list(CHECK_STATUSES), error="Choose ok, drowsy or unresponsive."),
        metadata={"description": "ok, drowsy or unresponsive (raises a high alarm)."})


# --- The tablet's forms ---------------------------------------------------------------------


class CheckInForm(Form, _CheckInFields):
    optional = ("handle", "override_reason", "reviewed")

    # The code whose flags this screen has already shown: check in without asking again.
    reviewed = fields.String(load_default=None)

    @pre_load
    def _normalise_code(self, data, **_kwargs):
        if isinstance(data.get("code"), str):
            data = {**data, "code": data["code"].strip().upper()}
        return data


class ConsumptionForm(Form, _ConsumptionFields):
    """What was used, from the booth's dialog."""


class LeaveQueueForm(Form):
    reason = fields.String(
        required=True, error_messages={"required": "Choose why they left."},
        validate=validate.OneOf(list(LEFT_QUEUE_REASONS), error="Choose why they left."))


class DischargeForm(Form):
    """From after-care no reason is needed; straight from a booth the service asks for one."""

    optional = ("reason",)

    reason = fields.String(load_default=None, validate=validate.OneOf(
        list(DISCHARGE_FROM_BOOTH_REASONS | EARLY_DISCHARGE_REASONS),
        error="Choose why they leave."))


class OutOfServiceForm(Form, _OutOfServiceFields):
    strip_text = True


class BoothForm(Form, _BoothChangeFields):
    """The booth admin page's forms: adding one (label and kind) and each change, loaded with
    ``partial=True`` (each form sends only what it changes)."""

    strip_text = True

    position = _position_field()


class CheckForm(Form, _CheckFields):
    """A check from the tablet: one tap on a status, vitals if measured."""

    optional = ("spo2", "respiratory_rate")

    spo2 = _spo2_field()
    respiratory_rate = _respiratory_rate_field()


# --- Output ---------------------------------------------------------------------------------


class ClientSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    handle = fields.String(allow_none=True)


class VisitSchema(Schema):
    id = fields.Integer()
    state = fields.String(metadata={"description": "waiting, in_booth, observing or departed"})
    client = fields.Nested(ClientSchema)
    booth_id = fields.Integer(allow_none=True)
    arrived_at = fields.AwareDateTime()
    booth_at = fields.AwareDateTime(allow_none=True)
    observation_at = fields.AwareDateTime(allow_none=True)
    observation_ends_at = fields.AwareDateTime(allow_none=True)
    booth_due_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the booth time limit passes (in a booth only)."})
    next_check_due_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the next check on the client is due (booth or after-care)."})
    departed_at = fields.AwareDateTime(allow_none=True)
    departure_reason = fields.String(allow_none=True)
    consumed = fields.Boolean(allow_none=True)
    consumptions = fields.List(fields.Nested(ConsumptionSchema))


class BoothSchema(Schema):
    id = fields.Integer()
    label = fields.String()
    kind = fields.String(metadata={"description": "injection or inhalation"})
    position = fields.Integer()
    state = fields.Enum(BoothState, by_value=True)
    out_of_service_reason = fields.String(allow_none=True)
    visit = fields.Nested(VisitSchema, allow_none=True)


class SiteBoothSchema(Schema):
    """A booth as its admin sees it: no client, whether retired."""

    id = fields.Integer()
    label = fields.String()
    kind = fields.String(metadata={"description": "injection or inhalation"})
    position = fields.Integer(metadata={"description": "Place on the board, 0 first."})
    state = fields.Enum(BoothState, by_value=True)
    out_of_service_reason = fields.String(allow_none=True)
    retired_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the booth was retired; null while it is in use."})


class TodaySchema(Schema):
    visits = fields.Integer()
    unique_clients = fields.Integer()
    waiting_now = fields.Integer()
    average_wait_minutes = fields.Float(allow_none=True)
    booths_in_use = fields.Integer()
    booths_total = fields.Integer()


class BoardSchema(Schema):
    site = fields.Nested(SiteSchema)
    booths = fields.List(fields.Nested(BoothSchema))
    queue = fields.List(fields.Nested(VisitSchema))
    aftercare = fields.List(fields.Nested(VisitSchema))
    today = fields.Nested(TodaySchema)
    generated_at = fields.AwareDateTime()
