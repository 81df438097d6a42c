"""The naloxone stock page (findings to see to, lots and their ledger, receiving stock,
take-home kits), the kit register (kits by serial: adding, issuing, reporting use) and a
lot's recall page.

Every form posts one action with its own idempotency key and answers with the stock
partial, which the page includes and the ``stock`` announcement re-fetches. A refusal comes
back in the partial, its messages beside the form's fields.
"""

from flask import Blueprint, render_template, request
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.common import utcnow
from srs.errors import Conflict, Invalid
from srs.idempotency import idempotent
from srs.naloxone import kits, service
from srs.naloxone.models import (
    FORMS,
    KIT_CONTENTS,
    KIT_FORMS,
    KIT_STATES,
    MOVEMENTS,
    REPLACEMENT_REASONS,
    USE_OUTCOMES,
    USE_ROUTES,
)
from srs.naloxone.schemas import (
    AddKitsForm,
    IssueKitForm,
    KitForm,
    KitUseForm,
    MovementForm,
    RecallForm,
    ReceiveForm,
)
from srs.sites.access import site_role_required
from srs.templating import template_globals

bp = Blueprint("naloxone", __name__)

STOCK = (Role.SUPERVISOR, Role.ADMIN)
# Nurses give kits out on the floor and hear how they were used.
KITS = (Role.NURSE, Role.SUPERVISOR, Role.ADMIN)


@template_globals(bp)
def naloxone_vocabulary():
    return {"NALOXONE_FORMS": FORMS, "KIT_FORMS": KIT_FORMS, "MOVEMENTS": MOVEMENTS,
            "KIT_CONTENTS": KIT_CONTENTS, "KIT_STATES": KIT_STATES,
            "REPLACEMENT_REASONS": REPLACEMENT_REASONS, "USE_ROUTES": USE_ROUTES,
            "USE_OUTCOMES": USE_OUTCOMES}


def _stock(site, status: int = 200, **extra):
    context = {"stock": service.list_stock(site, now=utcnow()), "site": site, "form": {},
               "errors": {}, "message": None, **extra}
    return render_template("naloxone/_stock.html", **context), status


@bp.get("/sites/<slug>/naloxone")
@site_role_required(*STOCK)
def stock_page(site):
    return render_template("naloxone/stock.html", site=site,
                           stock=service.list_stock(site, now=utcnow()), form={}, errors={},
                           message=None)


@bp.get("/sites/<slug>/naloxone/stock")
@site_role_required(*STOCK)
def stock(site):
    return _stock(site)


def _stock_action(site, schema, act, *, which: str):
    form = request.form.to_dict()
    try:
        act(schema().load(form))
    except ValidationError as err:
        return _stock(site, 422, form=form, errors={which: err.messages}, message=None)
    except Invalid as err:
        return _stock(site, 422, form=form, errors={which: err.errors}, message=err.message)
    return _stock(site)


@bp.post("/sites/<slug>/naloxone/receive")
@site_role_required(*STOCK)
@idempotent
def receive(site):
    return _stock_action(site, ReceiveForm, lambda data: service.receive_stock(
        site, data, actor=current_actor(), now=utcnow()), which="receive")


@bp.post("/sites/<slug>/naloxone/lots/<int:lot_id>/movements")
@site_role_required(*STOCK)
@idempotent
def record_movement(site, lot_id):
    lot = service.get_lot(site, lot_id)
    return _stock_action(site, MovementForm, lambda data: service.record_movement(
        lot, kind=data["kind"], quantity=data["quantity"], reason=data["reason"],
        actor=current_actor(), now=utcnow()), which=f"lot-{lot.id}")


@bp.post("/sites/<slug>/naloxone/kits")
@site_role_required(*STOCK)
@idempotent
def record_kit(site):
    return _stock_action(site, KitForm, lambda data: service.record_take_home_kit(
        site, data, actor=current_actor(), now=utcnow()), which="kit")


@bp.post("/sites/<slug>/naloxone/findings/<int:finding_id>/resolve")
@site_role_required(*STOCK)
@idempotent
def resolve_finding(site, finding_id):
    service.resolve_finding(site, finding_id, actor=current_actor(), now=utcnow())
    return _stock(site)


# --- The kit register -----------------------------------------------------------------------


def _register(site, status: int = 200, **extra):
    context = {"reg": kits.register(site, now=utcnow()), "site": site, "form": {},
               "errors": {}, "message": None, "which": None, "done": None, **extra}
    return render_template("naloxone/_kits.html", **context), status


@bp.get("/sites/<slug>/naloxone/kits")
@site_role_required(*KITS)
def kit_register(site):
    return render_template("naloxone/kits.html", reg=kits.register(site, now=utcnow()),
                           site=site, form={}, errors={}, message=None, which=None, done=None)


@bp.get("/sites/<slug>/naloxone/kits/register")
@site_role_required(*KITS)
def kit_register_part(site):
    return _register(site)


def _kit_action(site, schema, act, *, which: str, done: str):
    form = request.form.to_dict()
    try:
        act(schema().load(form))
    except ValidationError as err:
        return _register(site, 422, form=form, which=which, errors=err.messages)
    except Invalid as err:
        return _register(site, 422, form=form, which=which, errors=err.errors,
                         message=err.message)
    except Conflict as err:
        return _register(site, 409, form=form, which=which, errors=err.errors or {},
                         message=err.message)
    return _register(site, done=done)


@bp.post("/sites/<slug>/naloxone/kits/add")
@site_role_required(*STOCK)
@idempotent
def add_kits(site):
    return _kit_action(site, AddKitsForm, lambda data: kits.add_kits(
        site, data, actor=current_actor(), now=utcnow()), which="add", done="Kits added.")


@bp.post("/sites/<slug>/naloxone/kits/issue")
@site_role_required(*KITS)
@idempotent
def issue_kit(site):
    return _kit_action(site, IssueKitForm, lambda data: service.issue_kit(
        site, data, actor=current_actor(), now=utcnow()), which="issue", done="Kit given.")


@bp.post("/sites/<slug>/naloxone/kits/use")
@site_role_required(*KITS)
@idempotent
def report_kit_use(site):
    def act(data):
        kit = kits.kit_by_serial(site, request.form.get("serial"))
        kits.report_use(site, kit.id, data, actor=current_actor(), now=utcnow())

    return _kit_action(site, KitUseForm, act, which="use", done="Kit use recorded.")


# --- A lot's recall -------------------------------------------------------------------------


def _recall(site, lot_id: int, status: int = 200, **extra):
    context = {"view": kits.recall_view(site, lot_id, now=utcnow()), "site": site,
               "form": {}, "errors": {}, "message": None, **extra}
    return render_template("naloxone/_recall.html", **context), status


@bp.get("/sites/<slug>/naloxone/lots/<int:lot_id>/recall")
@site_role_required(*STOCK)
def recall_page(site, lot_id):
    return render_template("naloxone/recall.html", site=site, form={}, errors={},
                           message=None, view=kits.recall_view(site, lot_id, now=utcnow()))


@bp.post("/sites/<slug>/naloxone/lots/<int:lot_id>/recall")
@site_role_required(*STOCK)
@idempotent
def recall_lot(site, lot_id):
    form = request.form.to_dict()
    try:
        data = RecallForm().load(form)
        kits.recall_lot(site, lot_id, reason=data["reason"], actor=current_actor(),
                        now=utcnow())
    except ValidationError as err:
        return _recall(site, lot_id, 422, form=form, errors=err.messages)
    except Invalid as err:
        return _recall(site, lot_id, 422, form=form, errors=err.errors, message=err.message)
    except Conflict as err:
        return _recall(site, lot_id, 409, form=form, message=err.message)
    return _recall(site, lot_id)
