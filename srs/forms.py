"""What every HTML form shares: its base schema and reading a request's form."""

from marshmallow import EXCLUDE, Schema, pre_load


def form_input(form, *lists: str) -> dict:
    """A request's form as a plain dict; the names in ``lists`` keep every value."""
    data = form.to_dict()
    for name in lists:
        data[name] = form.getlist(name)
    return data


class Form(Schema):
    """The base of every HTML form's schema.

    Fields the schema does not know (the CSRF token) are dropped. The names in
    ``optional`` (every name, with ``every_blank_absent``) are absent when an input was
    left blank (rather than ""). With ``strip_text`` every text value is trimmed, but
    those named in ``unstripped``.
    """

    class Meta:
        unknown = EXCLUDE

    optional: tuple[str, ...] = ()
    every_blank_absent = False
    strip_text = False
    unstripped: tuple[str, ...] = ()

    def _blank_and_absent(self, name: str, value) -> bool:
        return (isinstance(value, str) and not value.strip()
                and (self.every_blank_absent or name in self.optional))

    @pre_load
    def _blank_is_absent(self, data, **_kwargs):
        return {k: v.strip() if self.strip_text and isinstance(v, str)
                and k not in self.unstripped else v
                for k, v in data.items() if not self._blank_and_absent(k, v)}
