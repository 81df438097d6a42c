"""A site and its per-site settings.

Every duration is stored in seconds so that a test site can run a 2-second
observation and a real site its 15 minutes with the same code.
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.auth.models import IDLE_LOCK_SECONDS
from srs.common import UTCDateTime, utcnow
from srs.extensions import db


@dataclass(frozen=True)
class TimerSetting:
    name: str
    default: int
    minimum: int
    maximum: int
    label: str


# The one list of timer settings: the model's columns, the API's validation
# ranges and the README's table all come from here. The lower bounds are low
# enough for a drill or a test to run seconds-long timers.
TIMER_SETTINGS: tuple[TimerSetting, ...] = (
    TimerSetting("lock_after_seconds", IDLE_LOCK_SECONDS, 30, 3600,
                 "Idle time before a shared tablet locks"),
    TimerSetting("booth_time_limit_seconds", 900, 10, 7200,
                 "Time a client may stay in a booth (BC overdose prevention sites: 15 min)"),
    TimerSetting("booth_check_interval_seconds", 180, 2, 1800,
                 "Time between checks on a client in a booth"),
    TimerSetting("observation_check_interval_seconds", 300, 2, 3600,
                 "Time between checks on a client in after-care"),
    TimerSetting("drowsy_check_interval_seconds", 60, 10, 600,
                 "Time to the next check after a client was found drowsy"),
    TimerSetting("min_observation_seconds", 900, 0, 14400,
                 "Minimum time in after-care after use"),
    TimerSetting("escalation_grace_seconds", 60, 2, 900,
                 "Grace before an unacknowledged alarm escalates a level"),
    TimerSetting("naloxone_redose_seconds", 150, 10, 600,
                 "Time after a naloxone dose before the console prompts to reassess"),
)
TIMERS = {setting.name: setting for setting in TIMER_SETTINGS}

DEFAULT_CLIENT_CODE_PATTERN = r"^(M|F|TM|TF|X)-[A-Z]{4}-[0-9]{4}$"

# Naloxone: a daily check flags stock under this many doses of a form.
DEFAULT_NALOXONE_LOW_STOCK = 10
NALOXONE_LOW_STOCK_MAX = 1000
# Retention: records older than this many days lose their client. Unset keeps everything;
# never under two years, the Canadian minimum for records of controlled substances.
RETENTION_MIN_DAYS = 730
RETENTION_MAX_DAYS = 36500
RETENTION_RANGE = (f"Keep records at least {RETENTION_MIN_DAYS} days (two years, the Canadian "
                   f"minimum for controlled-substance records) and at most "
                   f"{RETENTION_MAX_DAYS} days.")
# Naloxone programme (DOMAIN.md): a police or staff trainee's refresher comes due this many
# months after their last session; a client's kit is listed for replacement this many days
# before it expires. Both the site's choice.
DEFAULT_REFRESHER_MONTHS, REFRESHER_MONTHS_RANGE = 12, (1, 60)
DEFAULT_KIT_EXPIRY_WARNING_DAYS, KIT_EXPIRY_WARNING_DAYS_RANGE = 60, (0, 365)
# Drug early warning (DOMAIN.md): an overdose advisory is drafted at this many overdoses
# within the window (ODMAP's spike, a "mass overdose" of 3), or on a day above this factor
# times the trailing 28-day median (Dane County); a published alert lasts this many days.
DEFAULT_CLUSTER_OVERDOSES, CLUSTER_OVERDOSES_RANGE = 3, (2, 100)
DEFAULT_CLUSTER_WINDOW_SECONDS, CLUSTER_WINDOW_SECONDS_RANGE = 86400, (600, 604800)
DEFAULT_CLUSTER_TREND_FACTOR, CLUSTER_TREND_FACTOR_RANGE = 2.0, (1.0, 10.0)
DEFAULT_ALERT_VALID_FOR_DAYS, ALERT_VALID_FOR_DAYS_RANGE = 14, (1, 365)
# Heroin-assisted treatment (srs.hat): sessions a day (CRISM, SALOME, NAOMI: up to 3), the
# minimum time between them (3 h), the hard daily caps no prescription or dose may pass
# (SALOME hydromorphone 500 mg, NAOMI diacetylmorphine 1,000 mg), the IV total above which
# a prescription is warned (Diaphin's label: 600 mg) and a single-dose cap (unset: the
# daily cap divided by the prescription's sessions). (default, minimum, maximum)
HAT_SETTINGS = {
    "hat_max_sessions_per_day": (3, 1, 6),
    "hat_min_interval_minutes": (180, 30, 720),
    "hat_cap_hydromorphone_mg_day": (500, 1, 1000),
    "hat_cap_diacetylmorphine_mg_day": (1000, 1, 2000),
    "hat_warn_iv_mg_day": (600, 1, 2000),
    # The dosing session (DOMAIN.md, Crosstown): minutes to inject in the booth, then
    # observation (20 during titration); the POSS score that withholds a dose and tells the
    # prescriber, and the one that opens the overdose console; consecutive missed days that
    # hold dosing until a prescriber reviews, and that prompt re-titration; take-home doses
    # (off unless the site allows them) for at most this many days (Swiss rules: up to 7).
    "hat_injection_window_minutes": (7, 1, 60),
    "hat_aftercare_minutes": (15, 5, 120),
    "hat_aftercare_titration_minutes": (20, 5, 120),
    "hat_poss_withhold": (3, 1, 4),
    "hat_poss_console": (4, 2, 4),
    "hat_missed_hold_days": (3, 1, 30),
    "hat_missed_retitrate_days": (5, 1, 60),
    "hat_take_home_max_days": (2, 1, 7),
}
HAT_MAX_SINGLE_DOSE_RANGE = (1, 1000)
# Compassion club (DOMAIN.md): DULF's 14 g a week in total, MySafe's 4 pickups a day, a
# treatment-linkage conversation every 90 days, a member's survey every 3 months; an optional
# cap a day (0: none). Take-home supply and rolling over a missed pickup are off unless the
# site allows them. (default, minimum, maximum)
COMPASSION_SETTINGS = {
    "compassion_weekly_limit_mg": (14000, 100, 100000),
    "compassion_daily_limit_mg": (0, 0, 100000),
    "compassion_pickups_per_day": (4, 1, 24),
    "compassion_linkage_review_days": (90, 7, 365),
    "compassion_survey_days": (91, 7, 365),
}
# The steps before a club's first supply (BCCSU 2019), each required unless the site waives
# it, and the eligibility DULF and MySafe used (the site may edit its own list).
COMPASSION_STEPS = (
    ("screening", "Screened by a health care provider"),
    ("risk_consent", "Informed consent to the risks"),
    ("naloxone_training", "Naloxone and overdose training"),
    ("linkage_consent", "Consent to treatment linkage"),
)
COMPASSION_DEFAULT_ELIGIBILITY = (
    ("current_use", "Currently uses the supplied substance"),
    ("overdose_risk", "High overdose risk (history of overdose, fentanyl-positive urine)"),
    ("local_resident", "Lives locally"),
    ("age_19", "Aged 19 or over (BC)"),
)
# Where someone who never checked in may be found: the overdose console's start list.
DEFAULT_OVERDOSE_LOCATIONS = ["Washroom", "Doorway", "Waiting room", "Outside the entrance"]


def _timer_column(name: str):
    setting = TIMERS[name]
    return mapped_column(Integer, default=setting.default, server_default=str(setting.default),
                         nullable=False)


def _hat_column(name: str):
    # server_default only: a Python default would break the client-split migration's test.
    return mapped_column(Integer, server_default=str(HAT_SETTINGS[name][0]), nullable=False)


def _compassion_column(name: str):
    return mapped_column(Integer, server_default=str(COMPASSION_SETTINGS[name][0]),
                         nullable=False)


# Ontario's five time bands, by the local hour a visit or incident starts in.
TIME_BANDS = ("07-12", "12-17", "17-22", "22-03", "03-07")


def time_band(hour: int) -> str:
    """The band a local hour (0-23) falls in."""
    if 7 <= hour < 12:
        return "07-12"
    if 12 <= hour < 17:
        return "12-17"
    if 17 <= hour < 22:
        return "17-22"
    if hour >= 22 or hour < 3:
        return "22-03"
    return "03-07"


class Site(db.Model):
    __tablename__ = "site"
    __table_args__ = (*(
        CheckConstraint(f"{s.name} BETWEEN {s.minimum} AND {s.maximum}", name=f"{s.name}_range")
        for s in TIMER_SETTINGS
    ), CheckConstraint(f"naloxone_low_stock BETWEEN 0 AND {NALOXONE_LOW_STOCK_MAX}",
                       name="naloxone_low_stock_range"),
        CheckConstraint(f"retention_days IS NULL OR retention_days BETWEEN {RETENTION_MIN_DAYS} "
                        f"AND {RETENTION_MAX_DAYS}", name="retention_days_range"),
        CheckConstraint("refresher_months BETWEEN {} AND {}".format(*REFRESHER_MONTHS_RANGE),
                        name="refresher_months_range"),
        CheckConstraint("kit_expiry_warning_days BETWEEN {} AND {}".format(
            *KIT_EXPIRY_WARNING_DAYS_RANGE), name="kit_expiry_warning_days_range"),
        CheckConstraint("cluster_overdoses BETWEEN {} AND {}".format(*CLUSTER_OVERDOSES_RANGE),
                        name="cluster_overdoses_range"),
        CheckConstraint("cluster_window_seconds BETWEEN {} AND {}".format(
            *CLUSTER_WINDOW_SECONDS_RANGE), name="cluster_window_seconds_range"),
        CheckConstraint("cluster_trend_factor BETWEEN {} AND {}".format(
            *CLUSTER_TREND_FACTOR_RANGE), name="cluster_trend_factor_range"),
        CheckConstraint("alert_valid_for_days BETWEEN {} AND {}".format(
            *ALERT_VALID_FOR_DAYS_RANGE), name="alert_valid_for_days_range"),
        *(CheckConstraint(f"{name} BETWEEN {low} AND {high}", name=f"{name}_range")
          for name, (_default, low, high) in HAT_SETTINGS.items()),
        CheckConstraint("hat_max_single_dose_mg IS NULL OR hat_max_single_dose_mg BETWEEN "
                        "{} AND {}".format(*HAT_MAX_SINGLE_DOSE_RANGE),
                        name="hat_max_single_dose_mg_range"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    timezone: Mapped[str] = mapped_column(String(60), default="America/Toronto")
    client_code_pattern: Mapped[str] = mapped_column(
        String(200), default=DEFAULT_CLIENT_CODE_PATTERN,
        server_default=DEFAULT_CLIENT_CODE_PATTERN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    lock_after_seconds: Mapped[int] = _timer_column("lock_after_seconds")
    booth_time_limit_seconds: Mapped[int] = _timer_column("booth_time_limit_seconds")
    booth_check_interval_seconds: Mapped[int] = _timer_column("booth_check_interval_seconds")
    observation_check_interval_seconds: Mapped[int] = _timer_column(
        "observation_check_interval_seconds")
    drowsy_check_interval_seconds: Mapped[int] = _timer_column("drowsy_check_interval_seconds")
    min_observation_seconds: Mapped[int] = _timer_column("min_observation_seconds")
    escalation_grace_seconds: Mapped[int] = _timer_column("escalation_grace_seconds")
    naloxone_redose_seconds: Mapped[int] = _timer_column("naloxone_redose_seconds")
    # The supervisor a level-3 alarm reaches by name (DESIGN: tablet, supervisor, named backup).
    on_call_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL"))
    naloxone_low_stock: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_NALOXONE_LOW_STOCK,
        server_default=str(DEFAULT_NALOXONE_LOW_STOCK), nullable=False)
    overdose_locations: Mapped[list] = mapped_column(
        JSON, default=lambda: list(DEFAULT_OVERDOSE_LOCATIONS),
        server_default=json.dumps(DEFAULT_OVERDOSE_LOCATIONS), nullable=False)
    # As the site states them ("Daily 09:00-21:00"): Ontario's monthly report asks for them.
    opening_hours: Mapped[str | None] = mapped_column(String(120))
    # Days a record keeps its client (srs.clients.retention); None keeps everything.
    retention_days: Mapped[int | None] = mapped_column(Integer)
    # Server defaults only: a migration test writes sites through these models at revisions
    # before the columns existed.
    refresher_months: Mapped[int] = mapped_column(
        Integer, server_default=str(DEFAULT_REFRESHER_MONTHS), nullable=False)
    kit_expiry_warning_days: Mapped[int] = mapped_column(
        Integer, server_default=str(DEFAULT_KIT_EXPIRY_WARNING_DAYS), nullable=False)
    cluster_overdoses: Mapped[int] = mapped_column(
        Integer, server_default=str(DEFAULT_CLUSTER_OVERDOSES), nullable=False)
    cluster_window_seconds: Mapped[int] = mapped_column(
        Integer, server_default=str(DEFAULT_CLUSTER_WINDOW_SECONDS), nullable=False)
    cluster_trend_factor: Mapped[float] = mapped_column(
        Float, server_default=str(DEFAULT_CLUSTER_TREND_FACTOR), nullable=False)
    alert_valid_for_days: Mapped[int] = mapped_column(
        Integer, server_default=str(DEFAULT_ALERT_VALID_FOR_DAYS), nullable=False)
    hat_max_sessions_per_day: Mapped[int] = mapped_column(
        Integer, server_default=str(HAT_SETTINGS["hat_max_sessions_per_day"][0]),
        nullable=False)
    hat_min_interval_minutes: Mapped[int] = mapped_column(
        Integer, server_default=str(HAT_SETTINGS["hat_min_interval_minutes"][0]),
        nullable=False)
    hat_cap_hydromorphone_mg_day: Mapped[int] = mapped_column(
        Integer, server_default=str(HAT_SETTINGS["hat_cap_hydromorphone_mg_day"][0]),
        nullable=False)
    hat_cap_diacetylmorphine_mg_day: Mapped[int] = mapped_column(
        Integer, server_default=str(HAT_SETTINGS["hat_cap_diacetylmorphine_mg_day"][0]),
        nullable=False)
    hat_warn_iv_mg_day: Mapped[int] = mapped_column(
        Integer, server_default=str(HAT_SETTINGS["hat_warn_iv_mg_day"][0]), nullable=False)
    hat_max_single_dose_mg: Mapped[int | None] = mapped_column(Integer)
    hat_injection_window_minutes: Mapped[int] = _hat_column("hat_injection_window_minutes")
    hat_aftercare_minutes: Mapped[int] = _hat_column("hat_aftercare_minutes")
    hat_aftercare_titration_minutes: Mapped[int] = _hat_column(
        "hat_aftercare_titration_minutes")
    hat_poss_withhold: Mapped[int] = _hat_column("hat_poss_withhold")
    hat_poss_console: Mapped[int] = _hat_column("hat_poss_console")
    hat_missed_hold_days: Mapped[int] = _hat_column("hat_missed_hold_days")
    hat_missed_retitrate_days: Mapped[int] = _hat_column("hat_missed_retitrate_days")
    hat_take_home_allowed: Mapped[bool] = mapped_column(Boolean, server_default=false(),
                                                        nullable=False)
    hat_take_home_max_days: Mapped[int] = _hat_column("hat_take_home_max_days")
    compassion_weekly_limit_mg: Mapped[int] = _compassion_column("compassion_weekly_limit_mg")
    compassion_daily_limit_mg: Mapped[int] = _compassion_column("compassion_daily_limit_mg")
    compassion_pickups_per_day: Mapped[int] = _compassion_column("compassion_pickups_per_day")
    compassion_linkage_review_days: Mapped[int] = _compassion_column(
        "compassion_linkage_review_days")
    compassion_survey_days: Mapped[int] = _compassion_column("compassion_survey_days")
    compassion_take_home_allowed: Mapped[bool] = mapped_column(
        Boolean, server_default=false(), nullable=False)
    compassion_rollover_allowed: Mapped[bool] = mapped_column(
        Boolean, server_default=false(), nullable=False)
    # A member's legal identity is asked and kept (encrypted) only where this is on.
    compassion_identity_required: Mapped[bool] = mapped_column(
        Boolean, server_default=false(), nullable=False)
    # Pickup windows ("HH:MM-HH:MM", site time; none: any time the site is open), the
    # eligibility checklist ([[key, label], ...]; null: DEFAULT_ELIGIBILITY), the steps the
    # site waives, and a cap a week per substance ({"heroin": mg}).
    compassion_pickup_windows: Mapped[list | None] = mapped_column(JSON)
    compassion_eligibility: Mapped[list | None] = mapped_column(JSON)
    compassion_waived_steps: Mapped[list | None] = mapped_column(JSON)
    compassion_substance_limits_mg: Mapped[dict | None] = mapped_column(JSON)

    booths: Mapped[list["Booth"]] = relationship(  # noqa: F821
        back_populates="site", order_by="Booth.position")

    def __repr__(self) -> str:
        return f"<Site {self.id} {self.slug}>"

    # --- The site's clock: days, hours and bands are the site's own, never UTC's ------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        """``moment`` as the site's wall clock reads it."""
        return moment.astimezone(self.zone)

    def local_date(self, moment: datetime) -> date:
        """The calendar date at the site: a restriction "until the 1st" ends at its midnight."""
        return self.local(moment).date()

    def last_full_month(self, moment: datetime) -> date:
        """The 1st of the month before the one the site is in at ``moment``: what a monthly
        report shows when no month is asked for."""
        return (self.local_date(moment).replace(day=1) - timedelta(days=1)).replace(day=1)

    def time_band(self, moment: datetime) -> str:
        """The band (TIME_BANDS) of the site's hour at ``moment``."""
        return time_band(self.local(moment).hour)

    def midnight(self, day: date) -> datetime:
        """The moment ``day`` starts at the site, in UTC."""
        return datetime.combine(day, time(0), self.zone).astimezone(UTC)

