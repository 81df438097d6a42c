"""Configuration from SRS_* environment variables."""

import os
import stat

import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy import text

from srs import create_app
from srs.config import REDIS_TIMEOUTS, ConfigError, from_environment
from srs.extensions import db
from srs.jobs import SchedulerLock
from srs.live import message_channel


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("SRS_ENV", "SRS_DATABASE_URL", "SRS_REDIS_URL", "SRS_SECRET_KEY", "SRS_HOST",
                 "SRS_PORT", "SRS_SCHEDULER", "SRS_IDENTITY_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_embedded_defaults(clean_env, tmp_path):
    config = from_environment(str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'srs.sqlite3'}"
    assert config["SRS_REDIS_URL"] is None
    assert (config["SRS_HOST"], config["SRS_PORT"]) == ("127.0.0.1", 5000)
    assert config["SRS_SCHEDULER"] is True
    assert config["SESSION_COOKIE_SECURE"] is False


def test_embedded_secret_is_generated_once_and_kept(clean_env, tmp_path):
    first = from_environment(str(tmp_path))["SECRET_KEY"]
    assert len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert from_environment(str(tmp_path))["SECRET_KEY"] == first


def test_production_refuses_to_start_without_a_secret(clean_env, tmp_path):
    clean_env.setenv("SRS_ENV", "production")
    with pytest.raises(ConfigError, match="SRS_SECRET_KEY is not set"):
        from_environment(str(tmp_path))
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_to_start_without_an_identity_key(clean_env, tmp_path):
    clean_env.setenv("SRS_ENV", "production")
    clean_env.setenv("SRS_SECRET_KEY", "x" * 50)
    with pytest.raises(ConfigError, match="SRS_IDENTITY_KEY is not set"):
        from_environment(str(tmp_path))
    clean_env.setenv("SRS_IDENTITY_KEY", "not-a-fernet-key")
    with pytest.raises(ConfigError, match="must be a Fernet key"):
        from_environment(str(tmp_path))
    assert not (tmp_path / "identity_key").exists()


def test_embedded_identity_key_is_generated_once_and_kept(clean_env, tmp_path):
    first = from_environment(str(tmp_path))["SRS_IDENTITY_KEY"]
    Fernet(first.encode())  # a usable key
    assert (tmp_path / "identity_key").stat().st_mode & 0o777 == 0o600
    assert from_environment(str(tmp_path))["SRS_IDENTITY_KEY"] == first


def test_production_with_a_secret(clean_env, tmp_path):
    clean_env.setenv("SRS_ENV", "production")
    clean_env.setenv("SRS_SECRET_KEY", "x" * 50)
    clean_env.setenv("SRS_IDENTITY_KEY", Fernet.generate_key().decode())
    config = from_environment(str(tmp_path))
    assert config["SECRET_KEY"] == "x" * 50
    assert config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize(("name", "value", "message"), [
    ("SRS_PORT", "http", "SRS_PORT must be a port number"),
    ("SRS_PORT", "70000", "between 1 and 65535"),
    ("SRS_SCHEDULER", "maybe", "expected on or off"),
    ("SRS_ENV", "staging", "SRS_ENV must be development or production"),
])
def test_bad_values_are_refused_with_a_clear_message(clean_env, tmp_path, name, value, message):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        from_environment(str(tmp_path))


def test_environment_values_are_read(clean_env, tmp_path):
    clean_env.setenv("SRS_HOST", "0.0.0.0")
    clean_env.setenv("SRS_PORT", "8080")
    clean_env.setenv("SRS_SCHEDULER", "off")
    clean_env.setenv("SRS_REDIS_URL", "redis://127.0.0.1:6379/0")
    clean_env.setenv("SRS_DATABASE_URL", "postgresql+psycopg://srs@db/srs")
    config = from_environment(str(tmp_path))
    assert (config["SRS_HOST"], config["SRS_PORT"], config["SRS_SCHEDULER"]) == (
        "0.0.0.0", 8080, False)
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://srs@db/srs"
    assert config["SRS_REDIS_URL"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("redis_url", ["redis://127.0.0.1:6379/0", None])
def test_rate_limits_count_where_the_live_channel_runs(clean_env, tmp_path, redis_url):
    """In Redis when there is one (falling back to this process when it does not answer, and
    never waiting on it long), else in this process."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "k",
                      "SRS_REDIS_URL": redis_url})
    if redis_url:
        assert app.config["RATELIMIT_STORAGE_URI"] == redis_url
        assert app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] is True
        assert app.config["RATELIMIT_STORAGE_OPTIONS"] == REDIS_TIMEOUTS
        assert max(REDIS_TIMEOUTS.values()) <= 1
    else:
        assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_deployments_sharing_a_redis_count_their_limits_apart(clean_env, tmp_path):
    """A training copy on the live deployment's Redis never spends its sign-in limits: each
    deployment counts under its own prefix, the one its instances share."""
    url = f"sqlite:///{tmp_path / 'training'}.sqlite3"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "k",
                      "SRS_REDIS_URL": "redis://127.0.0.1:6379/0", "WTF_CSRF_ENABLED": False})
    with app.app_context():
        db.create_all()
    prefix = message_channel(url)
    assert prefix != message_channel(f"sqlite:///{tmp_path / 'live'}.sqlite3")
    store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    assert not store.keys(f"*/{prefix}/*")

    response = app.test_client().post("/login", data={"username": "nobody", "password": "x"})

    assert response.status_code == 401
    assert store.keys(f"*/{prefix}/*"), "the attempt is counted under the deployment's prefix"
    store.delete(*store.keys(f"*/{prefix}/*"))


def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(clean_env, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
                      "SECRET_KEY": "k"})
    with app.app_context(), db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
        db.engine.dispose()


# --- Files: only SRS's own user reads the instance folder and what it holds ----------------

def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _touch_everything(instance) -> dict:
    """Build the embedded app on ``instance``, write to its database, take the scheduler's
    lock; the mode of every file that made, while the database is open."""
    app = create_app()
    database = instance / "srs.sqlite3"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}"
    lock = SchedulerLock(app)
    with app.app_context():
        try:
            db.session.execute(text("CREATE TABLE IF NOT EXISTS kept (x INTEGER)"))
            db.session.execute(text("INSERT INTO kept VALUES (1)"))
            db.session.commit()
            assert lock.try_acquire()
            return {path.name: _mode(path) for path in (
                instance, database, instance / "srs.sqlite3-wal", instance / "srs.sqlite3-shm",
                instance / "secret_key", instance / "srs.sqlite3.scheduler.lock")}
        finally:
            lock.release()
            db.session.remove()
            db.engine.dispose()


PRIVATE = {"instance": 0o700, "srs.sqlite3": 0o600, "srs.sqlite3-wal": 0o600,
           "srs.sqlite3-shm": 0o600, "secret_key": 0o600, "srs.sqlite3.scheduler.lock": 0o600}


def test_the_instance_folder_and_its_files_are_created_private(clean_env, tmp_path):
    clean_env.setenv("SRS_INSTANCE_PATH", str(tmp_path / "instance"))
    old_umask = os.umask(0o022)  # the usual: files 0644, folders 0755
    try:
        assert _touch_everything(tmp_path / "instance") == PRIVATE
    finally:
        os.umask(old_umask)


def test_an_instance_made_before_is_made_private(clean_env, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    for name in ("srs.sqlite3", "secret_key", "srs.sqlite3.scheduler.lock"):
        (instance / name).write_text("kept-secret" if name == "secret_key" else "")
        (instance / name).chmod(0o644)
    clean_env.setenv("SRS_INSTANCE_PATH", str(instance))

    modes = _touch_everything(instance)

    assert modes == PRIVATE
    assert (instance / "secret_key").read_text() == "kept-secret"  # tightened, not replaced
