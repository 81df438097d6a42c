"""Schemas for the sign-in forms (HTML forms carry the CSRF token: EXCLUDE), for wall
displays and for a site's staff, in the admin's forms and the API (RAISE)."""

from marshmallow import RAISE, Schema, fields, validate

from srs.auth.models import Role
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


# --- A site's staff ---------------------------------------------------------------------------

ROLE_CHOICES = [role.value for role in Role]
_ROLE = fields.String(validate=validate.OneOf(
    ROLE_CHOICES, error=f"Choose from {', '.join(ROLE_CHOICES)}."))


class _StaffFields(Schema):
    """What an admin gives when adding a person: the API's body and the page's form."""

    username = fields.String(
        required=True, error_messages={"required": "Give a username."},
        # The service's rule (lower-cased there), checked here too so that a form shows it
        # beside the other fields' messages.
        validate=validate.Regexp(r"^[A-Za-z][A-Za-z0-9._-]{1,59}$", error=(
            "Use 2-60 lower-case letters, digits, dot, dash or underscore, starting with a "
            "letter.")),
        metadata={"description": "2-60 lower-case letters, digits, dot, dash or underscore."})
    display_name = fields.String(
        load_default=None, validate=validate.Length(
            max=120, error="A name has at most 120 characters."),
        metadata={"description": "The name others see; the username when omitted."})
    roles = fields.List(_ROLE, required=True,
                        validate=validate.Length(min=1, error="Choose at least one role."),
                        error_messages={"required": "Choose at least one role."},
                        metadata={"description": "Roles at this site, at least one."})


class StaffForm(_StaffFields, Form):
    strip_text = True
    optional = ("display_name",)


class StaffCreateSchema(_StaffFields):
    class Meta:
        unknown = RAISE


class StaffRolesForm(Form):
    """The roles an admin ticks for one person."""

    roles = fields.List(_ROLE, load_default=list)


class StaffUpdateSchema(Schema):
    """``updateStaff``: any of a person's name, roles at the site and whether they may sign
    in. Taking away the last role is done by deactivating."""

    class Meta:
        unknown = RAISE

    display_name = fields.String(validate=validate.Length(min=1, max=120))
    roles = fields.List(_ROLE, validate=validate.Length(min=1), metadata={
        "description": "Every role they hold at this site from now on."})
    active = fields.Boolean(metadata={"description": (
        "false deactivates them: their logins end, their API tokens are revoked and their "
        "live connections cut at once. true lets them sign in again.")})


class StaffResetSchema(Schema):
    """``resetStaffCredentials``: which of a person's secrets to replace."""

    class Meta:
        unknown = RAISE

    password = fields.Boolean(load_default=False)
    pin = fields.Boolean(load_default=False)


class StaffSchema(Schema):
    """A person on a site's staff list (never a password or PIN, nor their hashes)."""

    id = fields.Integer(attribute="staff.id", dump_only=True)
    username = fields.String(attribute="staff.username", dump_only=True)
    display_name = fields.String(attribute="staff.display_name", dump_only=True)
    active = fields.Boolean(attribute="staff.active", dump_only=True)
    roles = fields.List(fields.String(), dump_only=True,
                        metadata={"description": "Their roles at this site."})
    has_pin = fields.Function(lambda entry: entry.staff.pin_hash is not None, dump_only=True)
    created_at = fields.AwareDateTime(attribute="staff.created_at", dump_only=True)
    last_sign_in_at = fields.AwareDateTime(dump_only=True, allow_none=True, metadata={
        "description": "When their latest login began, at any site."})
    off_call = fields.List(fields.Integer(), dump_only=True, metadata={"description": (
        "Sites whose on-call supervisor this change took off call (nobody is on call there "
        "now); empty otherwise.")})


class StaffWithSecretsSchema(Schema):
    """A person just added, or whose password or PIN was just reset, with what they sign in
    with: shown this once, only hashes are kept."""

    staff = fields.Nested(StaffSchema)
    password = fields.String(allow_none=True, metadata={"description": "Shown once."})
    pin = fields.String(allow_none=True, metadata={"description": "Shown once."})
