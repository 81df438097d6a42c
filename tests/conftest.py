"""Fixtures in the flaskr style (app, client, runner, auth, socket_client) plus a real server.

The database is SQLite by default; set ``SRS_TEST_DATABASE_URL`` to a
PostgreSQL URL to run the same suite there (each test session gets its own
throw-away databases on that server).
"""

import contextlib
import contextvars
import itertools
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from srs import create_app
from srs.extensions import db, limiter, socketio

ROOT = Path(__file__).resolve().parent.parent
# Keep the developer's own instance/ (their demo database, secret, logins) out of the tests.
os.environ["SRS_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="srs-test-instance-")
BASE_DATABASE_URL = os.environ.get("SRS_TEST_DATABASE_URL", "")
ON_POSTGRES = BASE_DATABASE_URL.startswith("postgresql")
OUTPUT = ROOT / "test-output"


class Databases:
    """Hands out empty databases: SQLite files, or fresh PostgreSQL databases."""

    def __init__(self, tmp_root: Path):
        self.tmp_root = tmp_root
        self.created: list[str] = []
        self._template: str | None = None

    def new(self, label: str) -> str:
        if not ON_POSTGRES:
            return f"sqlite:///{self.tmp_root / f'{label}-{uuid.uuid4().hex[:8]}.sqlite3'}"
        name = f"srs_{label}_{uuid.uuid4().hex[:10]}".replace("-", "_")
        admin = create_engine(BASE_DATABASE_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        return make_url(BASE_DATABASE_URL).set(database=name).render_as_string(
            hide_password=False)

    def new_migrated(self, label: str) -> str:
        """An empty database at the latest migration, copied from one migrated per session."""
        if self._template is None:
            self._template = self.new("template")
            result = flask_cli(["db", "upgrade"], server_env(self._template))
            assert result.returncode == 0, result.stderr
        if not ON_POSTGRES:
            url = self.new(label)
            # The backup API copies what the write-ahead log holds too.
            source = sqlite3.connect(make_url(self._template).database)
            target = sqlite3.connect(make_url(url).database)
            source.backup(target)
            source.close()
            target.close()
            return url
        name = f"srs_{label}_{uuid.uuid4().hex[:10]}"
        admin = create_engine(BASE_DATABASE_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(
                f'CREATE DATABASE "{name}" TEMPLATE "{make_url(self._template).database}"'))
        admin.dispose()
        self.created.append(name)
        return make_url(BASE_DATABASE_URL).set(database=name).render_as_string(
            hide_password=False)

    def drop_all(self):
        if not self.created:
            return
        admin = create_engine(BASE_DATABASE_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


# A test process writing and reading beside a server on the same SQLite file must not hold
# the write lock between statements; the server keeps its own discipline.
BESIDE_A_SERVER = {"SRS_SQLITE_TRANSACTIONS": "autocommit"}


def app_config(database_url: str, **extra) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SRS_SCHEDULER": False,
        # Fast hashes: the tests check behaviour, not the cost of scrypt.
        "SRS_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }
    config.update(extra)
    return config


# --- In-process tests: one app per configuration, each test rolled back -------------------
#
# Building an app costs a fifth of a second and a database copy more, so the suite builds one
# app per distinct configuration and one schema per session. Each test runs inside a
# transaction of one connection that is rolled back at its end: every session the app opens
# (the test's own, each request's) joins that transaction through a savepoint, so a
# ``commit()`` in the app releases a savepoint and the test's rollback undoes it all. A module
# can build data once for all its tests (``rolled_back`` around a module fixture): each test
# then runs in a savepoint of the module's transaction. A test whose code runs on other
# threads or other connections (a publisher rendering beside a tap, a second engine, the
# scheduler's lock) is marked ``commits``: it gets real commits, and the tables are emptied
# after it.

# Sessions join a connection's transaction through a savepoint (no effect on an engine).
db.session.session_factory.configure(join_transaction_mode="create_savepoint")


class SharedApps:
    """One app per distinct test configuration, all on the session's one schema."""

    def __init__(self, url: str):
        self.url = url
        self._apps: dict[tuple, object] = {}
        self._engines = None

    def get(self, **extra):
        key = tuple(sorted((name, repr(value)) for name, value in extra.items()))
        app = self._apps.get(key)
        if app is None:
            app = create_app(app_config(self.url, **extra))
            app.test_client_class = IsolatedClient
            remember_extensions(app)
            with app.app_context():
                if self._engines is None:
                    self._engines = db.engines
                    db.metadata.create_all(db.engine)
                elif "SQLALCHEMY_DATABASE_URI" not in extra \
                        and "SQLALCHEMY_ENGINE_OPTIONS" not in extra:
                    # One pool for every configuration: a transaction held by one is the
                    # transaction of all (on SQLite a second connection would wait for it).
                    for engine in db.engines.values():
                        engine.dispose()
                    db._app_engines[app] = self._engines
            self._apps[key] = app
        return app


@pytest.fixture(scope="session")
def shared_apps(databases) -> SharedApps:
    url = databases.new("unit")
    apps = SharedApps(url)
    yield apps
    for app in apps._apps.values():
        with app.app_context():
            for engine in db.engines.values():
                if isinstance(engine, Engine):
                    engine.dispose()


# Flask-SocketIO and Flask-Limiter keep what ``init_app`` built (the Socket.IO server, the
# rate limits' storage) on their one shared instance: the app built last would serve every
# test. Each shared app remembers its own, and each test binds them again.
_LIMITER_STATE = ("_storage", "_limiter", "_in_memory_fallback_enabled", "_fallback_storage",
                  "_fallback_limiter")


def remember_extensions(app) -> None:
    """Keep the Socket.IO server and rate-limit storage that building ``app`` made."""
    app.extensions["srs_tests_bound"] = (
        socketio.server, {name: getattr(limiter, name, None) for name in _LIMITER_STATE})


def _bind_extensions(app) -> None:
    """Point the shared Socket.IO and limiter instances at ``app``'s own, counts emptied; the
    limiter starts out trusting its storage, as a process that just started does."""
    bound = app.extensions.get("srs_tests_bound")
    if bound is not None:
        socketio.server = bound[0]
        for name, value in bound[1].items():
            setattr(limiter, name, value)
    limiter._storage_dead = False
    for storage in (limiter._storage, getattr(limiter, "_fallback_storage", None)):
        if storage is not None:
            with contextlib.suppress(Exception):  # a Redis that is down holds no counts
                storage.reset()


@contextlib.contextmanager
def _test_context(app):
    """``app``'s context for one test: its Socket.IO server and rate limits bound, the limits'
    counts reset; at its end the session removed and ``app.config`` as it was."""
    with app.app_context():
        saved_config = dict(app.config)
        _bind_extensions(app)
        try:
            yield app
        finally:
            db.session.remove()
            app.config.clear()
            app.config.update(saved_config)


@contextlib.contextmanager
def rolled_back(app):
    """Run the block inside ``app``'s context, in a transaction rolled back at its end.

    Nested inside another ``rolled_back`` of the same app (a module's data), the block runs
    in a savepoint of the outer transaction.
    """
    with _test_context(app):
        engines = db.engines
        bound = engines[None]
        if isinstance(bound, Connection):
            connection, transaction = bound, bound.begin_nested()
        else:
            connection = bound.connect()
            transaction = connection.begin()
            engines[None] = connection
        try:
            yield app
        finally:
            db.session.remove()  # its savepoint first, then the transaction around it
            transaction.rollback()
            if connection is not bound:
                engines[None] = bound
                connection.close()


def empty_database(url: str, *, keep: frozenset = frozenset()) -> None:
    """Every table of SRS's schema emptied, as a new database has it (but ``keep``)."""
    tables = [t for t in db.metadata.sorted_tables if t.name not in keep]
    engine = create_engine(url, poolclass=NullPool)
    try:
        if engine.dialect.name == "postgresql":
            _truncate(engine, tables)
        else:
            _delete_all(engine, tables)
    finally:
        engine.dispose()


def _delete_all(engine, tables) -> None:
    """DELETE every row on SQLite; the audit trail's append-only triggers stand aside."""
    with engine.begin() as conn:
        triggers = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all()
        for name, _sql in triggers:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        for table in reversed(tables):
            conn.execute(table.delete())
        for _name, sql in triggers:
            conn.exec_driver_sql(sql)


def _truncate(engine, tables) -> None:
    """TRUNCATE on PostgreSQL, beside a running server: its scheduler's and publisher's
    transactions hold table locks for moments, so the TRUNCATE waits for each lock only
    briefly (never long enough to deadlock with them) and tries again."""
    names = ", ".join(f'"{t.name}"' for t in tables)
    for attempt in itertools.count(1):
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '100ms'"))
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        except OperationalError:
            if attempt >= 100:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def isolated(app, request):
    """The isolation a test asked for: rolled back, or real commits emptied afterwards."""
    if request.node.get_closest_marker("commits") is None:
        with rolled_back(app):
            yield app
        return
    with _test_context(app):
        yield app
    empty_database(app.config["SQLALCHEMY_DATABASE_URI"])


@pytest.fixture(scope="module")
def kept_floor(shared_apps):
    """The matrices' floor, staff and tokens, built once per module (see routes.KeptFloor)."""
    from routes import KeptFloor

    with rolled_back(shared_apps.get()):
        yield KeptFloor()


class IsolatedClient(FlaskClient):
    """Each request gets its own app context, as on a real server.

    The ``app`` fixture keeps an app context pushed so that tests can use the
    factories; without this, requests would share that context's ``g``
    (Flask reuses a pushed app context) and leak state from one to the next.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            # End the test's own transaction: the request then sees what the test wrote,
            # and the test's next read sees what the request wrote.
            db.session.commit()
        # A streamed body (a CSV) is read inside the request's own context: buffered here,
        # since the context that request pushed cannot be popped from another.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(shared_apps, request):
    """The shared app with the default test configuration, isolated for this test."""
    with isolated(shared_apps.get(), request) as isolated_app:
        yield isolated_app


@pytest.fixture
def app_with(shared_apps, request):
    """``app_with(**config)``: the shared app for that configuration, isolated for this test
    (the first test to ask for a configuration pays for building its app)."""
    with contextlib.ExitStack() as stack:
        def make(**config):
            return stack.enter_context(isolated(shared_apps.get(**config), request))
        yield make


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client) -> str:
    """Read the CSRF token a page gives this browser session."""
    page = client.get("/login").get_data(as_text=True)
    match = _CSRF_META.search(page)
    assert match, "the login page carries a CSRF token"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username: str, password: str | None = None, **kwargs):
        from factories import PASSWORD

        return self._client.post("/login", data={
            "username": username,
            "password": PASSWORD if password is None else password,
            "csrf_token": csrf_token(self._client), **kwargs})

    def logout(self):
        return self._client.post("/logout", data={"csrf_token": csrf_token(self._client)})

    def post(self, url: str, data: dict | None = None, **kwargs):
        """A form post with this session's CSRF token."""
        return self._client.post(url, data={"csrf_token": csrf_token(self._client),
                                            **(data or {})}, **kwargs)


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def socket_client(app, client):
    """A Socket.IO test client sharing the Flask test client's cookies; call to connect."""
    made = []

    def connect(**kwargs):
        sc = socketio.test_client(app, flask_test_client=client, **kwargs)
        made.append(sc)
        return sc

    yield connect
    for sc in made:
        if sc.is_connected():
            sc.disconnect()


# --- The real server --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SRS_") or k == "SRS_INSTANCE_PATH"}
    env.update({"SRS_DATABASE_URL": database_url, "SRS_SECRET_KEY": "live-test-secret",
                "SRS_ENV": "development", "PYTHONUNBUFFERED": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def flask_cli(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, **kwargs)


class LiveServer:
    """``python app.py`` (gunicorn, threads, Socket.IO) on a free port and its own database."""

    def __init__(self, database_url: str, log_path: Path, **env_extra):
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = server_env(database_url, SRS_PORT=self.port, SRS_HOST="127.0.0.1",
                              **env_extra)
        self.process = None

    def start(self, timeout: float = 60):
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # Its own process group: stopping it stops its workers too, even after a timeout.
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def kill(self):
        """SIGKILL the server and its workers at once: no shutdown hook runs, as in a crash."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self._reap_group()
        if getattr(self, "log", None):
            self.log.close()

    def _reap_group(self):
        """Wait until no process of the server's group is left (a worker outliving its master
        would keep running the scheduler)."""
        if self.process is None:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline - 5:
                os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(0.05)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap_group()
        if getattr(self, "log", None):
            self.log.close()


# The scheduler's heartbeat is the running server's own: a new database has it within seconds.
SERVER_OWN_TABLES = frozenset({"scheduler_heartbeat"})


@pytest.fixture(scope="module")
def module_server(databases, tmp_path_factory):
    """One real server for a module's tests, on a migrated database of its own, with a test
    app (``.app``) beside it. A test that kills or restarts its server starts its own."""
    url = databases.new_migrated("live")
    server = LiveServer(url, tmp_path_factory.mktemp("server") / "server.log",
                        SRS_SCHEDULER="on")
    server.app = create_app(app_config(url, **BESIDE_A_SERVER))
    try:
        # Given a long time to start: the machine may be busy with the other tests.
        yield server.start(timeout=120)
    finally:
        server.stop()
        with server.app.app_context():
            db.engine.dispose()


@pytest.fixture
def live_server(module_server):
    """The module's real server, its database as new for each test: ``.app`` writes test
    data to it, and every table is emptied after the test.

    What the server keeps in memory carries over from test to test of a module: its rate
    limits count every sign-in from this machine (20 a minute), as they would a day's.
    """
    if module_server.process.poll() is not None:  # a test before this one ended it
        module_server.stop()
        module_server.start(timeout=120)
    with module_server.app.app_context():
        try:
            yield module_server
        finally:
            db.session.remove()
    empty_database(module_server.database_url, keep=SERVER_OWN_TABLES)


@pytest.fixture
def output_dir(request) -> Path:
    """Where a test keeps what a person would look at (screenshots)."""
    path = OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
    path.mkdir(parents=True, exist_ok=True)
    return path


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session")
def browser():
    """Real Chromium (Debian's package) driven by Playwright."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("SRS_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is missing at /usr/bin/chromium and SRS_REQUIRE_BROWSER=1")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def tablet(browser):
    """A fresh browser context at the wall tablet's 1280x800 landscape viewport."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    yield context
    context.close()


def pytest_collection_modifyitems(items):
    """Under pytest-xdist's ``--dist loadgroup``, every real-server test runs on one worker,
    one at a time, while the other worker runs the in-process tests."""
    for item in items:
        if item.get_closest_marker("live") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("live"))
