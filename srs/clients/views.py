"""A site's clients, for its supervisors and admins: find one by code; their page with the
flags the floor reads at check-in (a service restriction, a note), how many records the
site holds about them, and their access request (everything, as CSV or PDF).

Pages name a client by id, never by code: a path is written to the server's access log,
and a code is not to be logged (a search's code travels in the query string, which is not).
"""

from urllib.parse import urlencode

from flask import Blueprint, render_template, request
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.clients import export, service
from srs.clients.schemas import NoteForm, RestrictionForm
from srs.common import utcnow
from srs.errors import Conflict, Invalid, is_htmx
from srs.forms import form_input
from srs.security import download
from srs.sites.access import site_role_required

bp = Blueprint("clients", __name__)

CLIENT_STAFF = (Role.SUPERVISOR, Role.ADMIN)
SEARCH_LIMIT = 20


@bp.get("/sites/<slug>/clients")
@site_role_required(*CLIENT_STAFF)
def index(site):
    """Find a client by code (2 characters or more, anywhere in the code)."""
    code = request.args.get("code", "").strip()
    found = service.find_clients(site, code, actor=current_actor(), limit=SEARCH_LIMIT)
    today = site.local_date(utcnow())
    return render_template("clients/index.html", site=site, code=code, searched=bool(code),
                           found=[(c, service.client_flags(c, today=today)) for c in found])


def _page(site, client, status: int = 200, *, panel: str | None = None, form=None,
          errors=None, message=None, saved=None):
    """The client's page, or (htmx) the panel a form posted from, with what was typed and
    the messages after a refusal."""
    now = utcnow()
    today = site.local_date(now)
    flags = service.client_flags(client, today=today)
    restriction = {}
    if flags["restricted"]:  # one that ended leaves the form empty for the next
        reason, note = service.restriction_parts(client.restriction_reason)
        restriction = {"reason": reason, "note": note,
                       "until": client.restricted_until.isoformat()}
    forms = {"restriction": restriction, "note": {"flag_note": client.flag_note or ""}}
    if panel is not None and form is not None:
        forms[panel] = form.to_dict() if hasattr(form, "to_dict") else dict(form)
    context = {"site": site, "client": client, "today": today,
               "flags": flags, "forms": forms,
               "errors": {panel: errors or {}} if panel else {}, "message": message,
               "saved": saved, "reasons": service.RESTRICTION_REASONS,
               "note_length": service.RESTRICTION_NOTE_LENGTH,
               "flag_note_length": service.FLAG_NOTE_LENGTH,
               "latest": service.latest_restriction_day(today),
               "audit_url": f"/sites/{site.slug}/audit?{urlencode({'client': client.code})}"}
    if panel is not None and is_htmx():
        return render_template("clients/_flags.html", **context), status
    context["summary"] = service.client_summary(client)
    return render_template("clients/show.html", **context), status


@bp.get("/sites/<slug>/clients/<int:client_id>")
@site_role_required(*CLIENT_STAFF)
def show(site, client_id):
    """The client's page; opening it is in the audit trail."""
    return _page(site, service.open_client(site, client_id, actor=current_actor(),
                                           now=utcnow()))


@bp.post("/sites/<slug>/clients/<int:client_id>/restriction")
@site_role_required(*CLIENT_STAFF)
def restrict(site, client_id):
    """Set or replace the client's service restriction."""
    client = service.get_client(site, client_id)
    try:
        data = RestrictionForm().load(form_input(request.form))
        service.update_flags(site, client, {"restriction": data}, actor=current_actor(),
                             now=utcnow())
    except ValidationError as err:
        return _page(site, client, 422, panel="restriction", form=request.form,
                     errors=err.messages, message="The restriction was not set: see the fields.")
    except Invalid as err:
        return _page(site, client, err.status, panel="restriction", form=request.form,
                     errors=err.errors, message=err.message)
    return _page(site, client, panel="restriction", saved="Restriction saved.")


@bp.post("/sites/<slug>/clients/<int:client_id>/restriction/lift")
@site_role_required(*CLIENT_STAFF)
def lift(site, client_id):
    """Lift the client's restriction now."""
    client = service.get_client(site, client_id)
    try:
        service.lift_restriction(site, client, actor=current_actor(), now=utcnow())
    except Conflict as err:
        return _page(site, client, err.status, panel="restriction", message=err.message)
    return _page(site, client, panel="restriction", saved="Restriction lifted.")


@bp.post("/sites/<slug>/clients/<int:client_id>/note")
@site_role_required(*CLIENT_STAFF)
def note(site, client_id):
    """Set or clear the note the floor reads at check-in."""
    client = service.get_client(site, client_id)
    try:
        data = NoteForm().load(form_input(request.form))
        service.update_flags(site, client, data, actor=current_actor(), now=utcnow())
    except ValidationError as err:
        return _page(site, client, 422, panel="note", form=request.form, errors=err.messages,
                     message="The note was not saved: see the field.")
    except Invalid as err:
        return _page(site, client, err.status, panel="note", form=request.form,
                     errors=err.errors, message=err.message)
    return _page(site, client, panel="note",
                 saved="Note saved." if client.flag_note else "Note cleared.")


def _export(site, client_id: int, fmt: str):
    client = service.get_client(site, client_id)
    content, found = export.export_record(site, client, fmt, actor=current_actor(),
                                          now=utcnow())
    mimetype = "text/csv" if fmt == "csv" else "application/pdf"
    return download(content, mimetype=mimetype, filename=f"{found.filename_stem}.{fmt}")


@bp.get("/sites/<slug>/clients/<int:client_id>/record.csv")
@site_role_required(*CLIENT_STAFF)
def record_csv(site, client_id):
    """The client's access request as one CSV: everything the site holds about them and
    who has looked at it. The export is in the audit trail."""
    return _export(site, client_id, "csv")


@bp.get("/sites/<slug>/clients/<int:client_id>/record.pdf")
@site_role_required(*CLIENT_STAFF)
def record_pdf(site, client_id):
    """The client's access request as a PDF. The export is in the audit trail."""
    return _export(site, client_id, "pdf")
