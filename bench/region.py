"""The regional benchmark: 20 sites on two instances over PostgreSQL and Redis, a regional
watcher, and alarms from their due time to the screens, beside bare baselines from the same run.

``make bench-region`` runs ``python -m bench.region`` (``BENCH_ARGS`` passes options).

Set-up, through the product's own CLI and API: a throw-away PostgreSQL database is migrated;
the CLI creates an organisation admin and API tokens; over the API that admin creates
``--sites`` sites of ``--booths`` injection booths (``createSite``, the admin added as each
site's admin), each site's nurses and supervisor (``createStaff``), a wall display
(``registerDisplay``) and short timers (``updateSiteSettings``: a booth check every
``--check-seconds``, so that checks fall due during the run).

Processes: two SRS instances (``python app.py``, one gthread worker each, ``SRS_SCHEDULER``
off, sharing the database and Redis) and the scheduler alone (``flask srs scheduler``). Each
site has ``--tablets`` tablets (API visit cycles as in bench.floor, alternately on instance
A and B) and two screens: a dashboard (the site's supervisor, on A) and a wall display
(signed in with its link, on B), so every change crosses instances to reach one of them. The
organisation admin, admin at every site, watches all of them on one regional dashboard socket
(on A), as a regional supervisor would: the same dashboard room of each site and the same
fragments.

What is measured, while every site is active:

- action latency: a tablet's request sent to its response read;
- change on every screen of the site: from an action's response to the moment the last of
  the site's two screens (one on each instance) shows it;
- change on the regional dashboard: the same, for the regional socket's view of that site;
- alarm: from an alert's due time (the database's ``due_at``, wall clock) to each screen's
  receipt of its ``alert`` event; every level-1 alert raised in the run must reach every
  screen of its site and the regional socket exactly once (missed and doubled are counted);
- server CPU per tap (both instances and the scheduler, fan-out included) and the RSS of each
  instance's worker; then, after the run, the RSS with ``--idle-screens`` more screens
  connected to one instance.

Baselines, in the same run and on the same two instances' configuration (the bare app of
bench.bare sharing Redis): ``bare-http`` (tablets ``POST /noop``) and ``bare-broadcast``
(tablets ``POST /poke``: one emit to a room every screen of both instances is in).

Goals (issue: regional scale): action p95 <= 25 ms; change on every screen of the site
p95 <= 150 ms; server CPU per tap <= 10 ms; alarm due-to-screen p99 <= 1.5 s with none missed
or doubled; RSS <= 200 MB per instance with 100 screens.

Everything listens on 127.0.0.1; the benchmark stops its own processes by pid, and drops its
database.
"""

import argparse
import bisect
import contextlib
import logging
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import requests
import socketio

from bench.floor import (
    CYCLE,
    DRAIN_SECONDS,
    HTTP_TIMEOUT,
    ROOT,
    Database,
    Screen,
    Server,
    Tablet,
    _receive,
    clean_up,
    client_code,
    collect_screens,
    cpu_seconds,
    end_processes,
    fmt,
    free_port,
    html_board,
    ratio,
    server_breakdown,
    srs_env,
    srs_environ,
    summary,
    watch,
)

GOAL_ACTION_P95_MS = 25.0
GOAL_SCREENS_P95_MS = 150.0
GOAL_CPU_PER_TAP_MS = 10.0
GOAL_ALARM_P99_S = 1.5
GOAL_RSS_MB = 200.0
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


# --- Set-up through the CLI and the API --------------------------------------------------------


def _cli(env: dict, *args: str) -> str:
    """Run ``flask --app app srs ARGS`` in this process (Click's runner): the product's CLI,
    without paying for a Python start per token."""
    from srs import create_app

    with srs_environ(env):
        app = _cli.app = getattr(_cli, "app", None) or create_app(
            {"SRS_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
        result = app.test_cli_runner().invoke(args=["srs", *args])
        if result.exit_code != 0:
            raise RuntimeError(f"srs {' '.join(args)}: {result.output}")
        return result.output.strip()


def seed_region(env: dict, base_url: str, args) -> dict:
    """Sites, booths, staff, tokens, displays and timers; what the tablets and screens use."""
    _cli(env, "user", "create", "regional", "--org-admin", "--name", "Regional supervisor",
         "--password", secrets.token_urlsafe(16))
    org_token = _cli(env, "token", "create", "regional").splitlines()[-1]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {org_token}"

    def call(method: str, path: str, body: dict, expect: int) -> dict:
        response = api.request(method, f"{base_url}/api/v1{path}", json=body,
                               timeout=HTTP_TIMEOUT,
                               headers={"Idempotency-Key": secrets.token_hex(16)})
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    sites, tokens, booths, codes, tablet_site = [], [], [], [], []
    for n in range(args.sites):
        slug = f"site-{n + 1:02d}"
        created = call("POST", "/sites", {
            "name": f"Site {n + 1}", "slug": slug, "timezone": "America/Toronto",
            "booths": {"injection": args.booths}, "add_caller_as_admin": True,
            "admin": {"username": f"admin{n + 1}"}}, 201)
        site_id = created["site"]["id"]
        call("PATCH", f"/sites/{site_id}/settings", {
            "booth_check_interval_seconds": args.check_seconds,
            "observation_check_interval_seconds": args.check_seconds,
            "escalation_grace_seconds": args.grace_seconds}, 200)
        site_booths = [b["id"] for b in call("GET", f"/sites/{site_id}/booths", None, 200)]
        supervisor = f"super{n + 1}"
        call("POST", f"/sites/{site_id}/staff", {
            "username": supervisor, "display_name": f"Supervisor {n + 1}",
            "roles": ["supervisor"]}, 201)
        display = call("POST", f"/sites/{site_id}/displays", {"name": "Wall"}, 201)
        site = {"id": site_id, "slug": slug, "tablets": [],
                "supervisor_token": _cli(env, "token", "create", supervisor).splitlines()[-1],
                "display_path": urlparse(display["url"]).path}
        for t in range(args.tablets):
            nurse = f"nurse{n + 1}-{t + 1}"
            call("POST", f"/sites/{site_id}/staff", {
                "username": nurse, "display_name": f"Nurse {n + 1}.{t + 1}",
                "roles": ["nurse"]}, 201)
            index = len(tokens)
            tokens.append(_cli(env, "token", "create", nurse).splitlines()[-1])
            booths.append(site_booths[t])
            codes.append(client_code(index))
            tablet_site.append(site_id)
            site["tablets"].append(index)
        sites.append(site)
    api.close()
    return {"sites": sites, "tokens": tokens, "booths": booths, "codes": codes,
            "tablet_site": tablet_site, "org_token": org_token}


# --- Screens --------------------------------------------------------------------------------


class Ears:
    """What a screen's socket hears of alarms: (alert id, level, re-sound, due, heard)."""

    def listen_for_alerts(self, sio) -> None:
        self.alerts: list[tuple] = []
        sio.on("alert", self._on_alert)

    def _on_alert(self, payload) -> None:
        heard = time.time()
        self.alerts.append((payload["id"], payload["level"], bool(payload.get("resound")),
                            payload["due_at"], heard, payload.get("site_id")))


class SiteScreen(Screen, Ears):
    """A site's dashboard: bench.floor's screen, hearing alarms too."""

    def __init__(self, base_url: str, cfg: dict):
        super().__init__(base_url, cfg)
        self.listen_for_alerts(self.sio)

    def result(self) -> dict:
        return {**super().result(), "alerts": self.alerts}


class DisplayScreen(SiteScreen):
    """A wall display: signs in with its link (a cookie, no password), reads the dashboard
    page, and hears the same fragments as the dashboard."""

    def __init__(self, base_url: str, cfg: dict):
        super().__init__(base_url, {**cfg, "token": None})
        self.sign_in = base_url + cfg["display_path"]
        self.url = base_url + "/supervise"

    def connect(self) -> None:
        response = self.http.get(self.sign_in, allow_redirects=False, timeout=HTTP_TIMEOUT)
        if response.status_code != 302:
            raise RuntimeError(f"display sign-in: {response.status_code}")
        # The session cookie is Secure in production: sent by hand over plain HTTP here.
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        self.http.headers["Cookie"] = cookie
        self.thread.start()
        self.sio.connect(self.base_url, headers={"Cookie": cookie}, transports=["websocket"],
                         wait_timeout=20)

    def read_board(self) -> dict:
        response = self.http.get(self.url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        page = response.text
        # The page holds the board, the queue and after-care: read them as the fragments.
        return html_board({"board-": page, "queue-": page, "aftercare-": page}, self.booths)


class RegionalScreen(Ears):
    """One socket watching every site's dashboard: a view (bench.floor's screen, without a
    socket of its own) per site, fed the fragments of its site."""

    def __init__(self, base_url: str, cfg: dict, site_ids: list[int]):
        self.base_url = base_url
        self.token = cfg["token"]
        self.views = {site_id: Screen(base_url, {
            **cfg, "board_path": f"/api/v1/sites/{site_id}/board"}) for site_id in site_ids}
        self.sio = socketio.Client(reconnection=False,
                                   websocket_extra_options={"skip_utf8_validation": True})
        self.sio.on("fragments", self._on_fragments)
        self.sio.on("changed", self._on_changed)
        self.sio.on("connect", self._on_connect)
        self.listen_for_alerts(self.sio)

    def _on_fragments(self, message) -> None:
        view = self.views.get(message.get("site_id"))
        if view is not None:
            view._on_fragments(message)

    def _on_changed(self, message) -> None:
        view = self.views.get(message.get("site_id"))
        if view is not None:
            view._on_changed(message)

    def _on_connect(self, *_args) -> None:
        for view in self.views.values():
            view.wake.set()

    def connect(self) -> None:
        for view in self.views.values():
            view.thread.start()
        self.sio.connect(self.base_url, auth={"token": self.token, "view": "watch"},
                         transports=["websocket"], wait_timeout=20)

    @property
    def fetches(self) -> int:
        return min(view.fetches for view in self.views.values())

    def idle(self) -> bool:
        return all(view.idle() for view in self.views.values())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.sio.connected:
                self.sio.disconnect()
        for view in self.views.values():
            view.stopping = True
            view.thread.join(timeout=5)
            view.http.close()

    def result(self) -> dict:
        return {"views": {site_id: view.result() for site_id, view in self.views.items()},
                "alerts": self.alerts}


def make_screen(spec: dict):
    kind = spec["kind"]
    if kind == "regional":
        return RegionalScreen(spec["base"], spec["cfg"], spec["site_ids"])
    if kind == "display":
        return DisplayScreen(spec["base"], spec["cfg"])
    if kind == "dashboard":
        return SiteScreen(spec["base"], spec["cfg"])
    return Screen(spec["base"], spec["cfg"])  # a bare screen


def screens_worker(conn, specs: list[dict]) -> None:
    """A process of screens of every kind, each result named by its kind and site."""
    watch(conn, lambda: [make_screen(spec) for spec in specs], first_board_seconds=60,
          label=lambda number, result: {"kind": specs[number]["kind"],
                                        "site": specs[number].get("site"), **result})


def tablets_worker(conn, specs: list[dict]) -> None:
    """A process of tablets (threads), each on its own instance, once told to go."""
    tablets = [Tablet(spec["index"], spec["base"], spec["cfg"]) for spec in specs]
    try:
        warming = [threading.Thread(target=t.warm_up, daemon=True) for t in tablets]
        for thread in warming:
            thread.start()
        for thread in warming:
            thread.join(timeout=len(CYCLE) * HTTP_TIMEOUT)
        conn.send(("ready", None))
        _go, seconds = conn.recv()
        started, wall_started = time.monotonic(), time.time()
        deadline = started + seconds
        threads = [threading.Thread(target=t.run, args=(deadline,), daemon=True)
                   for t in tablets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 4 * HTTP_TIMEOUT)
        conn.send(("done", {
            "started": started, "ended": time.monotonic(), "wall_started": wall_started,
            "actions": [a for t in tablets for a in t.actions],
            "failures": [f for t in tablets for f in t.failures],
            "retries": sum(t.retries for t in tablets)}))
    except Exception:  # noqa: BLE001 - handed to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        for tablet in tablets:
            tablet.http.close()


# --- A phase ---------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker_pid(server: Server) -> int:
    """The gunicorn worker under an instance's master (the process that serves)."""
    master = server.process.pid
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                text = (entry / "stat").read_text()
                if int(text[text.rfind(")") + 2:].split()[1]) == master:
                    return int(entry.name)
    return master


def run_phase(name: str, instances: list[Server], scheduler: Server | None, args,
              screen_specs: list[dict], tablet_specs: list[dict]) -> dict:
    ctx = multiprocessing.get_context("spawn")
    procs, screen_conns = [], []
    chunks = [screen_specs[i::args.screen_procs] for i in range(args.screen_procs)]
    try:
        for chunk in chunks:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=screens_worker, args=(theirs, chunk), daemon=True)
            proc.start()
            procs.append(proc)
            screen_conns.append(mine)
        for conn, proc in zip(screen_conns, procs, strict=True):
            _receive(conn, proc, 120, f"{name}: screens")
        mine, theirs = ctx.Pipe()
        tablets = ctx.Process(target=tablets_worker, args=(theirs, tablet_specs), daemon=True)
        tablets.start()
        procs.append(tablets)
        _receive(mine, tablets, len(CYCLE) * HTTP_TIMEOUT + 60, f"{name}: tablets")
        for conn in screen_conns:
            conn.send(("settle", None))
        for conn, proc in zip(screen_conns, procs[:len(screen_conns)], strict=True):
            _receive(conn, proc, DRAIN_SECONDS + 30, f"{name}: screens")
        print(f"  {name}: {len(screen_specs)} screen sockets and {len(tablet_specs)} tablets "
              f"ready; running {args.seconds:g} s", flush=True)
        groups = {s.name: [s.process.pid] for s in instances}
        if scheduler is not None:
            groups["scheduler"] = [scheduler.process.pid]
        groups["screens"] = [p.pid for p in procs[:-1]]
        groups["tablets"] = [tablets.pid]
        workers = {s.name: worker_pid(s) for s in instances}
        rss = {s: 0.0 for s in workers}
        cpu_before = {group: cpu_seconds(pids) for group, pids in groups.items()}
        spans = {s.name: s.log_path.stat().st_size for s in instances}
        mine.send(("go", args.seconds))
        while not mine.poll(1.0):
            for server_name, pid in workers.items():
                rss[server_name] = max(rss[server_name], rss_mb(pid))
        run = _receive(mine, tablets, args.seconds + 5 * HTTP_TIMEOUT, f"{name}: tablets")
        duration = max(run["ended"] - run["started"], 1e-9)
        run["cpu"] = {group: (cpu_seconds(pids) - cpu_before[group]) / duration
                      for group, pids in groups.items()}
        run["rss"] = rss
        run["log_spans"] = {s.name: (spans[s.name], s.log_path.stat().st_size)
                            for s in instances}
        run["stopped_at"] = time.time()
        run.update(collect_screens(screen_conns, procs, DRAIN_SECONDS + 60, name))
        return run
    finally:
        end_processes(procs)


# --- Figures ---------------------------------------------------------------------------------


def _timelines(history: dict) -> dict:
    return {int(key) if str(key).isdigit() else key: ([t for t, _ in h], [m for _, m in h])
            for key, h in history.items()}


def _waits(ok: list[tuple], watchers_of) -> tuple[list[float], int]:
    """For each action: the time until the last of its watchers showed it; and how many
    actions some watcher never showed."""
    every, unseen = [], 0
    for _name, key, target, _sent, answered, _status in ok:
        if key is None or target is None:
            continue
        waits = []
        for times, markers in watchers_of(key):
            i = bisect.bisect_left(markers, target)
            if i == len(markers):
                break
            waits.append(max(0.0, times[i] - answered))
        else:
            if waits:
                every.append(max(waits))
            continue
        unseen += 1
    return every, unseen


def analyse_srs(run: dict, seeded: dict, alarms: list[tuple], instances: list[Server]) -> dict:
    ok = [a for a in run["actions"] if 200 <= a[5] < 300]
    duration = run["ended"] - run["started"]
    site_of = seeded["tablet_site"]
    per_site = defaultdict(list)  # site -> timelines of its two screens
    regional = {}
    for screen in run["screens"]:
        if screen["kind"] == "regional":
            regional = {int(site): _timelines(view["history"])
                        for site, view in screen["views"].items()}
        else:
            per_site[screen["site"]].append(_timelines(screen["history"]))
    empty = ((), ())
    site_every, site_unseen = _waits(ok, lambda key: [
        screen.get(key, empty) for screen in per_site[site_of[key]]])
    regional_every, regional_unseen = _waits(ok, lambda key: [
        regional.get(site_of[key], {}).get(key, empty)])
    # Alarms: each level-1 raise (the scheduler's, with its due time) on every screen of its
    # site and on the regional socket; latency from due to receipt.
    heard = defaultdict(list)  # (alert id, level) -> [(screen no., heard at)]
    screens_of_site = defaultdict(list)
    for number, screen in enumerate(run["screens"]):
        if screen["kind"] == "regional":
            for site in seeded["tablet_site"]:
                if number not in screens_of_site[site]:
                    screens_of_site[site].append(number)
        else:
            screens_of_site[screen["site"]].append(number)
        for alert_id, level, resound, _due, at, _site in screen["alerts"]:
            if not resound:
                heard[(alert_id, level)].append((number, at))
    latencies, missed, doubled, counted = [], 0, 0, 0
    for alert_id, site_id, level, due_at, raised_at in alarms:
        if raised_at < run["wall_started"] or raised_at > run["stopped_at"] - 2:
            continue
        counted += 1
        got = heard.get((alert_id, level), [])
        by_screen = defaultdict(int)
        for number, _at in got:
            by_screen[number] += 1
        for number in screens_of_site[site_id]:
            if by_screen[number] == 0:
                missed += 1
            elif by_screen[number] > 1:
                doubled += 1
        if level == 1:
            latencies.extend(at - due_at for _number, at in got)
    by_name = defaultdict(list)
    for action in ok:
        by_name[action[0]].append(action[4] - action[3])
    taps = len(run["actions"])
    instances_cpu = sum(run["cpu"][s.name] for s in instances)
    scheduler_cpu = run["cpu"].get("scheduler", 0)
    server_cpu = instances_cpu + scheduler_cpu
    return {
        "duration": duration, "actions": summary([a[4] - a[3] for a in ok]),
        "by_name": {name: summary(v) for name, v in by_name.items()},
        "throughput": len(ok) / duration, "failed": taps - len(ok),
        "failures": run["failures"][:5], "retries": run["retries"],
        "site_screens": summary(site_every), "site_unseen": site_unseen,
        "regional": summary(regional_every), "regional_unseen": regional_unseen,
        "alarm": summary(latencies), "alarms_counted": counted, "missed": missed,
        "doubled": doubled, "cpu": run["cpu"], "rss": run["rss"],
        "cpu_per_tap_ms": server_cpu * duration * 1000 / max(taps, 1),
        # Apart: the instances answer taps and fan them out; the scheduler raises alarms.
        "instances_cpu_per_tap_ms": instances_cpu * duration * 1000 / max(taps, 1),
        "scheduler_cpu_per_alarm_ms": scheduler_cpu * duration * 1000 / max(counted, 1),
        "disconnected": run["disconnected"],
        "server": {s.name: server_breakdown(s.log_path, run["log_spans"][s.name], duration)
                   for s in instances},
    }


def analyse_bare(run: dict, instances: list[Server]) -> dict:
    ok = [a for a in run["actions"] if 200 <= a[5] < 300]
    duration = run["ended"] - run["started"]
    broadcast = defaultdict(list)
    for screen in run["screens"]:
        for n, seconds in screen["broadcast"]:
            broadcast[n].append(seconds)
    every = [max(v) for v in broadcast.values() if len(v) == len(run["screens"])]
    server_cpu = sum(run["cpu"][s.name] for s in instances)
    return {"duration": duration, "actions": summary([a[4] - a[3] for a in ok]),
            "throughput": len(ok) / duration, "failed": len(run["actions"]) - len(ok),
            "broadcast": summary(every), "broadcast_incomplete": len(broadcast) - len(every),
            "cpu": run["cpu"], "rss": run["rss"],
            "cpu_per_tap_ms": server_cpu * duration * 1000 / max(len(run["actions"]), 1)}


def read_alarms(database_url: str) -> list[tuple]:
    """Every alert level raised: (alert id, site, level, due at, raised at) in epoch seconds;
    a level above 1 falls due a grace after the one before (the scan's rule)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT a.id, a.site_id, e.level, a.due_at, e.raised_at FROM alert a "
            "JOIN alert_escalation e ON e.alert_id = a.id")).all()
    engine.dispose()
    return [(alert_id, site_id, level, _epoch(due), _epoch(raised))
            for alert_id, site_id, level, due, raised in rows]


def _epoch(value) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.timestamp()


def idle_screens_rss(server: Server, token: str, count: int) -> tuple[float, float]:
    """The instance worker's RSS before and after ``count`` more dashboard sockets connect."""
    pid = worker_pid(server)
    before = rss_mb(pid)
    clients = []
    try:
        for _ in range(count):
            client = socketio.Client(reconnection=False)
            client.connect(server.url, auth={"token": token, "view": "watch"},
                           transports=["websocket"], wait_timeout=20)
            clients.append(client)
        time.sleep(3)
        return before, rss_mb(pid)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.disconnect()


# --- Report ----------------------------------------------------------------------------------


def report(results: dict, args, idle_rss: tuple | None) -> bool:
    line = "-" * 100
    srs, noop, bcast = (results.get("srs"), results.get("bare-http"),
                        results.get("bare-broadcast"))
    print()
    print(line)
    print(f"SRS regional benchmark: {args.sites} sites x {args.booths} booths, "
          f"{args.tablets} tablets and 2 screens per site, 1 regional socket; 2 instances "
          f"({args.threads} threads each) + the scheduler; PostgreSQL and Redis; "
          f"{args.seconds:g} s per phase; think {args.think_ms:g} ms; {os.cpu_count()} CPUs")
    print(line)
    for phase, r in results.items():
        cpu = ", ".join(f"{g} {c:.2f}" for g, c in r["cpu"].items())
        rss = ", ".join(f"{g} {v:.0f} MB" for g, v in r["rss"].items())
        print(f"{phase}: {r['throughput']:.1f} actions/s over {r['duration']:.1f} s, "
              f"{r['failed']} failed; CPU cores busy: {cpu}")
        print(f"    server CPU per tap (instances + scheduler, fan-out included): "
              f"{r['cpu_per_tap_ms']:.1f} ms; worker RSS (max): {rss}")
        if "instances_cpu_per_tap_ms" in r:
            print(f"    of which the two instances {r['instances_cpu_per_tap_ms']:.1f} ms per "
                  f"tap; the scheduler {r['scheduler_cpu_per_alarm_ms']:.1f} ms per alert level "
                  f"raised ({r['alarms_counted']} levels)")
        for failure in r.get("failures", []):
            print(f"    failure: {failure}")
    print()
    print("Action latency (request sent to response read, at the tablet)")
    if srs:
        print(f"  SRS, all actions                 {fmt(srs['actions'])}")
        for name in CYCLE:
            if name in srs["by_name"]:
                print(f"    {name:<30} {fmt(srs['by_name'][name])}")
    if noop:
        print(f"  bare POST /noop                  {fmt(noop['actions'])}")
    if bcast:
        print(f"  bare POST /poke                  {fmt(bcast['actions'])}")
    print()
    if srs:
        print("Change visible (from the action's response)")
        print(f"  on every screen of the site      {fmt(srs['site_screens'])}"
              + (f"  ({srs['site_unseen']} never)" if srs["site_unseen"] else ""))
        print(f"  on the regional dashboard        {fmt(srs['regional'])}"
              + (f"  ({srs['regional_unseen']} never)" if srs["regional_unseen"] else ""))
    if bcast:
        print(f"  bare broadcast, every screen     {fmt(bcast['broadcast'])}"
              "  (server emit to receipt)")
    if srs:
        print()
        print("Alarm: due time to the screen's alert event (level 1, every screen of the site "
              "and the regional socket)")
        print(f"  SRS                              {fmt(srs['alarm'])}")
        print(f"  {srs['alarms_counted']} alert levels raised in the run: {srs['missed']} "
              f"missed and {srs['doubled']} doubled screen deliveries")
    if idle_rss:
        print()
        print(f"RSS of instance A's worker: {idle_rss[0]:.0f} MB, {idle_rss[1]:.0f} MB with "
              f"{args.idle_screens} more screens connected")
    print()
    if srs and (noop or bcast):
        print("Ratios, SRS / bare")
        for key in ("p50", "p95", "p99"):
            print(f"  {key}: action / bare /noop "
                  f"{ratio(srs['actions'], (noop or {}).get('actions', {}), key)}   "
                  f"site screens / bare broadcast "
                  f"{ratio(srs['site_screens'], (bcast or {}).get('broadcast', {}), key)}")
        if noop:
            print(f"  server CPU per tap: SRS / bare /noop "
                  f"{srs['cpu_per_tap_ms'] / max(noop['cpu_per_tap_ms'], 1e-9):.1f}x")
        print()
    if srs:
        print("Server side (gunicorn access logs): route, requests, mean ms, p95 ms, load")
        for name, rows in srs["server"].items():
            for route, n, mean, p95, load in rows[:6]:
                print(f"  {name:<3} {route:<56} {n:6d} {mean:7.1f} {p95:7.1f} {load:6.2f}")
        print()
    if not srs:
        print(line)
        return False
    goals = [
        ("action p95", srs["actions"].get("p95"), GOAL_ACTION_P95_MS, "ms"),
        ("change on every screen of the site p95", srs["site_screens"].get("p95"),
         GOAL_SCREENS_P95_MS, "ms"),
        ("server CPU per tap", srs["cpu_per_tap_ms"], GOAL_CPU_PER_TAP_MS, "ms"),
        ("alarm due-to-screen p99", (srs["alarm"].get("p99") or float("inf")) / 1000,
         GOAL_ALARM_P99_S, "s"),
    ]
    if idle_rss:
        goals.append((f"RSS with {args.idle_screens} more screens", idle_rss[1], GOAL_RSS_MB,
                      "MB"))
    met_all = True
    for label, value, goal, unit in goals:
        met = value is not None and value <= goal
        met_all &= met
        print(f"Goal: {label} <= {goal:g} {unit}: {value if value is None else round(value, 2)}"
              f" {unit} -> {'MET' if met else 'MISSED'}")
    clean = not (srs["missed"] or srs["doubled"] or srs["site_unseen"])
    print(f"Goal: no alarm missed or doubled, every change on every screen: "
          f"{'MET' if clean else 'MISSED'}")
    print(line)
    return met_all and clean


# --- Main ------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.region", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--sites", type=int, default=20, help="sites (20)")
    parser.add_argument("--booths", type=int, default=8, help="injection booths a site (8)")
    parser.add_argument("--tablets", type=int, default=3, help="tablets a site (3)")
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase (60)")
    parser.add_argument("--think-ms", type=float, default=5000,
                        help="a tablet's pause between taps, x0.5-1.5 (5000)")
    parser.add_argument("--check-seconds", type=int, default=6,
                        help="every site's booth and after-care check interval (6): checks "
                             "fall due during the run")
    parser.add_argument("--grace-seconds", type=int, default=20,
                        help="escalation grace (20)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of each instance; default 2 x its sockets + tablets + 16")
    parser.add_argument("--screen-procs", type=int, default=2)
    parser.add_argument("--idle-screens", type=int, default=100,
                        help="screens connected to instance A after the run, for its RSS")
    parser.add_argument("--database-url", default=DEFAULT_PG,
                        help=f"a local PostgreSQL server ({DEFAULT_PG}): a throw-away "
                             f"database is created and dropped there")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--phases", default="srs,bare-http,bare-broadcast")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--keep-logs", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.sites <= 100 or not 1 <= args.tablets <= args.booths <= 40:
        parser.error("--sites 1-100; --tablets at most --booths, at most 40")
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url: two instances need a PostgreSQL server")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    args.think = args.think_ms / 1000
    if args.threads is None:
        args.threads = 2 * (args.sites * 3 + 1 + args.idle_screens) + args.sites * args.tablets
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="srs-region-"))
    database = Database(args.database_url, tmp)
    servers: list[Server] = []

    def start(name: str, argv: list[str], env: dict, port: int | None = None) -> Server:
        port = port or free_port()
        server = Server(name, argv, {**env, "SRS_PORT": str(port)}, tmp / f"{name}.log", port)
        servers.append(server)
        if argv[-1] == "scheduler":  # no port: wait for its first heartbeat in the log
            server._log = open(server.log_path, "ab")  # noqa: SIM115 - closed in stop()
            server.process = subprocess.Popen(argv, cwd=ROOT, env=server.env,
                                              stdout=server._log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
            return server
        return server.start()

    try:
        url = database.create()
        instance = tmp / "instance"
        instance.mkdir()
        env = srs_env(url, instance, SRS_THREADS=args.threads, SRS_SCHEDULER="off",
                      SRS_HOST="127.0.0.1", SRS_REDIS_URL=args.redis_url)
        print(f"Migrating PostgreSQL ({database.name})...", flush=True)
        migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db",
                                   "upgrade"], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300)
        if migrated.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed:\n{migrated.stderr[-3000:]}")
        results, idle_rss = {}, None
        if "srs" in args.phases:
            a = start("A", [sys.executable, "app.py"], env)
            b = start("B", [sys.executable, "app.py"], env)
            print(f"Creating {args.sites} sites through the CLI and the API...", flush=True)
            started = time.monotonic()
            seeded = seed_region(env, a.url, args)
            print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
            scheduler = start("scheduler", [sys.executable, "-m", "flask", "--app", "app",
                                            "srs", "scheduler"], env)
            # Its start-up (imports, the app) is not the run's: wait until it holds the lock.
            deadline = time.monotonic() + 120
            while "scheduler started" not in scheduler.log_tail(20_000):
                if time.monotonic() > deadline or scheduler.process.poll() is not None:
                    raise RuntimeError(f"the scheduler did not start: {scheduler.log_tail()}")
                time.sleep(0.2)
            screen_specs, tablet_specs = [], []
            common = {"mode": "srs", "codes": seeded["codes"], "booths": seeded["booths"]}
            for site in seeded["sites"]:
                board = f"/api/v1/sites/{site['id']}/board"
                screen_specs.append({"kind": "dashboard", "site": site["id"], "base": a.url,
                                     "cfg": {**common, "board_path": board,
                                             "token": site["supervisor_token"]}})
                screen_specs.append({"kind": "display", "site": site["id"], "base": b.url,
                                     "cfg": {**common, "board_path": board,
                                             "display_path": site["display_path"]}})
                for index in site["tablets"]:
                    tablet_specs.append({"index": index, "base": (a, b)[index % 2].url, "cfg": {
                        "mode": "srs", "site_id": site["id"], "tokens": seeded["tokens"],
                        "booths": seeded["booths"], "codes": seeded["codes"],
                        "think": args.think, "max_cycles": 10_000}})
            screen_specs.append({"kind": "regional", "base": a.url, "site_ids": [
                s["id"] for s in seeded["sites"]], "cfg": {**common, "token": seeded[
                    "org_token"]}})
            run = run_phase("srs", [a, b], scheduler, args, screen_specs, tablet_specs)
            results["srs"] = analyse_srs(run, seeded, read_alarms(url), [a, b])
            if args.idle_screens:
                idle_rss = idle_screens_rss(a, seeded["sites"][0]["supervisor_token"],
                                            args.idle_screens)
            for server in (scheduler, b, a):
                server.stop()
        for phase in [p for p in ("bare-http", "bare-broadcast") if p in args.phases]:
            bare_env = {k: v for k, v in env.items() if not k.startswith("SRS_")}
            pair = []
            for n in ("A", "B"):
                port = free_port()
                pair.append(start(f"{phase}-{n}", [
                    sys.executable, "-m", "bench.bare", "--port", str(port), "--threads",
                    str(args.threads), "--redis-url", args.redis_url], bare_env, port))
            n_screens = args.sites * 2 + 1
            screen_specs = [{"kind": "bare", "base": pair[i % 2].url, "cfg": {
                "mode": "bare", "board_path": "/state", "refetch": False}}
                for i in range(n_screens)]
            tablet_specs = [{"index": i, "base": pair[i % 2].url, "cfg": {
                "mode": "bare", "tap": "/noop" if phase == "bare-http" else "/poke",
                "think": args.think, "max_cycles": 10_000}}
                for i in range(args.sites * args.tablets)]
            results[phase] = analyse_bare(run_phase(phase, pair, None, args, screen_specs,
                                                    tablet_specs), pair)
            for server in pair:
                server.stop()
        met = report(results, args, idle_rss)
        return 1 if args.check and not met else 0
    finally:
        clean_up(servers, database, tmp, args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
