"""What comes in from outside: anonymous bad-batch reports (the public form, the API's
``submitDrugReport``, a text starting OD) and the keywords texted to the gateway (JOIN, STOP).

A report asks for no identity and keeps none: it becomes a "reported" draft alert for the
staff of the site it names, drafted by SRS itself, and a second person validates it like any
other. The texted number of an OD report is not kept with it.
"""

from datetime import date, datetime

from srs import live
from srs.auth.service import Actor, record
from srs.drugchecks import outbox
from srs.drugchecks.models import DrugAlert
from srs.drugchecks.service import TOPIC, title_for
from srs.extensions import db
from srs.sites.models import Site

REPORTER = Actor.system("anonymous report")
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
HELP = ("Text JOIN for drug alerts from every site, JOIN and a site's name for one site, "
        "OD and what happened to report a bad batch, STOP to end.")


def sites() -> list[Site]:
    """The sites a report may name, by name."""
    return list(db.session.execute(db.select(Site).order_by(Site.name)).scalars())


def site_named(word: str) -> Site | None:
    """A site by its slug or its name, any case."""
    wanted = " ".join(word.split()).lower()
    return next((s for s in sites() if wanted in (s.slug.lower(), s.name.lower())), None)


def _text(value) -> str | None:
    value = " ".join((value or "").split()) if isinstance(value, str) else value
    return value or None


def submit_report(site: Site, data: dict, *, via: str, now: datetime) -> DrugAlert:
    """Draft a "reported" drug alert from an anonymous report; commits and tells the
    site's screens. ``data``: ``occurred_on``, ``area``, ``appearance``, ``packaging``,
    ``sold_as``, ``what_happened`` (all optional but what happened)."""
    occurred: date | None = data.get("occurred_on")
    found = "Reported anonymously" + (f" ({via})" if via else "") + (
        f"; happened on {occurred:%Y-%m-%d}" if occurred else "") + "."
    alert = DrugAlert(
        site_id=site.id, scope="site", site_ids=[site.id], kind="drug_alert", status="draft",
        area=_text(data.get("area")), expected=_text(data.get("sold_as")), found=found,
        appearance=_text(data.get("appearance")), packaging=_text(data.get("packaging")),
        effects=_text(data.get("what_happened")), advice=[], evidence="reported",
        audience="staff", urgent=False, valid_for_days=site.alert_valid_for_days,
        drafted_at=now, drafted_by=None)
    alert.title = title_for(alert, site, now)
    db.session.add(alert)
    db.session.flush()
    record(REPORTER, "drug_report_received", "drug_alert", alert.id, site_id=site.id,
           detail={"via": via}, now=now)
    live.announce(site.id, TOPIC)
    db.session.commit()
    return alert


def receive_text(sender: str, text: str, *, now: datetime) -> str:
    """A text to the gateway: JOIN [site], STOP, or OD and a report. Commits; returns the
    reply the gateway may send back.

    :raises Invalid: on ``from`` for a sender that is not a phone number.
    """
    number = outbox.normalise_number(sender)
    word, _sep, rest = " ".join((text or "").split()).partition(" ")
    word = word.upper()
    if word in STOP_WORDS:
        outbox.unsubscribe(number, now=now)
        db.session.commit()
        return "You will get no more drug alerts. Text JOIN to start again."
    if word == "JOIN":
        site = site_named(rest) if rest else None
        if rest and site is None:
            names = ", ".join(s.name for s in sites())
            return f"No site is called {rest[:40]}. Text JOIN alone, or JOIN and one of: {names}"
        outbox.subscribe(number, site_ids=[site.id] if site else None, now=now)
        db.session.commit()
        where = site.name if site else "every site"
        return f"You will get drug alerts for {where}. Text STOP to end."
    if word == "OD" and rest:
        return _od_report(number, rest, now=now)
    return HELP


def _od_report(number: str, rest: str, *, now: datetime) -> str:
    """OD [site] what happened: a report for the site it names first, else the site the
    sender subscribed to (if only one), else the first site."""
    first, _sep, after = rest.partition(" ")
    site = site_named(first)
    if site is not None and after:
        rest = after
    if site is None:
        subscriber = outbox.subscriber_for(number)
        if subscriber is not None and subscriber.stopped_at is None \
                and not subscriber.all_sites and len(subscriber.site_ids) == 1:
            site = db.session.get(Site, subscriber.site_ids[0])
    site = site or next(iter(sorted(sites(), key=lambda s: s.id)), None)
    if site is None:
        return HELP
    submit_report(site, {"what_happened": rest[:2000]}, via="text", now=now)
    return "Thank you. Staff will look at your report. It is anonymous."
