"""The one table of a site's settings as the settings page shows them.

Each row names a setting, its title and help, its group on the page and how it is typed: a
duration in minutes and seconds, a whole number, a decimal, a yes or no, or a widget of its
own (a time zone, a supervisor, the console's places...). The page's groups, the form's
conversions and messages, the template's inputs and the API's fields for the numbers all come
from here; the ranges and defaults come from :mod:`srs.sites.models`.
"""

from dataclasses import dataclass

from srs.sites.models import (
    ALERT_VALID_FOR_DAYS_RANGE,
    CLUSTER_OVERDOSES_RANGE,
    CLUSTER_TREND_FACTOR_RANGE,
    CLUSTER_WINDOW_SECONDS_RANGE,
    COMPASSION_SETTINGS,
    DEFAULT_ALERT_VALID_FOR_DAYS,
    DEFAULT_CLUSTER_OVERDOSES,
    DEFAULT_CLUSTER_TREND_FACTOR,
    DEFAULT_CLUSTER_WINDOW_SECONDS,
    DEFAULT_KIT_EXPIRY_WARNING_DAYS,
    DEFAULT_NALOXONE_LOW_STOCK,
    DEFAULT_REFRESHER_MONTHS,
    HAT_MAX_SINGLE_DOSE_RANGE,
    HAT_SETTINGS,
    KIT_EXPIRY_WARNING_DAYS_RANGE,
    NALOXONE_LOW_STOCK_MAX,
    REFRESHER_MONTHS_RANGE,
    TIMERS,
)

DURATION = "duration"  # seconds, typed as minutes and seconds
WHOLE = "whole"
DECIMAL = "decimal"
BOOLEAN = "boolean"
OTHER = "other"  # a widget of its own in the template (select, list, pattern, text)
NUMBERS = (DURATION, WHOLE, DECIMAL, BOOLEAN)


def number(value) -> str:
    """A whole number as written, a decimal without a trailing zero: 1000, 2.5, 2."""
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class PageSetting:
    name: str
    title: str
    group: str
    kind: str
    help: str | None = None
    unit: str = ""  # what a whole or decimal number counts: "doses", "mg a day"...
    minimum: float | None = None
    maximum: float | None = None
    default: float | bool | None = None
    nullable: bool = False
    blank: str = ""  # what a blank (null) value means, for a nullable one
    note: str = ""  # said after the range: "0 turns the check off"
    # The page may speak a larger unit than the API: the API's value is the page's times
    # ``scale`` (mg typed as g: 1000, the page allowing decimals down to one API unit).
    scale: int = 1
    page_unit: str = ""

    @property
    def label(self) -> str | None:
        """A timer's help, as ``TimerSetting.label`` (the template's timer row reads it)."""
        return self.help

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    @property
    def shown_unit(self) -> str:
        """The unit the page speaks."""
        return self.page_unit or self.unit

    def on_page(self, value):
        """An API value as the page shows it (14000 mg: 14 g)."""
        if value is None or self.scale == 1:
            return value
        shown = value / self.scale
        return int(shown) if shown == int(shown) else shown

    def range_text(self) -> str:
        """The range as the page states it beside the input (durations say theirs apart)."""
        if self.kind == BOOLEAN:
            return f"Default {'yes' if self.default else 'no'}"
        unit = f" {self.shown_unit}" if self.shown_unit else ""
        said = [f"Between {number(self.on_page(self.minimum))} and "
                f"{number(self.on_page(self.maximum))}{unit}"]
        if self.note:
            said.append(self.note)
        if self.nullable:
            said.append(f"blank: {self.blank}")
        said.append("default " + ("blank" if self.default is None
                                  else number(self.on_page(self.default))))
        return "; ".join(said)

    def form_message(self) -> str:
        """The page's message for a value it refuses: the range, in the setting's unit."""
        if self.kind == BOOLEAN:
            return "Choose yes or no."
        if self.kind == DECIMAL or self.scale != 1:
            low, high = self.on_page(self.minimum), self.on_page(self.maximum)
            places = f", at most {len(str(self.scale)) - 1} decimals" if self.scale != 1 else ""
            said = (f"A number between {number(low)} and {number(high)} {self.shown_unit}, "
                    f"decimals allowed{places} (e.g. {number(self.on_page(self.default))}).")
        else:
            of = f" of {self.unit}" if self.unit else ""
            said = f"A whole number{of} between {number(self.minimum)} and {number(self.maximum)}."
        return said + (f" Leave it blank for {self.blank}." if self.nullable else "")

    def api_message(self) -> str:
        """The API's message for a value out of range."""
        unit = " seconds" if self.kind == DURATION else self._unit()
        return f"Must be between {number(self.minimum)} and {number(self.maximum)}{unit}."

    def api_description(self) -> str:
        unit = ", in seconds" if self.kind == DURATION else (
            f", in {self.unit}" if self.unit else "")
        default = "null" if self.default is None else (
            str(self.default).lower() if self.kind == BOOLEAN else f"{number(self.default)}")
        blank = f" Null: {self.blank}." if self.nullable else ""
        return f"{self.title}{unit} (default {default}). {self.help}{blank}"


def _timer(name: str, title: str, group: str) -> PageSetting:
    timer = TIMERS[name]
    return PageSetting(name, title, group, DURATION, timer.label, minimum=timer.minimum,
                       maximum=timer.maximum, default=timer.default)


def _hat(name: str, title: str, unit: str, help_: str) -> PageSetting:
    default, low, high = HAT_SETTINGS[name]
    return PageSetting(name, title, HAT, WHOLE, help_, unit, low, high, default)


def _club(name: str, title: str, unit: str, help_: str, **kwargs) -> PageSetting:
    default, low, high = COMPASSION_SETTINGS[name]
    return PageSetting(name, title, CLUB, WHOLE, help_, unit, low, high, default, **kwargs)


HAT = "Heroin-assisted treatment"
DRUG_ALERTS = "Drug early warning"
CLUB = "Compassion club"

# In the page's order: groups appear as their first setting does.
PAGE_SETTINGS: tuple[PageSetting, ...] = (
    _timer("booth_time_limit_seconds", "Booth time limit", "Floor timers"),
    _timer("booth_check_interval_seconds", "Check a client in a booth every", "Floor timers"),
    _timer("lock_after_seconds", "Shared tablets lock after", "Floor timers"),
    _timer("min_observation_seconds", "Minimum after-care", "After-care"),
    _timer("observation_check_interval_seconds", "Check a client in after-care every",
           "After-care"),
    _timer("drowsy_check_interval_seconds", "Check a drowsy client again after", "After-care"),
    _timer("escalation_grace_seconds", "Escalate an unacknowledged alarm after", "Alarms"),
    PageSetting("on_call_staff_id", "On-call supervisor", "Alarms", OTHER,
                "An alarm nobody acknowledges reaches this person by name at its third level, "
                "after the tablets and the site's supervisors."),
    _timer("naloxone_redose_seconds", "Reassess after a naloxone dose", "Naloxone"),
    PageSetting("naloxone_low_stock", "Low-stock threshold", "Naloxone", WHOLE,
                "The daily stock check flags a kind of naloxone (injectable, nasal) with fewer "
                "usable doses than this.", "doses", 0, NALOXONE_LOW_STOCK_MAX,
                DEFAULT_NALOXONE_LOW_STOCK, note="0 turns the check off"),
    PageSetting("refresher_months", "Naloxone training refresher", "Naloxone", WHOLE,
                "Police and staff trained in naloxone come due for a refresher this long after "
                "their last session.", "months", *REFRESHER_MONTHS_RANGE,
                DEFAULT_REFRESHER_MONTHS),
    PageSetting("kit_expiry_warning_days", "Kit expiry warning", "Naloxone", WHOLE,
                "A client's take-home kit is listed for replacement at their next visit this "
                "long before it expires.", "days", *KIT_EXPIRY_WARNING_DAYS_RANGE,
                DEFAULT_KIT_EXPIRY_WARNING_DAYS),
    PageSetting("cluster_overdoses", "Overdoses that draft an advisory", DRUG_ALERTS, WHOLE,
                "An overdose advisory is drafted when this many overdoses fall within the "
                "cluster window (a \"mass overdose\" is 3 or more at one place close in time).",
                "overdoses", *CLUSTER_OVERDOSES_RANGE, DEFAULT_CLUSTER_OVERDOSES),
    PageSetting("cluster_window_seconds", "Cluster window", DRUG_ALERTS, DURATION,
                "The time those overdoses must fall within (ODMAP's spike alerts: 24 h).",
                minimum=CLUSTER_WINDOW_SECONDS_RANGE[0],
                maximum=CLUSTER_WINDOW_SECONDS_RANGE[1],
                default=DEFAULT_CLUSTER_WINDOW_SECONDS),
    PageSetting("cluster_trend_factor", "Trend factor", DRUG_ALERTS, DECIMAL,
                "A day with more overdoses than this times the trailing 28-day median drafts "
                "an advisory (Dane County: twice the recent trend).", "times the median",
                *CLUSTER_TREND_FACTOR_RANGE, DEFAULT_CLUSTER_TREND_FACTOR),
    PageSetting("alert_valid_for_days", "A published alert lasts", DRUG_ALERTS, WHOLE,
                "A published drug alert comes down after this many days unless renewed.",
                "days", *ALERT_VALID_FOR_DAYS_RANGE, DEFAULT_ALERT_VALID_FOR_DAYS),
    _hat("hat_max_sessions_per_day", "Sessions a day", "sessions",
         "Most supervised dosing sessions a prescription may give in a day (CRISM guideline, "
         "SALOME and NAOMI trials: up to 3)."),
    _hat("hat_min_interval_minutes", "Time between sessions", "minutes",
         "The least time between two sessions' doses when a prescription sets none "
         "(published case series: at least 3 h)."),
    _hat("hat_cap_hydromorphone_mg_day", "Hydromorphone daily cap", "mg a day",
         "No prescription or dose may pass it, whoever asks (SALOME: 500 mg a day)."),
    _hat("hat_cap_diacetylmorphine_mg_day", "Diacetylmorphine daily cap", "mg a day",
         "No prescription or dose may pass it, whoever asks (NAOMI: 1,000 mg a day)."),
    _hat("hat_warn_iv_mg_day", "IV warning above", "mg a day",
         "An IV prescription above this is signed with a warning, not refused (Diaphin's "
         "label: above 600 mg a day IV is less effective)."),
    PageSetting("hat_max_single_dose_mg", "Largest single dose", HAT, WHOLE,
                "The site's own cap on one dose; left blank, the daily cap divided by the "
                "prescription's sessions.", "mg", *HAT_MAX_SINGLE_DOSE_RANGE, None,
                nullable=True, blank="the daily cap divided by the prescription's sessions"),
    _hat("hat_injection_window_minutes", "Time to inject", "minutes",
         "Time in the booth to inject a dose (Crosstown, Vancouver: about 7 minutes)."),
    _hat("hat_aftercare_minutes", "Observation after a dose", "minutes",
         "Observation after each dose (Crosstown: 15 minutes)."),
    _hat("hat_aftercare_titration_minutes", "Observation during titration", "minutes",
         "Observation after a dose while the dose is being titrated (one case series: 20 "
         "minutes)."),
    _hat("hat_poss_withhold", "Withhold a dose at POSS", "",
         "A pre-dose sedation score (POSS) at or above this withholds the dose and tells the "
         "prescriber (3: frequently drowsy, drifts off mid-sentence)."),
    _hat("hat_poss_console", "Open the overdose console at POSS", "",
         "A POSS score at or above this opens the overdose console (4: somnolent, minimal "
         "response); at least the score that withholds a dose."),
    _hat("hat_missed_hold_days", "Hold after missed days", "days",
         "Consecutive missed days that hold dosing until a prescriber reviews (oral-OAT "
         "rules: 3)."),
    _hat("hat_missed_retitrate_days", "Re-titrate after missed days", "days",
         "Consecutive missed days that prompt re-titration (oral-OAT rules: 5 or more); at "
         "least the days that hold dosing."),
    PageSetting("hat_take_home_allowed", "Take-home doses allowed", HAT, BOOLEAN,
                "Off unless the site allows them (Switzerland: after 6 months of continuous "
                "treatment, clean urine tests and contact twice a week).", default=False),
    _hat("hat_take_home_max_days", "Take-home doses for at most", "days",
         "Days of doses a patient may take home at once (Swiss rules: up to 7)."),
    _club("compassion_weekly_limit_mg", "Limit a week", "mg in 7 days",
          "A member's rolling 7-day total across substances (DULF: 14 g a week).",
          scale=1000, page_unit="g in 7 days"),
    _club("compassion_daily_limit_mg", "Limit a day", "mg a day",
          "A member's total in a day at the site, across substances.", scale=1000,
          page_unit="g a day", note="0: no daily limit"),
    PageSetting("compassion_substance_limits_mg", "Limit a week, by substance", CLUB, OTHER,
                "Optional caps on one substance within the weekly limit: one line each, "
                "\"substance: grams\", e.g. \"heroin: 7\". Leave blank for none."),
    _club("compassion_pickups_per_day", "Pickups a day", "pickups",
          "Most supplies a member may pick up in a day (MySafe: 4, at fixed windows)."),
    PageSetting("compassion_pickup_windows", "Pickup windows", CLUB, OTHER,
                "When members may pick up, site time: windows separated by commas, e.g. "
                "\"09:00-11:00, 14:00-16:00\". Leave blank for any time the site is open."),
    PageSetting("compassion_take_home_allowed", "Take-home supply allowed", CLUB, BOOLEAN,
                "Off unless the site allows it: supply is witnessed (BC from 2025); a member "
                "may then be allowed take-home on their own page.", default=False),
    PageSetting("compassion_rollover_allowed", "Missed pickups roll over", CLUB, BOOLEAN,
                "A missed pickup carries no penalty; with this on, its amount may be picked "
                "up later in the week.", default=False),
    _club("compassion_linkage_review_days", "Treatment-linkage conversation every", "days",
          "A member's conversation about treatment comes due this long after the last "
          "(the consent is to the process, not to treatment)."),
    _club("compassion_survey_days", "Member survey every", "days",
          "A member's check-in survey (overdoses, street supply, treatment contact) comes "
          "due this long after the last, or after joining (DULF: every 3 months)."),
    PageSetting("compassion_eligibility", "Eligibility checklist", CLUB, OTHER,
                "What screening checks before membership: one item a line, \"key: label\" or "
                "just the label. Leave blank for DULF's and MySafe's list."),
    PageSetting("compassion_waived_steps", "Steps the site waives", CLUB, OTHER,
                "Every step is required before a first supply unless waived here."),
    PageSetting("compassion_identity_required", "Members' legal identity", CLUB, BOOLEAN,
                "Off unless the site's rules need a member's legal name: then enrolment asks "
                "for it (kept encrypted, read by prescribers and pharmacists only).",
                default=False),
    PageSetting("timezone", "Time zone", "Site", OTHER,
                "The site's clock: its days, hours and time bands in every report."),
    PageSetting("opening_hours", "Opening hours", "Site", OTHER,
                "As the site states them to clients, e.g. \"Daily 09:00-21:00\"; the monthly "
                "report gives them. Leave blank if none."),
    PageSetting("client_code_pattern", "Client code pattern", "Site", OTHER,
                "A regular expression every client code must match at check-in."),
    PageSetting("overdose_locations", "Places on the overdose console", "Site", OTHER,
                "Where someone who never checked in may be found: the console's start list "
                "(1 to 20 places)."),
)
BY_NAME = {setting.name: setting for setting in PAGE_SETTINGS}
# The numbers the API validates from this table (the timers have TIMER_SETTINGS).
API_NUMBERS = tuple(s for s in PAGE_SETTINGS if s.kind in NUMBERS and s.name not in TIMERS)


def page_groups() -> tuple[tuple[str, tuple[PageSetting, ...]], ...]:
    """(heading, settings) in the page's order."""
    groups: dict[str, list[PageSetting]] = {}
    for setting in PAGE_SETTINGS:
        groups.setdefault(setting.group, []).append(setting)
    return tuple((heading, tuple(rows)) for heading, rows in groups.items())


@dataclass(frozen=True)
class AtLeast:
    """``upper`` may not be set below ``lower``: the message goes under ``upper``."""

    lower: str
    upper: str
    message: str


CROSS_RULES = (
    AtLeast("hat_poss_withhold", "hat_poss_console",
            "Must be at least the POSS score that withholds a dose ({lower}): a client drowsy "
            "enough for the overdose console is too drowsy to dose."),
    AtLeast("hat_missed_hold_days", "hat_missed_retitrate_days",
            "Must be at least the missed days that hold dosing ({lower}): re-titration comes "
            "after the hold, never before it."),
)


def cross_field_errors(values: dict) -> dict[str, list[str]]:
    """The rules between settings that ``values`` (name: value, each given) break."""
    errors = {}
    for rule in CROSS_RULES:
        lower, upper = values.get(rule.lower), values.get(rule.upper)
        if isinstance(lower, int) and isinstance(upper, int) and upper < lower:
            errors[rule.upper] = [rule.message.format(lower=lower)]
    return errors
