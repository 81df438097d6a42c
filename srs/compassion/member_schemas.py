"""Schemas of the club's members: the API's (unknown fields raise) and the pages' forms.
A member is a client code and handle: a legal identity is only ever loaded (at enrolment,
where the site's rules need one), never dumped."""

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from srs.compassion.models import LINKAGE_OUTCOMES, STATES, STEP_KEYS
from srs.forms import Form

_NOTE = validate.Length(max=300)
_REASON = validate.Length(min=1, max=200)


class EligibilityAnswerSchema(Schema):
    class Meta:
        unknown = RAISE

    met = fields.Boolean(required=True)
    note = fields.String(load_default=None, allow_none=True, validate=_NOTE)


class EnrolMemberSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.Length(min=1, max=40),
                         metadata={"description": "The client's code at the site."})
    eligibility = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=40)),
        values=fields.Nested(EligibilityAnswerSchema), load_default=dict,
        metadata={"description": "The site's eligibility checklist by item key (the site's "
                                 "own list, else current_use, overdose_risk, local_resident, "
                                 "age_19): whether met, and a note."})
    legal_name = fields.String(
        load_default=None, allow_none=True, load_only=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Required where the site's rules need a legal identity "
                                 "(compassion_identity_required); refused (422) elsewhere. "
                                 "Stored encrypted, never returned."})
    date_of_birth = fields.Date(
        load_default=None, allow_none=True, load_only=True,
        metadata={"description": "Required with legal_name; refused where the site keeps no "
                                 "identity."})
    health_number = fields.String(
        load_default=None, allow_none=True, load_only=True, validate=validate.Length(max=40),
        metadata={"description": "Optional with legal_name; refused where the site keeps no "
                                 "identity."})


class MembershipStepInputSchema(Schema):
    class Meta:
        unknown = RAISE

    step = fields.String(required=True, validate=validate.OneOf(STEP_KEYS), metadata={
        "description": "screening (a prescriber or screener only: 403 for anyone else), "
                       "risk_consent (names the site's consent text in force), "
                       "naloxone_training, linkage_consent."})
    training_session_id = fields.Integer(
        load_default=None, allow_none=True, strict=True,
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "naloxone_training: the naloxone program's session this "
                                 "client took part in; none: training given now."})
    note = fields.String(load_default=None, allow_none=True, validate=_NOTE)


class MemberListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    state = fields.String(load_default=None, validate=validate.OneOf(STATES))


class LinkageInputSchema(Schema):
    class Meta:
        unknown = RAISE

    outcome = fields.String(required=True, validate=validate.OneOf(LINKAGE_OUTCOMES))
    service_id = fields.Integer(
        load_default=None, allow_none=True, strict=True,
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Accepted: the directory's service to refer to, made "
                                 "through the referral engine during the member's open "
                                 "visit."})
    note = fields.String(load_default=None, allow_none=True, validate=_NOTE)


# --- Output ------------------------------------------------------------------------------------


class StepSchema(Schema):
    step = fields.String()
    at = fields.DateTime()
    by = fields.Integer(allow_none=True)
    consent_text_id = fields.Integer(allow_none=True)
    training_session_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)


class LinkageSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    by = fields.Integer(allow_none=True)
    outcome = fields.String(validate=validate.OneOf(LINKAGE_OUTCOMES))
    referral_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)


class MemberSchema(Schema):
    id = fields.Integer()
    client_id = fields.Integer()
    code = fields.Function(lambda m: m.client.code)
    handle = fields.Function(lambda m: m.client.handle, allow_none=True)
    state = fields.String(validate=validate.OneOf(STATES))
    applied_at = fields.DateTime()
    active_since = fields.DateTime(allow_none=True)
    eligibility = fields.Dict(keys=fields.String(),
                              values=fields.Nested(EligibilityAnswerSchema))
    suspended_reason = fields.String(allow_none=True)
    suspended_until = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    ended_reason = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(StepSchema))


class MemberRecordSchema(Schema):
    """A member with the steps still missing, their linkage history and when the next
    conversation is due (getMember)."""

    member = fields.Nested(MemberSchema)
    steps_missing = fields.List(fields.String())
    linkage = fields.List(fields.Nested(LinkageSchema))
    linkage_due_at = fields.DateTime(allow_none=True)


class MemberListSchema(Schema):
    members = fields.List(fields.Nested(MemberSchema))


# --- The pages' forms --------------------------------------------------------------------------


class EnrolMemberForm(Form, EnrolMemberSchema):
    """The checklist arrives as ``met_<key>``/``note_<key>``: the page gathers it into
    ``eligibility`` before loading."""

    class Meta:
        unknown = EXCLUDE

    strip_text = True
    optional = ("legal_name", "date_of_birth", "health_number")


class StepForm(Form, MembershipStepInputSchema):
    class Meta:
        unknown = EXCLUDE

    every_blank_absent = True
    strip_text = True


class LinkageForm(Form, LinkageInputSchema):
    class Meta:
        unknown = EXCLUDE

    every_blank_absent = True
    strip_text = True


class SuspendForm(Form):
    every_blank_absent = True
    strip_text = True
    reason = fields.String(required=True, validate=_REASON)
    until = fields.Date(required=True, error_messages={"invalid": "A date, please."})


class EndForm(Form):
    every_blank_absent = True
    strip_text = True
    reason = fields.String(required=True, validate=_REASON)


class ConsentTextForm(Form):
    strip_text = True
    text = fields.String(required=True, validate=validate.Length(
        min=1, max=20000, error="Write the consent text (at most 20,000 characters)."))
