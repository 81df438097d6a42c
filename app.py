"""Entry point: build the app, start the one scheduler, serve.

``python app.py`` serves with gunicorn (one worker, ``SRS_THREADS`` threads, Socket.IO in
threading mode) on ``SRS_HOST``:``SRS_PORT`` and runs the scheduler inside the
worker when ``SRS_SCHEDULER`` is on. ``flask --app app ...`` uses ``app`` for
the CLI and starts nothing.
"""

import gc
import logging
import sys
import threading

from srs import create_app
from srs.config import ConfigError
from srs.serving import GunicornServer

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


def _post_worker_init(_worker):
    # What the worker holds from start-up (the app, its modules, templates, metadata) lives
    # as long as it does: out of the collector's way, a full collection scans only what
    # came after, tens of milliseconds less of every screen and tablet waiting.
    gc.collect()
    gc.freeze()
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
    GunicornServer(app, {
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
