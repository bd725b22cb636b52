"""Who is calling the admin API and the console, and what they may do.

Three ways in, tried in this order by `authenticate_request()`:
1. a Shopify App Bridge session token (`Authorization: Bearer <jwt>`, verified with
   `shopifyapp`): the shop is the token's `dest`, the merchant user is an owner;
2. a personal API token (`Authorization: Bearer lojal_pat_…`, SHA-256 at rest);
3. the signed Flask session cookie of a staff member who signed in with email + password
   (argon2id), carrying `session_version` so disabling a member or changing their role or
   password ends every session at once; or the cookie an App Bridge sign-in also sets, carrying
   the shop's `console_session_version` (no staff row: signing out and an uninstall bump it).
Nothing signs in for an uninstalled shop: its sessions and tokens get `shop_uninstalled`, and
the uninstall itself ends them for good (privacy.apply_app_uninstalled), past a reinstall.
Cookie-authenticated unsafe requests must carry the CSRF token; bearer requests cannot be
forged cross-site (a browser never adds the header by itself), so they are exempt.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app, flash, g, has_request_context, redirect, request, session as cookie_session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden as ForbiddenPage

from app.errors import error_response
from app.extensions import db, redis_connection
from app.loyalty.audit import fit_actor
from app.loyalty.errors import Forbidden, Invalid, LoyaltyError
from app.models import ApiToken, Shop, StaffUser
from widgets.api import network
from widgets.hardening import ReadLimitExceeded, hit_ip_limit

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "adjust", "settings", "staff", "cancel"}),
    "support": frozenset({"read", "adjust"}),
    "viewer": frozenset({"read"}),
}
TOKEN_PREFIX = "lojal_pat_"
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# shopifyapp wants the App Home "patch id token" page; header-token requests never go there.
_PATCH_ID_TOKEN_PATH = "/shopify/patch-id-token"
_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) defaults
_DUMMY_HASH = _hasher.hash("not-a-password")  # equal work for unknown emails (no user enumeration by timing)


@dataclass(frozen=True)
class StaffIdentity:
    shop_id: int
    actor: str  # written to the audit log and ledger
    role: str
    staff_id: int | None
    email: str | None
    via: str = "session"  # session | token | shopify
    token_id: int | None = None
    # A Shopify merchant's (no staff row): the shop's console_session_version, put in the cookie.
    shop_session_version: int | None = None

    def can(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def refuse_if_token(self) -> None:
        """Credentials (API tokens, passwords, invitations) are made by a person signed in, never
        by an API token: a leaked token must not mint a successor, or an account to mint one,
        that outlives its revocation. Forbidden (token_creation_refused) for a token."""
        if self.via == "token":
            raise Forbidden("credentials (tokens, passwords, invitations) are made by a signed-in staff member, "
                            "not by an API token", code="token_creation_refused")


class InvalidCredentials(Invalid):
    status = 401
    code = "invalid_credentials"


class ShopUninstalled(LoyaltyError):
    status = 403
    code = "shop_uninstalled"
    MESSAGE = ("Lojal is no longer installed on this store: its sign-ins and API tokens have ended. "
               "Install Lojal again, then sign in.")

    def __init__(self):
        super().__init__(self.MESSAGE)


class LoginThrottled(LoyaltyError):
    status = 429
    code = "login_throttled"

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed sign-ins; try again in {retry_after} seconds")
        self.retry_after = retry_after


# --- passwords and tokens -------------------------------------------------------------

def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    """SHA-256 is enough here: the token has 256 random bits, so there is nothing to brute-force
    that a slow KDF would protect, and every API request must look it up cheaply."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token() -> tuple[str, str, str]:
    """(token shown once, its hash for the database, its display prefix)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token), token[: len(TOKEN_PREFIX) + 4]


def staff_actor(staff: StaffUser) -> str:
    """`staff:<id>:<email>`; an email too long for the actor columns (they hold 320) is cut, marked
    with "..." (audit.fit_actor): the id still names the member, and the string is the same on every request."""
    return fit_actor(f"staff:{staff.id}:{staff.email}")


def token_actor(token: ApiToken) -> str:
    return f"token:{token.id}:{token.name}"


def normalize_staff_email(email: str) -> str:
    return (email or "").strip().lower()


# --- login and sessions ---------------------------------------------------------------

def _throttle_key(email: str) -> str:
    # The address as the widget's per-IP limits count it: an IPv6 client as its /64, which one
    # host holds whole, or every guess could come from a fresh address and never be throttled.
    digest = hashlib.sha256(f"{email}|{network(request.remote_addr or '-')}".encode()).hexdigest()
    return f"lojal:login-failures:{digest}"


def login(session: Session, shop_id: int | None, email: str, password: str) -> StaffIdentity:
    """Check email + password (within one shop, or across shops when None); throttled per email + IP.

    Raises LoginThrottled (429, with retry_after) after LOGIN_MAX_FAILURES failures within
    LOGIN_WINDOW, or once the client's address is over STAFF_SIGN_IN_RATE_LIMIT attempts, and
    InvalidCredentials (401) for a wrong email, password or a disabled account.
    """
    email = normalize_staff_email(email)
    try:  # per address, whatever the email: before any hash work
        hit_ip_limit("STAFF_SIGN_IN_RATE_LIMIT", "staff-sign-in")
    except ReadLimitExceeded as exc:
        raise LoginThrottled(exc.retry_after) from None
    redis = redis_connection.client(current_app)
    key = _throttle_key(email)
    # Each attempt takes its place in the count before the slow hash (a success clears it): read
    # first and counted after, concurrent guesses would all pass the check. The window starts at
    # the first attempt; INCR keeps the key's expiry.
    redis.set(key, 0, ex=int(LOGIN_WINDOW.total_seconds()), nx=True)
    if redis.incr(key) > LOGIN_MAX_FAILURES:
        raise LoginThrottled(max(1, int(redis.ttl(key))))
    # Members of installed shops first: the same email and password may also open an uninstalled one.
    stmt = (select(StaffUser, Shop.status).join(Shop, Shop.id == StaffUser.shop_id)
            .where(StaffUser.email == email, StaffUser.disabled_at.is_(None))
            .order_by(Shop.status == "uninstalled", StaffUser.id))
    if shop_id is not None:
        stmt = stmt.where(StaffUser.shop_id == shop_id)
    # No stored email holds a NUL, and PostgreSQL refuses one in a query (the console's form is not
    # validated by the API's schema): such an email is simply unknown.
    candidates = [] if "\x00" in email else session.execute(stmt).all()
    staff, shop_status = next(((s, st) for s, st in candidates if verify_password(s.password_hash, password)),
                              (None, None))
    if not candidates:
        verify_password(None, password)
    if staff is None:
        raise InvalidCredentials("wrong email or password")  # counted above
    redis.delete(key)
    if shop_status == "uninstalled":
        raise ShopUninstalled()
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    staff.last_login_at = datetime.now(UTC)
    return staff_identity(staff, via="session")


def start_session(identity: StaffIdentity) -> None:
    """Put the identity in the signed session cookie (a fresh one: no session fixation)."""
    cookie_session.clear()
    cookie_session.permanent = True
    cookie_session["shop_id"] = identity.shop_id
    if identity.staff_id is not None:
        staff = db.session.get(StaffUser, identity.staff_id)
        cookie_session["staff_id"] = identity.staff_id
        cookie_session["session_version"] = staff.session_version
    else:  # a Shopify merchant user, from an App Bridge id token
        cookie_session["shopify_user"] = identity.actor
        cookie_session["shop_session_version"] = identity.shop_session_version
    cookie_session["csrf"] = secrets.token_urlsafe(32)
    _remember(identity)


def end_session() -> None:
    cookie_session.clear()
    _remember(None)


def csrf_token() -> str:
    if "csrf" not in cookie_session:
        cookie_session["csrf"] = secrets.token_urlsafe(32)
    return cookie_session["csrf"]


def csrf_ok() -> bool:
    expected = cookie_session.get("csrf")
    sent = request.headers.get("X-CSRF-Token") or (request.form.get("csrf_token") if request.form else None)
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters (a 500).
    return bool(expected and sent) and hmac.compare_digest(str(expected).encode(), str(sent).encode())


# --- who is calling -------------------------------------------------------------------

_MEMO = "lojal.staff_identity"
_REFUSED = "lojal.staff_refused"  # why a credential that was otherwise good was refused


def _remember(identity: StaffIdentity | None) -> None:
    # On the request's environ (not only flask.g): an app context can outlive one request
    # (CLI, tests pushing a context), and the identity must never carry over to the next.
    request.environ[_MEMO] = identity
    g.staff_identity = identity


def _refuse_uninstalled() -> None:
    request.environ[_REFUSED] = ShopUninstalled.code


def current_staff() -> StaffIdentity | None:
    return request.environ.get(_MEMO) if has_request_context() else None


def authenticate_request() -> StaffIdentity | None:
    """The caller's identity (memoised for the request), or None."""
    if _MEMO in request.environ:
        return request.environ[_MEMO]
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            identity = None
        elif credential.startswith(TOKEN_PREFIX):
            identity = _from_api_token(db.session, credential)
        else:
            identity = shopify_identity(credential)
    else:
        identity = _from_cookie(db.session)
    _remember(identity)
    return identity


def shopify_identity(id_token: str) -> StaffIdentity | None:
    """An App Bridge session (id) token → the merchant user as owner of that installed shop.

    Also what console pages use for the `id_token` query parameter on an embedded first load.
    """
    import shopify_app

    from integrations.shopify.domains import valid_shop_domain
    from integrations.shopify.tokens import app_config

    if not current_app.config.get("SHOPIFY_API_KEY"):
        return None
    verified = shopify_app.verify_app_home_req(
        {"method": request.method, "headers": {"Authorization": f"Bearer {id_token}"},
         "url": current_app.config["APP_URL"].rstrip("/") + request.path, "body": ""},
        app_config(), _PATCH_ID_TOKEN_PATH)
    if not verified.ok or verified.id_token is None:
        return None
    claims = verified.id_token.claims
    dest = str(claims.get("dest") or "")
    domain = valid_shop_domain(urlsplit(dest).hostname or dest)
    subject = claims.get("sub")
    if domain is None or not subject:
        return None
    shop = db.session.scalar(select(Shop).where(Shop.platform == "shopify", Shop.domain == domain,
                                                Shop.status == "active"))
    if shop is None:
        return None
    return StaffIdentity(shop_id=shop.id, actor=f"shopify-user:{subject}", role="owner", staff_id=None,
                         email=None, via="shopify", shop_session_version=shop.console_session_version)


def staff_identity(staff: StaffUser, *, via: str = "session", token: ApiToken | None = None) -> StaffIdentity:
    return StaffIdentity(shop_id=staff.shop_id, actor=token_actor(token) if token else staff_actor(staff),
                         role=staff.role, staff_id=staff.id, email=staff.email, via=via,
                         token_id=token.id if token else None)


def _from_api_token(session: Session, token: str) -> StaffIdentity | None:
    # The shop comes in the same query: its status is checked here, and the request's later
    # session.get(Shop) is answered from the identity map.
    row = session.execute(
        select(ApiToken, StaffUser, Shop).join(StaffUser, StaffUser.id == ApiToken.staff_id)
        .join(Shop, Shop.id == ApiToken.shop_id)
        .where(ApiToken.token_hash == hash_token(token), StaffUser.shop_id == ApiToken.shop_id)
    ).first()
    if row is None:
        return None
    api_token, staff, shop = row
    if shop.status == "uninstalled":
        _refuse_uninstalled()  # before the revocation check: the uninstall revoked it too
        return None
    if api_token.revoked_at is not None or staff.disabled_at is not None:
        return None
    now = datetime.now(UTC)
    if api_token.last_used_at is None or now - api_token.last_used_at >= TOKEN_TOUCH_INTERVAL:
        _touch_token(api_token.id, now)
    return staff_identity(staff, via="token", token=api_token)


def _touch_token(token_id: int, now: datetime) -> None:
    """Record use on its own short transaction: reads never commit the request's session, and a
    conditional UPDATE keeps it to one write per token per minute however many requests race."""
    with db.engine.begin() as connection:
        connection.execute(
            update(ApiToken).where(ApiToken.id == token_id,
                                   (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at <= now - TOKEN_TOUCH_INTERVAL))
            .values(last_used_at=now))


def _from_cookie(session: Session) -> StaffIdentity | None:
    shop_id = cookie_session.get("shop_id")
    if shop_id is None:
        return None
    staff_id = cookie_session.get("staff_id")
    if staff_id is None:
        actor = cookie_session.get("shopify_user")
        shop = session.get(Shop, shop_id)
        if shop is not None and shop.status == "uninstalled":
            _refuse_uninstalled()
            return None
        if (not actor or shop is None or shop.status != "active"
                or shop.console_session_version != cookie_session.get("shop_session_version")):
            return None
        return StaffIdentity(shop_id=shop.id, actor=actor, role="owner", staff_id=None, email=None, via="session",
                             shop_session_version=shop.console_session_version)
    # One query for the member and their shop (current_shop() then reads it from the identity map).
    row = session.execute(select(StaffUser, Shop).join(Shop, Shop.id == StaffUser.shop_id)
                          .where(StaffUser.id == staff_id, StaffUser.shop_id == shop_id)).first()
    if row is None:
        return None
    staff, shop = row
    if shop.status == "uninstalled":
        _refuse_uninstalled()  # before the version check: the uninstall bumped it too
        return None
    if staff.disabled_at is not None or staff.session_version != cookie_session.get("session_version"):
        return None
    return staff_identity(staff, via="session")


# --- route guard ----------------------------------------------------------------------

def _is_api() -> bool:
    return request.path.startswith("/api/")


def requires(permission: str):
    """Route decorator: 401 (API) / redirect to sign-in (pages) when nobody is signed in,
    403 when the role lacks `permission` or a cookie request lacks its CSRF token."""
    if not any(permission in perms for perms in ROLE_PERMISSIONS.values()):
        raise ValueError(f"unknown permission {permission!r}")

    def decorator(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            identity = authenticate_request()
            if identity is None and request.environ.get(_REFUSED) == ShopUninstalled.code:
                return _uninstalled()
            if identity is None:
                if _is_api():
                    response, status = error_response(401, "unauthorized", "Sign in or send a valid bearer token.")
                    response.headers["WWW-Authenticate"] = 'Bearer realm="lojal"'
                    return response, status
                return redirect("/admin/login?" + urlencode({"next": request.full_path.rstrip("?")}))
            if identity.via == "session" and request.method not in SAFE_METHODS and not csrf_ok():
                return _forbidden("csrf_failed", "The CSRF token is missing or wrong; reload the page.")
            if not identity.can(permission):
                return _forbidden("forbidden", f"Your role ({identity.role}) may not do this.")
            return view(*args, **kwargs)
        return guarded
    return decorator


def _uninstalled():
    """The shop was uninstalled: a clear refusal, and the dead cookie dropped."""
    if cookie_session:  # only a cookie request has one to drop (a bearer one would get a Set-Cookie)
        end_session()
    if _is_api():
        return error_response(ShopUninstalled.status, ShopUninstalled.code, ShopUninstalled.MESSAGE)
    flash(ShopUninstalled.MESSAGE, "critical")
    return redirect("/admin/login")


def _forbidden(code: str, message: str):
    if _is_api():
        return error_response(403, code, message)
    raise ForbiddenPage(message)  # the console renders its own 403 page


class StaffSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the signer built only for a request that carries the
    cookie. Staff sessions are the only ones; shoppers' widget calls and platform webhooks never
    send it, and building the signer (itsdangerous, hashlib) on each of them cost a good part of
    their whole CPU. A request without the cookie gets the empty session Flask would give it."""

    def open_session(self, app: Flask, request):
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Session cookie settings for staff sign-in, and the 429 answer with Retry-After."""
    app.session_interface = StaffSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="lojal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["APP_URL"].startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )

    @app.errorhandler(LoginThrottled)
    def login_throttled(exc: LoginThrottled):
        response, status = error_response(exc.status, exc.code, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response, status
