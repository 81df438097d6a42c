"""Schemas of heroin-assisted treatment: the API's (unknown fields raise) and the pages'
forms. The identity is a field of the patient's record only (getPatient), never of a list."""

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from srs.forms import Form
from srs.hat.models import ALL_ROUTES, ELIGIBILITY_KEYS, MEDICATIONS, STATES, TITRATIONS

_PIN = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=20),
                     metadata={"description": "The prescriber's own PIN: their signature."})
_MG = validate.Range(min=0.1, max=2000, min_inclusive=True, error="Between 0.1 and 2000 mg.")


class EligibilityItemSchema(Schema):
    class Meta:
        unknown = RAISE

    met = fields.Boolean(required=True)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))


class EnrolSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.Length(min=1, max=40),
                         metadata={"description": "The client's code at the site."})
    legal_name = fields.String(required=True, load_only=True,
                               validate=validate.Length(min=1, max=200))
    date_of_birth = fields.Date(required=True, load_only=True)
    health_number = fields.String(load_default=None, allow_none=True, load_only=True,
                                  validate=validate.Length(max=40))
    eligibility = fields.Dict(
        keys=fields.String(validate=validate.OneOf(ELIGIBILITY_KEYS)),
        values=fields.Nested(EligibilityItemSchema), required=True,
        metadata={"description": "Checklist by item: " + ", ".join(ELIGIBILITY_KEYS) + "."})
    pin = _PIN


class PrescriptionInputSchema(Schema):
    class Meta:
        unknown = RAISE

    medication = fields.String(required=True, validate=validate.OneOf(MEDICATIONS))
    route = fields.String(required=True, validate=validate.OneOf(ALL_ROUTES))
    dose_mg = fields.Float(required=True, validate=_MG,
                           metadata={"description": "Dose per session in mg."})
    sessions_per_day = fields.Integer(strict=True, validate=validate.Range(min=1, max=6),
                                      metadata={"description": "At most the site's maximum; "
                                                               "default 3."})
    min_interval_minutes = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=30, max=720),
        metadata={"description": "Least time between sessions; default the site's (180)."})
    titration = fields.String(load_default="none", validate=validate.OneOf(TITRATIONS))
    titration_days = fields.List(fields.Float(validate=_MG), load_default=list,
                                 validate=validate.Length(max=60),
                                 metadata={"description": "Dose per session, day by day, "
                                                          "for a plan titration."})
    top_up_allowed = fields.Boolean(load_default=False)
    top_up_max_mg = fields.Float(load_default=None, allow_none=True, validate=_MG)
    oral_oat = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=200),
                             metadata={"description": "Oral OAT prescribed alongside."})
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(load_default=None, allow_none=True)
    pin = _PIN

    @validates_schema
    def _consistent(self, data, **_kwargs):
        errors = {}
        if data.get("titration") == "plan" and not data.get("titration_days"):
            errors["titration_days"] = ["Give the dose for each day of the plan."]
        if data.get("top_up_allowed") and not data.get("top_up_max_mg"):
            errors["top_up_max_mg"] = ["Give the most a top-up may be."]
        if data.get("ends_on") and data["ends_on"] < data["starts_on"]:
            errors["ends_on"] = ["After the start, please."]
        if errors:
            raise ValidationError(errors)


# --- Output ------------------------------------------------------------------------------------


class PrescriptionSchema(Schema):
    id = fields.Integer()
    enrolment_id = fields.Integer()
    version = fields.Integer()
    medication = fields.String()
    route = fields.String()
    dose_mg = fields.Float()
    sessions_per_day = fields.Integer()
    min_interval_minutes = fields.Integer()
    titration = fields.String()
    titration_days = fields.List(fields.Float())
    top_up_allowed = fields.Boolean()
    top_up_max_mg = fields.Float(allow_none=True)
    oral_oat = fields.String(allow_none=True)
    starts_on = fields.Date()
    ends_on = fields.Date(allow_none=True)
    signed_by = fields.Integer()
    signed_at = fields.DateTime()


class SignedPrescriptionSchema(Schema):
    prescription = fields.Nested(PrescriptionSchema)
    warnings = fields.List(fields.String())


class IdentitySchema(Schema):
    legal_name = fields.String(allow_none=True)
    date_of_birth = fields.Date(allow_none=True)
    health_number = fields.String(allow_none=True)


class EnrolmentSchema(Schema):
    """An enrolment without identity (what enrolPatient answers)."""

    id = fields.Integer()
    client_id = fields.Integer()
    code = fields.Function(lambda e: e.client.code)
    state = fields.String(validate=validate.OneOf(STATES))
    hold_reason = fields.String(allow_none=True, metadata={
        "description": "Why dosing is held: missed_doses or prescriber; null unless on_hold."})
    held_at = fields.DateTime(allow_none=True)
    retitrate_due = fields.Boolean(metadata={
        "description": "Missed days reached the site's re-titration threshold: a new "
                       "prescription version (the re-titration) clears it."})
    enrolled_at = fields.DateTime()
    eligibility = fields.Dict(keys=fields.String(), values=fields.Nested(EligibilityItemSchema))
    eligibility_signed_by = fields.Integer()
    eligibility_signed_at = fields.DateTime()


class PatientSchema(Schema):
    """A patient's record for a prescriber or pharmacist: identity included."""

    enrolment = fields.Nested(EnrolmentSchema)
    identity = fields.Nested(IdentitySchema)
    current = fields.Nested(PrescriptionSchema, allow_none=True)
    prescriptions = fields.Function(
        lambda p: PrescriptionSchema(many=True).dump(p["enrolment"].prescriptions))


# --- The pages' forms --------------------------------------------------------------------------


class EnrolForm(Form, EnrolSchema):
    class Meta:
        unknown = EXCLUDE

    optional = ("health_number",)
    strip_text = True
    unstripped = ("pin",)

    @pre_load
    def _checklist(self, data, **_kwargs):
        data = dict(data)
        data["eligibility"] = {
            key: {"met": bool(data.pop(f"met_{key}", None)),
                  "note": (data.pop(f"note_{key}", "") or "").strip() or None}
            for key in ELIGIBILITY_KEYS}
        return data


class PrescriptionForm(Form, PrescriptionInputSchema):
    class Meta:
        unknown = EXCLUDE

    every_blank_absent = True
    strip_text = True
    unstripped = ("pin",)
    top_up_allowed = fields.Boolean(load_default=False, truthy={"on", "true", "1"})

    @pre_load
    def _days(self, data, **_kwargs):
        data = dict(data)
        text = (data.get("titration_days") or "").strip() if isinstance(
            data.get("titration_days"), str) else None
        if text is not None:
            try:
                data["titration_days"] = [float(part) for part in
                                          text.replace(",", " ").split()]
            except ValueError:
                raise ValidationError({"titration_days": [
                    "Doses in mg, one a day, separated by spaces or commas."]}) from None
        return data
