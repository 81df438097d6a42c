"""A club's batches page (receive, link a drug check, clear a block, print a label) and a
member's supply page (their allowance and the supply form).

Every form posts one action with its own idempotency key and answers with the page's
partial, which the ``club`` announcement re-fetches. A refusal comes back in the partial,
its message beside the form's fields and everything typed kept.
"""

from flask import Blueprint, render_template, request
from flask_login import current_user
from marshmallow import ValidationError

from srs.auth.access import current_actor
from srs.auth.models import Role
from srs.common import utcnow
from srs.compassion import members
from srs.compassion import supply as service
from srs.compassion.supply_schemas import BatchForm, CheckForm, ClearForm, SupplyForm
from srs.controlled.models import REGISTER_KEEPERS
from srs.drugchecks.service import list_checks
from srs.errors import Conflict, Forbidden, Invalid
from srs.extensions import db
from srs.idempotency import idempotent
from srs.security import download
from srs.sites.access import site_role_required

bp = Blueprint("club_supply", __name__)
CLEARERS = (Role.SUPERVISOR, Role.ADMIN)


@bp.app_template_filter("grams")
def grams_filter(mg: int | None) -> str:
    return "" if mg is None else service.grams(mg)


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _batches_context(site, **extra) -> dict:
    batches = service.list_batches(site)
    return {"site": site, "batches": batches,
            "balances": {b.id: service.batch_balance(b) for b in batches},
            "checks": list_checks(site, limit=30), "form": {}, "errors": {}, "message": None,
            "clearer": current_user.has_role(site.id, *CLEARERS), "money": _money, **extra}


def _batches(site, status: int = 200, **extra):
    return render_template("compassion/_batches.html", **_batches_context(site, **extra)), status


def _act(site, schema, act, *, which: str, render):
    form = request.form.to_dict()
    form.pop("csrf_token", None)
    try:
        act(schema().load(request.form.to_dict()))
    except ValidationError as err:
        return render(site, 422, form=form, errors={which: err.messages})
    except (Invalid, Conflict, Forbidden) as err:
        db.session.rollback()
        return render(site, err.status, form=form, errors={which: err.errors or {}},
                      message=err.message)
    return render(site)


@bp.get("/sites/<slug>/club/batches")
@site_role_required(*REGISTER_KEEPERS)
def batches_page(site):
    return render_template("compassion/batches.html", **_batches_context(site))


@bp.get("/sites/<slug>/club/batches/list")
@site_role_required(*REGISTER_KEEPERS)
def batches_list(site):
    return _batches(site)


@bp.post("/sites/<slug>/club/batches")
@site_role_required(*REGISTER_KEEPERS)
@idempotent
def receive_batch(site):
    return _act(site, BatchForm, lambda data: service.receive_batch(
        site, data, actor=current_actor(), now=utcnow()), which="receive", render=_batches)


@bp.post("/sites/<slug>/club/batches/<int:batch_id>/check")
@site_role_required(*REGISTER_KEEPERS)
@idempotent
def link_check(site, batch_id):
    return _act(site, CheckForm, lambda data: service.link_check(
        site, batch_id, data["drug_check_id"], actor=current_actor(), now=utcnow()),
        which=f"check-{batch_id}", render=_batches)


@bp.post("/sites/<slug>/club/batches/<int:batch_id>/clear")
@site_role_required(*CLEARERS)
@idempotent
def clear_batch(site, batch_id):
    return _act(site, ClearForm, lambda data: service.clear_block(
        site, batch_id, reason=data["reason"], actor=current_actor(), now=utcnow()),
        which=f"clear-{batch_id}", render=_batches)


@bp.get("/sites/<slug>/club/batches/<int:batch_id>/label.pdf")
@site_role_required(*REGISTER_KEEPERS)
def batch_label(site, batch_id):
    batch = service.get_batch(site, batch_id)
    return download(service.label_pdf(batch, site, now=utcnow()), mimetype="application/pdf",
                    filename=f"label-{batch.lot}.pdf")


# --- A member's supply -----------------------------------------------------------------------


def _supply_context(site, member, **extra) -> dict:
    now = utcnow()
    return {"site": site, "member": member, "now": now,
            "allowance": service.allowance(site, member, now=now),
            "batches": service.supplyable_batches(site),
            "supplies": service.recent_supplies(member), "form": {}, "errors": {},
            "message": None, "refusal": None, "money": _money,
            "take_home": site.compassion_take_home_allowed and member.take_home_allowed,
            **extra}


def _supply_panel(site, member_id, status: int = 200, *, answer: bool = False, **extra):
    """The supply panel (a refresh), or with ``answer`` the panel and the tap's notice."""
    member = service.get_member(site, member_id)
    template = "compassion/_supply_area.html" if answer else "compassion/_supply.html"
    return render_template(template, **_supply_context(site, member, **extra)), status


@bp.get("/sites/<slug>/club/members/<int:member_id>/supply")
@site_role_required(*REGISTER_KEEPERS)
def supply_page(site, member_id):
    """The supply form, and (at every supply: the issue's linkage condition) the referral
    engine's suggestions for the member with their reasons, and a linkage conversation due."""
    member = service.get_member(site, member_id)
    now = utcnow()
    context = {**_supply_context(site, member),
               "suggestions": members.suggestions(site, member, actor=current_actor(), now=now),
               "open_visit": members.open_visit(site, member),
               "linkage_due": members.linkage_due(site, member, now=now)}
    return render_template("compassion/supply.html", **context)


@bp.get("/sites/<slug>/club/members/<int:member_id>/supply/panel")
@site_role_required(*REGISTER_KEEPERS)
def supply_panel(site, member_id):
    return _supply_panel(site, member_id)


@bp.post("/sites/<slug>/club/members/<int:member_id>/supply")
@site_role_required(*REGISTER_KEEPERS)
@idempotent
def record_supply(site, member_id):
    form = request.form.to_dict()
    form.pop("csrf_token", None)
    try:
        data = SupplyForm().load(request.form.to_dict())
        supply = service.record_supply(site, member_id, data, actor=current_actor(),
                                       actor_roles=current_user.roles_at(site.id), now=utcnow())
    except ValidationError as err:
        return _supply_panel(site, member_id, 422, form=form, errors=err.messages, answer=True)
    except service.LimitReached as err:
        return _supply_panel(site, member_id, 409, form=form, errors=err.errors,
                             message=err.message, refusal=err, answer=True)
    except (Invalid, Conflict, Forbidden) as err:
        db.session.rollback()
        return _supply_panel(site, member_id, err.status, form=form, errors=err.errors or {},
                             message=err.message, answer=True)
    return _supply_panel(site, member_id, done=supply, answer=True)


@bp.get("/sites/<slug>/club/supplies/<int:supply_id>/label.pdf")
@site_role_required(*REGISTER_KEEPERS)
def supply_label(site, supply_id):
    pdf = service.print_supply_label(site, supply_id, actor=current_actor(), now=utcnow())
    return download(pdf, mimetype="application/pdf", filename=f"label-supply-{supply_id}.pdf")
