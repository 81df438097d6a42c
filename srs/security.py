"""Security headers on every response.

The CSP allows no inline script and no inline style: every script is a file
under static/, page data reaches it through data- attributes, and htmx is
told not to inject its indicator styles or evaluate attributes.

Nothing SRS answers may stay in a cache: pages, fragments and JSON are sent
``no-store`` by default, and every file a person downloads (CSV, PDF) comes
from ``download``, which says so too.
"""

from flask import Response

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self'",
    # CSP 3: 'self' covers the page's own ws:/wss: origin, and nothing else.
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def init_app(app) -> None:
    production = app.config.get("SRS_ENV") == "production"

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy",
                           "camera=(), microphone=(), geolocation=(), payment=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if production:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.mimetype == "text/html" or response.mimetype == "application/json":
            # Client details must not linger in shared caches or the back button.
            headers.setdefault("Cache-Control", "no-store")
        return response


def download(content, *, mimetype: str, filename: str | None = None) -> Response:
    """A file to download (a CSV, a PDF): named ``filename`` when given, and never kept in
    a browser's or a proxy's cache, since it carries client records."""
    headers = {"Cache-Control": "no-store"}
    if filename:
        headers["Content-Disposition"] = f"attachment; filename={filename}"
    return Response(content, mimetype=mimetype, headers=headers)
