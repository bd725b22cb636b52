"""What keeps the public widget API safe to expose: CORS, rate limits and a small body cap.

- CORS: only the shop's storefront origins get `Access-Control-Allow-Origin`, no credentials
  (the token travels in `Authorization`), `Vary: Origin` always. Authenticated requests are
  checked against *their* shop; a preflight (which carries no token) against the shop named by
  `?shop=`, else against any shop that registered the origin.
- Rate limits (Flask-Limiter, Redis storage when REDIS_URL is set): per shopper, per client IP
  and redemptions per shopper. A Shopify app-proxy request comes from Shopify's servers: once
  its signature is verified, its shopper's IP is the X-Forwarded-For entry Shopify appended
  (proxied_address), limited on its own, and the shop's proxied guests share a ceiling.
  429 answers carry `Retry-After` and the JSON error envelope. `hit_ip_limit` counts another
  route's per-IP limit on the same limiter and storage (the WooCommerce connect flow).
- POST bodies are capped at WIDGET_MAX_BODY bytes (413).
"""
from __future__ import annotations

import ipaddress
import logging
import math
import time
from functools import lru_cache, partial, wraps

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError
from sqlalchemy import or_, select

from app.bodies import cap_body
from app.errors import error_response
from app.extensions import db
from app.models import Shop
from integrations.woocommerce.urls import stored_forms
from widgets.api import bp as api_bp
from widgets.api import client_address, network
from widgets.api import locale_without_shop
from widgets.auth import peek, shop_by_ref
from widgets.i18n import request_refusal
from widgets.storefront import origin_of, storefront_origins

ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match, Accept-Language"
EXPOSED_HEADERS = "ETag, Retry-After"
_LIMITER = "lojal_widget_limiter"
KEY_PREFIX = "lojal-widget"


def init_hardening(app: Flask, api: Blueprint, referrals: Blueprint) -> None:
    # One limiter per app (its storage is per app); the limits are declared on the blueprints.
    # If Redis goes away the limits fall back to this process's memory: shoppers keep their
    # widget, and the limits still hold per process.
    limiter = Limiter(key_func=client_address, storage_uri=app.config.get("REDIS_URL") or "memory://",
                      key_prefix=KEY_PREFIX, strategy="fixed-window", in_memory_fallback_enabled=True)
    if {api.name, referrals.name} != _LIMITED_BLUEPRINTS:
        raise RuntimeError(f"the limited blueprints are {api.name} and {referrals.name}: update _LIMITED_BLUEPRINTS")
    for blueprint in (api, referrals):
        limiter.shared_limit(lambda: current_app.config["WIDGET_IP_RATE_LIMIT"], scope="widget-ip",
                             key_func=client_address, exempt_when=_ip_exempt)(blueprint)
        limiter.shared_limit(lambda: current_app.config["WIDGET_PROXY_IP_RATE_LIMIT"], scope="widget-proxy-ip",
                             key_func=_proxied_address_key, exempt_when=_not_proxied)(blueprint)
        limiter.shared_limit(lambda: current_app.config["WIDGET_PROXY_GUEST_RATE_LIMIT"], scope="widget-proxy-guest",
                             key_func=_proxied_guest_key, exempt_when=_not_a_proxied_guest)(blueprint)
    limiter.shared_limit(lambda: current_app.config["WIDGET_RATE_LIMIT"], scope="widget-shopper",
                         key_func=_shopper_key, exempt_when=_not_a_shopper)(api)
    limiter.shared_limit(lambda: current_app.config["WIDGET_REDEEM_RATE_LIMIT"], scope="widget-redeem",
                         key_func=_shopper_key, exempt_when=_not_a_shopper, methods=["POST"])(api)
    limiter.request_filter(_skips_the_limiter)
    limiter.init_app(app)
    _not_for_self_limited(app, limiter)
    app.extensions[_LIMITER] = limiter
    app.extensions[_READ_LIMITS] = ReadLimits(limiter)
    app.after_request(_cors_for_unrouted(api))
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    app.register_error_handler(ReadLimitExceeded, _read_limit_exceeded)


def _ip_exempt() -> bool:
    if request.method == "OPTIONS":
        return True
    return _proxied(peek())


def _proxied(shopper) -> bool:
    return shopper is not None and shopper.via == "app_proxy"


def _not_proxied() -> bool:
    return request.method == "OPTIONS" or not _proxied(peek())


def _not_a_proxied_guest() -> bool:
    if request.method == "OPTIONS":
        return True
    shopper = peek()
    return not _proxied(shopper) or shopper.customer_ref is not None


def _proxied_address_key() -> str:
    return proxied_address() if _proxied(peek()) else "none"


def _proxied_guest_key() -> str:
    shopper = peek()
    return str(shopper.shop.id) if _proxied(shopper) else "none"


def proxied_address() -> str:
    """The shopper's address on an app-proxy request: the X-Forwarded-For entry Shopify appended,
    TRUSTED_PROXY_HOPS + 1 from the right (after it, one entry per trusted load balancer; ProxyFix
    leaves the header as it came). Anything before it is the client's own claim. Only for a
    request whose proxy signature was verified (an unsigned request's header is anyone's); as
    client_address(), an IPv6 address counts as its /64. No such entry, or not an address: the
    socket's peer (Shopify's server)."""
    entries = request.environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
    position = current_app.config["TRUSTED_PROXY_HOPS"] + 1
    if len(entries) < position:
        return client_address()
    return _forwarded_entry(entries[-position].strip()) or client_address()


@lru_cache(maxsize=4096)
def _forwarded_entry(entry: str) -> str | None:
    try:
        ipaddress.ip_address(entry)
    except ValueError:
        return None
    return network(entry)


def _skips_the_limiter() -> bool:
    # GET /me counts the same limits itself, in one Redis round trip (hit_read_limits); and
    # only the widget's blueprints have limits: webhooks, the console and the admin API have none
    # here (a platform's burst is never throttled; staff sign-in has its own throttle).
    # (HEAD runs the GET view, so it too counts itself.)
    return request.blueprint not in _LIMITED_BLUEPRINTS or (request.endpoint == SELF_LIMITED
                                                            and request.method in ("GET", "HEAD"))


def _not_for_self_limited(app: Flask, limiter: Limiter) -> None:
    """Flask-Limiter's three app-wide hooks (before: evaluate, after: headers, teardown: its
    per-request context) are skipped for GET /me, which counts its limits itself, and for every
    request outside the widget's blueprints, which have no limits: its filter only answers
    after the endpoint's limits are resolved, ~0.09 ms of /me's ~0.8 ms CPU. The widget's
    other routes run them as before. Fails at start if the hooks are not found."""
    def owned(hook) -> bool:
        return getattr(hook, "__self__", None) is limiter or (isinstance(hook, partial) and hook.args[:1] == (limiter,))

    def before(hook):
        return wraps(hook)(lambda: None if _skips_the_limiter() else hook())

    def after(hook):
        return wraps(hook)(lambda response: response if _skips_the_limiter() else hook(response))

    def teardown(hook):
        return wraps(hook)(lambda exc=None: None if _skips_the_limiter() else hook(exc))

    found = 0
    for hooks, wrap in ((app.before_request_funcs[None], before), (app.after_request_funcs[None], after),
                        (app.teardown_request_funcs[None], teardown)):
        for i, hook in enumerate(hooks):
            if owned(hook):
                hooks[i] = wrap(hook)
                found += 1
    if found != 3:
        raise RuntimeError(f"expected Flask-Limiter's 3 request hooks on the app, found {found}")


def _shopper_key() -> str:
    shopper = peek()
    return f"{shopper.shop.id}:{shopper.customer_ref}" if shopper else "none"


def _not_a_shopper() -> bool:
    if request.method == "OPTIONS":
        return True
    shopper = peek()
    return shopper is None or shopper.customer_ref is None


def _too_many_requests(exc: RateLimitExceeded):
    current = current_app.extensions[_LIMITER].current_limit
    retry_after = max(1, math.ceil(current.reset_at - time.time())) if current is not None else 60
    return _refusal(exc.description, retry_after)


def _refusal(description: str, retry_after: int):
    message = (request_refusal(locale_without_shop(), "too_many_requests", seconds=retry_after)
               or f"Too many requests ({description}); try again in {retry_after} s.")
    response, status = error_response(429, "too_many_requests", message)
    response.headers["Retry-After"] = str(retry_after)
    return response, status


# --- GET /me's limits in one round trip -------------------------------------------------------
#
# Flask-Limiter evaluates each limit on its own: per shopper and per IP (app-proxy requests: per
# forwarded IP and per shop for guests) are a Redis round trip each plus its per-request
# bookkeeping, about a third of /me's CPU. GET /me (the widget's hottest read) is exempted from
# it above and counts the very same limits here with ONE Lua script call, which stops at the
# first limit exceeded as Flask-Limiter does: the same keys (limits' RateLimitItem.key_for with
# the limiter's prefix and scopes, and its storage's prefix), the same fixed windows (INCRBY,
# EXPIRE on the first hit, as limits' incr_expire.lua), so /me and the other widget routes share the counters; the same
# 429 + Retry-After answer; the same configured limits. Without Redis (no REDIS_URL) the
# limiter's own in-memory storage is used through limits, and if Redis fails the limits hold
# in this process's memory, as Flask-Limiter's in-memory fallback does.

SELF_LIMITED = "widget_api.me"
_LIMITED_BLUEPRINTS = frozenset({"widget_api", "widget_referrals"})  # the blueprints init_hardening limits
_HITS = """
local out = {}
for i, key in ipairs(KEYS) do
    local current = redis.call("incrby", key, 1)
    if current == 1 then
        redis.call("expire", key, ARGV[i])
    end
    out[2 * i - 1] = current
    if current > tonumber(ARGV[#KEYS + i]) then
        out[2 * i] = redis.call("ttl", key)
        return out
    end
    out[2 * i] = -1
end
return out
"""
_READ_LIMITS = "lojal_widget_read_limits"
REDIS_RETRY_SECONDS = 5.0
log = logging.getLogger(__name__)


class ReadLimitExceeded(Exception):
    def __init__(self, limit: RateLimitItem, retry_after: int):
        super().__init__(str(limit))
        self.limit = limit
        self.retry_after = retry_after


@lru_cache(maxsize=64)
def _limit_items(setting: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(setting))


class ReadLimits:
    def __init__(self, limiter: Limiter):
        self.limiter = limiter
        storage = limiter.storage
        self.redis = storage.get_connection() if isinstance(storage, RedisStorage) else None
        self.script = self.redis.register_script(_HITS) if self.redis is not None else None
        self.storage = storage
        self.fallback = FixedWindowRateLimiter(MemoryStorage())
        self.local = FixedWindowRateLimiter(storage) if self.redis is None else None
        # After a Redis failure, memory only for a while (as Flask-Limiter backs off): a dead host
        # must not cost every request a connection attempt.
        self.redis_retry_at = 0.0

    def hit(self, counted: list[tuple[RateLimitItem, str, str]]) -> None:
        """Count one request against each (limit, key, scope) in turn, shortest window first (a
        stable sort, as Flask-Limiter orders them); ReadLimitExceeded at the first one over, the
        rest not counted."""
        if not counted or not self.limiter.enabled:  # RATELIMIT_ENABLED=False turns these off too
            return
        counted = sorted(counted, key=lambda c: c[0])
        prefix = KEY_PREFIX
        if self.script is not None and time.monotonic() >= self.redis_retry_at:
            keys = [self.storage.prefixed_key(item.key_for(prefix, key, scope)) for item, key, scope in counted]
            try:
                out = self.script(keys=keys, args=[item.get_expiry() for item, _, _ in counted]
                                  + [item.amount for item, _, _ in counted])
            except RedisError as exc:
                log.warning("rate limit storage unreachable (%s): limiting from process memory", type(exc).__name__)
                self.redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
                out = None
            if out is not None:
                for i, (item, _, _) in enumerate(counted[:len(out) // 2]):
                    if out[2 * i] > item.amount:
                        raise ReadLimitExceeded(item, max(1, int(out[2 * i + 1])))
                return
        strategy = self.local or self.fallback
        for item, key, scope in counted:
            if not strategy.hit(item, prefix, key, scope):
                reset_at = strategy.get_window_stats(item, prefix, key, scope).reset_time
                raise ReadLimitExceeded(item, max(1, math.ceil(reset_at - time.time())))


def hit_read_limits(shopper) -> None:
    """GET /me's limits, in the order init_hardening declares them: per IP (an app-proxy
    request's: per forwarded shopper IP, and per shop for its guests), per signed-in shopper."""
    config = current_app.config
    if not _proxied(shopper):
        counted = [(item, client_address(), "widget-ip") for item in _limit_items(config["WIDGET_IP_RATE_LIMIT"])]
    else:
        counted = [(item, proxied_address(), "widget-proxy-ip")
                   for item in _limit_items(config["WIDGET_PROXY_IP_RATE_LIMIT"])]
        if shopper.customer_ref is None:
            counted += [(item, str(shopper.shop.id), "widget-proxy-guest")
                        for item in _limit_items(config["WIDGET_PROXY_GUEST_RATE_LIMIT"])]
    if shopper is not None and shopper.customer_ref is not None:
        counted += [(item, f"{shopper.shop.id}:{shopper.customer_ref}", "widget-shopper")
                    for item in _limit_items(config["WIDGET_RATE_LIMIT"])]
    current_app.extensions[_READ_LIMITS].hit(counted)


def hit_ip_limit(setting: str, scope: str) -> None:
    """Count this request against the per-client-IP limit `config[setting]` under `scope`, on the
    widget's limiter and storage (routes outside the widget, e.g. the WooCommerce connect flow):
    ReadLimitExceeded, answered 429 with Retry-After, when over."""
    items = _limit_items(current_app.config[setting])
    current_app.extensions[_READ_LIMITS].hit([(item, client_address(), scope) for item in items])


def _read_limit_exceeded(exc: ReadLimitExceeded):
    return _refusal(str(exc.limit), exc.retry_after)


def _cap_body() -> None:
    cap_body(current_app.config["WIDGET_MAX_BODY"])


def _cors(response):
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or not _origin_allowed(origin.strip().lower()):
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _cors_for_unrouted(api: Blueprint):
    """CORS for a widget API path that matched no route (404) or not with this method (405):
    routing failed before the blueprint's hooks, and the storefront must still read the error."""
    prefix = api.url_prefix.rstrip("/") + "/"

    def cors(response):
        if request.blueprint is None and request.path.startswith(prefix):
            return _cors(response)
        return response
    return cors


def _origin_allowed(origin: str) -> bool:
    if origin_of(origin) != origin:
        return False  # not a bare scheme://host[:port]
    shopper = peek() if request.method != "OPTIONS" else None
    if shopper is not None:
        return origin in storefront_origins(shopper.shop)
    named = request.args.get("shop", "").strip()
    if named:
        shop = shop_by_ref(named)
        return shop is not None and origin in storefront_origins(shop)
    return _some_shop_serves(origin)


def _some_shop_serves(origin: str) -> bool:
    # A store saved before default ports were dropped holds `https://host:443[/path]`.
    forms = stored_forms(origin) if origin.startswith(("https://", "http://")) else (origin,)
    candidates = [Shop.domain.in_(forms), *(Shop.domain.startswith(form + "/", autoescape=True) for form in forms),
                  Shop.settings["storefront_origins"].contains([origin])]
    if origin.startswith("https://"):  # Shopify and demo shops store the bare host
        candidates.append(Shop.domain == origin.removeprefix("https://"))
    stmt = select(Shop.id).where(Shop.status == "active", or_(*candidates)).limit(1)
    return db.session.execute(stmt).first() is not None


# Attached once, at import (a blueprint cannot change after its first registration; tests build
# several apps): the body cap before every widget API view, CORS on every answer.
api_bp.before_request(_cap_body)
api_bp.after_request(_cors)
