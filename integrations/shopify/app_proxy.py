"""Shopify App Proxy requests: who is asking (shop, logged-in customer), proven by a signature.

This is the algorithm `shopify_app.verify_app_proxy_req` implements, written out because that
function reads the clock itself (`time.time()`), and we need the time injected to test the
documented vector and to keep one clock per request. Message: drop `signature`, join repeated
values with ",", build "k=v" for each key, sort those strings, concatenate with no separator;
signature = HMAC-SHA256 hex with the app secret (the old secret too, during rotation),
compared in constant time.

Timestamp window: +/- 90 s, as shopify_app and Shopify's JS library use. The proxied request
is made by Shopify the moment the shopper asks, so a signed URL older than that is a replay.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import parse_qs

from flask import current_app

from integrations.shopify.domains import valid_shop_domain

TIMESTAMP_WINDOW_SECONDS = 90


class InvalidAppProxyRequest(Exception):
    """The request did not come from Shopify's app proxy (or is too old). Answer 401."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # a stable code: missing_signature, invalid_signature, expired, ...


def verify_app_proxy(query_string: str, *, now: datetime,
                     secrets: Iterable[str] | None = None) -> tuple[str, str | None]:
    """Return (shop domain, logged-in customer id or None for a guest), or raise InvalidAppProxyRequest.

    `secrets` defaults to SHOPIFY_API_SECRET then SHOPIFY_OLD_API_SECRET from the app config.
    """
    params = parse_qs(query_string or "", keep_blank_values=True)
    signatures = params.pop("signature", [])
    if len(signatures) != 1 or not signatures[0]:
        raise InvalidAppProxyRequest("missing_signature", "the app proxy signature is missing")
    for single in ("shop", "timestamp", "logged_in_customer_id"):
        if len(params.get(single, [])) > 1:
            raise InvalidAppProxyRequest("repeated_parameter", f"`{single}` appears more than once")
    if not _signature_matches(signatures[0], _message(params), _secrets(secrets)):
        raise InvalidAppProxyRequest("invalid_signature", "the app proxy signature does not match")
    # Checked after the signature, so nobody learns anything about our clock from unsigned input.
    _check_timestamp(params.get("timestamp", [""])[0], now)
    shop = valid_shop_domain(params.get("shop", [""])[0])
    if shop is None:
        raise InvalidAppProxyRequest("invalid_shop", "the `shop` parameter is not a myshopify.com domain")
    customer_id = params.get("logged_in_customer_id", [""])[0] or None  # empty: a guest
    return shop, customer_id


def app_proxy_message(params: dict[str, list[str]]) -> str:
    """The signed message for already-parsed parameters (without `signature`)."""
    return _message(params)


def _message(params: dict[str, list[str]]) -> str:
    return "".join(sorted(f"{key}={','.join(values)}" for key, values in params.items()))


def _signature_matches(received: str, message: str, secrets: list[str]) -> bool:
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        # No early exit: the time taken does not tell which secret (if any) matched.
        matched |= hmac.compare_digest(received.encode(), expected.encode())
    return matched


def _secrets(secrets: Iterable[str] | None) -> list[str]:
    if secrets is None:
        secrets = (current_app.config.get("SHOPIFY_API_SECRET"), current_app.config.get("SHOPIFY_OLD_API_SECRET"))
    usable = [s for s in secrets if s]
    if not usable:
        raise RuntimeError("SHOPIFY_API_SECRET is not configured: app proxy requests cannot be verified")
    return usable


def _check_timestamp(value: str, now: datetime) -> None:
    try:
        signed_at = int(value)
    except ValueError:
        raise InvalidAppProxyRequest("invalid_timestamp",
                                     "the `timestamp` parameter is missing or not an integer") from None
    if abs(now.timestamp() - signed_at) > TIMESTAMP_WINDOW_SECONDS:
        raise InvalidAppProxyRequest(
            "expired", f"the request was signed more than {TIMESTAMP_WINDOW_SECONDS} s from now (replayed or stale)")
