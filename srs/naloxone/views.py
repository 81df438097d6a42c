"""The naloxone stock page: findings to see to, lots and their ledger, receiving stock,
take-home kits.

Every form posts one action with its own idempotency key and answers with the stock
partial, which the page includes and the ``stock`` announcement re-fetches. A refusal comes
back in the partial, its messages beside the form's fields.
"""

from flask import Blueprint, render_template, request
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.common import utcnow
from srs.errors import Invalid
from srs.idempotency import idempotent
from srs.naloxone import service
from srs.naloxone.models import FORMS, KIT_FORMS, MOVEMENTS
from srs.naloxone.schemas import KitForm, MovementForm, ReceiveForm
from srs.sites.access import site_role_required

bp = Blueprint("naloxone", __name__)

STOCK = (Role.SUPERVISOR, Role.ADMIN)


@bp.app_context_processor
def naloxone_vocabulary():
    return {"NALOXONE_FORMS": FORMS, "KIT_FORMS": KIT_FORMS, "MOVEMENTS": MOVEMENTS}


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
