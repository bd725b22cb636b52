"""WooCommerce stores and signed deliveries in tests (signature computed as WooCommerce does:
base64(HMAC-SHA256(raw body)), keyed with the webhook secret after HTML-entity decoding, which
callers pass here already decoded)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid

from app.crypto import token_cipher
from app.models import Shop
from tests.factories import make_shop

WEBHOOK_SECRET = "w3bh00k-s3cret"


def store_url() -> str:
    return f"https://store-{secrets.token_hex(5)}.example.com"


def woo_shop(session, *, secret: str = WEBHOOK_SECRET, **settings) -> Shop:
    shop = make_shop(session, platform="woocommerce", **settings)
    shop.domain = store_url()
    shop.webhook_secret_enc = token_cipher.encrypt(secret)
    shop.access_token_enc = token_cipher.encrypt("ck_test")
    shop.api_secret_enc = token_cipher.encrypt("cs_test")
    session.commit()
    return shop


def sign(body: bytes, key: str = WEBHOOK_SECRET) -> str:
    """X-WC-Webhook-Signature for `body` with `key` as WooCommerce uses it (already entity-decoded)."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def deliver(client, shop: Shop, topic: str, payload: dict, *, secret: str | None = WEBHOOK_SECRET,
            body: bytes | None = None, delivery_id: str | None = None, **headers):
    """POST one delivery as WooCommerce would; `secret=None` leaves the signature out."""
    body = json.dumps(payload).encode() if body is None else body
    resource, _, event = topic.partition(".")
    sent = {
        "X-WC-Webhook-Source": f"{shop.domain}/", "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event, "X-WC-Webhook-ID": "41", "Content-Type": "application/json",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }
    if secret is not None:
        sent["X-WC-Webhook-Signature"] = sign(body, secret)
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.post(f"/woocommerce/webhooks/{shop.uid}", data=body, headers=sent)
