"""Configuration from ``SRS_*`` environment variables.

Every setting an operator may change is read here and nowhere else, so the
README's table and the code cannot drift apart.
"""

import logging
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy import make_url

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """The environment asks for something SRS refuses to run with."""


# Redis answers on a LAN in well under a millisecond: one that takes half a second to connect
# or to answer is down. A rate-limit check waits on it at most that long, a live message (two
# attempts) twice that; then neither asks it again for a while (see srs.live).
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}


ENV_VARS = {
    "SRS_ENV": "development (the embedded default) or production",
    "SRS_DATABASE_URL": "SQLAlchemy URL; default: SQLite file instance/srs.sqlite3",
    "SRS_REDIS_URL": "Redis URL for the Socket.IO message queue and rate limits; unset: none",
    "SRS_SECRET_KEY": "session signing key; required in production",
    "SRS_IDENTITY_KEY": "Fernet key encrypting treatment patients' legal identity; required "
                        "in production",
    "SRS_HOST": "address to listen on; default 127.0.0.1",
    "SRS_PORT": "port to listen on; default 5000",
    "SRS_SCHEDULER": "on or off: run the scheduler inside the web process; default on",
    "SRS_THREADS": "gunicorn threads of the one worker (each live screen holds one); default 32",
    "SRS_PROXY_HOPS": "how many reverse proxies stand in front (trust their X-Forwarded-* "
                      "headers); default 0",
    "SRS_INSTANCE_PATH": "folder for the SQLite file, generated secret and locks; "
                         "default instance/",
}


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "on", "true", "yes"}:
        return True
    if lowered in {"0", "off", "false", "no"}:
        return False
    raise ConfigError(f"expected on or off, got {value!r}")


def private_folder(path) -> Path:
    """Make ``path`` a folder only SRS's own user can open (0700), creating it if need be.

    It holds the SQLite database, the generated secret and the scheduler's lock: client
    records and what signs every session. A folder that exists is tightened too; one SRS
    may not change (another user's) is left as it is, with a warning.
    """
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        try:
            path.chmod(0o700)
        except OSError as err:
            log.warning("cannot make the instance folder private (0700): %s", err.strerror)
    return path


def private_file(path) -> None:
    """Make a file SRS made before this rule readable by its own user only (0600); leave one
    it may not change (another user's) as it is, with a warning."""
    try:
        if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
            os.chmod(path, 0o600)
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("cannot make %s private (0600): %s", os.path.basename(path), err.strerror)


def _secret_key(env_name: str, instance_path: Path) -> str:
    key = os.environ.get("SRS_SECRET_KEY")
    if key:
        return key
    if env_name == "production":
        raise ConfigError(
            "SRS_SECRET_KEY is not set. In production SRS will not start without it: "
            "set it to a long random value (python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))') and keep it the same across restarts."
        )
    # Embedded default: generate once and keep it, so sessions survive a restart.
    path = instance_path / "secret_key"
    if path.exists():
        private_file(path)
        return path.read_text().strip()
    private_folder(instance_path)
    key = secrets.token_urlsafe(48)
    partial = path.with_name(f"secret_key.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        # Atomic: of two processes starting together, the first link wins and both use it.
        os.link(partial, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        partial.unlink()
    return key


def _identity_key(env_name: str, instance_path: Path) -> str:
    """The Fernet key that encrypts an enrolled patient's legal identity (srs.hat.identity).

    Like the secret key: required in production, generated once under instance/ for the
    embedded default. Losing it loses every identity it encrypted.
    """
    from cryptography.fernet import Fernet

    key = os.environ.get("SRS_IDENTITY_KEY")
    if not key and env_name == "production":
        raise ConfigError(
            "SRS_IDENTITY_KEY is not set. In production SRS will not start without it: "
            "set it to a Fernet key (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'), keep it the same across restarts and "
            "back it up apart from the database.")
    if not key:
        path = instance_path / "identity_key"
        if path.exists():
            private_file(path)
            return path.read_text().strip()
        private_folder(instance_path)
        key = Fernet.generate_key().decode()
        partial = path.with_name(f"identity_key.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        try:
            os.link(partial, path)
        except FileExistsError:
            key = path.read_text().strip()
        finally:
            partial.unlink()
        return key
    try:
        Fernet(key.encode())
    except ValueError:
        raise ConfigError("SRS_IDENTITY_KEY must be a Fernet key: 32 bytes, url-safe "
                          "base64 (44 characters).") from None
    return key


def from_environment(instance_path: str) -> dict:
    """Build the Flask config mapping; raise ConfigError on a setting SRS refuses."""
    instance = Path(instance_path)
    env_name = os.environ.get("SRS_ENV", "development").strip().lower()
    if env_name not in {"development", "production"}:
        raise ConfigError(f"SRS_ENV must be development or production, got {env_name!r}")
    database_url = os.environ.get("SRS_DATABASE_URL") or (
        f"sqlite:///{instance / 'srs.sqlite3'}"
    )
    redis_url = os.environ.get("SRS_REDIS_URL") or None
    production = env_name == "production"
    port_text = os.environ.get("SRS_PORT", "5000")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"SRS_PORT must be a port number, got {port_text!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"SRS_PORT must be between 1 and 65535, got {port}")
    threads_text = os.environ.get("SRS_THREADS", "32")
    if not threads_text.isdigit() or not 4 <= int(threads_text) <= 1000:
        raise ConfigError(f"SRS_THREADS must be a number from 4 to 1000, got {threads_text!r}")
    hops_text = os.environ.get("SRS_PROXY_HOPS", "0")
    if not hops_text.isdigit() or int(hops_text) > 5:
        raise ConfigError(f"SRS_PROXY_HOPS must be a number of proxies from 0 to 5, "
                          f"got {hops_text!r}")
    return {
        "SRS_ENV": env_name,
        "SRS_PROXY_HOPS": int(hops_text),
        "SRS_THREADS": int(threads_text),
        "SECRET_KEY": _secret_key(env_name, instance),
        "SRS_IDENTITY_KEY": _identity_key(env_name, instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SRS_REDIS_URL": redis_url,
        "SRS_HOST": os.environ.get("SRS_HOST", "127.0.0.1"),
        "SRS_PORT": port,
        "SRS_SCHEDULER": _flag(os.environ.get("SRS_SCHEDULER"), True),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": production,
    }


def rate_limit_settings(redis_url: str | None) -> dict:
    """Flask-Limiter's settings: counts in Redis when there is one, else in this process.

    Should Redis stop answering, the limits go on counting in this process (Flask-Limiter
    logs it once, and goes back to Redis when it answers again): a Redis outage must never
    stop a sign-in or a PIN unlock. Any other failure of the limiter is logged and lets the
    request through; the account and tablet lockouts, kept in the database, still hold.
    """
    settings = {"RATELIMIT_STORAGE_URI": redis_url or "memory://",
                "RATELIMIT_SWALLOW_ERRORS": True}
    if redis_url:
        settings.update(RATELIMIT_STORAGE_OPTIONS=dict(REDIS_TIMEOUTS),
                        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True)
    return settings


# PostgreSQL serves 100 connections by default, shared with the scheduler and the CLI.
POSTGRES_POOL_CAP = 60


def engine_options(database_url: str, threads: int = 32) -> dict:
    """A connection pool with a connection for each of gunicorn's threads, kept open.

    Every thread that serves a request may hold a connection, plus the scheduler and
    the live announcer: the pool keeps that many open rather than opening and closing
    overflow connections under load. On PostgreSQL it stops at POSTGRES_POOL_CAP (most
    threads hold a live socket, not a connection); a request beyond it waits its turn.
    ``hide_parameters`` keeps client codes and free text out of logged SQL errors.
    """
    options = {"pool_pre_ping": True, "hide_parameters": True}
    url = make_url(database_url)
    backend = url.get_backend_name()
    in_memory = backend == "sqlite" and url.database in (None, "", ":memory:")
    if not in_memory:  # an in-memory SQLite database has a single connection
        size = threads + 4
        if backend == "postgresql":
            size = min(size, POSTGRES_POOL_CAP)
        options.update(pool_size=size, max_overflow=0, pool_timeout=30)
    return options
