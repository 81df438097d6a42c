"""Idempotency keys across a crash: the real server killed in the middle of a burst of
check-ins, restarted, and every key tried again."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import BESIDE_A_SERVER, LiveServer, app_config
from factories import make_site, make_staff
from live_helpers import WAIT_SECONDS, api_token

from srs import create_app
from srs.booths.models import Visit
from srs.extensions import db

pytestmark = pytest.mark.live

CHECK_INS = 50
CALLERS = 16
# The kill comes after this many answers, at the first moment the server has recorded this
# many check-ins it has not answered yet (the window a crash between commit and answer falls
# in), and after this many answers at the latest.
ANSWERED_BEFORE_THE_KILL = (10, 30)
RECORDED_NOT_ANSWERED = 2


def _code(n: int) -> str:
    return f"F-{chr(65 + n // 26)}{chr(65 + n % 26)}AA-1980"


def _recorded() -> int:
    db.session.remove()
    return db.session.execute(db.select(db.func.count(Visit.id))).scalar_one()


def test_every_check_in_cut_off_by_a_sigkill_gets_its_answer_on_retry(databases, tmp_path):
    """A check-in the server recorded but never answered (killed in between) answers its
    retry with the visit it recorded; one that was not recorded records it now. None is
    refused as "not ready", and nobody is checked in twice."""
    url = databases.new_migrated("idem")
    app = create_app(app_config(url, **BESIDE_A_SERVER))
    server = LiveServer(url, tmp_path / "server.log", SRS_SCHEDULER="off")
    with app.app_context():
        server.start()
        try:
            site = make_site()
            token = api_token(make_staff(site, role="nurse"))
            endpoint = f"{server.url}/api/v1/sites/{site.id}/visits"

            def check_in(n: int) -> requests.Response:
                return requests.post(endpoint, json={"code": _code(n)}, timeout=WAIT_SECONDS * 6,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Idempotency-Key": f"burst-{n}"})

            answers: dict[int, dict] = {}
            lock = threading.Lock()

            def first_try(n: int) -> None:
                try:
                    answer = check_in(n)
                except requests.RequestException:  # cut off by the kill
                    return
                with lock:
                    answers[n] = {"status": answer.status_code, "body": answer.json()}

            with ThreadPoolExecutor(max_workers=CALLERS) as pool:
                burst = [pool.submit(first_try, n) for n in range(CHECK_INS)]
                earliest, latest = ANSWERED_BEFORE_THE_KILL
                deadline = time.monotonic() + WAIT_SECONDS * 6
                while time.monotonic() < deadline:
                    recorded = _recorded()
                    with lock:
                        answered = len(answers)
                    if answered >= latest or (answered >= earliest
                                                and recorded - answered >= RECORDED_NOT_ANSWERED):
                        break
                    time.sleep(0.002)
                server.kill()
                for future in burst:
                    future.result()
            recorded_at_the_kill = _recorded()
            assert len(answers) < CHECK_INS, "the kill came in the middle of the burst"
            assert all(a["status"] == 201 for a in answers.values()), answers

            server.start()
            retries = {n: check_in(n) for n in range(CHECK_INS)}
            not_ready = [n for n, r in retries.items() if r.status_code == 409]
            assert not_ready == [], (
                f"{len(not_ready)} of {CHECK_INS} retries refused: "
                f"{retries[not_ready[0]].json()['message'] if not_ready else ''}")
            assert all(r.status_code == 201 for r in retries.values()), \
                {n: r.status_code for n, r in retries.items() if r.status_code != 201}
            for n, first in answers.items():  # answered before the kill: the same answer
                assert retries[n].json() == first["body"]
                assert retries[n].headers.get("Idempotent-Replayed") == "true"
            replayed = {n for n, r in retries.items()
                        if r.headers.get("Idempotent-Replayed") == "true"}
            # Recorded before the kill means replayed now, with the visit it recorded.
            assert len(replayed) == recorded_at_the_kill
            db.session.remove()
            visits = db.session.execute(db.select(Visit)).scalars().all()
            assert len(visits) == CHECK_INS, "each check-in recorded once"
            assert sorted(v.id for v in visits) == sorted(r.json()["id"]
                                                          for r in retries.values())
        finally:
            server.stop()
            db.session.remove()
            db.engine.dispose()
