"""One unit of work per tap and per job run.

An operation checks, changes, records its audit events and announces its change, then
commits once with :func:`commit`. The pieces other operations reuse (opening an overdose
response, drafting an incident, raising or resolving an alert) never commit: the operation
that calls them does, so a tap that combines them stores all of it or none. Announcements
and alarms wait for that commit (``srs.live.after_commit``). A request with an idempotency
key holds the operation's commit for one of its own, which stores the answer with the
action (``srs.idempotency``, ``UnitSession.holding_commits``).
"""

from sqlalchemy.orm.exc import StaleDataError

from srs.errors import Conflict
from srs.extensions import db


def commit(conflict: str) -> None:
    """Commit the unit of work; a lost race (a versioned row someone else changed first)
    rolls it all back and answers 409 with ``conflict``, rather than overwriting."""
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(conflict) from None
