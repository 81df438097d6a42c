"""Every template filter, ``url_for_each``, the names each domain gives every template, and the
``X-SRS-Now`` header every answer carries.

Times on screen: the first render shows them; srs.js ticks on from the ``data-``
timestamps, counting from the server's clock (``X-SRS-Now``), not the tablet's.
Site times (``site_time``, ``local``, ``band``) are the site's own clock (``Site.zone``).
"""

from datetime import UTC, datetime

from flask import url_for

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


# An id no record has (beyond ``MAX_ID``) and no slug spells: where ``url_for_each`` puts ids.
_ID_MARK = 918_273_645_546_372_819


def url_for_each(endpoint: str, key: str, **values):
    """``url_for(endpoint, **values)`` for many values of the id ``key``: the URL is built on
    the first call and each id put where it stands. A board builds its tiles' URLs per booth,
    and url_for costs more than the rest of a tile; the result is the string url_for gives."""
    parts = []

    def url(value) -> str:
        if not parts:
            built = url_for(endpoint, **values, **{key: _ID_MARK})
            before, mark, after = built.partition(str(_ID_MARK))
            parts.append((before, after) if mark and str(_ID_MARK) not in after else None)
        if parts[0] is None:
            return url_for(endpoint, **values, **{key: value})
        before, after = parts[0]
        return f"{before}{int(value)}{after}"

    return url


# Where the app keeps the names ``template_globals`` gathered (``init_app`` gives them out).
_NAMES = "srs_template_names"


def template_globals(bp):
    """Decorate a function returning names every template may use (a domain's lists, labels
    and helpers): it is called once, when the app registers ``bp``, and one context processor
    gives every render all such names. Flask calls each context processor on every render,
    and a change on the floor renders seven fragments; these names never change. (Jinja
    globals would cost more: each import of a macro file compares them all.) Where two
    domains give one name, the one registered later wins, as among context processors."""

    def register(names):
        bp.record_once(lambda state: state.app.extensions[_NAMES].update(names()))
        return names

    return register


def server_time(response):
    """Say when the server answered, so a screen with a wrong clock still counts right."""
    response.headers.setdefault("X-SRS-Now", iso(utcnow()))
    return response


def init_app(app) -> None:
    for name, template_filter in FILTERS.items():
        app.add_template_filter(template_filter, name)
    app.add_template_global(url_for_each)
    names = app.extensions[_NAMES] = {}
    app.context_processor(lambda: names)
    app.after_request(server_time)
