"""Delivering signed Shopify webhooks to the app in tests (HMAC computed as Shopify documents it)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid

import pytest

from app import create_app
from app.extensions import db
from app.inbox import dispose_inbox_engine
from app.models import Shop
from tests.conftest import test_config
from tests.factories import make_shop

SECRET = "hush"
OLD_SECRET = "old-hush"
TRIGGERED_AT = "2026-07-14T14:02:15.000000000Z"


@pytest.fixture(scope="module")
def webhook_app(app):
    """An app with Shopify credentials (after the session fixture has migrated the database)."""
    flask_app = create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET=SECRET, SHOPIFY_OLD_API_SECRET=OLD_SECRET))
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()
    dispose_inbox_engine(flask_app)


@pytest.fixture
def shopify_client(webhook_app):
    return webhook_app.test_client()


def sign(body: bytes, secret: str = SECRET) -> str:
    """base64(HMAC-SHA256(secret, raw body)): the X-Shopify-Hmac-Sha256 header."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_shop(session, **settings) -> Shop:
    shop = make_shop(session, platform="shopify", **settings)
    shop.domain = f"lojal-{secrets.token_hex(5)}.myshopify.com"
    session.commit()
    return shop


def deliver(client, shop_domain: str, topic: str, payload: dict, *, event_id: str | None = None,
            secret: str | None = SECRET, body: bytes | None = None, triggered_at: str = TRIGGERED_AT, **headers):
    """POST one webhook as Shopify would; `secret=None` leaves the HMAC header out."""
    body = json.dumps(payload).encode() if body is None else body
    sent = {
        "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop_domain, "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_at, "Content-Type": "application/json",
    }
    if secret is not None:
        sent["X-Shopify-Hmac-Sha256"] = sign(body, secret)
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.post("/shopify/webhooks", data=body, headers={k: v for k, v in sent.items() if v is not None})
