"""Sign-in, sign-out, the shared-tablet lock screen and wall displays' sign-in."""

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from marshmallow import ValidationError

from srs.auth import service
from srs.auth.access import is_display, public, staff_required
from srs.auth.models import DISPLAY, DISPLAY_ID_PREFIX
from srs.auth.schemas import LoginForm, PinForm
from srs.common import utcnow
from srs.errors import DomainError, is_htmx
from srs.extensions import READ_METHODS, limiter, login_manager

bp = Blueprint("auth", __name__)

# What a locked screen may still reach.
OPEN_WHEN_LOCKED = {"auth.login", "auth.logout", "auth.lock_screen", "auth.unlock",
                    "auth.lock_now", "static"}


@login_manager.user_loader
def load_user(user_id: str):
    """Return the staff member of this screen's login session, if it is still usable, or
    the wall display signed in here, unless it was revoked."""
    if user_id.startswith(DISPLAY_ID_PREFIX):
        return service.usable_display(user_id, now=utcnow())
    login = service.usable_session(session.get("login_key"), now=utcnow())
    if login is None or str(login.staff_id) != user_id:
        return None
    g.login_session = login
    return login.staff


@login_manager.unauthorized_handler
def unauthorized():
    """Send a signed-out screen to the login page, and back here afterwards.

    An htmx fragment request gets 401 with HX-Redirect, so the login page
    replaces the whole screen rather than landing inside a partial.
    """
    if is_htmx():
        response = make_response("", 401)
        response.headers["HX-Redirect"] = url_for("auth.login", next=_current_page())
        return response
    return redirect(url_for("auth.login", next=_safe_next(request.full_path.rstrip("?"))))


def current_login():
    """The LoginSession behind ``current_user`` (None when signed out)."""
    if not current_user.is_authenticated:
        return None
    return g.get("login_session")


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never send someone to another host after sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _current_page() -> str | None:
    """The page an htmx request came from (not the fragment's own URL)."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    return _safe_next(current.path + (f"?{current.query}" if current.query else ""))


@bp.before_app_request
def keep_displays_to_the_dashboard():
    """A wall display reads what the dashboard shows and acts on nothing: every POST and
    every page that does not declare ``DISPLAY`` is refused. (The API never reads this
    cookie: it wants a bearer token.)"""
    if not is_display() or request.endpoint is None or request.path.startswith("/api/"):
        return None
    if request.method not in READ_METHODS:
        abort(403, "A wall display cannot act.")
    declared = getattr(current_app.view_functions.get(request.endpoint), "srs_roles", None)
    if request.endpoint == "static" or declared == "public" or (
            isinstance(declared, frozenset) and DISPLAY in declared):
        return None
    abort(403, "A wall display shows the dashboard only.")


@bp.before_app_request
def enforce_idle_lock():
    """Lock a screen that sat idle past its limit; keep locked screens on the lock page."""
    if request.endpoint is None or request.path.startswith("/api/"):
        return None
    login = current_login()
    if login is None:
        return None
    user_initiated = request.headers.get("X-SRS-Background") != "1"
    locked = service.note_activity(login, now=utcnow(), user_initiated=user_initiated)
    if locked and request.endpoint not in OPEN_WHEN_LOCKED:
        lock_url = url_for("auth.lock_screen", next=_next_for_lock())
        if is_htmx():
            response = make_response("", 401)
            response.headers["HX-Redirect"] = lock_url
            return response
        return redirect(lock_url)
    return None


def _next_for_lock() -> str | None:
    if is_htmx():
        return _current_page()
    return request.full_path.rstrip("?") if request.method == "GET" else None


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["SRS_LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    next_url = _safe_next(request.values.get("next"))
    if request.method != "POST":  # GET and HEAD only show the form
        return render_template("auth/login.html", next=next_url, errors={}, form={})
    try:
        data = LoginForm().load(request.form)
    except ValidationError as err:
        return render_template("auth/login.html", next=next_url, errors=err.messages,
                               form=request.form), 422
    try:
        staff = service.authenticate(data["username"], data["password"], now=utcnow(),
                                     origin=request.remote_addr)
    except DomainError as err:
        return render_template("auth/login.html", next=next_url, message=err.message,
                               errors={}, form={"username": data["username"]}), err.status
    login_session = service.begin_session(staff, now=utcnow(), origin=request.remote_addr,
                                          replaces=session.get("login_key"))
    session.clear()
    login_user(staff)
    session["login_key"] = login_session.key
    return redirect(next_url or url_for("dashboard.home"))


@bp.post("/logout")
@public
def logout():
    login_session = current_login()
    if login_session is not None:
        service.end_session(login_session, now=utcnow())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/lock")
@public
def lock_screen():
    login_session = current_login()
    if login_session is None:
        return redirect(url_for("auth.login", next=_safe_next(request.args.get("next"))))
    next_url = _safe_next(request.args.get("next"))
    if login_session.locked_at is None:
        return redirect(next_url or url_for("dashboard.home"))
    return render_template("auth/lock.html", staff=current_user, next=next_url, errors={})


@bp.post("/lock")
@staff_required
def lock_now():
    login_session = current_login()
    service.lock_session(login_session, now=utcnow(), why="by hand")
    return redirect(url_for("auth.lock_screen", next=_safe_next(request.form.get("next"))))


@bp.post("/unlock")
@public
@limiter.limit(lambda: current_app.config["SRS_PIN_RATE_LIMIT"])
def unlock():
    login_session = current_login()
    if login_session is None:
        return redirect(url_for("auth.login"))
    next_url = _safe_next(request.form.get("next"))
    if login_session.locked_at is None:  # a second tap on Unlock: already open
        return redirect(next_url or url_for("dashboard.home"))
    try:
        data = PinForm().load(request.form)
    except ValidationError as err:
        return render_template("auth/lock.html", staff=current_user, next=next_url,
                               errors=err.messages), 422
    try:
        service.unlock_with_pin(login_session, data["pin"], now=utcnow(),
                                origin=request.remote_addr)
    except service.PinAttemptsExhausted as err:
        logout_user()
        session.clear()
        return render_template("auth/login.html", next=next_url, message=err.message,
                               errors={}, form={}), err.status
    except DomainError as err:
        return render_template("auth/lock.html", staff=current_user, next=next_url,
                               message=err.message, errors={}), err.status
    return redirect(next_url or url_for("dashboard.home"))


@bp.get("/display/<token>")
@public
@limiter.limit(lambda: current_app.config["SRS_LOGIN_RATE_LIMIT"])
def display_sign_in(token):
    """A wall display opens the link it was registered with and shows its site's dashboard.

    Whoever was signed in on this browser is signed out (as a full login does).
    """
    display = service.display_for_token(token, now=utcnow(), origin=request.remote_addr)
    if display is None:
        abort(404, "This display link is not valid: it was revoked or mistyped. Ask a site "
                   "admin for a new one.")
    login_session = current_login()
    if login_session is not None:
        service.end_session(login_session, now=utcnow(), why="a wall display signed in")
    session.clear()
    session.permanent = True  # a wall display stays signed in across browser restarts
    login_user(display)
    return redirect(url_for("dashboard.supervise"))


@bp.post("/activity")
@staff_required
def activity():
    """Count a touch on the screen as activity (``enforce_idle_lock`` has recorded it)."""
    return "", 204


@bp.app_context_processor
def inject_lock_after():
    """Every signed-in page tells srs.js when to lock for idleness (a wall display: never)."""
    if is_display():
        return {"lock_after_seconds": 0}
    if current_user.is_authenticated:
        return {"lock_after_seconds": service.lock_after_seconds(current_user)}
    return {}
