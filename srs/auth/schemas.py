"""Input schemas for the sign-in forms (HTML forms carry the CSRF token: EXCLUDE)."""

from marshmallow import EXCLUDE, Schema, fields, validate


class LoginForm(Schema):
    class Meta:
        unknown = EXCLUDE

    username = fields.String(required=True, validate=validate.Length(min=1, max=60),
                             error_messages={"required": "Enter your username."})
    password = fields.String(required=True, validate=validate.Length(min=1, max=200),
                             error_messages={"required": "Enter your password."})
    next = fields.String(load_default=None)


class PinForm(Schema):
    class Meta:
        unknown = EXCLUDE

    pin = fields.String(required=True,
                        validate=validate.Regexp(r"^[0-9]{6}$", error="Your PIN is 6 digits."),
                        error_messages={"required": "Enter your 6-digit PIN."})
    next = fields.String(load_default=None)
