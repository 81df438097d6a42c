"""The baseline for bench.floor: a bare Flask + Flask-SocketIO app served as SRS is served.

Same stack and the same gunicorn settings as ``python app.py`` (one gthread worker with
``--threads`` threads, Socket.IO in threading mode over simple-websocket, an access log), but
no database, no auth and no schemas, so what it measures is the floor under SRS's own cost:

- ``POST /noop``: a small JSON answer (the bare endpoint);
- ``POST /poke``: bump a counter, emit ``changed`` to room ``site:1`` (carrying the server's
  monotonic emit time) and answer the counter (the bare broadcast);
- ``GET /state``: the counter, as a screen re-fetches its board after ``changed``.

Run: ``python -m bench.bare --port PORT --threads N [--redis-url URL]``.
"""

import argparse
import os
import threading
import time

from flask import Flask, jsonify
from flask_socketio import SocketIO, join_room

from srs.serving import GunicornServer

ROOM = "site:1"


def create_bare_app(redis_url: str | None = None) -> Flask:
    app = Flask(__name__)
    # With Redis, instances share their rooms as SRS's do (bench.region runs two).
    socketio = SocketIO(app, async_mode="threading", manage_session=False, logger=False,
                        engineio_logger=False, message_queue=redis_url)
    lock = threading.Lock()
    # Counted from this process's id x 1e6, so that two instances' pokes never share a number.
    state = {"n": os.getpid() * 1_000_000}

    @app.post("/noop")
    def noop():
        return jsonify(ok=True, at=time.time())

    @app.post("/poke")
    def poke():
        with lock:
            state["n"] += 1
            n = state["n"]
        socketio.emit("changed", {"topic": "board", "site_id": 1, "n": n,
                                  "emitted": time.monotonic()}, to=ROOM)
        return jsonify(n=n)

    @app.get("/state")
    def current_state():
        return jsonify(n=state["n"], generated_at=time.time())

    @socketio.on("connect")
    def on_connect(auth=None):
        join_room(ROOM)
        return True

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--redis-url", default=None,
                        help="share rooms with other instances through this Redis")
    args = parser.parse_args()
    # The options of app.py's Server, minus SRS's scheduler hooks.
    GunicornServer(create_bare_app(args.redis_url), {
        "bind": f"127.0.0.1:{args.port}",
        "workers": 1,
        "threads": args.threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 5,
        "accesslog": "-",
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        "control_socket_disable": True,
    }).run()


if __name__ == "__main__":
    main()
