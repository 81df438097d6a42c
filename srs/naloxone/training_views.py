"""Naloxone training pages: the form a trainer fills after a session, the month's sessions,
and the refreshers coming due (a site's, and the organisation's for an organisation admin).

The form's people trained are rows, each added by tapping a kind: the row comes from
:func:`trainee_row` with a token of its own that prefixes its inputs (``t-<token>-kind``),
so a refusal puts every row back as typed with its messages beside it. A client's row takes
a code with the check-in's autocomplete; a tap on a known code re-renders the row with it.
"""

import re
import secrets
from datetime import date, datetime, timedelta

from flask import Blueprint, abort, render_template, request

from srs.auth.access import current_actor, org_admin_required
from srs.auth.models import Role
from srs.clients.service import find_clients
from srs.common import utcnow
from srs.errors import Invalid
from srs.extensions import db
from srs.idempotency import idempotent
from srs.naloxone import training
from srs.naloxone.models import NAMED_KINDS, TRAINEE_KINDS, TRAINING_FORMATS
from srs.security import download
from srs.sites.access import site_role_required
from srs.sites.models import Site
from srs.templating import template_globals

bp = Blueprint("training", __name__)

TRAINERS = (Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
REFRESHERS = (Role.SUPERVISOR, Role.ADMIN)
ROW_FIELDS = ("mode", "kind", "client_code", "organisation", "named_consent", "first_name",
              "last_name", "badge_number", "at_risk_consented", "post_test_score",
              "kit_serial")
_ROW_KEY = re.compile(r"^t-([a-z0-9]{1,16})-mode$")
_TOKEN = re.compile(r"^[a-z0-9]{1,16}$")


@template_globals(bp)
def training_vocabulary():
    return {"TRAINEE_KINDS": TRAINEE_KINDS, "TRAINING_FORMATS": TRAINING_FORMATS,
            "NAMED_KINDS": NAMED_KINDS, "CLIENT_KINDS": training.CLIENT_KINDS}


def _new_row(kind: str, mode: str) -> dict:
    return {"token": secrets.token_hex(4), "mode": mode, "kind": kind}


def _rows_from(values, *, limit: int = training.MAX_TRAINEES + 1) -> list[dict]:
    """The form's rows in the order they stand on the page, each as typed."""
    rows = []
    for key in values:
        match = _ROW_KEY.match(key)
        if match and len(rows) < limit:
            token = match.group(1)
            rows.append({"token": token, **{name: values.get(f"t-{token}-{name}", "")
                                            for name in ROW_FIELDS}})
    return rows


def _trainee_data(row: dict) -> dict:
    """A row as the service reads a trainee."""
    score = row["post_test_score"].strip()
    consent = row["at_risk_consented"]
    # The name fields hide when consent is untaken: what they still hold is not sent.
    named = bool(row["named_consent"]) and row["kind"] in NAMED_KINDS
    return {"kind": row["kind"],
            "client_code": row["client_code"] if row["mode"] == "client" else None,
            "organisation": row["organisation"] if row["mode"] != "client" else None,
            "named_consent": named,
            **{name: row[name] if named else None for name in training.NAME_FIELDS},
            "at_risk_consented": {"yes": True, "no": False}.get(consent),
            "post_test_score": int(score) if re.fullmatch(r"[0-9]{1,3}", score) else score,
            "kit_serial": row["kit_serial"]}


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _form_page(site: Site, *, template: str, status: int = 200, form=None, rows=None,
               errors=None, message=None, recorded=None):
    today = site.local_date(utcnow())
    form = form or {"held_on": today.isoformat(), "format": "standard",
                    "trainer_id": str(current_actor().staff_id or "")}
    return render_template(
        template, site=site, form=form, rows=rows or [], errors=errors or {},
        row_errors=(errors or {}).get("rows", {}), message=message, recorded=recorded,
        trainers=training.site_trainers(site), today=today), status


@bp.get("/sites/<slug>/naloxone/training")
@site_role_required(*TRAINERS)
def form_page(site):
    return _form_page(site, template="naloxone/training.html")


@bp.post("/sites/<slug>/naloxone/training")
@site_role_required(*TRAINERS)
@idempotent
def record(site):
    """Record the session; a refusal (422) gives the form back as typed, messages beside
    the fields and rows they concern."""
    form = request.form.to_dict()
    rows = _rows_from(request.form)
    # The form names whoever fills it as the trainer unless another is chosen.
    trainer = form.get("trainer_id", str(current_actor().staff_id or ""))
    data = {"held_on": _date(form.get("held_on", "")), "place": form.get("place"),
            "trainer_id": int(trainer) if trainer.isdigit() else None,
            "curriculum": form.get("curriculum"),
            "curriculum_version": form.get("curriculum_version"), "format": form.get("format"),
            "trainees": [_trainee_data(row) for row in rows]}
    try:
        session = training.record_session(site, data, actor=current_actor(), now=utcnow())
    except Invalid as err:
        errors = dict(err.errors)
        by_row = errors.pop("trainees", None)
        if isinstance(by_row, dict):
            errors["rows"] = {rows[i]["token"]: messages for i, messages in by_row.items()}
        elif by_row:
            errors["trainees"] = by_row
        return _form_page(site, template="naloxone/_training_form.html", status=422,
                          form=form, rows=rows, errors=errors, message=err.message)
    return _form_page(site, template="naloxone/_training_form.html", recorded=session)


@bp.get("/sites/<slug>/naloxone/training/row")
@site_role_required(*TRAINERS)
def trainee_row(site):
    """A new row for ``kind`` (``mode=client``: a client by code); with ``row``, that row
    again as its inputs hold it (``code`` puts a known code in)."""
    kind, mode = request.args.get("kind", ""), request.args.get("mode", "outside")
    if kind not in TRAINEE_KINDS or mode not in ("client", "outside"):
        abort(404)
    token = request.args.get("row", "")
    if _TOKEN.match(token):
        row = next(iter(_rows_from(request.args)), None) or {
            "token": token, **dict.fromkeys(ROW_FIELDS, ""), "mode": mode, "kind": kind}
        if request.args.get("code"):
            row["client_code"] = request.args["code"]
    else:
        row = _new_row(kind, mode)
    return render_template("naloxone/_trainee_row.html", site=site, row=row, errors={})


@bp.get("/sites/<slug>/naloxone/training/codes")
@site_role_required(*TRAINERS)
def code_suggestions(site):
    """Known codes holding what a client row's code field holds (2 characters on)."""
    token = request.args.get("row", "")
    if not _TOKEN.match(token):
        return ""
    typed = request.args.get(f"t-{token}-client_code", "")
    found = find_clients(site, typed, actor=current_actor())
    row = {"token": token, "kind": request.args.get(f"t-{token}-kind", "person_at_risk")}
    return render_template("naloxone/_training_codes.html", site=site, row=row,
                           suggestions=found)


@bp.get("/sites/<slug>/naloxone/training/sessions")
@site_role_required(*TRAINERS)
def sessions(site):
    """The sessions of a month (``?month=YYYY-MM``, this month by default)."""
    today = site.local_date(utcnow())
    try:
        month = datetime.strptime(request.args.get("month", ""), "%Y-%m").date()
    except ValueError:
        month = None
    if month is None or not 2000 <= month.year <= 2100:  # 9999-12 has no month after it
        month = today.replace(day=1)
    first, after = training.month_days(month)
    previous = (first - timedelta(days=1)).replace(day=1)
    return render_template("naloxone/training_sessions.html", site=site, month=first,
                           previous=previous, following=after if after <= today else None,
                           sessions=training.list_sessions(site, first,
                                                           actor=current_actor(),
                                                           now=utcnow()),
                           trained=training.trained_by_kind(site, first, after))


@bp.get("/sites/<slug>/naloxone/refreshers")
@site_role_required(*REFRESHERS)
def refreshers(site):
    return render_template("naloxone/refreshers.html", site=site, sites=[site],
                           due=training.refreshers_due([site], now=utcnow()),
                           today=site.local_date(utcnow()))


@bp.get("/sites/<slug>/naloxone/refreshers.csv")
@site_role_required(*REFRESHERS)
def refreshers_csv(site):
    """Every consenting police and staff trainee with their due date, for a training
    officer (``?organisation=`` for one service). Audited."""
    now = utcnow()
    content = training.refreshers_csv(site, actor=current_actor(), now=now,
                                      organisation=request.args.get("organisation"))
    return download(content, mimetype="text/csv",
                    filename=f"refreshers-{site.slug}-{site.local_date(now):%Y-%m-%d}.csv")


@bp.get("/org/naloxone/refreshers")
@org_admin_required
def org_refreshers():
    """Refreshers due at every site, for an organisation admin."""
    sites = list(db.session.execute(db.select(Site).order_by(Site.name, Site.id)).scalars())
    return render_template("naloxone/refreshers.html", site=None, sites=sites,
                           due=training.refreshers_due(sites, now=utcnow()), today=None)
