"""Schemas of the dosing session: the API's (unknown fields raise) and the tablet's forms.
Patients are named by client code and handle only: no identity is in any of them."""

from marshmallow import EXCLUDE, RAISE, Schema, fields, pre_load, validate

from srs.common import RecordId
from srs.forms import Form
from srs.hat.dosing import INTOXICATION_KEYS, NOT_GIVEN
from srs.hat.models import ASSESSMENT_OUTCOMES, DOSE_OUTCOMES, POSS_SCORES
from srs.hat.schemas import PrescriptionSchema

_MG = validate.Range(min=0.1, max=2000, error="Between 0.1 and 2000 mg.")
_UNITS = validate.Range(min=1, max=10000, error="A whole number above zero.")


def _why(error: str | None = None, **kwargs) -> fields.String:
    """Why a dose was not given: 1 to 200 characters."""
    rule = (validate.Length(min=1, max=200, error=error) if error
            else validate.Length(min=1, max=200))
    return fields.String(validate=rule, **kwargs)


_STAFF = {"description": "A member of the site's staff (an id of listStaff)."}


class AssessmentInputSchema(Schema):
    class Meta:
        unknown = RAISE

    poss = fields.Integer(required=True, strict=True, validate=validate.OneOf(
        POSS_SCORES, error="Choose the POSS score: S, 1, 2, 3 or 4."), metadata={
        "description": "Pasero Opioid-induced Sedation Scale: 0 for S (asleep, easy to "
                       "rouse), then 1 to 4."})
    intoxication_signs = fields.List(fields.String(validate=validate.OneOf(INTOXICATION_KEYS)),
                                     load_default=list, metadata={
                                         "description": "Signs seen: "
                                                        + ", ".join(INTOXICATION_KEYS) + "."})
    last_use_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "When the patient last used, as they say (not in the future)."})
    notes = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class DoseInputSchema(Schema):
    class Meta:
        unknown = RAISE

    dose_mg = fields.Float(required=True, validate=_MG)
    top_up = fields.Boolean(load_default=False, metadata={
        "description": "A top-up after the session's dose (if the prescription allows one)."})
    drug_id = RecordId(required=True, metadata={
        "description": "The register line of the medication the dose is drawn from."})
    quantity = fields.Integer(required=True, strict=True, validate=_UNITS, metadata={
        "description": "Units of the register line drawn for the dose."})
    identity_checked = fields.Boolean(load_default=False)
    waste_quantity = fields.Integer(load_default=None, allow_none=True, strict=True,
                                    validate=_UNITS, metadata={
                                        "description": "Units taken out beyond the dose and "
                                                       "wasted: witnessed."})
    waste_reason = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=200))
    waste_witness_id = RecordId(load_default=None, allow_none=True, metadata=_STAFF)
    waste_witness_pin = fields.String(load_default=None, allow_none=True, load_only=True,
                                      validate=validate.Length(max=20))
    witness_id = RecordId(load_default=None, allow_none=True, metadata={
        "description": "A second staff member witnessing the dose, with their PIN."})
    witness_pin = fields.String(load_default=None, allow_none=True, load_only=True,
                                validate=validate.Length(max=20))


class NotGivenInputSchema(Schema):
    class Meta:
        unknown = RAISE

    outcome = fields.String(required=True, validate=validate.OneOf(NOT_GIVEN))
    reason = _why(required=True)


# --- Output ------------------------------------------------------------------------------------


class AssessmentSchema(Schema):
    id = fields.Integer()
    enrolment_id = fields.Integer()
    at = fields.DateTime()
    nurse_id = fields.Integer()
    poss = fields.Integer()
    intoxication_signs = fields.List(fields.String())
    last_use_at = fields.DateTime(allow_none=True)
    notes = fields.String(allow_none=True)
    outcome = fields.String(validate=validate.OneOf(ASSESSMENT_OUTCOMES))
    reason = fields.String(allow_none=True)
    response_id = fields.Integer(allow_none=True, metadata={
        "description": "The overdose response opened at the console score."})


class DoseSchema(Schema):
    id = fields.Integer()
    enrolment_id = fields.Integer()
    prescription_id = fields.Integer(allow_none=True)
    assessment_id = fields.Integer(allow_none=True)
    day = fields.Date()
    at = fields.DateTime()
    outcome = fields.String(validate=validate.OneOf(DOSE_OUTCOMES))
    dose_mg = fields.Float(allow_none=True)
    top_up = fields.Boolean()
    nurse_id = fields.Integer(allow_none=True)
    witness_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    register_entry_id = fields.Integer(allow_none=True)
    visit_id = fields.Integer(allow_none=True)


class DosingRowSchema(Schema):
    enrolment_id = fields.Function(lambda r: r.enrolment.id)
    code = fields.String()
    handle = fields.String(allow_none=True)
    state = fields.Function(lambda r: r.enrolment.state)
    prescription = fields.Nested(PrescriptionSchema)
    sessions_given = fields.Integer()
    sessions_per_day = fields.Function(lambda r: r.prescription.sessions_per_day)
    next_at = fields.DateTime(allow_none=True, metadata={
        "description": "The earliest time the next session's dose may be given (null: now)."})
    flags = fields.List(fields.String(), metadata={
        "description": "on_hold, retitrate_due, withheld_today."})
    last_assessment = fields.Nested(AssessmentSchema, allow_none=True)
    doses = fields.List(fields.Nested(DoseSchema))
    visit_id = fields.Function(lambda r: r.visit.id if r.visit else None)


class DosingTodaySchema(Schema):
    day = fields.Date()
    patients = fields.List(fields.Nested(DosingRowSchema))


# --- The tablet's forms ------------------------------------------------------------------------


class AssessmentForm(Form, AssessmentInputSchema):
    class Meta:
        unknown = EXCLUDE

    optional = ("last_use_at", "notes")
    strip_text = True
    messages = {"poss": {"required": "Choose the POSS score."}}
    # A time today on the site's clock (the view makes it a moment).
    last_use_at = fields.String(load_default=None, validate=validate.Regexp(
        r"^\d{1,2}:\d{2}$", error="A time like 07:30."))


class DoseForm(Form, DoseInputSchema):
    class Meta:
        unknown = EXCLUDE

    every_blank_absent = True
    strip_text = True
    unstripped = ("witness_pin", "waste_witness_pin")
    messages = {"dose_mg": {"required": "Give the dose in mg."},
                "drug_id": {"required": "Choose the register line."},
                "quantity": {"required": "Give how many units were drawn."}}
    top_up = fields.Boolean(load_default=False, truthy={"on", "true", "1"})
    identity_checked = fields.Boolean(load_default=False, truthy={"on", "true", "1"})


class NotGivenForm(Form, NotGivenInputSchema):
    class Meta:
        unknown = EXCLUDE

    strip_text = True
    messages = {"reason": {"required": "Say why the dose was not given."}}
    reason = _why(error="Say why, in at most 200 characters.", required=True)

    @pre_load
    def _blank_reason(self, data, **_kwargs):
        data = dict(data)
        if not (data.get("reason") or "").strip():
            data.pop("reason", None)
        return data
