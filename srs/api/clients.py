"""A site's clients, for its supervisors and admins: a client's record with the flags the
floor reads at check-in, and changing those flags.

A client is named by id (visits carry it as ``client.id``), never by code: a path is
written to the server's access log.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import Role
from srs.clients import service
from srs.clients.schemas import ClientFlagsChangeSchema, ClientRecordSchema
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.sites.service import get_site

blp = Blueprint("api_clients", __name__, url_prefix="/api/v1", description="Clients")
CLIENT_STAFF = (Role.SUPERVISOR, Role.ADMIN)


def _record(site, client, *, now) -> dict:
    return {"id": client.id, "code": client.code, "handle": client.handle,
            "gender": client.gender, "birth_year": client.birth_year,
            "created_at": client.created_at,
            "flags": service.client_flags(client, today=site.local_date(now)),
            "summary": service.client_summary(client)}


@blp.get("/sites/<int:site_id>/clients/<int:client_id>")
@blp.doc(operationId="getClient", security=SECURITY)
@token_required(*CLIENT_STAFF)
@blp.response(200, ClientRecordSchema)
def get_client(site_id, client_id):
    """A client's record: code, handle, the flags shown at check-in, how many records of each
    kind the site holds. The read is in the audit trail."""
    site, now = get_site(site_id), utcnow()
    client = service.open_client(site, client_id, actor=api_actor(), now=now)
    return _record(site, client, now=now)


@blp.patch("/sites/<int:site_id>/clients/<int:client_id>")
@blp.doc(operationId="updateClientFlags", security=SECURITY, **IDEMPOTENCY)
@token_required(*CLIENT_STAFF)
@idempotent
@blp.arguments(ClientFlagsChangeSchema)
@blp.response(200, ClientRecordSchema)
def update_client_flags(changes, site_id, client_id):
    """Set, replace or lift (null) a service restriction: a reason from the list, a note,
    the last day (today at the site or later, within a year); set or clear the note. A key
    left out is left as it is; each change is in the audit trail."""
    site, now = get_site(site_id), utcnow()
    client = service.update_flags(site, service.get_client(site, client_id), changes,
                                  actor=api_actor(), now=now)
    return _record(site, client, now=now)
