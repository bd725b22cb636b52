"""Shopify App Bridge session tokens: the merchant user, as owner of the token's installed shop."""
from __future__ import annotations

import secrets
import time

import jwt
import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import AuditLog
from tests.app.admin.conftest import API, bearer
from tests.conftest import test_config
from tests.factories import make_customer, make_shop

API_KEY, SECRET = "bridge-key", "bridge-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def bridge_app(app):
    flask_app = create_app(test_config(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=SECRET))
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


@pytest.fixture
def bridge(bridge_app):
    with bridge_app.app_context():
        yield bridge_app.test_client(), db.session
        db.session.rollback()
        db.session.remove()


def session_token(domain: str, *, sub: str = "4242", secret: str = SECRET, aud: str = API_KEY,
                  expires_in: int = 60) -> str:
    now = int(time.time())
    claims = {"iss": f"https://{domain}/admin", "dest": f"https://{domain}", "aud": aud, "sub": sub,
              "exp": now + expires_in, "nbf": now - 5, "iat": now - 5, "jti": secrets.token_hex(8), "sid": "s1"}
    return jwt.encode(claims, secret, algorithm="HS256")


def _shopify_shop(session, status="active"):
    shop = make_shop(session, platform="shopify")
    shop.domain = f"bridge-{secrets.token_hex(4)}.myshopify.com"
    shop.status = status
    customer = make_customer(session, shop)
    session.commit()
    return shop, customer


def test_a_valid_session_token_is_the_merchant_user_as_owner_and_writes_are_audited_as_them(bridge):
    client, session = bridge
    shop, customer = _shopify_shop(session)
    headers = bearer(session_token(shop.domain))
    me = client.get(f"{API}/me", headers=headers).get_json()
    assert me == {"shop_id": shop.id, "actor": "shopify-user:4242", "role": "owner", "staff_id": None, "email": None,
                  "via": "shopify", "permissions": ["adjust", "cancel", "read", "settings", "staff"],
                  "csrf_token": None}
    # A bearer request needs no CSRF token.
    response = client.post(f"{API}/customers/{customer.id}/adjustments", headers=headers,
                           json={"points": 5000, "reason": "goodwill"})
    assert response.status_code == 201
    row = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id, AuditLog.action == "points.adjust")).one()
    assert row.actor == "shopify-user:4242"


@pytest.mark.parametrize("change", [
    {"secret": "someone-elses-secret-0123456789abcdef0123"},
    {"aud": "another-app"},
    {"expires_in": -120},
])
def test_forged_foreign_or_expired_session_tokens_are_401(bridge, change):
    client, session = bridge
    shop, _ = _shopify_shop(session)
    response = client.get(f"{API}/me", headers=bearer(session_token(shop.domain, **change)))
    assert response.status_code == 401


def test_a_session_token_for_an_uninstalled_or_unknown_shop_is_401(bridge):
    client, session = bridge
    shop, _ = _shopify_shop(session, status="uninstalled")
    assert client.get(f"{API}/me", headers=bearer(session_token(shop.domain))).status_code == 401
    assert client.get(f"{API}/me", headers=bearer(session_token("never-installed.myshopify.com"))).status_code == 401


def test_a_session_token_reaches_only_its_own_shop(bridge):
    client, session = bridge
    shop, _ = _shopify_shop(session)
    _, other_customer = _shopify_shop(session)
    response = client.get(f"{API}/customers/{other_customer.id}", headers=bearer(session_token(shop.domain)))
    assert response.status_code == 404
