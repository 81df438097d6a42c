"""Two of the three forms workers asked an alert to take (DOMAIN.md): a one-page printable
poster and a text of one SMS segment. The detailed sheet is the alert's own page.

Both are built from the alert alone: what was found, where, effects, advice and until when.
A drug alert holds no client data (a check's sample id and an overdose's client never reach
it), and neither form reads anything else.
"""

from flask import current_app, url_for

from srs.drugchecks.models import ADVICE, ALERT_KINDS, EVIDENCE, DrugAlert
from srs.sites.models import Site

# The most a poster prints of each free text, and from how many characters in all it is set
# smaller (both keep it to one A4 page).
POSTER_TEXT = 180
CROWDED = 600
# One GSM-7 segment.
SMS_LENGTH = 160
# The advice a text carries first, when the alert has it: what keeps a person alive.
SHORT_ADVICE = {
    "naloxone_may_not_reverse": "Naloxone may not reverse it: call for help, give breaths",
    "not_alone": "Don't use alone",
    "test_first": "Get it checked",
    "carry_naloxone": "Carry naloxone",
    "start_low": "Start low, go slow",
    "call_911": "Call 911 for an overdose",
    "space_doses": "Space doses, don't mix",
}


def short_title(alert: DrugAlert) -> str:
    """The title without the organisation: "Drug Alert - Downtown - 2026-12-07"."""
    _org, _sep, rest = alert.title.partition(" - ")
    return rest or alert.title


def _cut(text: str, length: int) -> str:
    """``text`` within ``length`` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    cut = text[:length - 1].rsplit(" ", 1)[0].rstrip(" ,;:.-")
    return f"{cut}…"


def short_text(alert: DrugAlert) -> str:
    """The alert in at most 160 characters: its title without the organisation, what was
    found (as far as it fits) and the first key advice. Used for SMS and shown on the
    alert's page."""
    head = short_title(alert)
    keys = [k for k in SHORT_ADVICE if k in (alert.advice or [])]
    advice = SHORT_ADVICE[keys[0]] if keys else _cut(alert.advice_text or "", 60)
    tail = f" {advice}." if advice else ""
    found = alert.found or alert.effects or ""
    room = SMS_LENGTH - len(head) - len(tail) - 2
    middle = f": {_cut(found, room)}" if found and room >= 20 else ""
    return _cut(f"{head}{middle}{'.' if middle and not middle.endswith(('.', '…')) else ''}"
                f"{tail}", SMS_LENGTH)


def poster_html(alert: DrugAlert, site: Site) -> str:
    """The poster's HTML for WeasyPrint: an A4 page in large type. ``site`` is the one
    printing it: dates are in its time zone."""
    template = current_app.jinja_env.get_template("drugchecks/poster.html")
    advice = [ADVICE[a] for a in alert.advice or [] if a in ADVICE]
    until = site.local(alert.valid_until).strftime("%A %d %B %Y") if alert.valid_until \
        else f"{alert.valid_for_days} days from publication"
    # One page: long free text is cut (the alert's page holds it whole), and a poster with
    # much to say is set a size smaller.
    text = {name: _cut(getattr(alert, name) or "", POSTER_TEXT) or None
            for name in ("found", "effects", "advice_text")}
    text["looks"] = _cut(". ".join(p for p in (alert.appearance, alert.packaging) if p),
                         POSTER_TEXT) or None
    crowded = sum(len(t or "") for t in text.values()) + 60 * len(advice) > CROWDED
    report_url = url_for("earlywarning.report_bad_batch", _external=True)
    return template.render(alert=alert, kind=ALERT_KINDS[alert.kind], text=text,
                           report_url=report_url,
                           evidence=EVIDENCE[alert.evidence], advice=advice, site=site,
                           crowded=crowded, valid_until=until)


def poster_pdf(alert: DrugAlert, site: Site) -> bytes:
    """The poster as PDF (WeasyPrint, as the weekly packet is printed)."""
    from weasyprint import HTML  # loaded on first use: seconds of start-up otherwise

    return HTML(string=poster_html(alert, site)).write_pdf()
