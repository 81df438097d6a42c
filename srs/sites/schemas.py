"""Schemas for sites and their settings."""

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from srs.common import RecordId
from srs.forms import Form
from srs.sites.models import (
    COMPASSION_STEPS,
    RETENTION_MAX_DAYS,
    RETENTION_MIN_DAYS,
    RETENTION_RANGE,
    TIMER_SETTINGS,
)
from srs.sites.settings_table import (
    API_NUMBERS,
    BOOLEAN,
    DECIMAL,
    DURATION,
    cross_field_errors,
)
from srs.templating import duration


class SiteSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    slug = fields.String()
    timezone = fields.String()


SUBSTANCE_LIMIT_MAX_MG = 100000
# A day's clock, 00:00 to 23:59 (the supply reads each end as a time of day).
_WINDOW = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


STEP_KEYS = tuple(key for key, _label in COMPASSION_STEPS)


def _minutes(hours: str, minutes: str) -> int:
    return int(hours) * 60 + int(minutes)


def window_problem(windows: list[str]) -> str | None:
    """What is wrong with pickup windows, in words; None when nothing is."""
    spans = []
    for window in windows:
        match = _WINDOW.fullmatch(window.strip())
        if not match:
            return (f"\"{window}\" is not a window: write each as HH:MM-HH:MM, e.g. "
                    "09:00-11:00.")
        start, end = _minutes(match[1], match[2]), _minutes(match[3], match[4])
        if start >= end:
            return f"{window.strip()}: the start must come before the end."
        spans.append((start, end, window.strip()))
    spans.sort()
    for (_s1, end1, first), (start2, _e2, second) in zip(spans, spans[1:], strict=False):
        if start2 < end1:
            return f"{first} and {second} overlap: windows may not overlap."
    return None


class ClubEligibilityItemSchema(Schema):
    key = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9_]{1,40}$", error="A key is 1 to 40 small letters, digits or _."))
    label = fields.String(required=True, validate=validate.Length(
        min=1, max=200, error="A label is 1 to 200 characters."))


class EligibilityField(fields.List):
    """The checklist as the API speaks it, ``[{"key", "label"}]``; stored as
    ``[[key, label], ...]`` (srs.compassion.models.DEFAULT_ELIGIBILITY's shape)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return [{"key": key, "label": label} for key, label in value]

    def _deserialize(self, value, attr, data, **kwargs):
        items = super()._deserialize(value, attr, data, **kwargs)
        return [[item["key"], item["label"]] for item in items]


def _timer_field(setting):
    return fields.Integer(
        strict=True,
        validate=validate.Range(
            min=setting.minimum, max=setting.maximum,
            error=f"Must be between {setting.minimum} and {setting.maximum} seconds."),
        metadata={"description": f"{setting.label}, in seconds (default {setting.default})."},
    )


class _TrueOrFalse(fields.Boolean):
    """JSON's true or false only: not "true", "yes", 1 or "on"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _number_field(setting):
    """A number of the settings table (srs.sites.settings_table) as the API takes it."""
    kwargs = {"allow_none": setting.nullable,
              "metadata": {"description": setting.api_description()}}
    if setting.kind == BOOLEAN:
        return _TrueOrFalse(**kwargs)
    in_range = validate.Range(min=setting.minimum, max=setting.maximum,
                              error=setting.api_message())
    if setting.kind == DECIMAL:
        return fields.Float(validate=in_range, **kwargs)
    return fields.Integer(strict=True, validate=in_range, **kwargs)


_NumberFields = Schema.from_dict(
    {**{s.name: _timer_field(s) for s in TIMER_SETTINGS},
     **{s.name: _number_field(s) for s in API_NUMBERS}}, name="NumberFields")


class SiteSettingsSchema(_NumberFields):
    """Every timer in seconds with its allowed range, every other number of the settings
    table with its range, the client code pattern, the zone, the places, the on-call
    supervisor."""

    class Meta:
        unknown = RAISE
    timezone = fields.String(validate=validate.Length(min=1, max=60),
                             metadata={"description": "IANA zone, e.g. America/Toronto."})
    client_code_pattern = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Regular expression a client code must match."})
    overdose_locations = fields.List(
        fields.String(validate=validate.Length(min=1, max=80)),
        validate=validate.Length(min=1, max=20, error="Give 1 to 20 places."),
        metadata={"description": "Places where someone not checked in may be found "
                                 "(washroom, doorway...): the console's start list."})

    opening_hours = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=120),
        metadata={"description": "The site's opening hours as stated to clients, e.g. "
                                 "\"Daily 09:00-21:00\"; the monthly report gives them."})

    retention_days = fields.Integer(
        strict=True, allow_none=True,
        validate=validate.Range(min=RETENTION_MIN_DAYS, max=RETENTION_MAX_DAYS,
                                error=RETENTION_RANGE),
        metadata={"description": "Days a record keeps its client: older visits, kits, "
                                 "responses, referrals and incident links go to an anonymous "
                                 "placeholder each night (the reports' counts stay the same). "
                                 "Null keeps everything."})

    on_call_staff_id = RecordId(
        allow_none=True,
        metadata={"description": "Staff id of the supervisor a level-3 alarm reaches by name; "
                                 "null for nobody."})

    compassion_pickup_windows = fields.List(
        fields.String(validate=validate.Length(
            max=20, error="Write each window as HH:MM-HH:MM, e.g. 09:00-11:00.")),
        allow_none=True,
        validate=validate.Length(max=12, error="At most 12 pickup windows."),
        metadata={"description": "Pickup windows, site time, each \"HH:MM-HH:MM\" with its "
                                 "start before its end, none overlapping; null or empty: any "
                                 "time the site is open."})
    compassion_waived_steps = fields.List(
        fields.String(validate=validate.OneOf(
            STEP_KEYS, error=f"A step is one of: {', '.join(STEP_KEYS)}.")),
        allow_none=True,
        metadata={"description": "Steps before a first supply the site waives (each "
                                 f"required otherwise): {', '.join(STEP_KEYS)}."})
    compassion_eligibility = EligibilityField(
        fields.Nested(ClubEligibilityItemSchema), allow_none=True,
        validate=validate.Length(min=1, max=20, error="Give 1 to 20 items."),
        metadata={"description": "The eligibility checklist screening checks, in order; null: "
                                 "the default list (DULF and MySafe)."})
    compassion_substance_limits_mg = fields.Dict(
        keys=fields.String(validate=validate.Length(
            min=1, max=80, error="A substance's name is 1 to 80 characters.")),
        values=fields.Integer(strict=True, validate=validate.Range(
            min=1, max=SUBSTANCE_LIMIT_MAX_MG,
            error=f"A cap is between 1 and {SUBSTANCE_LIMIT_MAX_MG} mg in 7 days.")),
        allow_none=True,
        metadata={"description": "Caps in mg in 7 days on single substances ({\"heroin\": "
                                 "7000}); null or empty: none beyond the weekly limit."})

    @validates("compassion_pickup_windows")
    def _windows_in_order(self, value, **_kwargs):
        if value:
            problem = window_problem(value)
            if problem:
                raise ValidationError(problem)

    @validates("compassion_waived_steps")
    def _steps_once(self, value, **_kwargs):
        if value and len(set(value)) != len(value):
            raise ValidationError("Each step once.")

    @validates("compassion_eligibility")
    def _keys_once(self, value, **_kwargs):
        # A list an item of which was refused comes as far as it was read: its items' keys.
        keys = [item[0] if isinstance(item, list) else (item or {}).get("key")
                for item in value or ()]
        if len(set(keys)) != len(keys):
            raise ValidationError("Each item once: two items have the same key.")

    @validates("compassion_substance_limits_mg")
    def _substances_named(self, value, **_kwargs):
        names = [name.strip().lower() for name in value or {}]
        if any(not n for n in names) or len(set(names)) != len(names):
            raise ValidationError("Each substance once, with a name.")

    @validates("timezone")
    def _known_zone(self, value, **_kwargs):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"{value!r} is not a known time zone.") from None

    @validates("overdose_locations")
    def _distinct_places(self, value, **_kwargs):
        names = [v.strip() for v in value]
        if any(not n for n in names) or len(set(names)) != len(names):
            raise ValidationError("Each place once, with a name.")

    @validates("client_code_pattern")
    def _compiles(self, value, **_kwargs):
        try:
            re.compile(value)
        except re.error as err:
            raise ValidationError(f"Not a valid pattern: {err}.") from None

    @validates_schema
    def _not_empty(self, data, partial=None, **_kwargs):
        if not data and partial:
            raise ValidationError("Give at least one setting to change.")

    @validates_schema
    def _in_order(self, data, **_kwargs):
        """Settings that bound one another, when both are given (the service checks a
        change of one against the site's other)."""
        errors = cross_field_errors(data)
        if errors:
            raise ValidationError(errors)


class SiteSettingsChangeSchema(SiteSettingsSchema):
    """A partial change of settings: any subset, at least one."""

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


# --- The settings page's form -----------------------------------------------------------------


def _in_words(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def timer_range(setting) -> str:
    """A timer's allowed range as the settings page states it: "Between 0:10 and 2:00:00 (10 s
    to 120 min)"."""
    return (f"Between {duration(setting.minimum)} and {duration(setting.maximum)} "
            f"({_in_words(setting.minimum)} to {_in_words(setting.maximum)})")


_WHOLE = re.compile(r"[0-9]{1,7}")
_DECIMAL = re.compile(r"[0-9]{1,7}(\.[0-9]{1,6})?|\.[0-9]{1,6}")
_INVALID_NUMBER = fields.Integer.default_error_messages["invalid"]
_YES_NO = {"true": True, "false": False}

# Every duration of the page (the timers and the table's), typed as minutes and seconds.
DURATIONS = (*TIMER_SETTINGS, *(s for s in API_NUMBERS if s.kind == DURATION))


def _whole(text: str) -> int | str:
    """A typed whole number as a number; anything else as typed (the field refuses it)."""
    return int(text) if _WHOLE.fullmatch(text) else text


def _scaled(text: str, scale: int) -> int | str:
    """A number typed in the page's unit (grams) as the API's whole units (mg); anything
    else, or finer than one unit, as typed."""
    if not _DECIMAL.fullmatch(text):
        return text
    whole, _, decimals = text.partition(".")
    if len(decimals.rstrip("0")) > len(str(scale)) - 1:
        return text
    return int(whole or "0") * scale + int((decimals + "0" * 6)[:len(str(scale)) - 1] or "0")


def _typed(setting, text: str):
    """A typed value of the settings table as the API's field takes it; what cannot be read
    stays as typed, for the field to refuse."""
    text = text.strip()
    if setting.nullable and not text:
        return None
    if setting.kind == BOOLEAN:
        return _YES_NO.get(text, text)
    if setting.scale != 1:
        return _scaled(text, setting.scale)
    if setting.kind == DECIMAL:
        return float(text) if _DECIMAL.fullmatch(text) else text
    return _whole(text)


# The compassion club's lists as the page types them.
WAIVED_SENT = "compassion_waived_steps-sent"  # the checkboxes were on the form
_KEY_FIRST = re.compile(r"([a-z0-9_]{1,40})\s*:\s*(.+)")
_CAP_LINE = re.compile(r"(.+?)\s*:\s*([0-9.]+)\s*(g)?")
CLUB_MESSAGES = {
    "compassion_pickup_windows": "Write each window as HH:MM-HH:MM, separated by commas, "
                                 "e.g. 09:00-11:00, 14:00-16:00.",
    "compassion_waived_steps": "Choose among the steps listed.",
    "compassion_eligibility": "An item's label is at most 200 characters.",
    "compassion_substance_limits_mg": "One line a substance, \"substance: grams\", e.g. "
                                      "\"heroin: 7\": grams from 0.001 to 100, at most 3 "
                                      "decimals.",
}


def eligibility_key(label: str, index: int) -> str:
    """A checklist item's key from its label: "Lives locally" is lives_locally."""
    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40].strip("_")
    return key or f"item_{index}"


def _club_inputs(data: dict) -> None:
    """The club's typed lists as the API's fields take them: blank is none (the default
    checklist); a line that cannot be read goes on as typed, for the field to refuse."""
    windows = data.get("compassion_pickup_windows")
    if isinstance(windows, str):
        parts = [part.strip() for part in windows.split(",") if part.strip()]
        data["compassion_pickup_windows"] = parts or None
    if data.pop(WAIVED_SENT, None) is not None:
        steps = data.get("compassion_waived_steps") or []
        data["compassion_waived_steps"] = [step for step in steps if step] or None
    else:
        data.pop("compassion_waived_steps", None)
    checklist = data.get("compassion_eligibility")
    if isinstance(checklist, str):
        items = []
        for index, line in enumerate(
                (line.strip() for line in checklist.splitlines() if line.strip()), 1):
            keyed = _KEY_FIRST.fullmatch(line)
            key, label = (keyed[1], keyed[2].strip()) if keyed else (
                eligibility_key(line, index), line)
            items.append({"key": key, "label": label})
        data["compassion_eligibility"] = items or None
    caps = data.get("compassion_substance_limits_mg")
    if isinstance(caps, str):
        limits = {}
        for line in (line.strip() for line in caps.splitlines() if line.strip()):
            matched = _CAP_LINE.fullmatch(line)
            name = matched[1].strip().lower() if matched else line
            if name in limits:
                raise ValidationError({"compassion_substance_limits_mg": [
                    f"{matched[1].strip()} is there twice: one line a substance."]})
            if matched:
                limits[name] = _scaled(matched[2], 1000)
            else:
                limits[line] = line
        data["compassion_substance_limits_mg"] = limits or None


class SiteSettingsForm(Form, SiteSettingsSchema):
    """The admin's settings page: the API's fields and rules, read from the page's inputs.

    A duration comes as two inputs, ``<name>-min`` and ``<name>-sec``, and loads as seconds (a
    blank one counts as 0; both blank is refused). The other numbers of the settings table
    come as typed (a decimal point allowed where the table says decimal; a blank nullable
    one is None), a yes or no as "true" or "false". A blank opening hours or on-call choice
    is None; the overdose places are one input per line, blank lines left out. A setting the
    form does not send is left as it is. Messages speak minutes and seconds, not seconds, and
    each number's range in its unit. The rules between settings are the service's: it
    checks them against the site's saved values too.
    """

    class Meta:
        unknown = EXCLUDE

    strip_text = True
    unstripped = ("client_code_pattern",)

    @pre_load
    def _from_inputs(self, data, **_kwargs):
        data = dict(data)
        for setting in DURATIONS:
            parts = [data.pop(f"{setting.name}-{unit}", None) for unit in ("min", "sec")]
            if parts == [None, None]:
                continue
            parts = [(part or "").strip() for part in parts]
            if not any(parts):
                data[setting.name] = ""
                continue
            minutes, seconds = (_whole(part or "0") for part in parts)
            both = isinstance(minutes, int) and isinstance(seconds, int)
            data[setting.name] = minutes * 60 + seconds if both else " ".join(parts)
        for name in ("opening_hours", "on_call_staff_id"):
            if isinstance(data.get(name), str) and not data[name].strip():
                data[name] = None
        if isinstance(data.get("on_call_staff_id"), str):
            data["on_call_staff_id"] = _whole(data["on_call_staff_id"].strip())
        for setting in API_NUMBERS:
            if setting.kind != DURATION and isinstance(data.get(setting.name), str):
                data[setting.name] = _typed(setting, data[setting.name])
        _club_inputs(data)
        if isinstance(data.get("overdose_locations"), list):
            data["overdose_locations"] = [place.strip() for place in data["overdose_locations"]
                                          if isinstance(place, str) and place.strip()]
        return data

    def _in_order(self, data, **_kwargs):
        """Not on the page's load: the service answers it with the saved values in view."""

    def handle_error(self, error, data, **_kwargs):
        messages = error.messages
        for setting in DURATIONS:
            if setting.name in messages:
                typed = _INVALID_NUMBER in str(messages[setting.name])
                messages[setting.name] = [
                    f"{'Whole minutes and seconds. ' if typed else ''}{timer_range(setting)}."]
        for setting in API_NUMBERS:
            if setting.kind != DURATION and setting.name in messages:
                messages[setting.name] = [setting.form_message()]
        if "on_call_staff_id" in messages:
            messages["on_call_staff_id"] = ["Choose a supervisor of this site, or nobody."]
        if "client_code_pattern" in messages and not data.get("client_code_pattern"):
            messages["client_code_pattern"] = ["Give the pattern every client code must match."]
        for name, message in CLUB_MESSAGES.items():
            if isinstance(messages.get(name), dict):
                messages[name] = [message]
        if isinstance(messages.get("overdose_locations"), dict):
            messages["overdose_locations"] = ["A place's name is at most 80 characters."]
