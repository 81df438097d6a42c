"""Sign-in, sign-out, the shared-tablet lock screen (PIN, quick switch) and wall displays'
sign-in."""

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
from srs.auth.access import (
    current_actor,
    is_display,
    pin_rate_limit,
    public,
    staff_required,
)
from srs.auth.models import DISPLAY, DISPLAY_ID_PREFIX, LoginSession
from srs.auth.schemas import LoginForm, PinForm
from srs.common import utcnow
from srs.errors import DomainError, NotFound, is_htmx
from srs.extensions import READ_METHODS, limiter, login_manager

bp = Blueprint("auth", __name__)

# What a locked screen may still reach: signing in or out, the PIN step, and the site's
# open alarms (which it shows, and which "I'm on it" takes through the PIN step).
OPEN_WHEN_LOCKED = {"auth.login", "auth.logout", "auth.lock_screen", "auth.unlock",
                    "auth.switch", "auth.lock_now", "alerts.lock_alerts",
                    "alerts.acknowledge_at_lock", "static"}


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
    return redirect(url_for("auth.login", next=safe_next(request.full_path.rstrip("?"))))


def current_login():
    """The LoginSession behind ``current_user`` (None when signed out)."""
    if not current_user.is_authenticated:
        return None
    return g.get("login_session")


def safe_next(target: str | None) -> str | None:
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
    return safe_next(current.path + (f"?{current.query}" if current.query else ""))


@bp.before_app_request
def keep_displays_to_the_dashboard():
    """A wall display reads what the dashboard shows and acts on nothing: every POST and
    every page that does not declare ``DISPLAY`` is refused. (The API never reads this
    cookie: it wants a bearer token.) Static files are anyone's, and read no session."""
    if request.endpoint in (None, "static") or request.path.startswith("/api/") or (
            not is_display()):
        return None
    if request.method not in READ_METHODS:
        abort(403, "A wall display cannot act.")
    declared = getattr(current_app.view_functions.get(request.endpoint), "srs_roles", None)
    if declared == "public" or (isinstance(declared, frozenset) and DISPLAY in declared):
        return None
    abort(403, "A wall display shows the dashboard only.")


@bp.before_app_request
def enforce_idle_lock():
    """Lock a screen that sat idle past its limit; keep locked screens on the lock page.
    A static file is no one's activity: it reads no session, so that the browser keeps it
    whatever the session cookie becomes (no ``Vary: Cookie``)."""
    if request.endpoint in (None, "static") or request.path.startswith("/api/"):
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
    next_url = safe_next(request.values.get("next"))
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
    _sign_in(login_session)
    return redirect(next_url or url_for("dashboard.start"))


def _sign_in(login_session: LoginSession) -> None:
    """Make ``login_session`` this browser's: its cookie holds only the session's key."""
    session.clear()
    login_user(login_session.staff)
    session["login_key"] = login_session.key
    g.login_session = login_session


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
    """The lock screen: the person's own PIN; the site's open alarms; the site's floor staff,
    each of whom may tap their name (``person``) and take the tablet over with their PIN,
    also to take an alarm (``alert``)."""
    login_session = current_login()
    if login_session is None:
        return redirect(url_for("auth.login", next=safe_next(request.args.get("next"))))
    next_url = safe_next(request.args.get("next"))
    if login_session.locked_at is None:
        return redirect(next_url or url_for("dashboard.start"))
    return lock_page(login_session, next_url=next_url,
                     person_id=request.args.get("person", type=int),
                     alert_id=request.args.get("alert", type=int))


def lock_page(login_session: LoginSession, *, next_url: str | None,
              person_id: int | None = None, alert_id: int | None = None,
              errors: dict | None = None, message: str | None = None, status: int = 200):
    """Render the lock screen of ``login_session``, at the step the query or form named."""
    site = service.tablet_site(login_session.staff, next_url)
    people = service.floor_staff(site.id) if site is not None else []
    chosen = next((person for person in people if person.id == person_id), None)
    return render_template("auth/lock.html", staff=login_session.staff, next=next_url,
                           site=site, people=people, chosen=chosen,
                           alert_id=alert_id if site is not None else None,
                           errors=errors or {}, message=message), status


@bp.post("/lock")
@staff_required
def lock_now():
    login_session = current_login()
    service.lock_session(login_session, now=utcnow(), why="by hand")
    return redirect(url_for("auth.lock_screen", next=safe_next(request.form.get("next"))))


def pin_step(*, site=None, alert_id: int | None = None) -> LoginSession:
    """The PIN step of a locked tablet, shared by unlocking, switching person and taking an
    alarm: check the PIN the form gives, of the screen's own person or of the site's floor
    person it names (``staff_id``, with ``site``), and sign that person in on this screen.

    Returns the screen's login session. Anything else ends the request through ``abort``:
    a screen that is not signed in goes to the login page, one that is not locked back to
    ``next``, a refusal to the lock screen with its message, five wrong PINs to the login
    page.
    """
    login_session = current_login()
    next_url = safe_next(request.form.get("next"))
    if login_session is None:
        abort(redirect(url_for("auth.login")))
    if login_session.locked_at is None:  # a second tap on Unlock: already open
        abort(redirect(next_url or url_for("dashboard.start")))
    try:
        data = PinForm().load(request.form)
    except ValidationError as err:
        abort(make_response(lock_page(
            login_session, next_url=next_url, person_id=_int(request.form.get("staff_id")),
            alert_id=alert_id, errors=err.messages, status=422)))
    try:
        if data["staff_id"] is None:
            service.unlock_with_pin(login_session, data["pin"], now=utcnow(),
                                    origin=request.remote_addr)
            return login_session
        if site is None:
            raise NotFound("This tablet stands at no site's floor: sign in with your "
                           "password.")
        taken = service.switch_person(login_session, data["staff_id"], data["pin"],
                                      site_id=site.id, now=utcnow(),
                                      origin=request.remote_addr)
    except service.PinAttemptsExhausted as err:
        logout_user()
        session.clear()
        abort(make_response(render_template("auth/login.html", next=next_url,
                                            message=err.message, errors={}, form={}),
                            err.status))
    except DomainError as err:
        abort(make_response(lock_page(login_session, next_url=next_url,
                                      person_id=data["staff_id"], alert_id=alert_id,
                                      message=err.message, status=err.status)))
    if taken is not login_session:
        _sign_in(taken)
    return taken


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@bp.post("/unlock")
@public
@pin_rate_limit
def unlock():
    pin_step()
    return redirect(safe_next(request.form.get("next")) or url_for("dashboard.start"))


@bp.post("/lock/switch")
@public
@pin_rate_limit
def switch():
    """Another member of the site's floor staff takes the locked tablet over with their
    PIN; the previous person is signed out."""
    login_session = current_login()
    next_url = safe_next(request.form.get("next"))
    site = service.tablet_site(login_session.staff, next_url) if login_session else None
    pin_step(site=site)
    return redirect(next_url or url_for("dashboard.start"))


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


# --- API tokens -----------------------------------------------------------------------------
#
# The same services as the API's listApiTokens and revokeApiToken and the CLI's ``srs token``:
# a person sees, creates and revokes their own tokens; a site's admin also revokes those of
# the site's staff. A new token's value is shown on the answer to its creation, this once.


def _tokens_page(status: int = 200, *, created: str | None = None):
    own = service.tokens_of(current_user)
    clock = min((r.site for r in current_user.roles), key=lambda s: (s.name, s.id),
                default=None)
    return render_template("auth/tokens.html", own=own, created=created, clock=clock,
                           sites=service.tokens_at_admin_sites(current_user)), status


@bp.get("/account/tokens")
@staff_required
def tokens():
    """The person's API tokens (created, last used, revoked) and, for a site's admin, those
    of the site's staff."""
    return _tokens_page()


@bp.post("/account/tokens")
@staff_required
def create_token():
    """Create an API token for the person signed in and show its value, this once: only
    its hash is kept."""
    return _tokens_page(created=service.issue_token(current_user, actor=current_actor()))


@bp.post("/account/tokens/<int:token_id>/revoke")
@staff_required
def revoke_token(token_id):
    """Revoke one's own token or, as a site's admin, a token of the site's staff: its next
    call is refused and its sockets cut at once. Anyone else's token is a 404."""
    token = service.get_token(token_id, manager=current_user)
    service.revoke_token(token, actor=current_actor(), now=utcnow())
    own = token.staff_id == current_user.id
    return redirect(url_for("auth.tokens", _anchor=f"token-{token.id}" if own else None))


@bp.app_context_processor
def inject_lock_after():
    """Every signed-in page tells srs.js when to lock for idleness (a wall display: never)."""
    if is_display():
        return {"lock_after_seconds": 0}
    if current_user.is_authenticated:
        return {"lock_after_seconds": service.lock_after_seconds(current_user)}
    return {}
