"""Schemas for the organisation's sites: the admin's forms (EXCLUDE) and the API (RAISE)."""

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from srs.auth.models import Role
from srs.auth.schemas import StaffSchema
from srs.forms import Form
from srs.org.service import MAX_BOOTHS, NAME_MAX, SLUG, SLUG_MAX, SLUG_RULE, known_zones

_USERNAME_RULE = ("Use 2-60 lower-case letters, digits, dot, dash or underscore, starting "
                  "with a letter.")


def _name(**kwargs):
    message = f"Give the site a name of 1 to {NAME_MAX} characters."
    return fields.String(validate=validate.Length(min=1, max=NAME_MAX, error=message),
                         error_messages={"required": message},
                         metadata={"description": "The site's name, as staff see it."},
                         **kwargs)


def _timezone(**kwargs):
    return fields.String(error_messages={"required": "Choose the site's time zone."},
                         metadata={"description": "IANA time zone, e.g. America/Toronto: the "
                                                  "site's days, hours and reports follow it."},
                         **kwargs)


def _known_zone(value):
    if value not in known_zones():
        raise ValidationError(f"{value!r} is not a known time zone: give an IANA name such as "
                              f"America/Toronto.")


def _count(kind: str, **kwargs):
    message = f"Give 0 to {MAX_BOOTHS} {kind} booths."
    return fields.Integer(validate=validate.Range(min=0, max=MAX_BOOTHS, error=message),
                          error_messages={"invalid": message, "required": message}, **kwargs)


_SLUG = fields.String(required=True, validate=[
    validate.Length(min=1, max=SLUG_MAX, error=SLUG_RULE),
    validate.Regexp(SLUG, error=SLUG_RULE)], error_messages={"required": SLUG_RULE},
    metadata={"description": "In every URL of the site: lower-case words joined by dashes. "
                             "It never changes."})


class _SiteFields(Schema):
    name = _name(required=True)
    slug = _SLUG
    timezone = _timezone(required=True)

    @validates("timezone")
    def _zone(self, value, **_kwargs):
        _known_zone(value)


# --- The API ----------------------------------------------------------------------------------


class BoothCountsSchema(Schema):
    class Meta:
        unknown = RAISE

    injection = _count("injection", strict=True, load_default=0,
                       metadata={"description": "Injection booths, labelled B1, B2..."})
    inhalation = _count("inhalation", strict=True, load_default=0,
                        metadata={"description": "Inhalation booths, labelled S1, S2..."})


class FirstAdminSchema(Schema):
    class Meta:
        unknown = RAISE

    username = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z][A-Za-z0-9._-]{1,59}$", error=_USERNAME_RULE),
        metadata={"description": "Free username of the new site's first admin."})
    display_name = fields.String(load_default=None, validate=validate.Length(max=120),
                                 metadata={"description": "The name others see; the "
                                                          "username when omitted."})


class SiteCreateSchema(_SiteFields):
    """``createSite``: the site, its booths and its first admin."""

    class Meta:
        unknown = RAISE

    booths = fields.Nested(BoothCountsSchema, load_default=lambda: {
        "injection": 0, "inhalation": 0})
    admin = fields.Nested(FirstAdminSchema, required=True, metadata={
        "description": "A new person, the site's first admin: their password and PIN are in "
                       "the answer, this once."})
    add_caller_as_admin = fields.Boolean(load_default=False, metadata={
        "description": "Also make the caller an admin of the new site."})


class SiteUpdateSchema(Schema):
    """``updateSite``: a new name, time zone or both."""

    class Meta:
        unknown = RAISE

    name = _name()
    timezone = _timezone()

    @validates("timezone")
    def _zone(self, value, **_kwargs):
        _known_zone(value)

    @validates_schema
    def _not_empty(self, data, **_kwargs):
        if not data:
            raise ValidationError("Give a name or a time zone to change.")


class OrgSiteSchema(Schema):
    """A site as the organisation sees it."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    slug = fields.String(dump_only=True)
    timezone = fields.String(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)


class CreatedSiteSchema(Schema):
    """A site just created, its first admin, and what they sign in with: shown this once,
    only hashes are kept."""

    site = fields.Nested(OrgSiteSchema)
    admin = fields.Nested(StaffSchema, allow_none=True)
    password = fields.String(allow_none=True, metadata={"description": "Shown once."})
    pin = fields.String(allow_none=True, metadata={"description": "Shown once."})


class OrgAdminSchema(Schema):
    """A person holding (or just losing) the organisation admin flag."""

    id = fields.Integer(dump_only=True)
    username = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True)
    active = fields.Boolean(dump_only=True)
    org_admin = fields.Boolean(dump_only=True)


# --- The pages --------------------------------------------------------------------------------


class SiteForm(_SiteFields, Form):
    """The new-site form: the site, its booth counts and its first admin."""

    strip_text = True
    optional = ("admin_display_name",)
    injection_booths = _count("injection", required=True)
    inhalation_booths = _count("inhalation", required=True)
    admin_display_name = fields.String(load_default=None, validate=validate.Length(
        max=120, error="A name has at most 120 characters."))
    admin_username = fields.String(
        required=True, error_messages={"required": "Give the first admin a username."},
        validate=validate.Regexp(r"^[A-Za-z][A-Za-z0-9._-]{1,59}$", error=_USERNAME_RULE))
    add_me = fields.Boolean(load_default=False)


class SiteEditForm(Form):
    strip_text = True
    name = _name(required=True)
    timezone = _timezone(required=True)

    @validates("timezone")
    def _zone(self, value, **_kwargs):
        _known_zone(value)


class OrgAdminForm(Form):
    strip_text = True
    username = fields.String(
        required=True, error_messages={"required": "Give the person's username."},
        validate=validate.Length(min=1, max=60, error="Give the person's username."))


class SiteRoleForm(OrgAdminForm):
    """Give someone who already has an account (at another site) a role at this one."""

    role = fields.String(
        required=True, error_messages={"required": "Choose a role."},
        validate=validate.OneOf([r.value for r in Role], error="Choose a role from the list."))
