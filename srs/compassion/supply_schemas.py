"""Schemas for a club's batches and supplies: the API's (unknown fields raise) and the pages'
forms (unknown fields, like the CSRF token, are left out). One field set serves both edges.

Quantities are entered as people speak of them (grams to 0.1 g, or whole tablets) and costs
in dollars and cents; the service turns them into whole mg and cents and says what is wrong.
"""

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from srs.common import RecordId
from srs.compassion.models import BATCH_STATES, SUPPLY_MODES, UNITS
from srs.compassion.supply import LIMITS
from srs.forms import Form

AMOUNT = validate.Range(min=0, max=100000, min_inclusive=False,
                        error="Give a number above zero, up to 100000.")
MONEY = validate.Range(min=0, max=1000000, error="Between 0 and 1000000.")


class _BatchFields(Schema):
    substance = fields.String(required=True, validate=validate.Length(min=1, max=80),
                              metadata={"description": "What is supplied, e.g. Heroin."})
    label_content = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                  metadata={"description": "What the label says it holds."})
    source = fields.String(required=True, validate=validate.Length(min=1, max=120))
    lot = fields.String(required=True, validate=validate.Length(min=1, max=34))
    unit = fields.String(load_default="g", validate=validate.OneOf(
        list(UNITS), error="Choose g or tablet."))
    quantity = fields.Float(required=True, allow_nan=False, validate=AMOUNT, metadata={
        "description": "Grams to 0.1 g, or whole tablets (unit tablet)."})
    unit_mg = fields.Integer(strict=True, load_default=None, validate=validate.Range(
        min=1, max=10000, error="Between 1 and 10000."),
        metadata={"description": "The mg in each tablet (unit tablet)."})
    cost = fields.Float(required=True, allow_nan=False, validate=MONEY, metadata={
        "description": "What the whole batch cost, in dollars and cents."})
    invoice = fields.String(load_default=None, validate=validate.Length(max=60))
    expires_on = fields.Date(required=True)
    drug_check_id = RecordId(load_default=None, metadata={
        "description": "The drug check of a sample of this batch."})


class _CheckFields(Schema):
    drug_check_id = RecordId(required=True)


class _ClearFields(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class _SupplyFields(Schema):
    batch_id = RecordId(required=True)
    quantity = fields.Float(required=True, allow_nan=False, validate=AMOUNT, metadata={
        "description": "Grams to 0.1 g, or whole tablets for a batch of tablets."})
    mode = fields.String(load_default="witnessed", validate=validate.OneOf(
        list(SUPPLY_MODES), error="Choose witnessed or take-home."))
    program_code = fields.String(load_default=None, validate=validate.Length(max=40))


def _api(fields_class, name: str):
    return type(name, (fields_class,), {"Meta": type("Meta", (), {"unknown": RAISE}),
                                        "__module__": __name__})


ReceiveBatchSchema = _api(_BatchFields, "ReceiveBatchSchema")
LinkCheckSchema = _api(_CheckFields, "LinkCheckSchema")
ClearBatchSchema = _api(_ClearFields, "ClearBatchSchema")
RecordSupplySchema = _api(_SupplyFields, "RecordSupplySchema")


class _Form(Form):
    every_blank_absent = True
    strip_text = True


class BatchForm(_Form, _BatchFields):
    class Meta:
        unknown = EXCLUDE


class CheckForm(_Form, _CheckFields):
    class Meta:
        unknown = EXCLUDE

    messages = {"drug_check_id": {"required": "Choose the drug check."}}


class ClearForm(_Form, _ClearFields):
    class Meta:
        unknown = EXCLUDE


class SupplyForm(_Form, _SupplyFields):
    class Meta:
        unknown = EXCLUDE

    messages = {"batch_id": {"required": "Choose the batch."}}


# --- Output ----------------------------------------------------------------------------------


class BatchSchema(Schema):
    id = fields.Integer()
    substance = fields.String()
    label_content = fields.String()
    source = fields.String()
    lot = fields.String()
    unit = fields.String(metadata={"enum": list(UNITS)})
    unit_mg = fields.Integer(allow_none=True)
    quantity_mg = fields.Integer()
    cost_cents = fields.Integer()
    received_at = fields.DateTime()
    drug_check_id = fields.Integer(allow_none=True)
    tested_content = fields.String(allow_none=True)
    state = fields.String(metadata={"enum": list(BATCH_STATES)})
    state_reason = fields.String(allow_none=True)
    cleared_at = fields.DateTime(allow_none=True)
    register_drug_id = fields.Integer(allow_none=True)


class SupplySchema(Schema):
    id = fields.Integer()
    member_id = fields.Integer()
    batch_id = fields.Integer()
    at = fields.DateTime()
    quantity_mg = fields.Integer()
    price_cents = fields.Integer()
    mode = fields.String(metadata={"enum": list(SUPPLY_MODES)})
    program_code = fields.String(allow_none=True)
    register_entry_id = fields.Integer(allow_none=True)
    visit_id = fields.Integer(allow_none=True)


class SubstanceAllowanceSchema(Schema):
    substance = fields.String()
    limit_mg = fields.Integer()
    used_mg = fields.Integer()
    left_mg = fields.Integer()


class AllowanceSchema(Schema):
    weekly_limit_mg = fields.Integer(attribute="weekly_limit")
    week_used_mg = fields.Integer(attribute="week_used")
    week_left_mg = fields.Integer(attribute="week_left")
    week_frees_at = fields.DateTime(allow_none=True, metadata={
        "description": "When the oldest supply of the rolling week leaves it."})
    daily_limit_mg = fields.Integer(attribute="daily_limit", allow_none=True)
    today_used_mg = fields.Integer(attribute="today_used")
    today_left_mg = fields.Integer(attribute="today_left", allow_none=True)
    pickups_limit = fields.Integer()
    pickups_today = fields.Integer()
    pickups_left = fields.Integer()
    in_window = fields.Boolean()
    window_opens_at = fields.DateTime(allow_none=True)
    substances = fields.List(fields.Nested(SubstanceAllowanceSchema))


LIMIT_NAMES = list(LIMITS)
