"""The controlled-drug register page: each line with its balance and latest movements,
losses still to report, and the forms to open a line, receive, waste (with a witness's PIN)
and count (two people's PINs); the register's export for a period, CSV and PDF.

Every form posts one action with its own idempotency key and answers with the register
partial, which the page includes and the ``controlled`` announcement re-fetches. A refusal
comes back in the partial, its messages beside the form's fields and what was typed kept
(never a PIN).
"""

from datetime import timedelta

from flask import Blueprint, render_template, request
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.common import utcnow
from srs.controlled import service
from srs.controlled.models import ENTRY_KINDS, REGISTER_KEEPERS, REGISTER_MANAGERS, UNITS
from srs.controlled.schemas import (
    CountForm,
    DrugForm,
    LossForm,
    PeriodForm,
    ReceiveForm,
    ReturnForm,
    WasteForm,
)
from srs.errors import Conflict, Invalid
from srs.idempotency import idempotent
from srs.security import download
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("controlled", __name__)
PINS = ("witness_pin", "first_pin", "second_pin")


@template_globals(bp)
def controlled_vocabulary():
    return {"CONTROLLED_UNITS": UNITS, "CONTROLLED_KINDS": ENTRY_KINDS}


def _context(site, **extra) -> dict:
    today = site.local_date(utcnow())
    return {"register": service.register(site, now=utcnow()), "site": site,
            "staff": service.staff_with_pins(site), "form": {}, "errors": {}, "message": None,
            "period": {"start": (today.replace(day=1)).isoformat(), "end": today.isoformat()},
            "manager": current_user.has_role(site.id, *REGISTER_MANAGERS), **extra}


def _register(site, status: int = 200, **extra):
    return render_template("controlled/_register.html", **_context(site, **extra)), status


@bp.get("/sites/<slug>/controlled")
@site_role_required(*REGISTER_KEEPERS)
def register_page(site):
    return render_template("controlled/register.html", **_context(site))


@bp.get("/sites/<slug>/controlled/register")
@site_role_required(*REGISTER_KEEPERS)
def register(site):
    return _register(site)


def _action(site, schema, act, *, which: str):
    form = {k: v for k, v in request.form.to_dict().items() if k not in PINS}
    try:
        act(schema().load(request.form.to_dict()))
    except ValidationError as err:
        return _register(site, 422, form=form, errors={which: err.messages})
    except Invalid as err:
        return _register(site, 422, form=form, errors={which: err.errors},
                         message=err.message)
    except Conflict as err:
        return _register(site, 409, form=form, errors={which: err.errors or {}},
                         message=err.message)
    return _register(site)


@bp.post("/sites/<slug>/controlled/drugs")
@site_role_required(*REGISTER_MANAGERS)
@idempotent
def create_drug(site):
    return _action(site, DrugForm, lambda data: service.create_drug(
        site, data, actor=current_actor(), now=utcnow()), which="drug")


@bp.post("/sites/<slug>/controlled/receive")
@site_role_required(*REGISTER_KEEPERS)
@idempotent
def receive(site):
    return _action(site, ReceiveForm, lambda data: service.receive(
        site, data, actor=current_actor(), now=utcnow()), which="receive")


@bp.post("/sites/<slug>/controlled/waste")
@site_role_required(*REGISTER_KEEPERS)
@idempotent
def waste(site):
    return _action(site, WasteForm, lambda data: service.record_waste(
        site, data, actor=current_actor(), now=utcnow()), which="waste")


@bp.post("/sites/<slug>/controlled/return")
@site_role_required(*REGISTER_KEEPERS)
@idempotent
def return_stock(site):
    return _action(site, ReturnForm, lambda data: service.record_return(
        site, data, actor=current_actor(), now=utcnow()), which="return")


@bp.post("/sites/<slug>/controlled/count")
@site_role_required(*REGISTER_KEEPERS)
@idempotent
def count(site):
    return _action(site, CountForm, lambda data: service.record_count(
        site, data, actor=current_actor(), now=utcnow()), which="count")


@bp.post("/sites/<slug>/controlled/counts/<int:count_id>/reported")
@site_role_required(*REGISTER_MANAGERS)
@idempotent
def loss_reported(site, count_id):
    return _action(site, LossForm, lambda data: service.mark_loss_reported(
        site, count_id, data, actor=current_actor(), now=utcnow()), which=f"loss-{count_id}")


def _period(site):
    try:
        data = PeriodForm().load(request.args.to_dict())
    except ValidationError as err:
        raise Invalid("Give the period's first and last day.", err.messages) from err
    today = site.local_date(utcnow())
    data.setdefault("start", today.replace(day=1))  # no period given: this month so far
    data.setdefault("end", today)
    if data["end"] < data["start"]:
        raise Invalid("The period ends before it starts.", {"end": ["After the start."]})
    if data["end"] - data["start"] > timedelta(days=3 * 366):
        raise Invalid("At most three years at a time.", {"start": ["A shorter period."]})
    return data["start"], data["end"]


@bp.get("/sites/<slug>/controlled/register.csv")
@site_role_required(*REGISTER_MANAGERS)
def export_csv(site):
    start, end = _period(site)
    content = service.register_csv(site, start=start, end=end, actor=current_actor(),
                                   now=utcnow())
    return download(content, mimetype="text/csv",
                    filename=f"controlled-register-{site.slug}-{start}-{end}.csv")


@bp.get("/sites/<slug>/controlled/register.pdf")
@site_role_required(*REGISTER_MANAGERS)
def export_pdf(site):
    start, end = _period(site)
    now = utcnow()
    actor = current_actor()
    lines = service.period_entries(site, start=start, end=end, actor=actor, now=now)
    html = render_template("controlled/register_pdf.html", site=site, start=start, end=end,
                           lines=lines, printed_at=now)
    pdf = service.register_pdf(site, html, start=start, end=end, actor=actor, now=now,
                               names=service.names_shown(lines))
    return download(pdf, mimetype="application/pdf",
                    filename=f"controlled-register-{site.slug}-{start}-{end}.pdf")
