"""Schemas for naloxone stock: the API's (unknown fields raise) and the stock page's forms
(unknown fields, like the CSRF token, are left out)."""

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    fields,
    validate,
)

from srs.forms import Form
from srs.naloxone.models import FORMS, KIT_FORMS

# --- Input ----------------------------------------------------------------------------------


class ReceiveStockSchema(Schema):
    class Meta:
        unknown = RAISE

    product = fields.String(required=True, validate=validate.Length(min=1, max=80))
    form = fields.String(required=True, validate=validate.OneOf(
        list(FORMS), error="Choose ampoule, vial or nasal_spray."))
    strength = fields.String(required=True, validate=validate.Length(min=1, max=40),
                             metadata={"description": "As printed, e.g. 0.4 mg/mL."})
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    expires_on = fields.Date(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(
        min=1, max=10000, error="Between 1 and 10000."))


class TakeHomeKitInputSchema(Schema):
    class Meta:
        unknown = RAISE

    client_code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    form = fields.String(required=True, validate=validate.OneOf(
        list(KIT_FORMS), error="Choose injectable or nasal."))
    number = fields.Integer(strict=True, load_default=1, validate=validate.Range(
        min=1, max=20, error="Between 1 and 20 kits."))
    replaces_used = fields.Boolean(load_default=False)
    training_given = fields.Boolean(load_default=False)


# --- The stock page's forms -----------------------------------------------------------------


class _Form(Form):
    # The stock page's inputs are all optional until the service says otherwise.
    every_blank_absent = True


class ReceiveForm(_Form, ReceiveStockSchema):
    class Meta:
        unknown = EXCLUDE

    quantity = fields.Integer(required=True, validate=validate.Range(
        min=1, max=10000, error="Between 1 and 10000."))


class MovementForm(_Form):
    kind = fields.String(required=True, validate=validate.OneOf(
        ["expired", "wasted", "adjusted"], error="Choose expired, wasted or adjusted."))
    quantity = fields.Integer(required=True, validate=validate.Range(
        min=-10000, max=10000))
    reason = fields.String(load_default=None, validate=validate.Length(max=200))


class KitForm(_Form, TakeHomeKitInputSchema):
    class Meta:
        unknown = EXCLUDE

    number = fields.Integer(load_default=1, validate=validate.Range(
        min=1, max=20, error="Between 1 and 20 kits."))


# --- Output ---------------------------------------------------------------------------------


class LotSchema(Schema):
    id = fields.Integer()
    product = fields.String()
    form = fields.String()
    strength = fields.String()
    lot_number = fields.String()
    expires_on = fields.Date()
    quantity = fields.Integer()
    expired = fields.Boolean()
    expiring = fields.Boolean(metadata={"description": "Expires within 30 days."})


class FindingSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    lot_id = fields.Integer(allow_none=True)
    intervention_id = fields.Integer(allow_none=True)
    detail = fields.String()
    found_at = fields.AwareDateTime()


class StockSchema(Schema):
    lots = fields.List(fields.Nested(LotSchema))
    on_hand = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Units not expired, by form."})
    threshold = fields.Integer()
    findings = fields.List(fields.Nested(FindingSchema))


class TakeHomeKitSchema(Schema):
    id = fields.Integer()
    client_code = fields.Function(lambda k: k.client.code)
    form = fields.String()
    number = fields.Integer()
    replaces_used = fields.Boolean()
    training_given = fields.Boolean()
    given_at = fields.AwareDateTime()
    stock_discrepancy = fields.Boolean()
