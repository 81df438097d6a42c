"""Input schemas for the sign-in forms (HTML forms carry the CSRF token: EXCLUDE)."""

from marshmallow import fields, validate

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
    pin = fields.String(required=True,
                        validate=validate.Regexp(r"^[0-9]{6}$", error="Your PIN is 6 digits."),
                        error_messages={"required": "Enter your 6-digit PIN."})
    next = fields.String(load_default=None)
