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
    ALERT_VALID_FOR_DAYS_RANGE,
    CLUSTER_OVERDOSES_RANGE,
    CLUSTER_TREND_FACTOR_RANGE,
    CLUSTER_WINDOW_SECONDS_RANGE,
    HAT_MAX_SINGLE_DOSE_RANGE,
    HAT_SETTINGS,
    KIT_EXPIRY_WARNING_DAYS_RANGE,
    NALOXONE_LOW_STOCK_MAX,
    REFRESHER_MONTHS_RANGE,
    RETENTION_MAX_DAYS,
    RETENTION_MIN_DAYS,
    RETENTION_RANGE,
    TIMER_SETTINGS,
)
from srs.templating import duration


class SiteSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    slug = fields.String()
    timezone = fields.String()


def _timer_field(setting):
    return fields.Integer(
        strict=True,
        validate=validate.Range(
            min=setting.minimum, max=setting.maximum,
            error=f"Must be between {setting.minimum} and {setting.maximum} seconds."),
        metadata={"description": f"{setting.label}, in seconds (default {setting.default})."},
    )


_TimerFields = Schema.from_dict({s.name: _timer_field(s) for s in TIMER_SETTINGS},
                                name="TimerFields")


class SiteSettingsSchema(_TimerFields):
    """Every timer in seconds with its allowed range, plus the client code pattern."""

    class Meta:
        unknown = RAISE
    timezone = fields.String(validate=validate.Length(min=1, max=60),
                             metadata={"description": "IANA zone, e.g. America/Toronto."})
    client_code_pattern = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Regular expression a client code must match."})
    naloxone_low_stock = fields.Integer(
        strict=True, validate=validate.Range(
            min=0, max=NALOXONE_LOW_STOCK_MAX,
            error=f"Must be between 0 and {NALOXONE_LOW_STOCK_MAX}."),
        metadata={"description": "Usable naloxone doses of a kind (injectable, nasal) under "
                                 "which the daily stock check flags low stock."})
    refresher_months = fields.Integer(
        strict=True, validate=validate.Range(
            *REFRESHER_MONTHS_RANGE,
            error="Between {} and {} months.".format(*REFRESHER_MONTHS_RANGE)),
        metadata={"description": "Months after a police or staff trainee's last naloxone "
                                 "training session that their refresher comes due (default "
                                 "12)."})
    kit_expiry_warning_days = fields.Integer(
        strict=True, validate=validate.Range(
            *KIT_EXPIRY_WARNING_DAYS_RANGE,
            error="Between {} and {} days.".format(*KIT_EXPIRY_WARNING_DAYS_RANGE)),
        metadata={"description": "Days before a client's take-home kit expires that it is "
                                 "listed for replacement at their next visit (default 60)."})
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

    cluster_overdoses = fields.Integer(
        strict=True, validate=validate.Range(*CLUSTER_OVERDOSES_RANGE),
        metadata={"description": "Overdoses within the cluster window that draft an overdose "
                                 "advisory (default 3)."})
    cluster_window_seconds = fields.Integer(
        strict=True, validate=validate.Range(*CLUSTER_WINDOW_SECONDS_RANGE),
        metadata={"description": "The cluster window, in seconds (default 86400)."})
    cluster_trend_factor = fields.Float(
        validate=validate.Range(*CLUSTER_TREND_FACTOR_RANGE),
        metadata={"description": "A day's overdoses above this times the trailing 28-day "
                                 "median draft an advisory (default 2.0)."})
    alert_valid_for_days = fields.Integer(
        strict=True, validate=validate.Range(*ALERT_VALID_FOR_DAYS_RANGE),
        metadata={"description": "Days a published drug alert stays up unless renewed "
                                 "(default 14)."})

    hat_max_sessions_per_day = fields.Integer(
        strict=True, validate=validate.Range(*HAT_SETTINGS["hat_max_sessions_per_day"][1:]),
        metadata={"description": "Heroin-assisted treatment: most dosing sessions a "
                                 "prescription may give a day (default 3)."})
    hat_min_interval_minutes = fields.Integer(
        strict=True, validate=validate.Range(*HAT_SETTINGS["hat_min_interval_minutes"][1:]),
        metadata={"description": "Heroin-assisted treatment: the default least time between "
                                 "two sessions' doses, in minutes (default 180)."})
    hat_cap_hydromorphone_mg_day = fields.Integer(
        strict=True, validate=validate.Range(*HAT_SETTINGS["hat_cap_hydromorphone_mg_day"][1:]),
        metadata={"description": "Hard cap: hydromorphone mg a day no prescription or dose may "
                                 "pass, whoever asks (default 500)."})
    hat_cap_diacetylmorphine_mg_day = fields.Integer(
        strict=True,
        validate=validate.Range(*HAT_SETTINGS["hat_cap_diacetylmorphine_mg_day"][1:]),
        metadata={"description": "Hard cap: diacetylmorphine mg a day no prescription or dose "
                                 "may pass, whoever asks (default 1000)."})
    hat_warn_iv_mg_day = fields.Integer(
        strict=True, validate=validate.Range(*HAT_SETTINGS["hat_warn_iv_mg_day"][1:]),
        metadata={"description": "An IV prescription above this many mg a day is signed with a "
                                 "warning, not refused (default 600)."})
    hat_max_single_dose_mg = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(*HAT_MAX_SINGLE_DOSE_RANGE),
        metadata={"description": "Largest single dose in mg; null: the daily cap divided by "
                                 "the prescription's sessions."})

    on_call_staff_id = RecordId(
        allow_none=True,
        metadata={"description": "Staff id of the supervisor a level-3 alarm reaches by name; "
                                 "null for nobody."})

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
_INVALID_NUMBER = fields.Integer.default_error_messages["invalid"]


def _whole(text: str) -> int | str:
    """A typed whole number as a number; anything else as typed (the field refuses it)."""
    return int(text) if _WHOLE.fullmatch(text) else text


class SiteSettingsForm(Form, SiteSettingsSchema):
    """The admin's settings page: the API's fields and rules, read from the page's inputs.

    A timer comes as two inputs, ``<name>-min`` and ``<name>-sec``, and loads as seconds (a
    blank one counts as 0; both blank is refused). A blank opening hours or on-call choice is
    None; the overdose places are one input per line, blank lines left out. A setting the
    form does not send is left as it is. Messages speak minutes and seconds, not seconds.
    """

    class Meta:
        unknown = EXCLUDE

    strip_text = True
    unstripped = ("client_code_pattern",)

    @pre_load
    def _from_inputs(self, data, **_kwargs):
        data = dict(data)
        for setting in TIMER_SETTINGS:
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
        for name in ("naloxone_low_stock", "on_call_staff_id", "refresher_months",
                     "kit_expiry_warning_days"):
            if isinstance(data.get(name), str):
                data[name] = _whole(data[name].strip())
        if isinstance(data.get("overdose_locations"), list):
            data["overdose_locations"] = [place.strip() for place in data["overdose_locations"]
                                          if isinstance(place, str) and place.strip()]
        return data

    def handle_error(self, error, data, **_kwargs):
        messages = error.messages
        for setting in TIMER_SETTINGS:
            if setting.name in messages:
                typed = _INVALID_NUMBER in str(messages[setting.name])
                messages[setting.name] = [
                    f"{'Whole minutes and seconds. ' if typed else ''}{timer_range(setting)}."]
        if "naloxone_low_stock" in messages:
            messages["naloxone_low_stock"] = [
                f"A whole number of doses between 0 and {NALOXONE_LOW_STOCK_MAX}."]
        if "refresher_months" in messages:
            messages["refresher_months"] = [
                "A whole number of months between {} and {}.".format(*REFRESHER_MONTHS_RANGE)]
        if "kit_expiry_warning_days" in messages:
            messages["kit_expiry_warning_days"] = [
                "A whole number of days between {} and {}.".format(
                    *KIT_EXPIRY_WARNING_DAYS_RANGE)]
        if "on_call_staff_id" in messages:
            messages["on_call_staff_id"] = ["Choose a supervisor of this site, or nobody."]
        if "client_code_pattern" in messages and not data.get("client_code_pattern"):
            messages["client_code_pattern"] = ["Give the pattern every client code must match."]
        if isinstance(messages.get("overdose_locations"), dict):
            messages["overdose_locations"] = ["A place's name is at most 80 characters."]
