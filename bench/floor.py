"""The floor benchmark: tablets run visit cycles while screens watch, against the
real server, beside a bare Flask + Socket.IO baseline measured in the same run.

``make bench`` runs ``python -m bench.floor`` (``BENCH_ARGS`` passes options). Four phases,
one after the other, each with the same tablets, screens, pace and duration:

``srs``             ``python app.py`` (gunicorn, one gthread worker, ``SRS_THREADS``,
                    ``SRS_SCHEDULER=on``) on a fresh, migrated database: a temp SQLite file, or
                    a throw-away database on the server of ``--database-url``. N tablets
                    (threads, each with its own keep-alive HTTP session, token, booth and client
                    code) run full visit cycles through the JSON API: check in, assign booth,
                    record consumption, start observation, clean booth, discharge, each tap with
                    an Idempotency-Key and a pause (``--think-ms``) before the next. M screens
                    (python-socketio clients over websocket, bearer token, read-only) fetch
                    the board on connect; after that each change brings, in one socket
                    message, its topics and the fragments it touched (board, queue,
                    after-care, figures), which a screen keeps by version and reads back
                    (the codes, visit ids and booth states in the HTML). A ``changed`` with
                    ``pushed`` false (the fragments failed to render) makes it re-fetch: one
                    fetch at a time per screen, at most one more queued behind it, as htmx
                    does for the real screens.
``bare-http``       the bare app of bench.bare, served the same way: tablets ``POST /noop``
                    (a small JSON answer); the screens connected and idle.
``bare-broadcast``  tablets ``POST /poke`` (a counter and one emit to the room); the screens
                    only note when the hint arrives.
``bare-live``       tablets ``POST /poke``; the screens re-fetch ``GET /state`` after each hint.

What is measured:

- action latency: a tablet's request sent to its response read (client side);
- change to every screen: from an action's response to the moment the last screen has read
  a board showing that action's effect (pushed HTML or a fetched board). Every tablet has
  its own client code, so a board says where each tablet's current visit stands: (visit
  id, stage), stage 1 waiting, 2 in booth, 3 consumption recorded, 4 after-care with the
  booth needing cleaning, 5 booth cleaned, 6 departed (gone from a board that showed it).
  A board reflects an action when it shows that tablet at the action's (visit, stage) or
  later. A screen that already had it when the response arrived counts 0. A screen keeps
  each board it showed with the moment it showed it, and reads them back after the phase:
  parsing the HTML is the benchmark's work, not the screen's, and would otherwise take the
  CPU the server needs (the browser swaps the HTML in native code);
- bare broadcast: from the server's emit (monotonic clock, same machine) to the receipt of
  ``changed`` by the last screen; and the bare change-to-every-screen with its re-fetch;
- server side: gunicorn's access log (request durations in ms) per route.

Goals: action p95 <= 25 ms; change visible on all screens p95 <= 150 ms.

Everything listens on 127.0.0.1; the benchmark stops its own processes by pid and removes its
temp files and databases. ``--profile`` adds an in-process breakdown (SQL statements and time,
cProfile by package) of one board read and one visit cycle on the same database.
"""

import argparse
import bisect
import contextlib
import cProfile
import logging
import math
import multiprocessing
import os
import pstats
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import defaultdict
from pathlib import Path

import requests
import socketio
from cryptography.fernet import Fernet
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ROOT = Path(__file__).resolve().parent.parent
GOAL_ACTION_P95_MS = 25.0
GOAL_SCREENS_P95_MS = 150.0
LOCAL_HOSTS = {None, "", "127.0.0.1", "localhost", "::1"}
HTTP_TIMEOUT = 15
DRAIN_SECONDS = 15  # the longest the screens may take to catch up after the tablets stop
CYCLE = ("check_in", "assign_booth", "record_consumption", "start_observation",
         "mark_booth_clean", "discharge")
STAGES = {name: stage for stage, name in enumerate(CYCLE, start=1)}
DEPARTED = STAGES["discharge"]
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PHASES = {
    "srs": "SRS: visit cycles through the API; screens apply the fragments pushed with "
           "each change",
    "bare-http": "bare: POST /noop (small JSON); screens connected, idle",
    "bare-broadcast": "bare: POST /poke (one emit to the room); screens only receive",
    "bare-live": "bare: POST /poke (one emit); screens re-fetch GET /state after each hint",
}


# --- Figures ---------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(values_s: list[float]) -> dict:
    """p50/p95/p99/max in milliseconds of a list of seconds."""
    if not values_s:
        return {"n": 0}
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95),
            "p99": percentile(ms, 99), "max": max(ms), "mean": sum(ms) / len(ms)}


def fmt(s: dict) -> str:
    if not s.get("n"):
        return "no samples"
    return (f"p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  p99 {s['p99']:7.1f}  "
            f"max {s['max']:7.1f} ms  (n={s['n']})")


def ratio(a: dict, b: dict, key: str) -> str:
    if not a.get("n") or not b.get("n") or b[key] <= 0:
        return "  n/a"
    return f"{a[key] / b[key]:5.1f}x"


# --- Processes, ports, databases -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess on 127.0.0.1, its output in a log file; stopped by its pid."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path, port: int):
        self.name, self.argv, self.env, self.log_path, self.port = name, argv, env, log_path, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 180) -> "Server":
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # Its own process group, so that kill() takes its workers with it.
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {timeout} s: {self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def kill(self) -> None:
        """SIGKILL the server and its workers at once, as a crash or power cut would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class Database:
    """A temp SQLite file, or a throw-away database on the server of ``base_url``."""

    def __init__(self, base_url: str | None, tmp: Path):
        self.base_url = base_url
        self.tmp = tmp
        self.name: str | None = None
        self.url = ""

    def create(self) -> str:
        if not self.base_url:
            self.url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
            return self.url
        from sqlalchemy import create_engine, make_url, text

        base = make_url(self.base_url)
        if base.host not in LOCAL_HOSTS:
            raise SystemExit(f"--database-url must point at this machine, not {base.host!r}")
        self.name = f"srs_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.url = base.set(database=self.name).render_as_string(hide_password=False)
        return self.url

    def drop(self) -> None:
        if self.name is None:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()
        self.name = None


def srs_env(database_url: str, instance: Path, **extra) -> dict:
    """The environment of the SRS server and CLI: ours, minus the caller's SRS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_")}
    env.update({"SRS_DATABASE_URL": database_url, "SRS_INSTANCE_PATH": str(instance),
                "SRS_SECRET_KEY": "bench-" + secrets.token_urlsafe(24),
                # Production asks for the treatment identity key too (a Fernet key).
                "SRS_IDENTITY_KEY": Fernet.generate_key().decode(),
                "SRS_ENV": "production", "PYTHONUNBUFFERED": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def client_code(index: int) -> str:
    """The client code of tablet ``index``: X-AAAA-1980, X-AAAB-1980, ..."""
    letters = ""
    for _ in range(4):
        index, rest = divmod(index, 26)
        letters = _LETTERS[rest] + letters
    return f"X-{letters}-1980"


@contextlib.contextmanager
def srs_environ(env: dict):
    """The ``SRS_*`` settings of ``env`` in this process's environment while the block runs
    (``create_app`` reads them), then the environment as it was."""
    saved = {k: os.environ.get(k) for k in env if k.startswith("SRS_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("SRS_")})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def seed(env: dict, tablets: int) -> dict:
    """One site, a booth and a nurse (with a token) per tablet, a spare booth for --profile,
    and a supervisor whose token the screens use."""
    with srs_environ(env):
        from srs import create_app
        from srs.auth.models import Role
        from srs.auth.service import Actor, create_staff, issue_token
        from srs.booths.admin import add_booth
        from srs.common import utcnow
        from srs.extensions import db
        from srs.org.service import create_site

        # Cheap password hashes: nobody signs in with a password here.
        app = create_app({"SRS_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
        actor = Actor.system("bench")
        with app.app_context():
            site = create_site(name="Bench Site", slug="bench", timezone="America/Toronto",
                               actor=actor, now=utcnow()).site
            booths = [add_booth(site, label=f"B{i + 1}", kind="injection", actor=actor,
                                now=utcnow()).id for i in range(tablets)]
            spare = add_booth(site, label="P1", kind="injection", actor=actor,
                              now=utcnow()).id
            tokens = []
            for i in range(tablets):
                nurse = create_staff(f"nurse{i + 1}", display_name=f"Nurse {i + 1}",
                                     password=secrets.token_urlsafe(16), pin=None,
                                     roles=[(site, Role.NURSE.value)], actor=actor)
                tokens.append(issue_token(nurse, actor=actor))
            supervisor = create_staff("supervisor", display_name="Supervisor",
                                      password=secrets.token_urlsafe(16), pin=None,
                                      roles=[(site, Role.SUPERVISOR.value)], actor=actor)
            seeded = {"site_id": site.id, "booths": booths, "spare_booth": spare,
                      "tokens": tokens, "screen_token": issue_token(supervisor, actor=actor),
                      "codes": [client_code(i) for i in range(tablets)]}
            db.session.remove()
            db.engine.dispose()
        return seeded


# --- Screens ---------------------------------------------------------------------------------


def srs_markers(board: dict, codes: dict[str, int], known: dict) -> dict:
    """Where each tablet's visit stands on this board: {tablet: (visit id, stage)}.

    A visit the screen had seen and that is gone from the board has departed.
    """
    seen: dict[int, tuple[int, int]] = {}

    def put(visit: dict, stage: int) -> None:
        tablet = codes.get(visit["client"]["code"])
        if tablet is not None:
            seen[tablet] = max(seen.get(tablet, (0, 0)), (visit["id"], stage))

    needs_cleaning = {b["id"] for b in board["booths"] if b["state"] == "needs_cleaning"}
    for visit in board["queue"]:
        put(visit, STAGES["check_in"])
    for booth in board["booths"]:
        visit = booth.get("visit")
        if visit:
            put(visit, STAGES["record_consumption"] if visit.get("consumptions")
                else STAGES["assign_booth"])
    for visit in board["aftercare"]:
        put(visit, STAGES["start_observation"] if visit.get("booth_id") in needs_cleaning
            else STAGES["mark_booth_clean"])
    for tablet, (visit_id, stage) in known.items():
        if tablet not in seen and stage < DEPARTED:
            seen[tablet] = (visit_id, DEPARTED)
    return seen


_TILE = re.compile(r'<article class="tile[^"]*" data-booth-id="(\d+)" data-state="(\w+)"'
                   r'[^>]*?(?: data-visit-id="(\d+)")?>(.*?)</article>', re.S)
_QUEUE_ITEM = re.compile(r'<li class="queue__item" data-visit-id="(\d+)"[^>]*>(.*?)</li>', re.S)
_AFTERCARE_ITEM = re.compile(r'<li class="aftercare__item[^"]*" data-visit-id="(\d+)"[^>]*>'
                             r'(.*?)</li>', re.S)
_CODE = re.compile(r'<span class="(?:queue__who )?code">([^<]+)</span>')


def html_board(fragments: dict[str, str], booths: list[int]) -> dict:
    """The parts of the board ``srs_markers`` reads (booths, queue, after-care) that the
    HTML fragments a screen holds show."""
    board = next((h for k, h in fragments.items() if k.startswith("board-")), None)
    queue = next((h for k, h in fragments.items() if k.startswith("queue-")), None)
    aftercare = next((h for k, h in fragments.items() if k.startswith("aftercare-")), None)

    def visit(visit_id: str, inner: str, **more) -> dict:
        code = _CODE.search(inner)
        return {"id": int(visit_id), "client": {"code": code.group(1) if code else ""}, **more}

    parts = {}
    if board is not None:
        tiles = []
        for booth_id, state, visit_id, inner in _TILE.findall(board):
            tile = {"id": int(booth_id), "state": state, "visit": None}
            if visit_id:
                used = 'data-testid="booth-use"' in inner
                tile["visit"] = visit(visit_id, inner, consumptions=[{}] if used else [])
            tiles.append(tile)
        parts["booths"] = tiles
    if queue is not None:
        parts["queue"] = [visit(v, inner) for v, inner in _QUEUE_ITEM.findall(queue)]
    if aftercare is not None:
        # A tablet's client code -> its booth, as the bench seeded them.
        booth_of = {client_code(index): booth_id for index, booth_id in enumerate(booths)}
        after = []
        for visit_id, inner in _AFTERCARE_ITEM.findall(aftercare):
            item = visit(visit_id, inner)
            item["booth_id"] = booth_of.get(item["client"]["code"])
            after.append(item)
        parts["aftercare"] = after
    return parts


class Screen:
    """One watching screen: a socket for hints and pushed fragments, HTTP for the board.

    In SRS mode it joins as a read-only screen: each change brings the rendered board,
    queue and after-care, which it keeps by version (never an older one over a newer one)
    and reads back to find where each tablet stands. On connect, and on a hint that came
    without its fragments, it fetches the board over HTTP; a hint that arrives during a
    fetch queues one more fetch, as htmx does for the real screens. In bare mode it
    re-fetches after every hint (``refetch``).
    """

    def __init__(self, base_url: str, cfg: dict):
        self.url = base_url + cfg["board_path"]
        self.mode = cfg["mode"]
        self.refetch = cfg.get("refetch", True)
        self.codes = {code: i for i, code in enumerate(cfg.get("codes", []))}
        self.token = cfg.get("token")
        self.http = requests.Session()
        # A browser retries a GET whose idle keep-alive connection the server had closed.
        self.http.mount("http://", HTTPAdapter(max_retries=Retry(total=2, backoff_factor=0)))
        if self.token:
            self.http.headers["Authorization"] = f"Bearer {self.token}"
        # websocket-client checks each text frame's UTF-8 in a pure-Python loop (about 6 ms
        # for a 34 KB board) before decoding it, and decoding checks it again, natively: the
        # browser's check is native too. Skipped, 50 screens take 0.4 cores instead of 1.6,
        # which the server on the same 2 cores would otherwise lose.
        self.sio = socketio.Client(reconnection=False,
                                   websocket_extra_options={"skip_utf8_validation": True})
        self.sio.on("changed", self._on_changed)
        self.sio.on("fragments", self._on_fragments)
        self.sio.on("connect", self._on_connect)
        self.booths = cfg.get("booths", [])
        self.fragments: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.pushed = self.stale = 0
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.busy = False
        self.stopping = False
        self.markers: dict = {}
        self.shown: list[tuple] = []  # (monotonic time, "html" | "board", what was shown)
        self.history: dict = defaultdict(list)  # key -> [(monotonic time, marker)]
        self.broadcast: list[tuple[int, float]] = []  # bare: (n, emit-to-receipt seconds)
        self.events = self.fetches = self.errors = 0
        self.error_kinds: list[str] = []
        self.base_url = base_url
        self.thread = threading.Thread(target=self._fetch_loop, daemon=True)

    def connect(self) -> None:
        self.thread.start()
        auth = {"token": self.token, "view": "watch"} if self.token else None
        self.sio.connect(self.base_url, auth=auth, transports=["websocket"], wait_timeout=20)

    def _on_connect(self, *_args) -> None:
        self.wake.set()  # python-socketio replays nothing: fetch everything on (re)connect

    def _on_changed(self, message) -> None:
        now = time.monotonic()
        self.events += 1
        if isinstance(message, dict) and "emitted" in message:
            self.broadcast.append((message["n"], now - message["emitted"]))
        pushed = isinstance(message, dict) and message.get("pushed")
        if self.refetch and not pushed:
            self.wake.set()

    def _on_fragments(self, message) -> None:
        """Swap in what is newer than what the screen shows (as the browser does), and keep
        what the screen then shows with the moment it showed it: reading the board back out
        of that HTML is the benchmark's own work, done after the phase (``_replay``), so the
        simulated screens do not take the CPU the server needs."""
        with self.lock:
            version = message["version"]
            swapped = False
            for element_id, html in message["html"].items():
                if version <= self.versions.get(element_id, -1):
                    self.stale += 1
                    continue
                self.fragments[element_id] = html
                self.versions[element_id] = version
                swapped = swapped or not element_id.startswith("today-")
            self.pushed += 1
            self.events += len(message.get("topics", ()))
            if swapped:
                self.shown.append((time.monotonic(), "html", dict(self.fragments)))

    def _fetch_loop(self) -> None:
        while not self.stopping:
            if not self.wake.wait(0.1):
                continue
            self.busy = True
            self.wake.clear()
            try:
                board = self.read_board()
                seen_at = time.monotonic()
                self.fetches += 1
                with self.lock:
                    self.shown.append((seen_at, "board", board))
            except Exception as err:  # noqa: BLE001 - counted and reported
                self.errors += 1
                if len(self.error_kinds) < 3:
                    self.error_kinds.append(f"{type(err).__name__}: {str(err)[:160]}")
            finally:
                self.busy = False

    def read_board(self) -> dict:
        """What the screen shows after a fetch: the board's JSON."""
        response = self.http.get(self.url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def _replay(self) -> None:
        """Read each board the screen showed, in the order it showed them."""
        with self.lock:
            shown, self.shown = sorted(self.shown, key=lambda item: item[0]), []
        board = None  # what the screen shows: a fetched board, then the fragments over it
        for seen_at, kind, payload in shown:
            if kind == "html":
                if board is None:
                    continue
                board = {**board, **html_board(payload, self.booths)}
            else:
                board = payload
            self._note(board, seen_at)

    def _note(self, board: dict, seen_at: float) -> None:
        if self.mode == "srs":
            seen = srs_markers(board, self.codes, self.markers)
        else:
            seen = {"n": board["n"]}
        for key, marker in seen.items():
            if key not in self.markers or marker > self.markers[key]:
                self.markers[key] = marker
                self.history[key].append((seen_at, marker))

    def idle(self) -> bool:
        return not self.busy and not self.wake.is_set()

    def close(self) -> None:
        self.stopping = True
        with contextlib.suppress(Exception):
            if self.sio.connected:
                self.sio.disconnect()
        self.thread.join(timeout=5)
        self.http.close()

    def result(self) -> dict:
        self._replay()
        return {"history": dict(self.history), "broadcast": self.broadcast,
                "events": self.events, "fetches": self.fetches, "errors": self.errors,
                "error_kinds": self.error_kinds, "pushed": self.pushed, "stale": self.stale}


def _until_quiet(screens: list[Screen], limit: float) -> bool:
    """Wait until no screen has fetched or been hinted for half a second (at most ``limit``
    seconds); whether they went quiet."""
    deadline = time.monotonic() + limit
    quiet_since = None
    while time.monotonic() < deadline:
        if all(s.idle() for s in screens):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.5:
                return True
        else:
            quiet_since = None
        time.sleep(0.05)
    return False


def screens_worker(conn, base_url: str, cfg: dict, count: int) -> None:
    """A process of ``count`` screens, all alike (see :func:`watch`)."""
    watch(conn, lambda: [Screen(base_url, cfg) for _ in range(count)], first_board_seconds=30)


def watch(conn, make_screens, *, first_board_seconds: float,
          label=lambda _number, result: result) -> None:
    """Run a process's screens: connect, report ready; on ``settle`` answer once they are
    quiet; on ``stop`` let them catch up and send what each saw (``label(number, result)``
    may name it)."""
    # engineio's client logs "packet queue is empty, aborting" at error level on every
    # disconnect; dropped sockets are counted instead.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    screens = make_screens()
    try:
        for screen in screens:
            screen.connect()
        deadline = time.monotonic() + first_board_seconds
        while not all(s.idle() and s.fetches for s in screens):
            if time.monotonic() > deadline:
                raise RuntimeError(f"screens did not fetch their first board in "
                                   f"{first_board_seconds:g} s")
            time.sleep(0.05)
        conn.send(("ready", None))
        while conn.recv()[0] == "settle":
            conn.send(("settled", _until_quiet(screens, DRAIN_SECONDS)))
        _until_quiet(screens, DRAIN_SECONDS)
        disconnected = sum(1 for s in screens if not s.sio.connected)
        results = [label(number, s.result()) for number, s in enumerate(screens)]
        conn.send(("done", {"screens": results, "disconnected": disconnected}))
    except Exception:  # noqa: BLE001 - handed to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        for screen in screens:
            screen.close()


# --- Tablets ---------------------------------------------------------------------------------


class Tablet:
    """One tablet: its own token, keep-alive session, booth and client code.

    In SRS mode it walks the visit cycle (``CYCLE``) one tap at a time; in bare mode each tap
    is one ``POST /noop`` or ``/poke``.
    """

    def __init__(self, index: int, base_url: str, cfg: dict):
        self.index = index
        self.base = base_url
        self.cfg = cfg
        self.mode = cfg["mode"]
        self.http = requests.Session()
        if self.mode == "srs":
            self.http.headers["Authorization"] = f"Bearer {cfg['tokens'][index]}"
            self.site = f"{base_url}/api/v1/sites/{cfg['site_id']}"
            self.booth = cfg["booths"][index]
            self.code = cfg["codes"][index]
        self.step = 0  # the next step of CYCLE
        self.visit_id: int | None = None
        self.rng = random.Random(index)
        self.actions: list[tuple] = []  # (name, key, target, sent, answered, status)
        self.failures: list[str] = []
        self.retries = 0

    def warm_up(self) -> None:
        """Open the connection; in SRS mode take the first steps of a cycle, unmeasured, so
        that the tablets start spread over every step of it."""
        path = "/api/v1/sites" if self.mode == "srs" else "/state"
        with contextlib.suppress(requests.RequestException):  # a refusal shows in the run
            self.http.get(self.base + path, timeout=HTTP_TIMEOUT)
        if self.mode == "srs":
            for _ in range(self.index % len(CYCLE)):
                self.tap(measured=False)

    def run(self, deadline: float) -> None:
        think = self.cfg["think"]
        if think > 0:  # the tablets do not tap in step
            time.sleep(min(self.rng.uniform(0, think), max(0.0, deadline - time.monotonic())))
        cycles = 0
        while time.monotonic() < deadline and cycles < self.cfg["max_cycles"]:
            if self.tap():
                cycles += 1
            self.pause(deadline)

    def pause(self, deadline: float) -> None:
        think = self.cfg["think"]
        if think > 0:
            time.sleep(max(0.0, min(think * self.rng.uniform(0.5, 1.5),
                                    deadline - time.monotonic())))

    def tap(self, *, measured: bool = True) -> bool:
        """One action; True when it ends a cycle (in bare mode, every tap)."""
        if self.mode != "srs":
            self.bare_tap()
            return True
        name = CYCLE[self.step]
        url, body = self._request(name)
        status, payload, sent, answered = self.post(url, body)
        ok = 200 <= status < 300
        if ok and name == "check_in":
            self.visit_id = payload["id"]
        if measured:
            target = (self.visit_id, STAGES[name]) if ok else None
            self._note(name, self.index, target, sent, answered, status, payload)
        if not ok:
            self.recover()
            return False
        self.step = (self.step + 1) % len(CYCLE)
        return self.step == 0

    def _request(self, name: str) -> tuple[str, dict | None]:
        site, visit = self.site, self.visit_id
        return {
            "check_in": (f"{site}/visits", {"code": self.code}),
            "assign_booth": (f"{site}/visits/{visit}/booth", {"booth_id": self.booth}),
            "record_consumption": (f"{site}/visits/{visit}/consumptions", {
                "substances": ["fentanyl"], "route": "injects", "fentanyl_strip": "positive"}),
            "start_observation": (f"{site}/visits/{visit}/observation", None),
            "mark_booth_clean": (f"{site}/booths/{self.booth}/clean", None),
            "discharge": (f"{site}/visits/{visit}/discharge", {}),
        }[name]

    def bare_tap(self) -> None:
        name = self.cfg["tap"].strip("/")
        status, payload, sent, answered = self.post(self.base + self.cfg["tap"], None)
        poked = name == "poke" and 200 <= status < 300
        self._note(name, "n" if poked else None, payload["n"] if poked else None, sent,
                   answered, status, payload)

    def post(self, url: str, body: dict | None) -> tuple[int, object, float, float]:
        """POST with a fresh Idempotency-Key: (status, JSON answer or error, sent, answered);
        status 0 when no answer came."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        sent = time.monotonic()
        try:
            try:
                response = self.http.post(url, json=body, headers=headers,
                                          timeout=HTTP_TIMEOUT)
            except requests.ConnectionError:
                # The server closed the idle keep-alive connection as we reused it; a
                # browser retries, and the same Idempotency-Key makes that safe.
                self.retries += 1
                response = self.http.post(url, json=body, headers=headers,
                                          timeout=HTTP_TIMEOUT)
            answered = time.monotonic()
            return (response.status_code, response.json() if response.content else {}, sent,
                    answered)
        except (requests.RequestException, ValueError) as err:
            return 0, f"{type(err).__name__}: {err}", sent, time.monotonic()

    def _note(self, name, key, target, sent, answered, status, payload) -> None:
        self.actions.append((name, key, target, sent, answered, status))
        if not 200 <= status < 300:
            self.failures.append(f"{name}: {status or 'no answer'} {str(payload)[:200]}")

    def recover(self) -> None:
        """After a refusal, leave the floor as a nurse would (discharge, clean), unmeasured,
        and start a new cycle."""
        if self.visit_id is not None:
            self.post(f"{self.site}/visits/{self.visit_id}/discharge", {"reason": "other"})
        self.post(f"{self.site}/booths/{self.booth}/clean", None)
        self.step, self.visit_id = 0, None


def tablets_worker(conn, base_url: str, cfg: dict) -> None:
    """A process running ``cfg['tablets']`` tablets as threads once told to go."""
    tablets = [Tablet(i, base_url, cfg) for i in range(cfg["tablets"])]
    try:
        warming = [threading.Thread(target=t.warm_up, daemon=True) for t in tablets]
        for thread in warming:
            thread.start()
        for thread in warming:
            thread.join(timeout=len(CYCLE) * HTTP_TIMEOUT)
        conn.send(("ready", None))
        _go, seconds = conn.recv()
        started = time.monotonic()
        deadline = started + seconds
        threads = [threading.Thread(target=t.run, args=(deadline,), daemon=True)
                   for t in tablets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 4 * HTTP_TIMEOUT)
        ended = time.monotonic()
        conn.send(("done", {
            "started": started, "ended": ended,
            "actions": [a for t in tablets for a in t.actions],
            "failures": [f for t in tablets for f in t.failures],
            "retries": sum(t.retries for t in tablets)}))
    except Exception:  # noqa: BLE001 - handed to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        for tablet in tablets:
            tablet.http.close()


# --- A phase ---------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                text = (entry / "stat").read_text()
                fields = text[text.rfind(")") + 2:].split()
                stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    wanted, total = set(pids), 0
    for pid, (ppid, ticks) in stats.items():
        if pid in wanted or ppid in wanted:
            total += ticks
    return total / tick


def _receive(conn, process, timeout: float, what: str):
    if not conn.poll(timeout):
        raise RuntimeError(f"{what}: no answer in {timeout:.0f} s")
    kind, payload = conn.recv()
    if kind == "error":
        raise RuntimeError(f"{what} failed:\n{payload}")
    return payload


def run_phase(name: str, server: Server, mode: str, args, screen_cfg: dict,
              tablet_cfg: dict) -> dict:
    """Start the screens, then the tablets; run; let the screens catch up; collect."""
    ctx = multiprocessing.get_context("spawn")
    procs, screen_conns = [], []
    per_proc = [len(range(i, args.screens, args.screen_procs))
                for i in range(args.screen_procs)]
    try:
        for count in per_proc:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=screens_worker, args=(theirs, server.url, screen_cfg,
                                                            count), daemon=True)
            proc.start()
            procs.append(proc)
            screen_conns.append(mine)
        for conn, proc in zip(screen_conns, procs, strict=True):
            _receive(conn, proc, 90, f"{name}: screens")
        mine, theirs = ctx.Pipe()
        tablets = ctx.Process(target=tablets_worker, args=(theirs, server.url,
                                                           {**tablet_cfg, "mode": mode}),
                              daemon=True)
        tablets.start()
        procs.append(tablets)
        _receive(mine, tablets, len(CYCLE) * HTTP_TIMEOUT + 30, f"{name}: tablets")
        # Let the hints of the tablets' warm-up die down before the clock starts.
        for conn in screen_conns:
            conn.send(("settle", None))
        for conn, proc in zip(screen_conns, procs[:len(screen_conns)], strict=True):
            _receive(conn, proc, DRAIN_SECONDS + 30, f"{name}: screens")
        print(f"  {name}: {args.screens} screens and {args.tablets} tablets ready; "
              f"running {args.seconds:g} s", flush=True)
        groups = {"server": [server.process.pid], "screens": [p.pid for p in procs[:-1]],
                  "tablets": [tablets.pid]}
        cpu_before = {group: cpu_seconds(pids) for group, pids in groups.items()}
        log_from = server.log_path.stat().st_size
        mine.send(("go", args.seconds))
        run = _receive(mine, tablets, args.seconds + 5 * HTTP_TIMEOUT, f"{name}: tablets")
        run["log_span"] = (log_from, server.log_path.stat().st_size)
        run["cpu"] = {group: (cpu_seconds(pids) - cpu_before[group])
                      / max(run["ended"] - run["started"], 1e-9)
                      for group, pids in groups.items()}
        run.update(collect_screens(screen_conns, procs, DRAIN_SECONDS + 30, name))
        return run
    finally:
        end_processes(procs)


def collect_screens(conns, procs, timeout: float, name: str) -> dict:
    """Tell each screens process to stop; gather what its screens saw."""
    screens, disconnected = [], 0
    for conn in conns:
        conn.send(("stop", None))
    for conn, proc in zip(conns, procs[:len(conns)], strict=True):
        done = _receive(conn, proc, timeout, f"{name}: screens")
        screens.extend(done["screens"])
        disconnected += done["disconnected"]
    return {"screens": screens, "disconnected": disconnected}


def end_processes(procs) -> None:
    """Wait for the phase's processes, and end any still running, by pid."""
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive() and proc.pid:
            os.kill(proc.pid, signal.SIGTERM)
            proc.join(timeout=5)


def analyse(run: dict, server_log: Path) -> dict:
    """Latencies, throughput and the change-to-every-screen figures of one phase."""
    actions = run["actions"]
    ok = [a for a in actions if 200 <= a[5] < 300]
    duration = run["ended"] - run["started"]
    by_name = defaultdict(list)
    for action in ok:
        by_name[action[0]].append(action[4] - action[3])
    # Per screen, per key: times and markers in the order the screen first saw them.
    screens = [{key: ([t for t, _ in h], [m for _, m in h]) for key, h in s["history"].items()}
               for s in run["screens"]]
    every, median_screen, unseen = [], [], 0
    for _name, key, target, _sent, answered, _status in ok:
        if key is None or target is None:
            continue
        waits = []
        for screen in screens:
            times, markers = screen.get(key, ((), ()))
            i = bisect.bisect_left(markers, target)
            if i == len(markers):
                break
            waits.append(max(0.0, times[i] - answered))
        if len(waits) < len(screens):
            unseen += 1
            continue
        waits.sort()
        every.append(waits[-1])
        median_screen.append(waits[len(waits) // 2])
    broadcast = defaultdict(list)
    for screen in run["screens"]:
        for n, seconds in screen["broadcast"]:
            broadcast[n].append(seconds)
    broadcast_every = [max(v) for v in broadcast.values() if len(v) == len(run["screens"])]
    return {
        "duration": duration,
        "actions": summary([a[4] - a[3] for a in ok]),
        "by_name": {name: summary(v) for name, v in by_name.items()},
        "throughput": len(ok) / duration if duration > 0 else 0.0,
        "failed": len(actions) - len(ok),
        "failures": run["failures"][:5]
        + sorted({k for s in run["screens"] for k in s["error_kinds"]})[:3],
        "retries": run["retries"],
        "every_screen": summary(every),
        "median_screen": summary(median_screen),
        "unseen": unseen,
        "broadcast": summary(broadcast_every),
        "broadcast_incomplete": len(broadcast) - len(broadcast_every),
        "fetches": sum(s["fetches"] for s in run["screens"]),
        "fetch_errors": sum(s["errors"] for s in run["screens"]),
        "events": sum(s["events"] for s in run["screens"]),
        "pushed": sum(s.get("pushed", 0) for s in run["screens"]),
        "stale": sum(s.get("stale", 0) for s in run["screens"]),
        "disconnected": run["disconnected"],
        "server": server_breakdown(server_log, run["log_span"], duration),
        "cpu": run["cpu"],
        "changes": sum(1 for a in ok if a[2] is not None),
    }


_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+)" (?P<status>\d{3}) \S+ (?P<ms>\d+)ms')


def server_breakdown(log_path: Path, span: tuple[int, int], duration: float) -> list[tuple]:
    """Per route, from the lines gunicorn's access log gained while the tablets ran: count,
    mean and p95 ms, and the sum of request times per second of the run (above 1.0: requests
    overlapped, i.e. waited)."""
    per_route = defaultdict(list)
    with contextlib.suppress(OSError), open(log_path, "rb") as log:
        log.seek(span[0])
        for line in log.read(span[1] - span[0]).decode(errors="replace").splitlines():
            match = _ACCESS.search(line)
            if not match or match["path"].startswith("/socket.io"):
                continue
            route = f"{match['method']} {re.sub(r'/[0-9]+', '/{id}', match['path'])}"
            per_route[route].append(int(match["ms"]) / 1000)
    rows = []
    for route, seconds in sorted(per_route.items(), key=lambda kv: -sum(kv[1])):
        s = summary(seconds)
        rows.append((route, s["n"], s["mean"], s["p95"], sum(seconds) / max(duration, 1e-9)))
    return rows


# --- Report ----------------------------------------------------------------------------------


def report(results: dict, args, db_label: str) -> bool:
    """Print the figures; return whether both goals are met (False without an SRS phase)."""
    empty = {"n": 0}
    srs, noop = results.get("srs"), results.get("bare-http")
    bcast, live = results.get("bare-broadcast"), results.get("bare-live")
    line = "-" * 100
    print()
    print(line)
    print(f"SRS floor benchmark: {args.tablets} tablets, {args.screens} screens, "
          f"{args.seconds:g} s per phase, think {args.think_ms:g} ms (x0.5-1.5), "
          f"{args.threads} server threads, {os.cpu_count()} CPUs, database {db_label}")
    print(line)
    for phase, r in results.items():
        print(f"{phase}: {PHASES[phase]}")
        print(f"    {r['throughput']:.1f} actions/s over {r['duration']:.1f} s, {r['failed']} "
              f"failed, {r['retries']} retried; screens: {r['events']} topics heard, "
              f"{r['fetches']} fetches, {r['fetch_errors']} failed fetches, "
              f"{r['pushed']} fragment pushes ({r['stale']} stale fragments dropped), "
              f"{r['disconnected']} dropped sockets")
        # Less the one fetch each screen made on connecting, before the run.
        per_change = (f"{(r['fetches'] - args.screens) / r['changes']:.1f}" if r["changes"]
                      else "-")
        print("    CPU cores busy: " + ", ".join(f"{g} {c:.2f}" for g, c in r["cpu"].items())
              + f"; screen fetches per change {per_change}")
        server_cpu = r["cpu"]["server"] * r["duration"] * 1000
        served = sum(row[1] for row in r["server"])
        print(f"    server CPU: {server_cpu / max(served, 1):.1f} ms per HTTP request served"
              + (f", {server_cpu / r['changes']:.0f} ms per change" if r["changes"] else ""))
        for failure in r["failures"]:
            print(f"    failure: {failure}")
    print()
    print("Action latency (request sent to response read, at the tablet)")
    if srs:
        print(f"  SRS, all actions            {fmt(srs['actions'])}")
        for name in CYCLE:
            if name in srs["by_name"]:
                print(f"    {name:<25} {fmt(srs['by_name'][name])}")
    for label, r in (("bare POST /noop", noop), ("bare POST /poke, hint only", bcast),
                     ("bare POST /poke, re-fetch", live)):
        if r:
            print(f"  {label:<27} {fmt(r['actions'])}")
    print()
    print("Change visible on every screen")
    if srs:
        print(f"  SRS, last screen            {fmt(srs['every_screen'])}")
        print(f"  SRS, median screen          {fmt(srs['median_screen'])}")
        print("    (from the action's response to the screen's board showing it)")
        if srs["unseen"]:
            print(f"  SRS: {srs['unseen']} changes never reached every screen")
    if live:
        print(f"  bare hint + GET /state      {fmt(live['every_screen'])}")
        print("    (from /poke's response to the last screen's /state showing it)")
    if bcast:
        print(f"  bare broadcast              {fmt(bcast['broadcast'])}")
        print("    (from the server's emit to the last screen's receipt of the hint)")
    print()
    print("Throughput (actions/s): " + "   ".join(
        f"{phase} {r['throughput']:.1f}" for phase, r in results.items()))
    print()
    if srs and (noop or live or bcast):
        print("Ratios, SRS / bare")
        for key in ("p50", "p95", "p99"):
            print(f"  {key}: action / bare /noop "
                  f"{ratio(srs['actions'], (noop or {}).get('actions', empty), key)}"
                  f"   every screen / bare hint+GET "
                  f"{ratio(srs['every_screen'], (live or {}).get('every_screen', empty), key)}"
                  f"   every screen / bare broadcast "
                  f"{ratio(srs['every_screen'], (bcast or {}).get('broadcast', empty), key)}")
        if noop and noop["throughput"]:
            print(f"  throughput: SRS / bare /noop {srs['throughput'] / noop['throughput']:.2f}")
        print()
    print("Server side (gunicorn access log): route, requests, mean ms, p95 ms, "
          "request-seconds per second of the phase")
    for phase, r in results.items():
        for route, n, mean, p95, load in r["server"][:8]:
            print(f"  {phase:<14} {route:<52} {n:6d} {mean:7.1f} {p95:7.1f} {load:6.2f}")
    print()
    if not srs:
        print(line)
        return False
    action_ok = srs["actions"].get("n", 0) > 0 and srs["actions"]["p95"] <= GOAL_ACTION_P95_MS
    screens_ok = (srs["every_screen"].get("n", 0) > 0 and not srs["unseen"]
                  and srs["every_screen"]["p95"] <= GOAL_SCREENS_P95_MS)
    p95 = srs["actions"].get("p95", float("nan"))
    sp95 = srs["every_screen"].get("p95", float("nan"))
    print(f"Goal: action p95 <= {GOAL_ACTION_P95_MS:g} ms: {p95:.1f} ms -> "
          f"{'MET' if action_ok else 'MISSED'}")
    print(f"Goal: change on all {args.screens} screens p95 <= {GOAL_SCREENS_P95_MS:g} ms: "
          f"{sp95:.1f} ms -> {'MET' if screens_ok else 'MISSED'}")
    print(line)
    return action_ok and screens_ok


# --- In-process profile (--profile) ----------------------------------------------------------


def profile_in_process(env: dict, seeded: dict, repeats: int = 30) -> None:
    """Time one board read and one visit cycle through the Flask test client on the bench
    database: SQL statements and their time per request, and cProfile by package."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("SRS_")})
    from sqlalchemy import event

    from srs import create_app
    from srs.extensions import db

    app = create_app()
    client = app.test_client()
    site = seeded["site_id"]
    board_url = f"/api/v1/sites/{site}/board"
    screen = {"Authorization": f"Bearer {seeded['screen_token']}"}
    nurse = {"Authorization": f"Bearer {seeded['tokens'][0]}"}
    sql = {"n": 0, "seconds": 0.0, "commits": 0}

    def before(conn, *_args):
        conn.info["bench_t"] = time.perf_counter()

    def after(conn, *_args):
        sql["n"] += 1
        sql["seconds"] += time.perf_counter() - conn.info.pop("bench_t", time.perf_counter())

    def commit(_conn):
        sql["commits"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "commit", commit)
    timings = defaultdict(list)

    def call(label: str, method: str, url: str, headers: dict, body=None):
        sql.update(n=0, seconds=0.0, commits=0)
        started = time.perf_counter()
        response = client.open(url, method=method, json=body,
                               headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        elapsed = time.perf_counter() - started
        assert response.status_code < 300, (label, response.status_code, response.get_data())
        timings[label].append((elapsed, sql["n"], sql["seconds"], sql["commits"]))
        return response.get_json()

    def cycle(code: str):
        base = f"/api/v1/sites/{site}"
        vid = call("check_in", "POST", f"{base}/visits", nurse, {"code": code})["id"]
        call("assign_booth", "POST", f"{base}/visits/{vid}/booth", nurse,
             {"booth_id": seeded["spare_booth"]})
        call("record_consumption", "POST", f"{base}/visits/{vid}/consumptions", nurse,
             {"substances": ["fentanyl"], "route": "injects"})
        call("start_observation", "POST", f"{base}/visits/{vid}/observation", nurse)
        call("mark_booth_clean", "POST", f"{base}/booths/{seeded['spare_booth']}/clean", nurse)
        call("discharge", "POST", f"{base}/visits/{vid}/discharge", nurse, {})

    call("board (warm-up)", "GET", board_url, screen)
    cycle("X-ZZZZ-1999")
    timings.clear()
    for _ in range(repeats):  # timed without the profiler
        call("GET board", "GET", board_url, screen)
        cycle("X-ZZZZ-1999")
    print()
    print(f"In-process (Flask test client, no network, one thread; median of {repeats}; "
          f"the board as the run left it):")
    print(f"  {'request':<22} {'ms':>7} {'SQL stmts':>9} {'SQL ms':>7} {'commits':>7}")
    for label, rows in timings.items():
        rows.sort()
        elapsed, n, seconds, commits = rows[len(rows) // 2]
        print(f"  {label:<22} {elapsed * 1000:7.2f} {n:9d} {seconds * 1000:7.2f} {commits:7d}")
    print("  (SQL ms: statement execution as the driver reports it; row fetching and "
          "COMMIT are not in it)")
    for label, run, per_run in (
            ("GET board", lambda: call("GET board", "GET", board_url, screen), 1),
            ("one action (mean of a visit cycle)", lambda: cycle("X-ZZZZ-1999"), 6)):
        stats, total = _profiled(run, repeats)
        print(f"  where the time of {label} goes (cProfile, own time):")
        print("    by package: " + _by_package(stats, total))
        top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:8]
        print("    by function: " + ", ".join(
            f"{_short(where)} {100 * row[2] / total:.0f}%" for where, row in top))
        print("    steps (cumulative, ms per request under the profiler, "
              f"of {1000 * total / repeats / per_run:.1f} ms):")
        for step, (path_end, func) in PROFILE_STEPS.items():
            cum = _cumulative(stats, path_end, func)
            if cum:
                print(f"      {step:<44} {1000 * cum / repeats / per_run:6.2f}")
    profile_fan_out(app, site, sql, repeats)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def profile_fan_out(app, site_id: int, sql: dict, repeats: int) -> None:
    """What one change costs the publisher before it sends: the board read once and each
    fragment rendered once per audience (``srs.live._publish``), for a change that touches
    the board, the queue and after-care, as every audience a site's screens can be."""
    from srs import live
    from srs.extensions import db

    topics = ("board", "queue", "aftercare")
    audiences = tuple(dict.fromkeys(a for kind in live._screens
                                    for a in live._screens[kind][0]))

    def render():
        with app.app_context(), app.test_request_context("/", base_url="http://srs.local"):
            try:
                return live._renderer(site_id, topics, audiences)
            finally:
                db.session.remove()

    render()
    rows = []
    for _ in range(repeats):
        sql.update(n=0, seconds=0.0, commits=0)
        started = time.perf_counter()
        _version, html = render()
        rows.append((time.perf_counter() - started, sql["n"], sql["seconds"]))
    rows.sort()
    elapsed, n, seconds = rows[len(rows) // 2]
    size = sum(len(h) for per in html.values() for h in per.values())
    print(f"  one change's fan-out ({', '.join(topics)} for {', '.join(audiences)}): "
          f"{elapsed * 1000:.2f} ms, {n} SQL statements ({seconds * 1000:.2f} ms), "
          f"{size / 1024:.0f} KB of HTML")
    stats, total = _profiled(render, repeats)
    print("    by package: " + _by_package(stats, total))
    for step, (path_end, func) in FAN_OUT_STEPS.items():
        cum = _cumulative(stats, path_end, func)
        if cum:
            print(f"      {step:<44} {1000 * cum / repeats:6.2f} ms")


def _profiled(run, repeats: int) -> tuple[pstats.Stats, float]:
    """``run`` called ``repeats`` times under cProfile: its stats and their total own time."""
    prof = cProfile.Profile()
    for _ in range(repeats):
        prof.runcall(run)
    stats = pstats.Stats(prof)
    return stats, sum(v[2] for v in stats.stats.values())


def _by_package(stats: pstats.Stats, total: float) -> str:
    """The eight packages that took most of the own time, with their shares."""
    packages = defaultdict(float)
    for (filename, _line, _func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        packages[_package(filename)] += tt
    return ", ".join(f"{package} {100 * seconds / total:.0f}%" for package, seconds
                     in sorted(packages.items(), key=lambda kv: -kv[1])[:8])


def _cumulative(stats: pstats.Stats, path_end: str, func: str) -> float:
    """Cumulative seconds of the function ``func`` of the file ending ``path_end``."""
    return sum(row[3] for (filename, _line, name), row in stats.stats.items()
               if name == func and filename.endswith(path_end))


FAN_OUT_STEPS = {
    "board read (site_board)": ("srs/booths/service.py", "site_board"),
    "templates rendered (render_template)": ("flask/templating.py", "render_template"),
}


# What a request's time is spent on: (file ending, function) whose cumulative time to show.
PROFILE_STEPS = {
    "bearer token -> staff and site (_token_and_site)": ("srs/auth/service.py",
                                                          "_token_and_site"),
    "site lookup (get_site: in the session)": ("srs/sites/service.py", "get_site"),
    "idempotency key claimed (_claim, commit)": ("srs/idempotency.py", "_claim"),
    "board queries (site_board)": ("srs/booths/service.py", "site_board"),
    "  of which today's figures": ("srs/booths/service.py", "todays_figures"),
    "service: check_in": ("srs/booths/service.py", "check_in"),
    "service: assign_booth": ("srs/booths/service.py", "assign_booth"),
    "service: record_consumption": ("srs/booths/service.py", "record_consumption"),
    "service: start_observation": ("srs/booths/service.py", "start_observation"),
    "service: mark_booth_clean": ("srs/booths/service.py", "mark_booth_clean"),
    "service: discharge": ("srs/booths/service.py", "discharge"),
    "announce (emit to the room)": ("srs/live.py", "announce"),
    "marshmallow dump": ("marshmallow/schema.py", "dump"),
    "session commits (db.session.commit)": ("sqlalchemy/orm/scoping.py", "commit"),
    "lazy loads (relationship attributes)": ("sqlalchemy/orm/strategies.py", "_load_for_state"),
}


def _short(where: tuple) -> str:
    filename, line, func = where
    if filename == "~":
        return func.strip("<>").replace("built-in method ", "").replace("method ", "")
    return f"{Path(filename).parent.name}/{Path(filename).name}:{func}"


def _package(filename: str) -> str:
    if "site-packages" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if f"{os.sep}srs{os.sep}" in filename:
        return "srs"
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    return "stdlib: " + Path(filename).stem


# --- Main ------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor",
        description="Tablets run visit cycles while screens watch; SRS against a bare "
                    "Flask + Socket.IO baseline.")
    parser.add_argument("--tablets", type=int, default=30, help="simulated tablets (30)")
    parser.add_argument("--screens", type=int, default=50, help="watching screens (50)")
    parser.add_argument("--seconds", type=float, default=60,
                        help="length of each phase (60: about 360 taps, so that p95 and p99 "
                             "rest on more than a handful)")
    parser.add_argument("--think-ms", type=float, default=5000,
                        help="a tablet's pause between taps, x0.5-1.5 at random (5000: 30 "
                             "tablets tap about 6 times a second); 0: every tablet taps as "
                             "soon as it is answered")
    parser.add_argument("--max-cycles", type=int, default=10_000,
                        help="at most this many visit cycles (or bare taps) per tablet")
    parser.add_argument("--threads", type=int, default=None,
                        help="server threads (SRS_THREADS); default 2 x screens + tablets + 16")
    parser.add_argument("--screen-procs", type=int, default=2,
                        help="processes the screens are spread over (2)")
    parser.add_argument("--database-url", default=None,
                        help="a local PostgreSQL URL, e.g. "
                             "postgresql+psycopg://postgres@127.0.0.1:5432/test: a throw-away "
                             "database is created and dropped there; default a temp SQLite file")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"which phases to run, comma-separated ({','.join(PHASES)})")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, time one board read and one visit cycle in-process")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a goal is missed")
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="copy the servers' logs to this folder")
    args = parser.parse_args(argv)
    if not 1 <= args.tablets <= 500 or not 1 <= args.screens <= 500:
        parser.error("--tablets and --screens: 1 to 500")
    if not 0 < args.seconds <= 600:
        parser.error("--seconds: more than 0, at most 600")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not args.phases or set(args.phases) - set(PHASES):
        parser.error(f"--phases: any of {', '.join(PHASES)}")
    args.screen_procs = max(1, min(args.screen_procs, args.screens))
    args.think = args.think_ms / 1000
    if args.threads is None:
        args.threads = 2 * args.screens + args.tablets + 16
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="srs-bench-"))
    database = Database(args.database_url, tmp)
    servers: list[Server] = []
    try:
        url = database.create()
        db_label = "SQLite (temp file)" if not args.database_url else (
            f"PostgreSQL ({database.name})")
        instance = tmp / "instance"
        instance.mkdir()
        env = srs_env(url, instance, SRS_THREADS=args.threads, SRS_SCHEDULER="on",
                      SRS_HOST="127.0.0.1")
        print(f"Migrating and seeding {db_label}...", flush=True)
        migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db",
                                   "upgrade"], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300)
        if migrated.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed:\n{migrated.stderr[-3000:]}")
        seeded = seed(env, args.tablets) if "srs" in args.phases or args.profile else {}
        results = {}
        common = {"tablets": args.tablets, "think": args.think, "max_cycles": args.max_cycles}

        if "srs" in args.phases:
            port = free_port()
            server = Server("SRS", [sys.executable, "app.py"], {**env, "SRS_PORT": str(port)},
                            tmp / "srs.log", port)
            servers.append(server)
            server.start()
            results["srs"] = analyse(run_phase(
                "srs", server, "srs", args,
                {"mode": "srs", "board_path": f"/api/v1/sites/{seeded['site_id']}/board",
                 "token": seeded["screen_token"], "codes": seeded["codes"],
                 "booths": seeded["booths"]},
                {**common, **seeded}), server.log_path)
            server.stop()
        for phase in [p for p in PHASES if p != "srs" and p in args.phases]:
            port = free_port()
            server = Server(phase, [sys.executable, "-m", "bench.bare", "--port", str(port),
                                    "--threads", str(args.threads)],
                            {k: v for k, v in env.items() if not k.startswith("SRS_")},
                            tmp / f"{phase}.log", port)
            servers.append(server)
            server.start()
            results[phase] = analyse(run_phase(
                phase, server, "bare", args,
                {"mode": "bare", "board_path": "/state", "refetch": phase == "bare-live"},
                {**common, "tap": "/noop" if phase == "bare-http" else "/poke"}),
                server.log_path)
            server.stop()

        met = report(results, args, db_label)
        if args.profile and seeded:
            profile_in_process(env, seeded)
        return 1 if args.check and not met else 0
    finally:
        clean_up(servers, database, tmp, args.keep_logs)


def clean_up(servers: list, database: "Database", tmp: Path, keep_logs: Path | None) -> None:
    """Stop the run's servers, keep their logs if asked, drop its database and temp files."""
    for server in servers:
        server.stop()
    if keep_logs is not None:
        keep_logs.mkdir(parents=True, exist_ok=True)
        for log in tmp.glob("*.log"):
            shutil.copy(log, keep_logs / log.name)
    database.drop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
