"""Shared set-up for the widget API tests: a shop with a widget secret, tokens, a client per IP."""
from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime

import pytest

from app.loyalty.ledger import lock_customer, post_entry
from tests.conftest import app_session
from tests.factories import make_customer, make_shop
from widgets.tokens import ensure_widget_secret, sign_customer_token

_ips = itertools.count(1)


def widget_shop(session, **settings):
    """A committed shop (default program) with a widget secret; returns (shop, secret)."""
    shop = make_shop(session, **settings)
    secret = ensure_widget_secret(session, shop)
    session.commit()
    return shop, secret


def shopper(session, shop, points: int = 0, **fields):
    """A committed customer holding `points` (through the ledger, so balances stay true)."""
    customer = make_customer(session, shop, **fields)
    if points:
        locked = lock_customer(session, shop.id, customer.id)
        post_entry(session, locked, kind="adjust", key=f"test:{secrets.token_hex(6)}", now=datetime.now(UTC),
                   points=points, reason="test set-up", actor="test")
    session.commit()
    return customer


def token(shop, secret, customer_or_id, ttl: int = 3600, now: datetime | None = None) -> str:
    ref = getattr(customer_or_id, "platform_customer_id", customer_or_id)
    return sign_customer_token(secret, shop.uid, ref, now or datetime.now(UTC), ttl=ttl)


def bearer(value: str, **extra) -> dict:
    return {"Authorization": f"Bearer {value}", **extra}


def client_for(flask_app, ip: str | None = None):
    """A test client with its own client IP, so per-IP limits of one test never touch another."""
    client = flask_app.test_client()
    n = next(_ips)
    client.environ_base["REMOTE_ADDR"] = ip or f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    return client


@pytest.fixture
def wclient(app):
    return client_for(app)

def proxy_query(shop_domain: str, customer_id: str = "", secret: str = "hush", at: datetime | None = None,
                **extra: str) -> str:
    """A query string as Shopify's app proxy signs it (PLATFORMS.md: sorted k=v, no separator)."""
    import hashlib
    import hmac
    from urllib.parse import urlencode

    from integrations.shopify.app_proxy import app_proxy_message

    params = {"shop": shop_domain, "logged_in_customer_id": customer_id, "path_prefix": "/apps/lojal",
              "timestamp": str(int((at or datetime.now(UTC)).timestamp())), **extra}
    message = app_proxy_message({k: [v] for k, v in params.items()})
    signature = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return urlencode({**params, "signature": signature})


@pytest.fixture(scope="module")
def proxy_app(app):
    """The app with Shopify credentials, so app-proxy signatures can be verified."""
    from app import create_app
    from tests.conftest import test_config

    return create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET="hush"))


@pytest.fixture
def proxy_session(proxy_app):
    with app_session(proxy_app) as session:
        yield session


@pytest.fixture
def proxy_client(proxy_app):
    return client_for(proxy_app)
