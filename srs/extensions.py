"""Flask extensions, created unbound here and bound in ``create_app``."""

import sqlite3

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

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


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
socketio = SocketIO()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


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
def _sqlite_begin_immediate(connection):
    """Take SQLite's write lock at the start of every transaction.

    A deferred transaction that reads, then writes after another thread's
    commit fails at once with "database is locked" (the busy timeout cannot
    help it). Beginning IMMEDIATE makes concurrent taps queue for the lock,
    each then seeing the floor as the previous one left it. A process that
    only watches a database others serve (a test beside a live server) sets
    ``SRS_SQLITE_TRANSACTIONS = "autocommit"``: each statement stands alone
    and never holds the lock between statements.
    """
    if connection.dialect.name != "sqlite":
        return
    from flask import current_app, has_app_context

    mode = current_app.config.get("SRS_SQLITE_TRANSACTIONS") if has_app_context() else None
    if mode != "autocommit":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
