"""Configuration from the environment (12-factor), validated once at start.

`load_config(environ)` returns a plain dict for `app.config`; any missing or malformed
setting raises `ConfigError` naming the setting, so a bad deploy fails before serving.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parseaddr
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _url_with_scheme(*schemes: str, hostless: tuple[str, ...] = ()):
    """`hostless` schemes may name no host: a unix socket (unix:///path, postgresql:///db)."""
    def check(value: str) -> None:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or (parts.scheme in hostless and parts.path)):
            raise ValidationError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        # Checked here, else a typo surfaces later as a traceback that names no setting.
        try:
            parts.port
        except ValueError:
            raise ValidationError("has a port that is not a number") from None
        if parts.netloc and not parts.hostname and parts.scheme not in hostless:
            raise ValidationError("must name a host")
    return check


def _redis_database(value: str) -> None:
    # redis-py silently falls back to database 0 on a path like /1x (another app's data).
    parts = urlsplit(value)
    if parts.scheme != "unix" and not re.fullmatch(r"/?(\d+)?", parts.path):
        raise ValidationError("the path must be a database number, e.g. redis://host:6379/0")


def _mail_from(value: str) -> None:
    # The envelope sender of every email: without an address each one is refused for good.
    local, _, domain = parseaddr(value)[1].rpartition("@")
    if not local or not domain:
        raise ValidationError("must hold an email address, e.g. Lojal <no-reply@shop.example>")


_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def _rate_limit(value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValidationError("must be a rate like 120/minute (or several, separated by ;)") from None


class ConfigSchema(Schema):
    """The environment Lojal reads. Names are the environment variable names."""

    class Meta:
        unknown = INCLUDE  # the environment holds much else; only our names are read

    SECRET_KEY = fields.String(required=True, validate=validate.Length(min=16))
    APP_URL = fields.String(required=True, validate=_url_with_scheme("http", "https"))
    TOKEN_ENCRYPTION_KEYS = fields.String(required=True)
    DATABASE_URL = fields.String(load_default=None, validate=_url_with_scheme(
        *_POSTGRES_SCHEMES, hostless=_POSTGRES_SCHEMES))  # no host: libpq's local socket
    REDIS_URL = fields.String(load_default=None, validate=[
        _url_with_scheme("redis", "rediss", "unix", hostless=("unix",)), _redis_database])
    SHOPIFY_API_KEY = fields.String(load_default=None)
    SHOPIFY_API_SECRET = fields.String(load_default=None)
    SHOPIFY_OLD_API_SECRET = fields.String(load_default=None)
    SHOPIFY_SCOPES = fields.String(load_default="read_orders,read_customers,write_discounts")
    SHOPIFY_API_VERSION = fields.String(load_default="2026-07", validate=validate.Regexp(r"^\d{4}-(01|04|07|10)$", error="must be a quarterly version like 2026-07"))
    SMTP_URL = fields.String(load_default=None, validate=_url_with_scheme("smtp", "smtps", "smtp+starttls"))
    MAIL_FROM = fields.String(load_default="Lojal <no-reply@localhost>", validate=_mail_from)
    WOOCOMMERCE_ALLOW_HTTP = fields.Boolean(load_default=False)  # development stores on plain http only
    LOG_LEVEL = fields.String(load_default="INFO", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]))
    MAX_CONTENT_LENGTH = fields.Integer(load_default=1_048_576, validate=validate.Range(min=1024))
    JOB_TIMEOUT = fields.Integer(load_default=300, validate=validate.Range(min=1))
    JOB_RETRIES = fields.Integer(load_default=5, validate=validate.Range(min=0, max=25))
    JOB_FAILURE_TTL = fields.Integer(load_default=7 * 24 * 3600, validate=validate.Range(min=60))
    # Processed webhook inbox rows (payloads hold shopper data) are deleted after this many days.
    INBOX_RETENTION_DAYS = fields.Integer(load_default=30, validate=validate.Range(min=3, max=3650))
    # Shopper widget API (widgets.hardening): Flask-Limiter rate strings and the POST body cap.
    WIDGET_RATE_LIMIT = fields.String(load_default="120/minute", validate=_rate_limit)          # per shopper
    WIDGET_IP_RATE_LIMIT = fields.String(load_default="600/minute", validate=_rate_limit)       # per client IP
    WIDGET_REDEEM_RATE_LIMIT = fields.String(load_default="10/minute", validate=_rate_limit)    # redemptions per shopper
    # Shopify app-proxy requests: per shopper IP (from Shopify's X-Forwarded-For entry), and per
    # shop for its proxied guests together.
    WIDGET_PROXY_IP_RATE_LIMIT = fields.String(load_default="600/minute", validate=_rate_limit)
    WIDGET_PROXY_GUEST_RATE_LIMIT = fields.String(load_default="10000/minute", validate=_rate_limit)
    # WooCommerce connect flow (app.web.woocommerce_connect): per client IP, and how many stores may
    # be pending (keys not yet proven) before a callback for a new store is refused.
    WOOCOMMERCE_CONNECT_RATE_LIMIT = fields.String(load_default="10/minute;60/hour", validate=_rate_limit)
    WOOCOMMERCE_CALLBACK_RATE_LIMIT = fields.String(load_default="30/minute", validate=_rate_limit)
    WOOCOMMERCE_MAX_PENDING_STORES = fields.Integer(load_default=500, validate=validate.Range(min=0))
    # Staff sign-in attempts per client IP (an IPv6 one as its /64), whatever the email: each costs
    # an argon2 hash, and the per-email counter alone lets one client spray every email.
    STAFF_SIGN_IN_RATE_LIMIT = fields.String(load_default="20/minute;200/hour", validate=_rate_limit)
    # How many reverse proxies (load balancers) in front of the app set X-Forwarded-For/-Proto:
    # 0 trusts none (a client could forge them); 1 behind one load balancer, and so on.
    TRUSTED_PROXY_HOPS = fields.Integer(load_default=0, validate=validate.Range(min=0, max=5))
    WIDGET_MAX_BODY = fields.Integer(load_default=4096, validate=validate.Range(min=256, max=1_048_576))

    @validates("TOKEN_ENCRYPTION_KEYS")
    def _fernet_keys(self, value: str, **_) -> None:
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            raise ValidationError("must hold at least one key")
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ValidationError(f"key {position} is not a valid Fernet key (32 url-safe base64 bytes)") from None

    @validates_schema
    def _shopify_pair(self, data: dict, **_) -> None:
        if bool(data.get("SHOPIFY_API_KEY")) != bool(data.get("SHOPIFY_API_SECRET")):
            missing = "SHOPIFY_API_SECRET" if data.get("SHOPIFY_API_KEY") else "SHOPIFY_API_KEY"
            raise ValidationError("SHOPIFY_API_KEY and SHOPIFY_API_SECRET go together", missing)
        if data.get("SHOPIFY_OLD_API_SECRET") and not data.get("SHOPIFY_API_SECRET"):
            # Accepted beside the current secret during a rotation, never instead of it.
            raise ValidationError("is only accepted beside SHOPIFY_API_SECRET (during a secret rotation)",
                                  "SHOPIFY_OLD_API_SECRET")


_SETTING_NAMES = tuple(ConfigSchema().fields)


def load_config(environ: Mapping[str, str]) -> dict:
    """Validate the settings found in `environ`; raise ConfigError naming each bad one."""
    raw = {name: environ[name] for name in _SETTING_NAMES if environ.get(name) not in (None, "")}
    if isinstance(raw.get("LOG_LEVEL"), str):
        raw["LOG_LEVEL"] = raw["LOG_LEVEL"].upper()  # as gunicorn.conf.py reads it, in any case
    try:
        loaded = ConfigSchema().load(raw)
    except ValidationError as err:
        problems = "; ".join(f"{name}: {' '.join(_flatten(msgs))}" for name, msgs in sorted(err.messages_dict.items()))
        raise ConfigError(f"invalid configuration: {problems}") from None
    loaded = {k: v for k, v in loaded.items() if k in _SETTING_NAMES}
    loaded["TOKEN_ENCRYPTION_KEYS"] = [k.strip() for k in loaded["TOKEN_ENCRYPTION_KEYS"].split(",") if k.strip()]
    if loaded["DATABASE_URL"]:
        loaded["DATABASE_URL"] = sqlalchemy_url(loaded["DATABASE_URL"])
    return loaded


def sqlalchemy_url(url: str) -> str:
    """postgres:// and postgresql:// URLs name the psycopg 3 driver for SQLAlchemy."""
    return re.sub(r"^(postgres|postgresql)(\+psycopg)?://", "postgresql+psycopg://", url)


def _flatten(messages) -> list[str]:
    if isinstance(messages, dict):
        return [m for v in messages.values() for m in _flatten(v)]
    if isinstance(messages, list):
        return [m for v in messages for m in _flatten(v)]
    return [str(messages)]
