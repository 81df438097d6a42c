"""Flask extensions, created unbound here and bound in ``create_app``."""

import os
import sqlite3
from contextlib import contextmanager
from contextvars import ContextVar

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf import CSRFProtect
from sqlalchemy import DDL, MetaData, Table, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from srs.config import private_file

# Named constraints make migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_HELD = "srs_held_savepoint"


class UnitSession(FlaskSession):
    """The app's database session, able to hold a unit of work's commits for one real commit.

    Services commit their own operation (``db.session.commit()``, ``srs.unit.commit``).
    Inside :meth:`holding_commits` a ``commit()`` keeps the work so far in a released
    savepoint and a ``rollback()`` goes back to the last such keep, so each service
    behaves as it does alone (a refusal that commits its audit trail first still keeps
    it), while nothing is committed for real until the holder commits, after the block:
    ``srs.idempotency`` stores a request's answer in the action's own transaction that way.
    """

    @contextmanager
    def holding_commits(self):
        """Hold every ``commit()`` inside the block for the caller's one commit after it.

        Leaving the block normally keeps what it left uncommitted too (the caller's
        commit takes it, as a later commit would have); leaving it by an exception
        leaves the transaction to the caller's rollback, which discards all of it.
        Announcements wait for the real commit (``srs.live.after_commit``).
        """
        if _HELD in self.info:
            raise RuntimeError("commits are already held")
        self.info[_HELD] = self.begin_nested()
        try:
            yield
            self.info[_HELD].commit()
        finally:
            self.info.pop(_HELD, None)

    def commit(self) -> None:
        savepoint = self.info.get(_HELD)
        if savepoint is None:
            super().commit()
            return
        try:
            savepoint.commit()  # flushes first: a lost race or a stale row raises here
        finally:
            # Committed or (a refused flush) rolled back: the unit goes on from here.
            self.info[_HELD] = self.begin_nested()
        if self.expire_on_commit:
            # As after a commit: what is read next (the answer's rendering) comes from the
            # database, collections in their order and all.
            self.expire_all()

    def rollback(self) -> None:
        savepoint = self.info.get(_HELD)
        if savepoint is None:
            super().rollback()
            return
        savepoint.rollback()  # back to the last commit, not to the unit's start
        self.info[_HELD] = self.begin_nested()


db = SQLAlchemy(model_class=Base, session_options={"class_": UnitSession})
migrate = Migrate()
socketio = SocketIO()
login_manager = LoginManager()
csrf = CSRFProtect()


def _limit_key() -> str:
    """Whose requests a rate limit counts: the client's address, within this deployment
    (``SRS_LIMIT_PREFIX``, set when limits are counted in Redis): the instances of one
    deployment count together, and a training copy on the live one's Redis never spends
    its sign-in limits."""
    prefix = current_app.config.get("SRS_LIMIT_PREFIX")
    address = get_remote_address()
    return f"{prefix}/{address}" if prefix else address


limiter = Limiter(key_func=_limit_key, default_limits=[])


PRIVATE_FILE = 0o600


@event.listens_for(Engine, "do_connect")
def _sqlite_files_private(dialect, _record, cargs, cparams):
    """A SQLite database, its WAL and its shared-memory file are readable by SRS's user only.

    SQLite creates the database file 0644 (less the umask) and the WAL and SHM files with
    the database file's mode: so the file is created 0600 before SQLite opens it, and a
    database made before this rule (with its WAL and SHM, if SQLite holds them open) is
    tightened to 0600 when a connection opens.
    """
    if dialect.name != "sqlite" or not cargs or cparams.get("uri"):
        return
    path = cargs[0]
    if not isinstance(path, str) or path in ("", ":memory:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        return
    except FileExistsError:
        pass
    except OSError:  # no such folder, no permission: let SQLite give its own error
        return
    for name in (path, f"{path}-wal", f"{path}-shm"):
        private_file(name)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """WAL for readers beside the writer, foreign keys on, wait rather than fail when busy."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        # SQLAlchemy emits BEGIN itself (see _sqlite_begin_immediate).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def render_migration_type(type_, obj, _autogen_context):
    """Write SRS's UTC column as a plain timestamp in migration scripts."""
    from srs.common import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    """Begin SQLite transactions so that writers queue and readers never wait.

    A request that may write (anything but GET and HEAD) begins IMMEDIATE: a
    deferred transaction that reads, then writes after another thread's commit
    fails at once with "database is locked" (the busy timeout cannot help it),
    so concurrent taps queue for the write lock, each then seeing the floor as
    the previous one left it. A GET begins a plain deferred transaction: in WAL
    mode it reads a snapshot beside the writer without taking the lock; should
    it write after all (an audited read, a token's last use), the first write
    restarts the transaction IMMEDIATE (see ``_sqlite_upgrade_to_write``). A
    process that only watches a database others serve (a test beside a live
    server) sets ``SRS_SQLITE_TRANSACTIONS = "autocommit"``: each statement
    stands alone and never holds the lock between statements.
    """
    if connection.dialect.name != "sqlite":
        return
    from flask import current_app, has_app_context, has_request_context, request

    mode = current_app.config.get("SRS_SQLITE_TRANSACTIONS") if has_app_context() else None
    connection.info["srs_deferred"] = False
    if mode == "autocommit":
        return
    reading = _reading_first.get() or (
        has_request_context() and request.method in READ_METHODS)
    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")
    connection.info["srs_deferred"] = reading


READ_METHODS = frozenset({"GET", "HEAD"})
_reading_first = ContextVar("srs_reading_first", default=False)


@contextmanager
def reading_first():
    """Transactions begun inside read first, as a GET's do: SQLite's write lock is taken at
    their first write, not at BEGIN. For work outside a request that reads long before it
    writes (a job rendering a PDF for seconds), so that it does not hold every tap of the
    site behind it. What it writes must not depend on a read that a concurrent writer could
    have made stale, unless a constraint guards it."""
    token = _reading_first.set(True)
    try:
        yield
    finally:
        _reading_first.reset(token)
_READ_STATEMENTS = ("SELECT", "PRAGMA", "WITH", "EXPLAIN")


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_upgrade_to_write(connection, cursor, statement, _params, _context, _many):
    """The first write of a deferred (GET) transaction takes the write lock first.

    Its snapshot may be older than another thread's commit, and SQLite refuses
    to write from a stale snapshot without waiting; so the read transaction
    ends and an IMMEDIATE one takes its place, queued behind any writer. Rows
    guarded by ``version_id_col`` still refuse a stale update.
    """
    if not connection.info.get("srs_deferred"):
        return
    if statement.lstrip()[:7].upper().startswith(_READ_STATEMENTS):
        return
    connection.info["srs_deferred"] = False
    raw = cursor.connection
    raw.execute("ROLLBACK")
    raw.execute("BEGIN IMMEDIATE")


def append_only(table: Table) -> None:
    """Make ``table`` append-only, enforced by the database: any UPDATE or DELETE is refused.

    The migration that makes the table runs the same statements (a frozen copy); these
    listeners give databases built with ``create_all()`` the same guarantee.
    """
    name = table.name
    refusal = f"'{name} is append-only'"
    create = {
        "sqlite": [
            f"CREATE TRIGGER {name}_no_update BEFORE UPDATE ON {name} "
            f"BEGIN SELECT RAISE(ABORT, {refusal}); END",
            f"CREATE TRIGGER {name}_no_delete BEFORE DELETE ON {name} "
            f"BEGIN SELECT RAISE(ABORT, {refusal}); END",
        ],
        "postgresql": [
            f"CREATE FUNCTION {name}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION {refusal}; END $$",
            f"CREATE TRIGGER {name}_no_change BEFORE UPDATE OR DELETE ON {name} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}_append_only()",
        ],
    }
    for dialect, statements in create.items():
        for statement in statements:
            event.listen(table, "after_create", DDL(statement).execute_if(dialect=dialect))
    # The triggers go with the table; PostgreSQL's function outlives it.
    event.listen(table, "after_drop", DDL(f"DROP FUNCTION IF EXISTS {name}_append_only()")
                 .execute_if(dialect="postgresql"))
