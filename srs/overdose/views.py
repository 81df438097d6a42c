"""The overdose console, and the floor's and dashboard's panels of active responses.

The console is one page per response; every button is a form with its own idempotency key
that posts one entry and answers with the console swapped out of band (the main target,
``#dialog``, is emptied, which closes an open dialog). A refusal the service raises goes to
``#flash`` with its field messages (errors.py); a dialog's own form comes back with the
message beside the field.
"""


from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import DISPLAY, FLOOR, WATCHERS
from srs.booths.service import get_visit
from srs.common import utcnow
from srs.errors import Invalid, is_htmx
from srs.idempotency import idempotent
from srs.overdose import service
from srs.overdose.models import (
    INTERVENTIONS,
    KINDS,
    OUTCOMES,
    ROUTES,
    SOURCES,
)
from srs.overdose.schemas import (
    AmendForm,
    CloseForm,
    InterventionForm,
    KindForm,
    StartForm,
)
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("overdose", __name__)

# Oxygen flows the console offers in one tap, L/min.
OXYGEN_FLOWS = (2, 6, 10, 15)


@template_globals(bp)
def overdose_vocabulary():
    return {"OVERDOSE_KINDS": KINDS, "OUTCOMES": OUTCOMES, "INTERVENTIONS": INTERVENTIONS,
            "NALOXONE_ROUTES": ROUTES, "OVERDOSE_SOURCES": SOURCES,
            "overdose_responses_of": _responses_of_board,
            "overdose_active": service.active_responses,
            "overdose_summary": service.response_summary}


def _responses_of_board(board: dict) -> dict:
    """The open response of each visit on a board (of the parts it holds), looked up once
    per render."""
    if "_overdose" not in board:
        visits = [b.visit.id for b in board.get("booths", ()) if b.visit is not None]
        visits += [v.id for v in board.get("aftercare", ())]
        board["_overdose"] = service.responses_for_visits(visits)
    return board["_overdose"]


# --- Panels: the floor's and the dashboard's ------------------------------------------------


def _panel(site, floor: bool, oob: bool = False):
    return render_template("overdose/_active.html", site=site, floor=floor, oob=oob,
                           responses=service.active_responses(site), now=utcnow())


@bp.get("/sites/<slug>/overdose/active")
@site_role_required(*WATCHERS, DISPLAY)
def active(site):
    """Active responses with their clocks, for the supervisor's dashboard."""
    return _panel(site, floor=False)


@bp.get("/sites/<slug>/floor/overdose")
@site_role_required(*FLOOR)
def floor_panel(site):
    """Active responses to open, and 'someone not checked in' by place, for the tablet."""
    return _panel(site, floor=True)


def _moved_to(url: str, link_template: str):
    """Answer a tap that takes the screen to ``url`` (a console opened, or taken back).

    htmx follows ``HX-Redirect``; the body is ``link_template``'s link to the same place,
    which is what a repeated tap (the same key, answered from the first time) shows: the
    replay keeps the body, not the redirect header. A plain form post gets a 303.
    """
    if not is_htmx():
        return redirect(url, 303)
    answer = make_response(render_template(link_template, url=url), 200)
    answer.headers["HX-Redirect"] = url
    return answer


@bp.post("/sites/<slug>/overdose/start")
@site_role_required(*FLOOR)
@idempotent
def start(site):
    """One tap: open (or reopen) a response and go to its console."""
    try:
        data = StartForm().load(request.form)
    except ValidationError as err:
        raise Invalid("Could not start the response.", err.messages) from None
    visit = get_visit(site, data["visit_id"]) if data["visit_id"] else None
    response, _created = service.start_response(
        site, kind=data["kind"], visit=visit, location=data["location"],
        source=data["source"], actor=current_actor(), now=utcnow())
    return _moved_to(url_for("overdose.console", slug=site.slug, response_id=response.id),
                    "overdose/_opening.html")


# --- The console ----------------------------------------------------------------------------


def _person_id() -> int | None:
    """The signed-in person's staff id; None on a wall display (nobody)."""
    return None if current_user.is_display else current_user.id


def _console_context(site, response, **extra) -> dict:
    now = utcnow()
    entries = service.effective_entries(response)
    doses = [e for e in entries if e.kind == "naloxone" and not e.struck]
    oxygen = [e for e in entries if e.kind in ("oxygen_on", "oxygen_off") and not e.struck]
    done = {}
    for entry in entries:
        if not entry.struck:
            done.setdefault(entry.kind, entry)
    return {"site": site, "response": response, "entries": list(reversed(entries)),
            "timeline": service.response_timeline(response),
            "last_dose": doses[-1] if doses else None, "doses": doses,
            "oxygen_on": oxygen[-1] if oxygen and oxygen[-1].kind == "oxygen_on" else None,
            "done": done, "now": now, "flows": OXYGEN_FLOWS,
            "may_cancel": service.may_cancel(response, now=now),
            "cancel_until": response.started_at + service.MISTAKE_WINDOW,
            "drafted": service.drafted_report(response, reporter_id=_person_id()),
            "summary": service.response_summary(response), "errors": {}, **extra}


def _console_update(site, response):
    """The answer to a console action: the console, out of band; the dialog emptied."""
    return render_template("overdose/_console.html", oob=True,
                           **_console_context(site, service.get_response(site, response.id)))


@bp.get("/sites/<slug>/overdose/<int:response_id>")
@site_role_required(*FLOOR)
def console(site, response_id):
    response = service.get_response(site, response_id)
    service.audit_read(response, actor=current_actor(), now=utcnow())
    return render_template("overdose/console.html", oob=False,
                           **_console_context(site, response))


@bp.get("/sites/<slug>/overdose/<int:response_id>/console")
@site_role_required(*FLOOR)
def console_fragment(site, response_id):
    return render_template("overdose/_console.html", oob=False,
                           **_console_context(site, service.get_response(site, response_id)))


@bp.post("/sites/<slug>/overdose/<int:response_id>/interventions")
@site_role_required(*FLOOR)
@idempotent
def record_intervention(site, response_id):
    response = service.get_response(site, response_id)
    try:
        data = InterventionForm().load(request.form)
    except ValidationError as err:
        raise Invalid("Not recorded: " + _first_message(err.messages), err.messages) from None
    service.record_intervention(response, data, actor=current_actor(), now=utcnow())
    return _console_update(site, response)


def _first_message(messages: dict) -> str:
    for value in messages.values():
        if isinstance(value, list) and value:
            return str(value[0])
        if isinstance(value, str):
            return value
    return "check the entry."


@bp.post("/sites/<slug>/overdose/<int:response_id>/kind")
@site_role_required(*FLOOR)
@idempotent
def change_kind(site, response_id):
    response = service.get_response(site, response_id)
    try:
        data = KindForm().load(request.form)
    except ValidationError as err:
        raise Invalid("Choose the kind.", err.messages) from None
    service.change_kind(response, data["kind"], actor=current_actor(), now=utcnow())
    return _console_update(site, response)


def _dialog(template: str, status: int = 200, **context):
    return render_template(f"overdose/{template}", **context), status


@bp.get("/sites/<slug>/overdose/<int:response_id>/dose")
@site_role_required(*FLOOR)
def dose_dialog(site, response_id):
    """Another dose: mg and route."""
    return _dialog("_dose_dialog.html", site=site,
                   response=service.get_response(site, response_id), form={}, errors={})


@bp.post("/sites/<slug>/overdose/<int:response_id>/dose")
@site_role_required(*FLOOR)
@idempotent
def record_dose(site, response_id):
    response = service.get_response(site, response_id)
    form = request.form.to_dict()
    try:
        data = InterventionForm().load({**form, "kind": "naloxone"})
        service.record_intervention(response, data, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _dialog("_dose_dialog.html", 422, site=site, response=response, form=form,
                       errors=err.messages)
    except Invalid as err:
        if not err.errors:
            raise
        return _dialog("_dose_dialog.html", 422, site=site, response=response, form=form,
                       errors=err.errors)
    return _console_update(site, response)


@bp.get("/sites/<slug>/overdose/<int:response_id>/entries/<int:intervention_id>/amend")
@site_role_required(*FLOOR)
def amend_dialog(site, response_id, intervention_id):
    response = service.get_response(site, response_id)
    entry = service.get_entry(response, intervention_id)
    return _dialog("_amend_dialog.html", site=site, response=response, entry=entry,
                   form={}, errors={})


@bp.post("/sites/<slug>/overdose/<int:response_id>/entries/<int:intervention_id>/amend")
@site_role_required(*FLOOR)
@idempotent
def amend(site, response_id, intervention_id):
    """A correction: a new row with a reason; the entry it corrects stays."""
    response = service.get_response(site, response_id)
    entry = service.get_entry(response, intervention_id)
    form = request.form.to_dict()
    try:
        data = AmendForm().load(form)
        if data.pop("time", None):
            data["at"] = service.at_site_time(site, entry.at, form["time"])
        service.record_intervention(response, {**data, "amends_id": entry.id},
                                    actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _dialog("_amend_dialog.html", 422, site=site, response=response, entry=entry,
                       form=form, errors=err.messages)
    except Invalid as err:
        if not err.errors:
            raise
        return _dialog("_amend_dialog.html", 422, site=site, response=response, entry=entry,
                       form=form, errors=err.errors)
    return _console_update(site, response)


@bp.post("/sites/<slug>/overdose/<int:response_id>/cancel")
@site_role_required(*FLOOR)
@idempotent
def cancel(site, response_id):
    """Started by mistake (within 30 s, nothing recorded): back to the floor."""
    service.cancel_response(service.get_response(site, response_id), actor=current_actor(),
                            now=utcnow())
    return _moved_to(url_for("booths.floor", slug=site.slug), "overdose/_cancelled.html")


@bp.get("/sites/<slug>/overdose/<int:response_id>/close")
@site_role_required(*FLOOR)
def close_dialog(site, response_id):
    return _dialog("_close_dialog.html", site=site,
                   response=service.get_response(site, response_id), form={}, errors={})


@bp.post("/sites/<slug>/overdose/<int:response_id>/close")
@site_role_required(*FLOOR)
@idempotent
def close(site, response_id):
    response = service.get_response(site, response_id)
    form = request.form.to_dict()
    try:
        data = CloseForm().load(form)
        service.close_response(response, outcome=data["outcome"], note=data["note"],
                               actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _dialog("_close_dialog.html", 422, site=site, response=response, form=form,
                       errors=err.messages)
    except Invalid as err:
        if not err.errors:
            raise
        return _dialog("_close_dialog.html", 422, site=site, response=response, form=form,
                       errors=err.errors)
    return _console_update(site, response)
