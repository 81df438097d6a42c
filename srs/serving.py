"""gunicorn run from Python, so `python app.py` and the benchmark's bare app serve alike."""

from gunicorn.app.base import BaseApplication


class GunicornServer(BaseApplication):
    """Serve an already-built WSGI app with the given gunicorn settings."""

    def __init__(self, wsgi_app, options: dict):
        self.wsgi_app = wsgi_app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.wsgi_app
