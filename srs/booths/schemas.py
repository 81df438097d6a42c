"""Schemas for the floor: the board, visits, and every floor action's input."""

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from srs.booths.models import (
    CHECK_STATUSES,
    DISCHARGE_FROM_BOOTH_REASONS,
    LEFT_QUEUE_REASONS,
    RESPIRATORY_RATE_RANGE,
    ROUTES,
    SPO2_RANGE,
    STRIP_RESULTS,
    SUBSTANCES,
    BoothState,
)
from srs.sites.schemas import SiteSchema


class ClientSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    handle = fields.String(allow_none=True)


class ConsumptionSchema(Schema):
    id = fields.Integer(dump_only=True)
    recorded_at = fields.AwareDateTime(dump_only=True)
    substances = fields.List(
        fields.String(validate=validate.OneOf(list(SUBSTANCES),
                                              error="Unknown substance: {input}.")),
        required=True, validate=validate.Length(min=1, error="Choose at least one substance."),
        metadata={"description": f"Any of: {', '.join(SUBSTANCES)}."})
    route = fields.String(required=True, validate=validate.OneOf(
        list(ROUTES), error="Unknown route: {input}."),
        metadata={"description": f"One of: {', '.join(ROUTES)} (the booth's kind limits it)."})
    fentanyl_strip = fields.String(load_default="not_done", validate=validate.OneOf(
        list(STRIP_RESULTS)))
    benzo_strip = fields.String(load_default="not_done", validate=validate.OneOf(
        list(STRIP_RESULTS)))
    split_or_shared = fields.Boolean(load_default=False)
    peer_assisted = fields.Boolean(load_default=False)

    class Meta:
        unknown = RAISE

    @validates("substances")
    def _no_repeats(self, value, **_kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Each substance once.")


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


class CheckInSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.Length(min=1, max=40),
                         metadata={"description": "Client code, e.g. F-ABCD-1984."})
    handle = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=40),
                           metadata={"description": "Optional nickname; never a name."})
    override_reason = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=200),
        metadata={"description": "Supervisors only: why a service restriction is overridden."})


class AssignBoothSchema(Schema):
    class Meta:
        unknown = RAISE

    booth_id = fields.Integer(required=True, strict=True)


class DischargeSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(
        load_default=None, allow_none=True,
        validate=validate.OneOf([*LEFT_QUEUE_REASONS, *DISCHARGE_FROM_BOOTH_REASONS,
                                 "discharged"]),
        metadata={"description": "Needed from the queue (left-queue reasons) or straight "
                                 "from a booth; optional from after-care."})


class OutOfServiceSchema(Schema):
    """Take a booth out of service (a reason) or put it back (``reason: null``)."""

    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, allow_none=True,
                           validate=validate.Length(min=1, max=200,
                                                    error="Give a reason of 1 to 200 characters."),
                           metadata={"description": "Why the booth is out of service; null "
                                                    "puts it back in service."})



class CheckSchema(Schema):
    """A check on a client in a booth or in after-care."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    visit_id = fields.Integer(dump_only=True)
    recorded_at = fields.AwareDateTime(dump_only=True)
    phase = fields.String(dump_only=True, metadata={"description": "in_booth or observing"})
    status = fields.String(required=True, validate=validate.OneOf(
        list(CHECK_STATUSES), error="Choose ok, drowsy or unresponsive."),
        metadata={"description": "ok, drowsy or unresponsive (raises a high alarm)."})
    spo2 = fields.Integer(
        strict=True, load_default=None, allow_none=True,
        validate=validate.Range(*SPO2_RANGE, error=(
            f"SpO2 is a percentage from {SPO2_RANGE[0]} to {SPO2_RANGE[1]}.")),
        metadata={"description": "Oxygen saturation, %, optional."})
    respiratory_rate = fields.Integer(
        strict=True, load_default=None, allow_none=True,
        validate=validate.Range(*RESPIRATORY_RATE_RANGE, error=(
            "Breaths per minute, from "
            f"{RESPIRATORY_RATE_RANGE[0]} to {RESPIRATORY_RATE_RANGE[1]}.")),
        metadata={"description": "Breaths per minute, optional."})
