"""Every template filter, and the ``X-SRS-Now`` header every answer carries.

Times on screen: the first render shows them; srs.js ticks on from the ``data-``
timestamps, counting from the server's clock (``X-SRS-Now``), not the tablet's.
Site times (``site_time``, ``local``, ``band``) are the site's own clock (``Site.zone``).
"""

from datetime import UTC, datetime

from srs.common import utcnow


def _seconds(since: datetime, until: datetime) -> int:
    return int((until - since).total_seconds())


def iso(moment: datetime) -> str:
    """A UTC timestamp to the millisecond, as srs.js reads it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def labels(values, names: dict) -> str:
    return ", ".join(names.get(value, value) for value in values)


def minutes_since(moment: datetime, now: datetime) -> str:
    return f"{max(0, _seconds(moment, now)) // 60} min"


def clock_since(moment: datetime, now: datetime) -> str:
    seconds = max(0, _seconds(moment, now))
    return f"{seconds // 60}:{seconds % 60:02d}"


def clock_until(moment: datetime, now: datetime, done: str = "Ready") -> str:
    seconds = _seconds(now, moment)
    if seconds <= 0:
        return done
    return f"{seconds // 60}:{seconds % 60:02d} left"


def duration(seconds: int) -> str:
    """A duration as a clock reads it: "0:10", "15:00", "2:00:00"."""
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{rest // 60}:{rest % 60:02d}"


def site_time(moment: datetime | str | None, site) -> str:
    """A moment as the site's wall clock reads it (HH:MM:SS)."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return site.local(moment).strftime("%H:%M:%S")


def local(moment: datetime | None, site, fmt: str = "%a %d %b %Y %H:%M") -> str:
    if moment is None:
        return ""
    return site.local(moment).strftime(fmt)


def band(moment: datetime, site) -> str:
    """The time band a moment falls in at the site."""
    return site.time_band(moment)


FILTERS = {f.__name__: f for f in (iso, labels, minutes_since, clock_since, clock_until,
                                    duration, site_time, local, band)}


def server_time(response):
    """Say when the server answered, so a screen with a wrong clock still counts right."""
    response.headers.setdefault("X-SRS-Now", iso(utcnow()))
    return response


def init_app(app) -> None:
    for name, template_filter in FILTERS.items():
        app.add_template_filter(template_filter, name)
    app.after_request(server_time)
