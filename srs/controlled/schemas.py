"""Schemas for the controlled-drug register: the API's (unknown fields raise) and the
register page's forms (unknown fields, like the CSRF token, are left out). One field set
serves both edges."""

from datetime import date, timedelta

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from srs.common import RecordId
from srs.controlled.models import ENTRY_KINDS, LOSS_REPORT_DAYS, UNITS
from srs.forms import Form

QUANTITY = validate.Range(min=1, max=100000, error="Between 1 and 100000.")
PIN = validate.Length(min=1, max=12, error="Enter the PIN.")

# --- Input ------------------------------------------------------------------------------------


class _DrugFields(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80),
                         metadata={"description": "The drug, e.g. Diacetylmorphine."})
    strength = fields.String(required=True, validate=validate.Length(min=1, max=40),
                             metadata={"description": "As the register heads it, e.g. "
                                                      "200 mg vial or 100 mg/mL."})
    unit = fields.String(required=True, validate=validate.OneOf(
        list(UNITS), error=f"Choose {', '.join(UNITS)}."),
        metadata={"description": "What the balance counts."})


class _ReceiveFields(Schema):
    drug_id = RecordId(required=True)
    supplier = fields.String(required=True, validate=validate.Length(min=1, max=120))
    invoice = fields.String(required=True, validate=validate.Length(min=1, max=60))
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    expires_on = fields.Date(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=QUANTITY)


class _WasteFields(Schema):
    drug_id = RecordId(required=True)
    kind = fields.String(load_default="wasted", validate=validate.OneOf(
        ["wasted", "destroyed"], error="Choose wasted or destroyed."))
    quantity = fields.Integer(strict=True, required=True, validate=QUANTITY)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))
    witness_id = RecordId(required=True, metadata={
        "description": "Another staff member of the site, who enters their PIN."})
    witness_pin = fields.String(required=True, load_only=True, validate=PIN)


class _CountFields(Schema):
    drug_id = RecordId(required=True)
    counted = fields.Integer(strict=True, required=True, validate=validate.Range(
        min=0, max=100000, error="Between 0 and 100000."))
    first_id = RecordId(required=True)
    first_pin = fields.String(required=True, load_only=True, validate=PIN)
    second_id = RecordId(required=True)
    second_pin = fields.String(required=True, load_only=True, validate=PIN)


class _ReturnFields(Schema):
    drug_id = RecordId(required=True)
    supplier = fields.String(required=True, validate=validate.Length(min=1, max=120))
    quantity = fields.Integer(strict=True, required=True, validate=QUANTITY)
    reason = fields.String(load_default=None, validate=validate.Length(max=200))


class _LossFields(Schema):
    reference = fields.String(required=True, validate=validate.Length(min=1, max=80))


def _api(fields_class, name: str):
    return type(name, (fields_class,), {"Meta": type("Meta", (), {"unknown": RAISE}),
                                        "__module__": __name__})


CreateDrugSchema = _api(_DrugFields, "CreateDrugSchema")
ReceiveSchema = _api(_ReceiveFields, "ReceiveSchema")
WasteSchema = _api(_WasteFields, "WasteSchema")
CountSchema = _api(_CountFields, "CountSchema")
LossReportedSchema = _api(_LossFields, "LossReportedSchema")


class _Form(Form):
    # Every input is optional until the service says otherwise; numbers come as text.
    every_blank_absent = True
    strip_text = True
    unstripped = ("witness_pin", "first_pin", "second_pin")


class DrugForm(_Form, _DrugFields):
    class Meta:
        unknown = EXCLUDE


class ReceiveForm(_Form, _ReceiveFields):
    class Meta:
        unknown = EXCLUDE


class WasteForm(_Form, _WasteFields):
    class Meta:
        unknown = EXCLUDE

    messages = {"witness_id": {"required": "Choose the witness."}}


class CountForm(_Form, _CountFields):
    class Meta:
        unknown = EXCLUDE

    messages = {"first_id": {"required": "Choose who counts."},
                "second_id": {"required": "Choose the second person."}}


class ReturnForm(_Form, _ReturnFields):
    class Meta:
        unknown = EXCLUDE


class LossForm(_Form, _LossFields):
    class Meta:
        unknown = EXCLUDE


# A register period's days: 2000 to 2100, as every report's (the day after 9999-12-31 is none).
_PERIOD_DAY = validate.Range(min=date(2000, 1, 1), max=date(2100, 12, 31),
                             error="Give a date between 2000 and 2100.")


class PeriodForm(_Form):
    start = fields.Date(validate=_PERIOD_DAY)
    end = fields.Date(validate=_PERIOD_DAY)


# --- Output -----------------------------------------------------------------------------------


class DrugSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    strength = fields.String()
    unit = fields.String()
    balance = fields.Integer(metadata={"description": "Never below zero."})


class EntrySchema(Schema):
    id = fields.Integer()
    drug_id = fields.Integer()
    kind = fields.String(metadata={"enum": list(ENTRY_KINDS)})
    delta = fields.Integer()
    balance_after = fields.Integer()
    at = fields.DateTime()
    supplier = fields.String(allow_none=True)
    invoice = fields.String(allow_none=True)
    lot_number = fields.String(allow_none=True)
    expires_on = fields.Date(allow_none=True)
    client_code = fields.Function(lambda e: e.client.code if e.client is not None else None,
                                  allow_none=True)
    dose_mg = fields.Integer(allow_none=True)
    dose_id = fields.Integer(allow_none=True)
    identity_checked = fields.Boolean(allow_none=True)
    witness_name = fields.String(allow_none=True)
    witness_role = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    count_id = fields.Integer(allow_none=True)


class CountResultSchema(Schema):
    id = fields.Integer()
    drug_id = fields.Integer()
    counted_at = fields.DateTime()
    expected = fields.Integer()
    counted = fields.Integer()
    difference = fields.Integer()
    matched = fields.Function(lambda c: c.difference == 0)
    incident_id = fields.Integer(allow_none=True)
    loss_report_by = fields.Method("_report_by", allow_none=True)
    loss_reported_at = fields.DateTime(allow_none=True)
    loss_reference = fields.String(allow_none=True)

    def _report_by(self, count):
        if not count.difference:
            return None
        return (count.counted_at + timedelta(days=LOSS_REPORT_DAYS)).isoformat()


class LineSchema(Schema):
    drug = fields.Nested(DrugSchema)
    entries = fields.List(fields.Nested(EntrySchema),
                          metadata={"description": "The latest 20, newest first."})
    last_count = fields.Nested(CountResultSchema, allow_none=True)


class OpenLossSchema(Schema):
    count = fields.Nested(CountResultSchema)
    report_by = fields.DateTime()
    alarm = fields.Boolean()


class RegisterSchema(Schema):
    lines = fields.List(fields.Nested(LineSchema))
    open_losses = fields.List(fields.Nested(OpenLossSchema))
    generated_at = fields.DateTime()
