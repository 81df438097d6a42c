"""The nurse's floor tablet: check-in, queue, booths, after-care, and the fragments every
screen of a site re-fetches when it changes.

Two kinds of fragment, one URL each: the read-only board, queue and after-care that the
supervisor's dashboard shows (``/sites/<slug>/board``), and the same with their actions for
the floor tablet (``/sites/<slug>/floor/board``). Every action is a form post that parses
with a form from ``schemas.py``, calls one service function and answers with the floor's
fragments swapped out of band; a refusal the service raises goes to ``#flash`` (errors.py),
a field the form got wrong comes back beside the field with what was entered.
"""


from flask import Blueprint, make_response, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from srs import live, signals
from srs.auth.access import current_actor
from srs.auth.models import DISPLAY, FLOOR, WATCHERS, Role
from srs.booths import admin, checks, service
from srs.booths.models import (
    BOOTH_KIND_LABELS,
    CHECK_STATUSES,
    DISCHARGE_FROM_BOOTH_REASONS,
    EARLY_DISCHARGE_REASONS,
    LEFT_QUEUE_REASONS,
    OUT_OF_SERVICE_REASONS,
    ROUTES,
    ROUTES_BY_BOOTH_KIND,
    STRIP_RESULTS,
    SUBSTANCES,
    TOPIC_AFTERCARE,
    TOPIC_BOARD,
    TOPIC_QUEUE,
    BoothKind,
    VisitState,
)
from srs.booths.schemas import (
    BoothForm,
    CheckForm,
    CheckInForm,
    ConsumptionForm,
    DischargeForm,
    LeaveQueueForm,
    OutOfServiceForm,
)
from srs.clients import service as clients
from srs.common import utcnow
from srs.errors import Conflict, Forbidden, Invalid
from srs.extensions import db
from srs.forms import form_input
from srs.idempotency import idempotent
from srs.sites.access import site_role_required
from srs.sites.models import Site
from srs.templating import template_globals

bp = Blueprint("booths", __name__)


def _board(site, *parts: str) -> dict:
    return live_board(site, parts=parts or service.BOARD_PARTS)


def live_board(site, *, new_version: bool = False, parts=service.BOARD_PARTS) -> dict:
    """The site's board (or only its ``parts``), read under its live lock and stamped with
    its version (the fragments carry it as ``data-version``; a screen keeps the highest it
    has seen)."""
    version, board = live.versioned_read(
        site.id, lambda: service.site_board(site, now=utcnow(), parts=parts), new=new_version)
    board["version"] = version
    return board


# The fragments every screen of a site shows, by audience: one render per change goes to
# the screens that would GET the same bytes (see srs.live).
LIVE_FRAGMENTS = {
    "floor": (("board", "booths/_board.html"), ("queue", "booths/_queue.html"),
              ("aftercare", "booths/_aftercare.html")),
    "watch": (("board", "booths/_board.html"), ("queue", "booths/_queue.html"),
              ("aftercare", "booths/_aftercare.html")),
    "figures": (("today", "dashboard/_today.html"),),
}
# The topics that change each fragment: a change renders and pushes only the fragments its
# topics touch (an overdose response shows on its booth tile or after-care row; site
# settings, such as the name or the observation time, show everywhere). Other topics
# (alerts, stock, incidents...) change none of them.
# The board's part (``service.BOARD_PARTS``) each fragment shows.
FRAGMENT_PARTS = {"board": "booths", "queue": "queue", "aftercare": "aftercare",
                  "today": "today"}
FRAGMENT_TOPICS = {
    "board": {TOPIC_BOARD, live.TOPIC_RESPONSES, "settings"},
    "queue": {TOPIC_QUEUE, "settings"},
    "aftercare": {TOPIC_AFTERCARE, live.TOPIC_RESPONSES, "settings"},
    "today": {TOPIC_QUEUE, TOPIC_BOARD, TOPIC_AFTERCARE, "settings"},
}


def render_live_fragments(site_id: int, topics, audiences) -> tuple[int | None, dict]:
    """Render, once per audience in ``audiences``, the fragments that ``topics`` changed,
    from one new versioned read; ``(None, {})`` when they changed none."""
    topics = set(topics)
    wanted = {}
    for audience in audiences:
        touched = [(name, template) for name, template in LIVE_FRAGMENTS[audience]
                   if FRAGMENT_TOPICS[name] & topics]
        if touched:
            wanted[audience] = touched
    if not wanted:
        return None, {}
    site = db.session.get(Site, site_id)
    parts = {FRAGMENT_PARTS[name] for fragments in wanted.values() for name, _ in fragments}
    board = live_board(site, new_version=True, parts=parts)
    html = {}
    for audience, fragments in wanted.items():
        html[audience] = {
            f"{name}-{site.id}": render_template(template, board=board,
                                                 floor=audience == "floor")
            for name, template in fragments}
    return board["version"], html


# Each kind of screen: the audiences whose fragments it shows, and who may open it.
live.register_fragments(render_live_fragments, {
    "floor": (("floor",), FLOOR),
    "dashboard": (("watch", "figures"), (Role.SUPERVISOR, Role.ADMIN, DISPLAY)),
    "watch": (("watch",), WATCHERS)})


# --- Time on screen: the first render; srs.js ticks on from the data- timestamps ------------


@template_globals(bp)
def floor_vocabulary():
    """The floor's lists, so templates label codes the way the models define them."""
    return {"SUBSTANCES": SUBSTANCES, "ROUTES": ROUTES, "USE_STRIP_RESULTS": STRIP_RESULTS,
            "LEFT_QUEUE_REASONS": LEFT_QUEUE_REASONS,
            "DISCHARGE_FROM_BOOTH_REASONS": DISCHARGE_FROM_BOOTH_REASONS,
            "EARLY_DISCHARGE_REASONS": EARLY_DISCHARGE_REASONS,
            "VisitState": VisitState}


# --- Pages and read-only fragments -----------------------------------------------------------


@bp.get("/sites/<slug>/floor")
@site_role_required(*FLOOR)
def floor(site):
    return render_template("booths/floor.html", board=_board(site), floor=True,
                           checkin=_checkin_context(site))


@bp.get("/sites/<slug>/board")
@site_role_required(*WATCHERS, DISPLAY)
def board(site):
    return render_template("booths/_board.html", board=_board(site, "booths"), floor=False)


@bp.get("/sites/<slug>/queue")
@site_role_required(*WATCHERS, DISPLAY)
def queue(site):
    return render_template("booths/_queue.html", board=_board(site, "queue"), floor=False)


@bp.get("/sites/<slug>/aftercare")
@site_role_required(*WATCHERS, DISPLAY)
def aftercare(site):
    return render_template("booths/_aftercare.html", board=_board(site, "aftercare"), floor=False)


@bp.get("/sites/<slug>/floor/board")
@site_role_required(*FLOOR)
def floor_board(site):
    return render_template("booths/_board.html", board=_board(site, "booths"), floor=True)


@bp.get("/sites/<slug>/floor/queue")
@site_role_required(*FLOOR)
def floor_queue(site):
    return render_template("booths/_queue.html", board=_board(site, "queue"), floor=True)


@bp.get("/sites/<slug>/floor/aftercare")
@site_role_required(*FLOOR)
def floor_aftercare(site):
    return render_template("booths/_aftercare.html", board=_board(site, "aftercare"), floor=True)


def _floor_update(site):
    """The answer to a floor action: every floor fragment, swapped out of band.

    The acting tablet sees the result at once even if its socket is down; the other screens
    follow on the announcement. The main content is empty, which closes an open dialog.
    """
    return render_template("booths/_floor_update.html", board=_board(site), floor=True,
                           oob=True)


# --- Check-in --------------------------------------------------------------------------------


def _checkin_context(site, *, form=None, errors=None, message=None, client=None, flags=None,
                     done=None, position=None, notices=()) -> dict:
    form = form.to_dict() if hasattr(form, "to_dict") else dict(form or {})
    return {"site": site, "form": form, "errors": errors or {}, "message": message,
            "client": client, "flags": flags, "done": done, "position": position,
            "notices": list(notices),
            "supervisor": current_user.has_role(site.id, Role.SUPERVISOR)}


def _checkin_panel(site, status: int = 200, **context):
    return render_template("booths/_checkin.html", checkin=_checkin_context(site, **context)), \
        status


@bp.get("/sites/<slug>/floor/clients")
@site_role_required(*FLOOR)
def client_suggestions(site):
    """Known codes for the code field once it holds 2 characters; each with its flags."""
    found = clients.find_clients(site, request.args.get("code", ""), actor=current_actor())
    today = service.local_date(site, utcnow())
    return render_template("booths/_suggestions.html", site=site, suggestions=[
        (client, clients.client_flags(client, today=today)) for client in found])


@bp.get("/sites/<slug>/floor/check-in")
@site_role_required(*FLOOR)
def checkin_panel(site):
    """The check-in panel, empty or (``?code=``) with a known client's flags to review."""
    code = request.args.get("code", "").strip().upper()
    if not code:
        return _checkin_panel(site)
    now = utcnow()
    client = clients.view_client(site, code, actor=current_actor(), now=now)
    flags = clients.client_flags(client, today=service.local_date(site, now)) if client else None
    return _checkin_panel(site, form={"code": code, "handle": client.handle if client else ""},
                          client=client, flags=flags)


def _needs_review(flags: dict | None) -> bool:
    return bool(flags and (flags["restricted"] or flags["note"] or flags["recent_overdose"]))


@bp.post("/sites/<slug>/floor/check-in")
@site_role_required(*FLOOR)
@idempotent
def check_in(site):
    """Start a visit in the queue. A known client with flags is shown first, once: the
    tablet's second tap (``reviewed`` = the code) checks them in."""
    try:
        data = CheckInForm().load(form_input(request.form))
    except ValidationError as err:
        return _checkin_panel(site, 422, form=request.form, errors=err.messages)
    now = utcnow()
    if data["reviewed"] != data["code"]:
        client = clients.view_client(site, data["code"], actor=current_actor(), now=now)
        today = service.local_date(site, now)
        flags = clients.client_flags(client, today=today) if client else None
        if _needs_review(flags):
            return _checkin_panel(site, form=request.form, client=client, flags=flags)
    try:
        visit = service.check_in(site, code=data["code"], handle=data["handle"],
                                 override_reason=data["override_reason"], actor=current_actor(),
                                 actor_roles=current_user.roles_at(site.id), now=now)
    except (Invalid, Forbidden, Conflict) as err:
        if not err.errors:
            raise
        return _checkin_panel(site, err.status, form=request.form, errors=err.errors,
                              message=err.message)
    board = _board(site)
    position = next((i for i, v in enumerate(board["queue"], 1) if v.id == visit.id), None)
    return render_template(
        "booths/_checkin_done.html", board=board, floor=True, oob=True,
        checkin=_checkin_context(
            site, done=visit, position=position,
            flags=clients.client_flags(visit.client, today=service.local_date(site, now)),
            # What to tell the client now (a published drug alert), each with its own partial.
            notices=[notice for _receiver, notice in signals.visit_notices.send(
                visit, site=site, now=now) if notice]))


# --- The queue and the booths ----------------------------------------------------------------


def _dialog(template: str, status: int = 200, **context):
    return render_template(f"booths/{template}", **context), status


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/leave")
@site_role_required(*FLOOR)
def leave_queue_dialog(site, visit_id):
    return _dialog("_leave_dialog.html", site=site, visit=service.get_visit(site, visit_id),
                   errors={})


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/leave")
@site_role_required(*FLOOR)
@idempotent
def leave_queue(site, visit_id):
    visit = service.get_visit(site, visit_id)
    try:
        data = LeaveQueueForm().load(request.form)
    except ValidationError as err:
        return _dialog("_leave_dialog.html", 422, site=site, visit=visit, errors=err.messages)
    service.leave_queue(visit, reason=data["reason"], actor=current_actor(), now=utcnow())
    return _floor_update(site)


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/booth/<int:booth_id>")
@site_role_required(*FLOOR)
@idempotent
def assign_booth(site, visit_id, booth_id):
    """The second tap: the client chosen in the queue goes to this booth."""
    visit = service.get_visit(site, visit_id)
    booth = service.get_booth(site, booth_id)
    service.assign_booth(visit, booth, actor=current_actor(), now=utcnow())
    return _floor_update(site)


def _in_booth(site, visit_id: int):
    visit = service.get_visit(site, visit_id)
    if visit.state != VisitState.IN_BOOTH:
        raise Conflict(f"{visit.client.code} is no longer in a booth.",
                       current_state=visit.state, visit_id=visit.id)
    return visit


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/more")
@site_role_required(*FLOOR)
def visit_dialog(site, visit_id):
    """More… on a booth tile: its use, leaving the booth, leaving the site.

    :raises Conflict: the client is no longer in a booth.
    """
    return _dialog("_visit_dialog.html", site=site, visit=_in_booth(site, visit_id))


def _consumption_dialog(site, visit, status: int = 200, *, form=None, errors=None):
    allowed = ROUTES_BY_BOOTH_KIND[BoothKind(visit.booth.kind)]
    return _dialog("_consumption_dialog.html", status, site=site, visit=visit,
                   routes=[r for r in ROUTES if r in allowed], errors=errors or {},
                   form=form if form is not None else {
                       "substances": [], "fentanyl_strip": "not_done",
                       "benzo_strip": "not_done"})


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/consumption")
@site_role_required(*FLOOR)
def consumption_dialog(site, visit_id):
    return _consumption_dialog(site, _in_booth(site, visit_id))


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/consumption")
@site_role_required(*FLOOR)
@idempotent
def record_consumption(site, visit_id):
    visit = service.get_visit(site, visit_id)
    entered = form_input(request.form, "substances")
    try:
        data = ConsumptionForm().load(entered)
        service.record_consumption(visit, data, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _consumption_dialog(site, _in_booth(site, visit_id), 422, form=entered,
                                   errors=err.messages)
    except Invalid as err:
        # A route this booth's kind does not allow: beside the field and in the flash.
        return _consumption_dialog(site, visit, err.status, form=entered, errors={
            **err.errors, "_flash": err.message})
    return _floor_update(site)


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/observation")
@site_role_required(*FLOOR)
@idempotent
def start_observation(site, visit_id):
    """Leaves the booth: after-care starts, the booth needs cleaning."""
    service.start_observation(service.get_visit(site, visit_id), actor=current_actor(),
                              now=utcnow())
    return _floor_update(site)


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/discharge")
@site_role_required(*FLOOR)
def discharge_dialog(site, visit_id):
    """Why a client leaves straight from the booth, or before minimum observation ends."""
    return _discharge_dialog(site, _on_the_floor(site, visit_id))


def _observation_left(visit, now) -> int | None:
    """Whole minutes of minimum observation left for a client in after-care, or None."""
    if visit.state != VisitState.OBSERVING or visit.observation_ends_at is None \
            or visit.observation_ends_at <= now:
        return None
    return max(1, round((visit.observation_ends_at - now).total_seconds() / 60))


def _discharge_dialog(site, visit, status: int = 200, errors=None):
    return _dialog("_discharge_dialog.html", status, site=site, visit=visit,
                   minutes_left=_observation_left(visit, utcnow()), errors=errors or {})


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/discharge")
@site_role_required(*FLOOR)
@idempotent
def discharge(site, visit_id):
    """Discharge; before minimum observation ends the tablet must say why (a confirmation)."""
    visit = service.get_visit(site, visit_id)
    try:
        data = DischargeForm().load(request.form)
    except ValidationError as err:
        return _discharge_dialog(site, visit, 422, err.messages)
    if data["reason"] is None and _observation_left(visit, utcnow()):
        return _discharge_dialog(site, visit, 422, {"reason": [
            "Minimum observation is not over: say why they leave now."]})
    service.discharge(visit, reason=data["reason"], actor=current_actor(), now=utcnow())
    return _floor_update(site)


@bp.post("/sites/<slug>/floor/booths/<int:booth_id>/clean")
@site_role_required(*FLOOR)
@idempotent
def mark_booth_clean(site, booth_id):
    service.mark_booth_clean(service.get_booth(site, booth_id), actor=current_actor(), now=utcnow())
    return _floor_update(site)


def _out_of_service_dialog(site, booth, status: int = 200, *, form=None, errors=None):
    return _dialog("_out_of_service_dialog.html", status, site=site, booth=booth,
                   reasons=OUT_OF_SERVICE_REASONS, form=form or {}, errors=errors or {})


@bp.get("/sites/<slug>/floor/booths/<int:booth_id>/out-of-service")
@site_role_required(*FLOOR)
def out_of_service_dialog(site, booth_id):
    return _out_of_service_dialog(site, service.get_booth(site, booth_id))


@bp.post("/sites/<slug>/floor/booths/<int:booth_id>/out-of-service")
@site_role_required(*FLOOR)
@idempotent
def set_out_of_service(site, booth_id):
    booth = service.get_booth(site, booth_id)
    try:
        data = OutOfServiceForm().load(request.form)
    except ValidationError as err:
        return _out_of_service_dialog(site, booth, 422, form=request.form, errors=err.messages)
    service.set_booth_out_of_service(booth, reason=data["reason"], actor=current_actor(),
                                     now=utcnow())
    return _floor_update(site)


@bp.post("/sites/<slug>/floor/booths/<int:booth_id>/in-service")
@site_role_required(*FLOOR)
@idempotent
def set_in_service(site, booth_id):
    service.set_booth_out_of_service(service.get_booth(site, booth_id), reason=None,
                                     actor=current_actor(), now=utcnow())
    return _floor_update(site)


# --- Checks and alarms -----------------------------------------------------------------------


def _on_the_floor(site, visit_id: int):
    visit = service.get_visit(site, visit_id)
    if visit.state not in (VisitState.IN_BOOTH, VisitState.OBSERVING):
        raise Conflict(f"{visit.client.code} is neither in a booth nor in after-care now.",
                       current_state=visit.state, visit_id=visit.id)
    return visit


def _check_dialog(site, visit, status: int = 200, *, form=None, errors=None):
    return _dialog("_check_dialog.html", status, site=site, visit=visit,
                   statuses=CHECK_STATUSES, form=form or {}, errors=errors or {})


@bp.get("/sites/<slug>/floor/visits/<int:visit_id>/check")
@site_role_required(*FLOOR)
def check_dialog(site, visit_id):
    """OK, drowsy or unresponsive, with SpO2 and breathing rate if measured."""
    return _check_dialog(site, _on_the_floor(site, visit_id))


@bp.post("/sites/<slug>/floor/visits/<int:visit_id>/check")
@site_role_required(*FLOOR)
@idempotent
def record_check(site, visit_id):
    visit = service.get_visit(site, visit_id)
    try:
        data = CheckForm().load(request.form)
    except ValidationError as err:
        return _check_dialog(site, _on_the_floor(site, visit_id), 422, form=request.form,
                             errors=err.messages)
    check = checks.record_check(visit, data, actor=current_actor(), now=utcnow())
    if check.opened_response is not None:
        # Unresponsive: straight to the overdose console, as its own start button does.
        url = url_for("overdose.console", slug=site.slug, response_id=check.opened_response.id)
        answer = make_response(render_template("overdose/_opening.html", url=url), 200)
        answer.headers["HX-Redirect"] = url
        return answer
    return _floor_update(site)


# --- The site's booths, as its admin keeps them ----------------------------------------------
#
# One partial (``_admin.html``) that the page includes, every form answers with and the board
# announcement re-fetches. A form's refusal comes back in it beside that form's fields with
# what was typed (``which`` names the form: ``new`` or ``booth-<id>``).


def _booth_admin(site, status: int = 200, *, which=None, form=None, errors=None,
                 message=None, page=False):
    context = {"site": site, "booths": admin.list_booths(site), "kinds": BOOTH_KIND_LABELS,
               "reasons": OUT_OF_SERVICE_REASONS, "which": which, "form": form or {},
               "errors": errors or {}, "message": message}
    template = "booths/admin.html" if page else "booths/_admin.html"
    return render_template(template, **context), status


@bp.get("/sites/<slug>/admin/booths")
@site_role_required(Role.ADMIN)
def booth_admin(site):
    """The site's booths: add, rename, change kind, reorder, out of service, retire."""
    return _booth_admin(site, page=True)


@bp.get("/sites/<slug>/admin/booths/list")
@site_role_required(Role.ADMIN)
def booth_admin_list(site):
    return _booth_admin(site)


def _booth_admin_action(site, which: str, act, load=None):
    """Parse the form (``load``), act on it; a refusal comes back beside the form's fields."""
    form = request.form.to_dict()
    try:
        act(load(form) if load else None)
    except ValidationError as err:
        return _booth_admin(site, 422, which=which, form=form, errors=err.messages)
    except (Invalid, Conflict) as err:
        return _booth_admin(site, err.status, which=which, form=form, errors=err.errors,
                            message=err.message)
    return _booth_admin(site)


@bp.post("/sites/<slug>/admin/booths")
@site_role_required(Role.ADMIN)
@idempotent
def add_booth(site):
    return _booth_admin_action(
        site, "new", lambda data: admin.add_booth(site, actor=current_actor(), now=utcnow(),
                                                  **data),
        lambda form: BoothForm(only=("label", "kind")).load(form))


@bp.post("/sites/<slug>/admin/booths/<int:booth_id>")
@site_role_required(Role.ADMIN)
@idempotent
def update_booth(site, booth_id):
    """Each of the row's forms sends only what it changes: label, kind, position or
    retired."""
    booth = service.get_booth(site, booth_id)
    return _booth_admin_action(
        site, f"booth-{booth.id}",
        lambda data: admin.update_booth(booth, data, actor=current_actor(), now=utcnow()),
        lambda form: BoothForm(partial=True).load(form))


@bp.post("/sites/<slug>/admin/booths/<int:booth_id>/out-of-service")
@site_role_required(Role.ADMIN)
@idempotent
def booth_admin_out_of_service(site, booth_id):
    booth = service.get_booth(site, booth_id)
    return _booth_admin_action(
        site, f"booth-{booth.id}",
        lambda data: service.set_booth_out_of_service(
            booth, reason=data["reason"], actor=current_actor(), now=utcnow()),
        lambda form: OutOfServiceForm().load(form))


@bp.post("/sites/<slug>/admin/booths/<int:booth_id>/in-service")
@site_role_required(Role.ADMIN)
@idempotent
def booth_admin_in_service(site, booth_id):
    booth = service.get_booth(site, booth_id)
    return _booth_admin_action(
        site, f"booth-{booth.id}", lambda _data: service.set_booth_out_of_service(
            booth, reason=None, actor=current_actor(), now=utcnow()))
