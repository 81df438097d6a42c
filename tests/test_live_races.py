"""Races through the real server: twenty nurses tap one booth at once; a tablet double-taps."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from factories import make_booth, make_site, make_staff
from live_helpers import WAIT_SECONDS, api_token

from srs.booths.models import Visit, VisitState
from srs.extensions import db

pytestmark = pytest.mark.live
TAPS = 20


def _post(url: str, token: str, json: dict | None = None, key: str | None = None):
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(url, json=json, headers=headers, timeout=WAIT_SECONDS * 6)


def test_twenty_assignments_of_one_booth_seat_exactly_one(live_server):
    site = make_site()
    booth_id = make_booth(site, label="B1").id
    token = api_token(make_staff(site, role="nurse"))
    base = f"{live_server.url}/api/v1/sites/{site.id}"
    visits = [_post(f"{base}/visits", token, {"code": f"F-{chr(65 + n)}AAA-1980"}).json()["id"]
              for n in range(TAPS)]

    with ThreadPoolExecutor(max_workers=TAPS) as pool:
        answers = list(pool.map(
            lambda visit_id: _post(f"{base}/visits/{visit_id}/booth", token,
                                   {"booth_id": booth_id}), visits))

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * (TAPS - 1), statuses
    for refused in (a for a in answers if a.status_code == 409):
        body = refused.json()
        assert body["code"] == "booth_taken" and body["booth"] == "B1", body
    db.session.expire_all()
    in_booth = db.session.execute(db.select(Visit).filter_by(
        booth_id=booth_id, state=VisitState.IN_BOOTH)).scalars().all()
    assert len(in_booth) == 1
    still_waiting = db.session.execute(db.select(db.func.count(Visit.id)).filter_by(
        state=VisitState.WAITING)).scalar()
    assert still_waiting == TAPS - 1


def test_a_double_tap_checks_in_once(live_server):
    site = make_site()
    token = api_token(make_staff(site, role="nurse"))
    url = f"{live_server.url}/api/v1/sites/{site.id}/visits"
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: _post(url, token, {"code": "F-ABCD-1984"},
                                                key="tap-7f3a"), range(2)))
    # The second waits for the first to commit, with its answer, and hears that answer.
    assert [a.status_code for a in answers] == [201, 201], [a.json() for a in answers]
    assert answers[0].json() == answers[1].json()
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    # A repeat after both settle gets the first answer, whatever the timing was.
    again = _post(url, token, {"code": "F-ABCD-1984"}, key="tap-7f3a")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    db.session.expire_all()
    assert db.session.execute(db.select(db.func.count(Visit.id))).scalar() == 1
