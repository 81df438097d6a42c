"""The documented signals: where one package reacts to another's change.

A floor package sends a signal when something happened that a package above it must
act on in the same unit of work; it imports nothing of that package. Receivers run at
once, inside the sender's transaction: they add and flush, never commit, and what they
return is the sender's answer. Receivers connect when their package's service module (or,
for the access request, its ``records`` module) is imported (``create_app`` imports every
package).
"""

from blinker import Namespace

_signals = Namespace()

client_unresponsive = _signals.signal("client-unresponsive", doc="""
A check found a client unresponsive. Sender: the ``Site``; keyword arguments ``visit``,
``actor`` and ``now``. Sent by ``srs.booths.checks.record_check``. A receiver that opens an
emergency record for the visit returns it; the check keeps the first one returned.
""")

client_flags = _signals.signal("client-flags", doc="""
A client is about to be checked in or looked up. Sender: the ``Client``; keyword argument
``today``, the site's date. Sent by
``srs.clients.service.client_flags``. Each receiver returns a dict of flags to show.
""")

client_summary = _signals.signal("client-summary", doc="""
A client's page is opened. Sender: the ``Client``. Sent by
``srs.clients.service.client_summary``. Each receiver returns a dict of counts of what its
package holds about the client, by label (``{"Visits": 12}``).
""")

client_record = _signals.signal("client-record", doc="""
A client asked for everything SRS holds about them (an access request). Sender: the
``Client``. Sent by ``srs.clients.export.gather``. Each receiver returns a list of
``srs.clients.export.Section``: its package's records of the client, one section per kind,
each naming the audit trail's entity for its rows' ids. Receivers only read.
""")

response_closed = _signals.signal("response-closed", doc="""
An overdose response was closed. Sender: the ``OverdoseResponse``; keyword arguments
``actor`` and ``now``. Sent by ``srs.overdose.service.close_response`` before its commit.
The incident package drafts the report from the response's timeline and returns it.
""")


response_draft = _signals.signal("response-draft", doc="""
Which incident report a closed overdose response drafted. Sender: the ``OverdoseResponse``;
keyword argument ``reporter_id``, the staff member asking. Sent by the console's render, so
that every render of a closed console (not only the close's own answer) links its reporter
to the draft. The incident package returns that reporter's report drafted from the response,
or None.
""")

stock_discrepancy = _signals.signal("stock-discrepancy", doc="""
A shift's count of a controlled-drug line found a difference. Sender: the
``ControlledCount``; keyword arguments ``actor`` and ``now``. Sent by
``srs.controlled.service.record_count`` before its commit. The incident package drafts the
report and returns it.
""")

register_names = _signals.signal("register-names", doc="""
The controlled-drug register is being exported and its law names the person supplied.
Sender: the ``Site``; keyword arguments ``client_ids`` (the clients of the period's draws),
``actor`` and ``now``. Sent by ``srs.controlled.service.period_entries``. The treatment
package answers ``{client_id: legal name}`` of its patients among them for a prescriber or
pharmacist at the site only, and None for anyone else (who sees the code alone); it audits
each identity it read (ids only) in the sender's unit of work.
""")

weekly_packet_sections = _signals.signal("weekly-packet-sections", doc="""
The weekly review packet is being printed. Sender: the ``Site``; keyword arguments ``start``
and ``end``, the week's bounds (UTC). Sent by ``srs.incidents.packets.packet_html``. Each
receiver returns None or a section: ``{"title", "summary", "tables": [{"caption", "head",
"rows"}]}`` of figures (no client codes, no free text). Receivers only read.
""")


alarm_strip = _signals.signal("alarm-strip", doc="""
A site's alarm strip is rendered (under every site page's header, on the dashboards, on a
locked tablet). Sender: the ``Site``; keyword argument ``now``. Asked by the alerts
package's ``strip_notices``. Each receiver returns a list of notices to show beside the
alarms, each a dict with ``template`` (the partial that renders it, given ``notice``,
``site``, ``now`` and the strip's context) and ``sounding`` (True while it sounds as an
alarm, until a named person acknowledges it). Receivers only read.
""")

alarm_place = _signals.signal("alarm-place", doc="""
An alarm that names no booth is shown (an emergency in after-care, or found at a place of
the site's list). Sender: the ``Alert``. Asked by the alerts package's ``alarm_place``. A
receiver that knows where the alarm's subject is returns it in words ("After-care",
"Washroom"); the first answer is shown. Receivers only read.
""")

visit_notices = _signals.signal("visit-notices", doc="""
A client has just been checked in: what staff must tell them. Sender: the ``Visit``;
keyword arguments ``site`` and ``now``. Asked by the check-in panel
(``srs.booths.views.check_in``). Each receiver returns None or a notice: a dict with
``template`` (a partial that owns its wrapper element and its actions, given ``notice``
and ``site``). Receivers only read.
""")

visit_timers = _signals.signal("visit-timers", doc="""
A visit's booth time or after-care time is about to be set. Sender: the ``Visit``; keyword
arguments ``site``, ``stage`` (``"booth"``: the time to leave the booth, when the visit is
put in one; ``"observation"``: the after-care time, when it leaves) and ``now``. Sent by
``srs.booths.service.assign_booth`` and ``start_observation``. A receiver that has its own
time for this visit (a prescribed dose's injection window, its after-care) returns it in
seconds; the first answer replaces the site's own. Receivers only read.
""")


def first_answer(results: list[tuple]) -> object | None:
    """The first non-None value receivers returned from ``signal.send(...)``."""
    return next((value for _receiver, value in results if value is not None), None)
