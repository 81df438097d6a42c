"""Static files: content-hashed names, kept a year by the browser, sent compressed; pages
sent compressed too.

``url_for('static', filename='srs.js')`` gives ``/static/srs.<hash>.js``, the hash the first
12 hex digits of the file's SHA-256: a changed file gets a new name, so a tablet keeps each
file (``Cache-Control: public, max-age=31536000, immutable``) and fetches it again only
once it changed. The plain name still works, revalidated on every use (``no-cache``), and so
does a hash that is no longer current (a page from before a deploy): it gets the current
file, not kept.

Scripts, stylesheets, SVG and the alarm sounds (synthetic tones, which compress twentyfold)
are compressed once per process, brotli at its best or gzip, for the client that accepts
either, and kept in memory. HTML pages and fragments are compressed as they are sent
(Flask-Compress); nothing else is: not downloads, not JSON, not a streamed answer.
"""

import hashlib
import mimetypes
import os
import re
import stat
import threading
import zlib

import brotli
from flask import Response, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_compress import Compress
from werkzeug.security import safe_join

YEAR = 365 * 24 * 3600
COMPRESSED = {".css", ".js", ".svg", ".wav"}
HASHED = re.compile(r"(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)")

compress = Compress()


class Assets:
    """The static folder's hashes and compressed bodies, read when first asked for and read
    again when a file's size or modification time changes."""

    def __init__(self, folder: str):
        self.folder = folder
        self._digests: dict[str, tuple[tuple[int, int], str]] = {}
        self._bodies: dict[tuple[str, str, str], bytes] = {}
        self._lock = threading.Lock()  # one compression at a time, never the same one twice

    def _found(self, filename: str) -> tuple[str, os.stat_result] | None:
        """The path of a regular file under the static folder and its stat, or None."""
        path = safe_join(self.folder, filename)
        if path is None:
            return None
        try:
            found = os.stat(path)
        except OSError:
            return None
        return (path, found) if stat.S_ISREG(found.st_mode) else None

    def digest(self, filename: str) -> str | None:
        """The hash of a file under the static folder, or None if there is no such file."""
        file_found = self._found(filename)
        if file_found is None:
            return None
        path, found = file_found
        key = (found.st_mtime_ns, found.st_size)
        known = self._digests.get(filename)
        if known is None or known[0] != key:
            with open(path, "rb") as file:
                known = (key, hashlib.sha256(file.read()).hexdigest()[:12])
            self._digests[filename] = known
        return known[1]

    def hashed(self, filename: str) -> str:
        """``filename`` with its content hash before the extension, if it is a file."""
        stem, ext = os.path.splitext(filename)
        digest = self.digest(filename) if ext else None
        return f"{stem}.{digest}{ext}" if digest else filename

    def compressed(self, filename: str, digest: str, encoding: str) -> bytes:
        key = (filename, digest, encoding)
        body = self._bodies.get(key)
        if body is None:
            with self._lock:
                body = self._bodies.get(key)
                if body is None:
                    with open(self._found(filename)[0], "rb") as file:
                        data = file.read()
                    if encoding == "br":
                        body = brotli.compress(data, quality=11)
                    else:
                        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                        body = packer.compress(data) + packer.flush()
                    self._bodies[key] = body
        return body


def static_file(filename: str):
    """The static endpoint's view: hashed names kept a year, bodies compressed when they can
    be."""
    assets: Assets = current_app.extensions["srs_assets"]
    immutable = False
    named = HASHED.fullmatch(filename)
    current = assets.digest(plain := named["stem"] + named["ext"]) if named else None
    if current is not None:  # a hashed name: the file now under its plain name
        immutable, filename, digest = current == named["digest"], plain, current
    else:
        digest = assets.digest(filename)
    encoding = request.accept_encodings.best_match(["br", "gzip"])
    ext = os.path.splitext(filename)[1].lower()
    if digest is None or ext not in COMPRESSED or encoding is None:
        response = current_app.send_static_file(filename)
    else:
        response = Response(assets.compressed(filename, digest, encoding),
                            mimetype=mimetypes.guess_type(filename)[0])
        response.headers["Content-Encoding"] = encoding
        response.set_etag(f"{digest}-{encoding}")
        response.make_conditional(request)
    if ext in COMPRESSED:
        response.vary.add("Accept-Encoding")
    if immutable:
        response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, never saved with a static file: no ``Set-Cookie`` and
    no ``Vary: Cookie`` on it (Flask-Login looks at the session after every request), or a
    browser would fetch the file again each time the cookie changes, as a wall display's
    does on every request."""

    def save_session(self, app, session, response) -> None:
        if request.endpoint != "static":
            super().save_session(app, session, response)


def init_app(app) -> None:
    app.session_interface = SessionInterface()
    assets = Assets(app.static_folder)
    app.extensions["srs_assets"] = assets
    app.view_functions["static"] = static_file

    @app.url_defaults
    def hashed_static(endpoint, values):
        if endpoint == "static" and "filename" in values:
            values["filename"] = assets.hashed(values["filename"])

    app.config.setdefault("COMPRESS_MIMETYPES", ["text/html"])
    # A streamed answer (the audit CSV, a file) goes as it is, never held back to compress.
    app.config.setdefault("COMPRESS_STREAMS", False)
    compress.init_app(app)
