"""POST /shopify/webhooks: verify, store in the inbox, enqueue, answer 200. Nothing else.

Shopify gives us 5 seconds and retries on failure, so the request only proves the body is
Shopify's (HMAC over the raw bytes, current or previous app secret), stores it once per
event id and hands it to a job. Parsing and points happen in jobs.inbox.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime

import shopify_app
from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select

from app.errors import error_response
from app.extensions import db
from app.inbox import parse_json_object, store_inbound_event
from app.models import Shop
from integrations.shopify.domains import valid_shop_domain
from integrations.shopify.parsers import parse_time
from jobs.inbox import enqueue_processing

log = logging.getLogger(__name__)
bp = Blueprint("shopify_webhooks", __name__)

_TOPIC = re.compile(r"[a-z0-9_]+(/[a-z0-9_]+)+")
# What the job may need later; the HMAC itself is not worth keeping.
_KEPT_HEADERS = ("x-shopify-topic", "x-shopify-shop-domain", "x-shopify-api-version", "x-shopify-webhook-id",
                 "x-shopify-event-id", "x-shopify-triggered-at")


@bp.post("/shopify/webhooks")
def receive_webhook():
    raw = request.get_data(cache=False)
    if not _signed_by_shopify(raw, request.headers):
        return error_response(401, "invalid_hmac", "The webhook's HMAC is missing or does not match.")

    topic = request.headers.get("X-Shopify-Topic", "").strip()
    domain = valid_shop_domain(request.headers.get("X-Shopify-Shop-Domain"))
    event_key = request.headers.get("X-Shopify-Event-Id") or request.headers.get("X-Shopify-Webhook-Id")
    if not _TOPIC.fullmatch(topic) or len(topic) > 64 or domain is None or not event_key or len(event_key) > 255:
        return error_response(400, "bad_webhook_headers",
                              "X-Shopify-Topic, X-Shopify-Shop-Domain and X-Shopify-Event-Id are required.")
    payload = parse_json_object(raw)
    if payload is None:
        return error_response(400, "malformed_json", "The webhook body is not a JSON object.")

    shop = db.session.scalars(select(Shop).where(Shop.platform == "shopify", Shop.domain == domain)).first()
    if shop is None:
        # Not ours (any more): compliance topics keep coming for shops already purged.
        log.info("Shopify webhook %s for unknown shop %s ignored", topic, domain)
        return jsonify(status="ignored"), 200

    event_id = store_inbound_event(
        db.session, shop_id=shop.id, platform="shopify", topic=topic, event_key=event_key, payload=payload,
        headers={k: request.headers[k] for k in _KEPT_HEADERS if k in request.headers},
        triggered_at=_header_time(request.headers.get("X-Shopify-Triggered-At")),
    )
    db.session.commit()
    if event_id is None:
        return jsonify(status="duplicate"), 200
    try:
        enqueue_processing(event_id)
    except (RedisConnectionError, RedisTimeoutError):
        # The row is committed; the inbox sweeper enqueues it once Redis is back.
        log.warning("Redis unavailable; webhook event left for the sweeper", extra={"event_id": event_id})
    return jsonify(status="stored"), 200


def _signed_by_shopify(raw: bytes, headers: Mapping[str, str]) -> bool:
    config = current_app.config
    if not config.get("SHOPIFY_API_SECRET"):
        log.error("SHOPIFY_API_SECRET is not set: Shopify webhooks cannot be verified")
        return False
    received = headers.get("X-Shopify-Hmac-Sha256", "")
    try:
        body = raw.decode("utf-8")  # shopify_app signs str; valid UTF-8 round-trips to the same bytes
    except UnicodeDecodeError:
        return False
    if not received or not received.isascii():
        return False  # hmac.compare_digest refuses non-ASCII str: that is a forgery, not a 500
    try:
        result = shopify_app.verify_webhook_req(
            {"method": "POST", "headers": {"x-shopify-hmac-sha256": received}, "url": request.url, "body": body},
            {"client_id": config.get("SHOPIFY_API_KEY") or "", "client_secret": config["SHOPIFY_API_SECRET"],
             "old_client_secret": config.get("SHOPIFY_OLD_API_SECRET") or None},
        )
    except RecursionError:
        return False  # shopifyapp json-parses the body for its log before checking: a nesting bomb
    return result.ok


def _header_time(value: str | None) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None  # informational only: the parsers fall back to the payload's own times
