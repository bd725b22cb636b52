"""POST /woocommerce/webhooks/<shop_uid>: verify, store in the inbox, enqueue, answer 200.

WooCommerce never retries a failed delivery and disables a webhook after about five failures
in a row, so anything that is not a forgery gets a 2xx: the creation ping, deliveries for a
disconnected shop (stored nothing), bodies we cannot use (kept for inspection by the job).
- Signature: `X-WC-Webhook-Signature` = base64(HMAC-SHA256(raw body)) keyed with the
  webhook's secret *after HTML-entity decoding* (WooCommerce signs with
  wp_specialchars_decode(secret)); compared in constant time.
- Dedupe: resource id + topic + the body's `date_modified_gmt`. X-WC-Webhook-Delivery-ID is
  new on every delivery, so it cannot tell a repeat from a change.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import re
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.exc import DataError

from app.crypto import token_cipher
from app.errors import error_response
from app.extensions import db
from app.inbox import parse_json_object, store_delivery
from app.models import Shop
from integrations.woocommerce.parsers import RECEIVED_AT_HEADER
from jobs.inbox import enqueue_processing

log = logging.getLogger(__name__)
bp = Blueprint("woocommerce_webhooks", __name__)

_TOPIC = re.compile(r"[a-z_]+\.[a-z_]+")
_PING = re.compile(rb"webhook_id=\d+")
_KEPT_HEADERS = ("x-wc-webhook-topic", "x-wc-webhook-source", "x-wc-webhook-resource", "x-wc-webhook-event",
                 "x-wc-webhook-id", "x-wc-webhook-delivery-id")


@bp.post("/woocommerce/webhooks/<shop_uid>")
def receive_webhook(shop_uid: str):
    shop = db.session.scalars(select(Shop).where(Shop.platform == "woocommerce", Shop.uid == shop_uid)).first()
    if shop is None:
        return error_response(404, "unknown_shop", "No WooCommerce store is connected at this address.")
    raw = request.get_data(cache=False)
    signature = request.headers.get("X-WC-Webhook-Signature")
    if signature is None and _PING.fullmatch(raw.strip()):
        return jsonify(status="pong"), 200  # sent once when a webhook is created; unsigned
    if not _signed_by_store(raw, signature, shop):
        return error_response(401, "invalid_signature", "The webhook's signature is missing or does not match.")
    if shop.status != "active":
        # Disconnected: nothing is applied, but a failure would get the store to disable the webhook.
        return jsonify(status="ignored"), 200
    shop_id = shop.id
    db.session.rollback()  # end the lookup's transaction: the row is stored on the inbox's own connection

    topic = request.headers.get("X-WC-Webhook-Topic", "").strip()
    try:
        body = raw.decode("utf-8")  # stored as JSON text; WordPress sends UTF-8
    except UnicodeDecodeError:
        body = ""
    payload = parse_json_object(body)
    if not _TOPIC.fullmatch(topic) or len(topic) > 64 or payload is None:
        log.warning("unusable WooCommerce webhook ignored", extra={"shop_id": shop_id, "topic": topic[:64]})
        return jsonify(status="ignored"), 200
    headers = {k: request.headers[k] for k in _KEPT_HEADERS if k in request.headers}
    received_at = datetime.now(UTC)
    headers[RECEIVED_AT_HEADER] = received_at.isoformat()
    event_key = _event_key(topic, payload, request.headers.get("X-WC-Webhook-Delivery-ID", ""))
    try:
        event_id = store_delivery(current_app, platform="woocommerce", shop_id=shop_id, topic=topic,
                                  event_key=event_key, body=body, headers=headers, triggered_at=received_at).event_id
    except DataError:
        # Valid JSON to Python, not to JSONB (a \u0000 escape, NaN): kept out, but still a 2xx.
        log.warning("unstorable WooCommerce webhook ignored", extra={"shop_id": shop_id, "topic": topic})
        return jsonify(status="ignored"), 200
    if event_id is None:
        return jsonify(status="duplicate"), 200
    try:
        enqueue_processing(event_id)
    except (RedisConnectionError, RedisTimeoutError):
        # The row is committed; the inbox sweeper enqueues it once Redis is back.
        log.warning("Redis unavailable; webhook event left for the sweeper", extra={"event_id": event_id})
    return jsonify(status="stored"), 200


def _signed_by_store(raw: bytes, received: str | None, shop: Shop) -> bool:
    if not received or not received.isascii() or not shop.webhook_secret_enc:
        return False  # hmac.compare_digest refuses non-ASCII str: that is a forgery, not a 500
    key = html.unescape(token_cipher.decrypt(shop.webhook_secret_enc)).encode()
    expected = base64.b64encode(hmac.new(key, raw, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(received.strip(), expected)


def _event_key(topic: str, payload: dict, delivery_id: str) -> str:
    """resource id + topic + date_modified_gmt: a redelivery of the same state is one row.

    `order.deleted` bodies are only `{"id": N}`, with no state to compare: each delivery is
    its own event (keyed by the Delivery-ID), which is harmless because applying a deletion
    twice is a no-op, and a trash -> restore -> trash again is not lost.
    """
    version = str(payload.get("date_modified_gmt") or "") or f"delivery:{delivery_id}"
    return f"{payload.get('id', '')}:{topic}:{version}"[:255]
