"""``GET /health``: whether this instance's parts work, for load balancers and monitoring.

No login, and nothing but the parts and their state: no version, no host name, no
client detail. Cheap enough to ask every second: one read of the scheduler's heartbeat
row (which is the database check too) and, with Redis, at most one PING every
``REDIS_RETRY_SECONDS``.
"""

from flask import Blueprint, jsonify
from sqlalchemy.exc import SQLAlchemyError

from srs.auth.access import public
from srs.common import utcnow
from srs.extensions import db
from srs.jobs import HEARTBEAT_STALE_SECONDS, scheduler_status
from srs.live import channel_status

bp = Blueprint("health", __name__)

OK, DOWN = "ok", "down"


@bp.get("/health")
@public
def health():
    """200 when every part is ok, else 503; each part's state, and the scheduler's age."""
    now = utcnow()
    components = {}
    try:
        scheduler = scheduler_status(now=now)
        components["database"] = {"status": OK}
    except SQLAlchemyError:  # said in the answer: a load balancer asks every second
        db.session.rollback()
        scheduler = None
        components["database"] = {"status": DOWN}
    channel = channel_status()
    if channel is not None:
        components["redis"] = {"status": OK if channel == "ok" else DOWN}
    if scheduler is None:
        components["scheduler"] = {"status": "unknown", "heartbeat_age_seconds": None}
    else:
        age = (None if scheduler["beat_at"] is None
               else round((now - scheduler["beat_at"]).total_seconds(), 1))
        components["scheduler"] = {"status": OK if scheduler["alive"] else DOWN,
                                   "heartbeat_age_seconds": age,
                                   "stale_after_seconds": HEARTBEAT_STALE_SECONDS}
    healthy = all(part["status"] == OK for part in components.values())
    response = jsonify(status="ok" if healthy else "degraded", components=components)
    response.status_code = 200 if healthy else 503
    return response
