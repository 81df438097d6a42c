"""The tablet page on the wire: what a cold floor load costs a tablet, in real Chromium.

``make bench-page`` (and ``make bench``, after the floor benchmark) runs ``python -m
bench.page``. The real server (``python app.py``, production settings, scheduler off) on a
temp SQLite database holds one site of 8 booths mid-shift: clients waiting, in booths and in
after-care. A nurse signs in once; then a new browser context, its cache empty but the
nurse's session cookie in it, opens the floor page, as a tablet does after a restart, and
stays until the network has been quiet for ``--idle-ms`` (what the page fetches once it is
idle, the alarm sounds, counts too). Every response is counted as Chromium received it,
compressed or not, with the ``Accept-Encoding`` Chromium itself sends (over plain HTTP it
offers gzip and deflate, not brotli, which it keeps for HTTPS; ``--encoding`` can ask for
another), and beside it the same bodies decoded: the uncompressed baseline. Socket.IO's
polling requests count as requests; its websocket frames are counted on their own line.
A second load in the same context shows what a tablet fetches again when the page reloads.

Goal: cold floor page <= 100 KB (100,000 bytes) on the wire, headers included.
"""

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from bench.floor import ROOT, Server, free_port, srs_env, srs_environ

GOAL_BYTES = 100_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORD = "bench-page-password-1"
SLUG = "bench"


def seed(env: dict, booths: int) -> None:
    """One site of ``booths`` booths mid-shift and a nurse who signs in with a password."""
    with srs_environ(env):
        from srs import create_app
        from srs.auth.models import Role
        from srs.auth.service import Actor, create_staff
        from srs.booths import service
        from srs.booths.models import Booth
        from srs.common import utcnow
        from srs.extensions import db
        from srs.org.service import create_site

        app = create_app({"SRS_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
        actor = Actor.system("bench")
        with app.app_context():
            now = utcnow() - timedelta(minutes=5)
            site = create_site(name="Bench Site", slug=SLUG, timezone="America/Toronto",
                               booths={"injection": booths}, actor=actor, now=now).site
            made = db.session.scalars(db.select(Booth).filter_by(site_id=site.id)
                                      .order_by(Booth.position)).all()
            create_staff("nurse", display_name="Nurse", password=PASSWORD, pin=None,
                         roles=[(site, Role.NURSE.value)], actor=actor)
            roles = {Role.NURSE.value}
            visits = [service.check_in(site, code=f"X-{'ABCDEFGH'[i]}AAA-1980", handle=None,
                                       actor=actor, actor_roles=roles, now=now)
                      for i in range(8)]
            # Three in booths, two of them used; two in after-care; three waiting.
            for visit, booth in zip(visits[:5], made, strict=False):
                service.assign_booth(visit, booth, actor=actor, now=now)
            for visit in visits[:4]:
                service.record_consumption(visit, {"substances": ["fentanyl"], "route": "injects"},
                                           actor=actor, now=now)
            for visit in visits[:2]:
                service.start_observation(visit, actor=actor, now=now)
            db.session.remove()
            db.engine.dispose()


def load(context, url: str, idle_ms: int) -> dict:
    """Open ``url`` in ``context``; every response until the network stays quiet."""
    page = context.new_page()
    finished, frames = [], []
    page.on("requestfinished", lambda request: finished.append(request))
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: frames.append(len(payload))))
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(idle_ms)
    page.wait_for_load_state("networkidle")
    rows = []
    accept = finished[0].all_headers().get("accept-encoding", "(none)") if finished else ""
    for request in finished:
        response = request.response()
        if response is None:
            continue
        sizes = request.sizes()
        try:
            decoded = len(response.body())
        except Exception:  # noqa: BLE001 - a body Chromium did not keep (a redirect)
            decoded = 0
        # Taken from the browser's cache, nothing crossed the wire (Chromium reports the
        # body as minus the headers' size then).
        cached = sizes["responseBodySize"] + sizes["responseHeadersSize"] <= 0
        rows.append({"path": request.url.split("?")[0].removeprefix(url.split("/sites")[0]),
                     "status": "cache" if cached else response.status,
                     "encoding": response.headers.get("content-encoding", "-"),
                     "cache": response.headers.get("cache-control", "-"),
                     "body": 0 if cached else sizes["responseBodySize"],
                     "headers": 0 if cached else sizes["responseHeadersSize"],
                     "decoded": decoded})
    page.close()
    return {"rows": rows, "ws_frames": len(frames), "ws_bytes": sum(frames), "accept": accept}


def report(title: str, result: dict) -> int:
    rows = result["rows"]
    print(f"\n{title}")
    print(f"  {'resource':<48} {'status':>6} {'enc':>7} {'on wire':>9} {'headers':>8} "
          f"{'decoded':>9}  cache-control")
    for row in rows:
        print(f"  {row['path'][:48]:<48} {row['status']:>6} {row['encoding']:>7} "
              f"{row['body']:>9,} {row['headers']:>8,} {row['decoded']:>9,}  {row['cache']}")
    body = sum(r["body"] for r in rows)
    headers = sum(r["headers"] for r in rows)
    decoded = sum(r["decoded"] for r in rows)
    print(f"  {'total: ' + str(len(rows)) + ' responses':<48} {'':>6} {'':>7} {body:>9,} "
          f"{headers:>8,} {decoded:>9,}")
    print(f"  websocket: {result['ws_frames']} frames received, {result['ws_bytes']:,} bytes")
    return body + headers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--booths", type=int, default=8)
    parser.add_argument("--idle-ms", type=int, default=3000,
                        help="how long the page is watched once the network is quiet (3000)")
    parser.add_argument("--encoding", default=None,
                        help="an Accept-Encoding to send instead of Chromium's own, e.g. "
                             "'gzip, deflate, br, zstd' as Chromium sends over HTTPS")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="srs-bench-page-"))
    server = None
    try:
        instance = tmp / "instance"
        instance.mkdir()
        port = free_port()
        env = srs_env(f"sqlite:///{tmp / 'page.sqlite3'}", instance, SRS_SCHEDULER="off",
                      SRS_HOST="127.0.0.1", SRS_PORT=port)
        migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db",
                                   "upgrade"], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300)
        if migrated.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed:\n{migrated.stderr[-3000:]}")
        seed(env, args.booths)
        server = Server("SRS", [sys.executable, "app.py"], env, tmp / "srs.log", port).start()
        floor_url = f"{server.url}/sites/{SLUG}/floor"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            tablet = {"viewport": {"width": 1280, "height": 800}, "has_touch": True}
            if args.encoding:
                tablet["extra_http_headers"] = {"Accept-Encoding": args.encoding}
            signing_in = browser.new_context(**tablet)
            page = signing_in.new_page()
            page.goto(f"{server.url}/login")
            page.get_by_label("Username").fill("nurse")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(floor_url)
            state = signing_in.storage_state()
            signing_in.close()

            cold = browser.new_context(storage_state=state, **tablet)
            first = load(cold, floor_url, args.idle_ms)
            again = load(cold, floor_url, args.idle_ms)
            cold.close()
            browser.close()
        print(f"Cold floor load of /sites/{SLUG}/floor ({args.booths} booths, 8 clients), "
              f"Chromium sending Accept-Encoding: {first['accept']}")
        total = report("Cold load (empty cache):", first)
        decoded = sum(r["decoded"] for r in first["rows"])
        reload_total = report("Reload (same tablet, cache kept):", again)
        met = total <= GOAL_BYTES
        print(f"\nCold floor page on the wire: {total:,} bytes (bodies and headers) against "
              f"{decoded:,} bytes of the same bodies uncompressed; goal <= {GOAL_BYTES:,}: "
              f"{'met' if met else 'MISSED'}. Reload: {reload_total:,} bytes.")
        return 1 if args.check and not met else 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
