"""Entry point: build the app, start the one scheduler, serve.

``python app.py`` serves with gunicorn (one worker, ``SRS_THREADS`` threads, Socket.IO in
threading mode) on ``SRS_HOST``:``SRS_PORT`` and runs the scheduler inside the
worker when ``SRS_SCHEDULER`` is on. ``flask --app app ...`` uses ``app`` for
the CLI and starts nothing.
"""

import logging
import sys
import threading

from gunicorn.app.base import BaseApplication

from srs import create_app
from srs.config import ConfigError

log = logging.getLogger("srs")

try:
    app = create_app()
except ConfigError as err:
    sys.exit(f"SRS cannot start: {err}")


def start_scheduler(flask_app):
    """Run the scheduler in a thread of this process: at once if no other process runs one,
    otherwise as a standby that takes over when the other stops."""
    from srs.jobs import SchedulerService

    if not flask_app.config["SRS_SCHEDULER"]:
        log.info("scheduler off (SRS_SCHEDULER=off): run `flask --app app srs scheduler`")
        return None
    service = SchedulerService(flask_app)
    threading.Thread(target=service.run_forever, name="srs-scheduler", daemon=True).start()
    return service


class Server(BaseApplication):
    """gunicorn, configured here so `python app.py` and `make run` serve alike."""

    def __init__(self, flask_app, options):
        self.flask_app = flask_app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.flask_app


def _post_worker_init(_worker):
    _worker.srs_scheduler = start_scheduler(app)


def _worker_exit(_server, worker):
    service = getattr(worker, "srs_scheduler", None)
    if service is not None:
        service.stop()


def _when_ready(_server):
    host, port = app.config["SRS_HOST"], app.config["SRS_PORT"]
    print(f"SRS is serving on http://{host}:{port}/", flush=True)


def main():
    host, port = app.config["SRS_HOST"], app.config["SRS_PORT"]
    Server(app, {
        "bind": f"{host}:{port}",
        "workers": 1,
        "threads": app.config["SRS_THREADS"],
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 5,
        "accesslog": "-",
        # Path without the query string: queries may carry a client code being typed.
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        "post_worker_init": _post_worker_init,
        "worker_exit": _worker_exit,
        "when_ready": _when_ready,
        # No runtime control socket: one per user would clash between instances.
        "control_socket_disable": True,
    }).run()


if __name__ == "__main__":
    main()
