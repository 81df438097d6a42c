"""Schemas for overdose responses: the API's (unknown fields raise) and the console's forms
(unknown fields, like the CSRF token, are left out)."""

from marshmallow import (
    RAISE,
    Schema,
    fields,
    validate,
)

from srs.common import RecordId
from srs.forms import Form
from srs.overdose.models import (
    INTERVENTIONS,
    MAX_DOSE_MG,
    MAX_OXYGEN_LPM,
    MAX_SPO2,
    MIN_DOSE_MG,
    MIN_SPO2,
    OUTCOMES,
    ROUTES,
    SOURCES,
    ResponseKind,
)
from srs.overdose.service import response_summary, response_timeline

DOSE_MESSAGE = f"Give a dose between {MIN_DOSE_MG} and {MAX_DOSE_MG} mg."
SPO2_MESSAGE = f"An SpO2 reading is between {MIN_SPO2} and {MAX_SPO2}%."


def _kind_field(**kwargs):
    return fields.String(validate=validate.OneOf(
        [k.value for k in ResponseKind], error="Choose opioid, stimulant or other."),
        metadata={"description": "opioid, stimulant (overamping: no naloxone prompts) or "
                                 "other (another medical emergency)."}, **kwargs)


# --- Input ----------------------------------------------------------------------------------


class StartResponseSchema(Schema):
    class Meta:
        unknown = RAISE

    kind = _kind_field(required=True, error_messages={"required": "Choose the kind."})
    visit_id = RecordId(load_default=None, allow_none=True, metadata={
        "description": "The visit of a client in a booth or after-care."})
    location = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=80), metadata={
                                 "description": "Without a visit: one of the site's places "
                                                "(washroom, doorway...)."})
    source = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(list(SOURCES)), metadata={
                               "description": "With a visit, 'check' when an observation "
                                              "check found the client unresponsive."})


class _EntryFields(Schema):
    at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "When it happened, if not now (back-entry)."})
    dose_mg = fields.Float(load_default=None, allow_none=True, validate=validate.Range(
        min=MIN_DOSE_MG, max=MAX_DOSE_MG, error=DOSE_MESSAGE), metadata={
        "description": "Naloxone: mg (default 0.4 IM, 4 IN; IV needs one)."})
    route = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        list(ROUTES), error="Choose im, in or iv."))
    spo2 = fields.Integer(strict=True, load_default=None, allow_none=True,
                          validate=validate.Range(min=MIN_SPO2, max=MAX_SPO2,
                                                  error=SPO2_MESSAGE))
    oxygen_lpm = fields.Float(load_default=None, allow_none=True, validate=validate.Range(
        min=0.5, max=MAX_OXYGEN_LPM, error=f"Flow between 0.5 and {MAX_OXYGEN_LPM} L/min."))
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=1000))


class InterventionInputSchema(_EntryFields):
    """A new entry (``kind``), or a correction of one (``amends_id`` with a reason)."""

    class Meta:
        unknown = RAISE

    kind = fields.String(load_default=None, validate=validate.OneOf(
        list(INTERVENTIONS), error="Unknown intervention: {input}."),
        metadata={"description": f"One of: {', '.join(INTERVENTIONS)}."})
    amends_id = RecordId(load_default=None, allow_none=True)
    amend_reason = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=500))
    struck = fields.Boolean(load_default=False, metadata={
        "description": "With amends_id: the entry was made in error."})


class CloseResponseSchema(Schema):
    class Meta:
        unknown = RAISE

    outcome = fields.String(required=True, allow_none=True, validate=validate.OneOf(
        list(OUTCOMES), error="Choose one of: " + ", ".join(OUTCOMES) + "."),
        error_messages={"required": "Choose the outcome before closing."},
        metadata={"description": f"One of: {', '.join(OUTCOMES)}."})
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=1000))


# --- The console's forms --------------------------------------------------------------------


class _Form(Form):
    # The console's inputs are all optional until the service says otherwise.
    every_blank_absent = True


class StartForm(_Form):
    kind = _kind_field(load_default="opioid")
    visit_id = RecordId(load_default=None, strict=False)
    location = fields.String(load_default=None, validate=validate.Length(max=80))
    source = fields.String(load_default=None, validate=validate.OneOf(list(SOURCES)))


class InterventionForm(_Form, _EntryFields):
    kind = fields.String(required=True, validate=validate.OneOf(
        list(INTERVENTIONS), error="Choose what was done."),
        error_messages={"required": "Choose what was done."})
    spo2 = fields.Integer(load_default=None, validate=validate.Range(
        min=MIN_SPO2, max=MAX_SPO2, error=SPO2_MESSAGE))


class AmendForm(_Form, _EntryFields):
    amend_reason = fields.String(load_default=None, validate=validate.Length(max=500))
    struck = fields.Boolean(load_default=False)
    spo2 = fields.Integer(load_default=None, validate=validate.Range(
        min=MIN_SPO2, max=MAX_SPO2, error=SPO2_MESSAGE))
    time = fields.String(load_default=None, metadata={"description": "HH:MM:SS at the site."})


class CloseForm(_Form):
    outcome = fields.String(load_default=None, validate=validate.OneOf(
        list(OUTCOMES), error="Choose one of the outcomes."))
    note = fields.String(load_default=None, validate=validate.Length(max=1000))


class KindForm(_Form):
    kind = _kind_field(required=True)


# --- Output ---------------------------------------------------------------------------------


class InterventionSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.Integer(allow_none=True)
    dose_mg = fields.Float(allow_none=True)
    route = fields.String(allow_none=True)
    lot_id = fields.Integer(allow_none=True)
    stock_discrepancy = fields.Boolean()
    spo2 = fields.Integer(allow_none=True)
    oxygen_lpm = fields.Float(allow_none=True)
    note = fields.String(allow_none=True)
    amends_id = fields.Integer(allow_none=True)
    amend_reason = fields.String(allow_none=True)
    struck = fields.Boolean()


class ResponseSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    visit_id = fields.Integer(allow_none=True)
    client_id = fields.Integer(allow_none=True)
    client_code = fields.Function(lambda r: r.client.code if r.client else None)
    kind = fields.String()
    source = fields.String()
    location = fields.String(allow_none=True)
    started_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)
    outcome = fields.String(allow_none=True)
    outcome_note = fields.String(allow_none=True)
    redose_due_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the console prompts to reassess (last dose + the site's "
                       "re-dose interval)."})
    interventions = fields.List(fields.Nested(InterventionSchema), metadata={
        "description": "Every row as entered, amendments included."})
    summary = fields.Function(response_summary)
    timeline = fields.Function(response_timeline)
    report_draft = fields.Dict(allow_none=True, metadata={
        "description": "Written at close: the incident draft of type overdose."})
    incident_id = fields.Function(
        lambda r: r.drafted.id if r.drafted is not None else None, allow_none=True, metadata={
            "type": "integer",
            "description": "In the close's answer: the id of the incident report draft it "
                           "wrote, for its reporter to review and submit (null in every "
                           "other answer)."})
