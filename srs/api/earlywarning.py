"""The early warning's reach: an alert's poster, anonymous reports (public), and the SMS
gateway's outbox and inbound texts (the gateway's own token).

The gateway pulls: ``listOutboxMessages`` hands over the queued texts with their numbers,
``markOutboxMessagesSent`` marks those it sent. Each inbound text goes to
``receiveTextMessage``, whose answer's ``reply`` the gateway may text back.
"""

from flask import g
from flask_smorest import Blueprint

from srs.api.access import (
    IDEMPOTENCY,
    SECURITY,
    gateway_token_required,
    public_operation,
    token_required,
)
from srs.auth.models import Role
from srs.common import utcnow
from srs.drugchecks import inbound, outbox, service
from srs.drugchecks.outbox_schemas import (
    DrugReportInputSchema,
    InboundReplySchema,
    InboundTextSchema,
    MarkedSchema,
    MarkSentSchema,
    OutboxMessageSchema,
    ReportReceivedSchema,
)
from srs.drugchecks.pages import ALERTERS, report_rate_limit
from srs.drugchecks.poster import poster_pdf
from srs.errors import Invalid, NotFound
from srs.idempotency import idempotent
from srs.security import download
from srs.sites.service import get_site

blp = Blueprint("api_earlywarning", __name__, url_prefix="/api/v1",
                description="Drug alerts' posters, anonymous reports and the SMS gateway")
PDF = {200: {"description": "The poster: one A4 page, large type, no client data.",
             "content": {"application/pdf": {"schema": {"type": "string",
                                                        "format": "binary"}}}}}


@blp.get("/sites/<int:site_id>/drug-alerts/<int:drug_alert_id>/poster")
@blp.doc(operationId="getDrugAlertPoster", security=SECURITY, responses=PDF)
@token_required(*Role)
def get_drug_alert_poster(site_id, drug_alert_id):
    """A published (or ended) alert's printable poster as PDF; a draft's, as a preview,
    for supervisors and admins only (404 for anyone else)."""
    site = get_site(site_id)
    alert = service.get_alert(site, drug_alert_id)
    if alert.status in ("draft", "validated") and not (
            g.api_staff.roles_at(site.id) & set(ALERTERS)):
        raise NotFound(f"Site {site.slug} has no drug alert with id {drug_alert_id}.")
    return download(poster_pdf(alert, site), mimetype="application/pdf",
                    filename=f"drug-alert-{alert.id}.pdf")


@blp.post("/drug-reports")
@blp.doc(operationId="submitDrugReport", security=[])
@report_rate_limit
@public_operation
@blp.arguments(DrugReportInputSchema)
@blp.response(201, ReportReceivedSchema)
def submit_drug_report(data):
    """Report a bad batch anonymously: it becomes a "reported" draft alert for the named
    site's staff. Nothing about the reporter is asked or kept. Limited per address."""
    site = inbound.site_named(data.pop("site"))
    if site is None:
        raise Invalid("No such site.", {"site": ["No site has this slug or name."]})
    inbound.submit_report(site, data, via="api", now=utcnow())
    return {"received": True}


submit_drug_report.srs_rate_limited = True


@blp.get("/sms/outbox")
@blp.doc(operationId="listOutboxMessages", security=SECURITY)
@gateway_token_required
@blp.response(200, OutboxMessageSchema(many=True))
def list_outbox_messages():
    """The queued texts, oldest first (at most 100), each with its number: send them,
    then mark them sent. A text stays queued until marked."""
    return outbox.queued_messages()


@blp.post("/sms/outbox/sent")
@blp.doc(operationId="markOutboxMessagesSent", security=SECURITY, **IDEMPOTENCY)
@gateway_token_required
@idempotent
@blp.arguments(MarkSentSchema)
@blp.response(200, MarkedSchema)
def mark_outbox_messages_sent(data):
    """Mark texts sent by their ids; ids not queued (sent, cancelled, unknown) are left."""
    return {"marked": outbox.mark_sent(data["ids"], now=utcnow())}


@blp.post("/sms/inbound")
@blp.doc(operationId="receiveTextMessage", security=SECURITY)
@gateway_token_required
@blp.arguments(InboundTextSchema)
@blp.response(200, InboundReplySchema)
def receive_text_message(data):
    """A text someone sent to the service's number: JOIN (every site) or JOIN and a site's
    name, STOP (no further texts; queued ones cancelled), OD and what happened (an
    anonymous report). Anything else answers with help."""
    return {"reply": inbound.receive_text(data["sender"], data["text"], now=utcnow())}
