"""Domain errors and the one place that turns them into HTTP answers.

Services raise these; API requests get the JSON shape DESIGN.md gives
(``{"code", "status", "message", "errors"}``), pages get a short HTML page or,
for htmx, a fragment.
"""

import logging
import re
import traceback

from flask import current_app, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException


class DomainError(Exception):
    """A request the floor's state or the rules refuse."""

    status = 409
    code = "conflict"

    def __init__(self, message: str, errors: dict | None = None, **detail):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.detail = detail


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Invalid(DomainError):
    """Input that passed the schema but breaks a rule; ``errors`` names the fields."""

    status = 422
    code = "invalid"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


def wants_json() -> bool:
    return request.path.startswith("/api/")


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _render_error(status: int, message: str, errors: dict):
    """A full error page, or for htmx a fragment shown in the screen's message area."""
    if is_htmx():
        response = make_response(render_template("_error_fragment.html", status=status,
                                                 message=message, errors=errors), status)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render_template("error.html", status=status, message=message, errors=errors), status


def error_payload(code: str, status: int, message: str, errors: dict | None = None) -> dict:
    return {"code": code, "status": status, "message": message,
            "errors": field_messages(errors or {})}


def field_messages(errors) -> dict[str, list[str]]:
    """Marshmallow's messages as the API documents them: ``{field: [messages]}``.

    Marshmallow nests what it says of a list's item under the item's index (an int, which
    JSON can neither hold as a key nor sort beside text keys) and of a nested member under
    its name: those become messages of the field, saying which item or member
    ("Item 2: Not a valid string.").
    """
    if not isinstance(errors, dict):
        return {"_schema": _messages(errors)}
    return {str(field): _messages(said) for field, said in errors.items()}


def _messages(said, where: str = "") -> list[str]:
    if isinstance(said, dict):
        found = []
        for key, inner in said.items():
            if key == "_schema":  # said of the field as a whole
                found += _messages(inner, where)
            else:
                label = f"Item {key + 1}" if isinstance(key, int) else str(key)
                found += _messages(inner, f"{where}{label}: ")
        return found
    if isinstance(said, (list, tuple)):
        return [message for item in said for message in _messages(item, where)]
    return [f"{where}{said}"]


def _flatten_locations(errors: dict) -> dict:
    """webargs nests messages under the request part (``json``, ``query``); drop that level."""
    flat: dict = {}
    for location, fields in errors.items():
        if location in {"json", "query", "form", "headers", "files", "path"} and isinstance(
            fields, dict
        ):
            flat.update(fields)
        elif location == "json":  # said of the body as a whole ("Invalid JSON body.")
            flat["_body"] = fields
        else:
            flat[location] = fields
    return flat


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def handle_domain_error(error: DomainError):
    if wants_json():
        body = error_payload(error.code, error.status, error.message, error.errors)
        body.update(error.detail)
        return jsonify(body), error.status
    return _render_error(error.status, error.message, error.errors)


SERVER_ERROR = ("Something went wrong on the server. Check what the screen shows before "
                "trying again.")

# What a person at a screen should read instead of the framework's wording.
FRIENDLY = {
    429: "Too many attempts from this address. Wait a minute, then try again.",
}


def handle_http_exception(error: HTTPException):
    if error.code in FRIENDLY:
        error.description = FRIENDLY[error.code]
    # What the error itself says beside its body: a 405's Allow, above all.
    own_headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    if not wants_json():
        page = make_response(_render_error(error.code, error.description, {}))
        page.headers.extend(own_headers)
        return page
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages") or {}
    message = data.get("message") or error.description
    if error.code == 422 and errors:
        message = "Some fields are not valid."
    body = error_payload(_slug(error.name), error.code, message, _flatten_locations(errors))
    response = jsonify(body)
    response.status_code = error.code
    response.headers.extend(own_headers)
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    if error.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="srs"'
    return response


def log_failure(logger: logging.Logger, what: str, error: BaseException) -> None:
    """Log an unexpected failure by type and stack only.

    Exception messages can carry what a client typed or a database's detail
    ("Key (code)=(F-ABCD-1984) already exists"): logs carry ids, never those.
    """
    stack = "".join(traceback.format_tb(error.__traceback__))
    logger.error("%s: %s\n%s", what, type(error).__name__, stack)


def handle_unexpected(error: Exception):
    log_failure(current_app.logger, f"unhandled error on {request.method} {request.url_rule}",
                error)
    if wants_json():
        return jsonify(error_payload("internal_server_error", 500,
                                     SERVER_ERROR)), 500
    return _render_error(500, SERVER_ERROR, {})


# What no text column can store: PostgreSQL refuses a NUL, and neither database (nor UTF-8)
# holds half of a surrogate pair.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value, name: str):
    """The names of the fields in ``value`` (a form or a JSON body) holding unstorable text."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            yield name
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _unstorable(item, name)


def refuse_unstorable_text():
    """Before any view: a NUL or a lone surrogate in a query, a form or a JSON body is a 422
    on that field, the same on both databases (never a server error, never stored)."""
    found = set(_unstorable(request.args.to_dict(flat=False), ""))
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        found |= set(_unstorable(request.form.to_dict(flat=False), ""))
        if request.is_json:
            found |= set(_unstorable(request.get_json(silent=True), ""))
    if found:
        raise Invalid("Text cannot hold a NUL character or half of a character pair.", {
            name or "_body": ["Remove the invisible control character from this text."]
            for name in sorted(found)})


def init_app(app):
    def log_exception(exc_info) -> None:
        # Flask's own would print the exception's text, and a chained one's: a validation
        # message quotes what was typed.
        log_failure(app.logger, f"unhandled error on {request.method} {request.url_rule}",
                    exc_info[1])

    app.log_exception = log_exception
    app.before_request(refuse_unstorable_text)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    if not app.testing:
        app.register_error_handler(Exception, handle_unexpected)
