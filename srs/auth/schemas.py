"""Schemas for the sign-in forms (HTML forms carry the CSRF token: EXCLUDE) and for wall
displays in the API (RAISE)."""

from marshmallow import RAISE, Schema, fields, validate

from srs.common import RecordId
from srs.forms import Form


class LoginForm(Form):
    username = fields.String(
        required=True, error_messages={"required": "Enter your username."},
        validate=[validate.Length(min=1, error="Enter your username."),
                  validate.Length(max=60, error="A username has at most 60 characters.")])
    password = fields.String(
        required=True, error_messages={"required": "Enter your password."},
        validate=[validate.Length(min=1, error="Enter your password."),
                  validate.Length(max=200, error="A password has at most 200 characters.")])
    next = fields.String(load_default=None)


class PinForm(Form):
    """A PIN typed on a locked tablet: its own person's, or (``staff_id``) the PIN of the
    floor staff member who tapped their name."""

    pin = fields.String(required=True,
                        validate=validate.Regexp(r"^[0-9]{6}$", error="Your PIN is 6 digits."),
                        error_messages={"required": "Enter your 6-digit PIN."})
    staff_id = RecordId(load_default=None, strict=False,
                              error_messages={"invalid": "Tap your name again."})
    next = fields.String(load_default=None)


class DisplayForm(Form):
    """The name an admin gives a wall display they register."""

    strip_text = True
    name = fields.String(
        required=True, error_messages={"required": "Give the display a name."},
        validate=validate.Length(min=1, max=80,
                                 error="Give the display a name of 1 to 80 characters."))


class DisplaySchema(Schema):
    """A wall display as the API lists it (never its token)."""

    id = fields.Integer(dump_only=True)
    site_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    created_by = fields.Integer(dump_only=True, allow_none=True, metadata={
        "description": "Staff id of the admin who registered it."})
    last_seen_at = fields.AwareDateTime(dump_only=True, allow_none=True, metadata={
        "description": "Its last request, to the minute."})
    revoked_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class DisplayCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=80), metadata={
        "description": "Where it hangs, e.g. \"After-care wall\"."})


class RegisteredDisplaySchema(Schema):
    """A display just registered, with the token that signs it in: shown this once only."""

    display = fields.Nested(DisplaySchema)
    token = fields.String(metadata={"description": "Shown once; only its hash is kept."})
    url = fields.String(metadata={
        "description": "Open this on the display: it signs the display in and shows the "
                       "dashboard. Shown once."})


class ApiTokenSchema(Schema):
    """An API token as ``listApiTokens`` and ``revokeApiToken`` answer: never its value, which
    only its holder ever saw (only its hash is kept)."""

    id = fields.Integer(dump_only=True)
    staff_id = fields.Integer(dump_only=True, metadata={"description": "Whose token it is."})
    prefix = fields.String(dump_only=True, metadata={
        "description": "Its first 10 characters, to tell it apart from the holder's others."})
    created_at = fields.AwareDateTime(dump_only=True)
    last_used_at = fields.AwareDateTime(dump_only=True, allow_none=True, metadata={
        "description": "Its last call or socket, to the minute."})
    revoked_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class ApiTokenQuerySchema(Schema):
    """``listApiTokens``' choice of person."""

    class Meta:
        unknown = RAISE

    username = fields.String(load_default=None, validate=validate.Length(min=1, max=60),
                             metadata={"description": (
                                 "Whose tokens: the caller's own when omitted; someone else's "
                                 "for an admin of a site where they hold a role.")})
