"""What every HTML form shares: its base schema and reading a request's form."""

from marshmallow import EXCLUDE, Schema, fields, pre_load


def form_input(form, *lists: str) -> dict:
    """A request's form as a plain dict; the names in ``lists`` keep every value."""
    data = form.to_dict()
    for name in lists:
        data[name] = form.getlist(name)
    return data


def _typed_as_text(field: fields.Field) -> None:
    """A field (and a list's items) as a form takes it: a whole number typed as text."""
    if isinstance(field, fields.Integer):
        field.strict = False
    elif isinstance(field, fields.List):
        _typed_as_text(field.inner)


class Form(Schema):
    """The base of every HTML form's schema.

    Fields the schema does not know (the CSRF token) are dropped. The names in
    ``optional`` (every name, with ``every_blank_absent``) are absent when an input was
    left blank (rather than ""). With ``strip_text`` every text value is trimmed, but
    those named in ``unstripped``.

    A form takes its fields from the API's schema (inheriting its field set) and keeps
    its rules: its lengths, ranges and vocabularies are defined once, for both edges. What
    differs is only how a browser sends them: every number arrives as text, so no whole
    number is strict here; a form may make an input the API leaves optional
    ``required_inputs``, and say its own ``messages`` (by field, by error kind, e.g.
    ``{"witness_id": {"required": "Choose the witness."}}``).
    """

    class Meta:
        unknown = EXCLUDE

    optional: tuple[str, ...] = ()
    every_blank_absent = False
    strip_text = False
    unstripped: tuple[str, ...] = ()
    required_inputs: tuple[str, ...] = ()
    messages: dict[str, dict[str, str]] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            _typed_as_text(field)
            if name in self.required_inputs:
                field.required = True
            if name in self.messages:
                field.error_messages = {**field.error_messages, **self.messages[name]}

    def _blank_and_absent(self, name: str, value) -> bool:
        return (isinstance(value, str) and not value.strip()
                and (self.every_blank_absent or name in self.optional))

    @pre_load
    def _blank_is_absent(self, data, **_kwargs):
        return {k: v.strip() if self.strip_text and isinstance(v, str)
                and k not in self.unstripped else v
                for k, v in data.items() if not self._blank_and_absent(k, v)}
