"""Signed unsubscribe tokens: they name one shop and one customer, and only our SECRET_KEY makes them."""
from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "lojal.email.unsubscribe"


class InvalidUnsubscribeToken(ValueError):
    """Forged, tampered or malformed."""


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=SALT)


def make_unsubscribe_token(secret_key: str, shop_id: int, customer_id: int) -> str:
    # No expiry: an unsubscribe link in an old email must keep working (CAN-SPAM, RFC 8058).
    return _serializer(secret_key).dumps({"s": int(shop_id), "c": int(customer_id)})


def read_unsubscribe_token(secret_key: str, token: str) -> tuple[int, int]:
    """(shop_id, customer_id) named by a genuine token; InvalidUnsubscribeToken otherwise."""
    try:
        data = _serializer(secret_key).loads(token)
    except BadSignature:
        raise InvalidUnsubscribeToken("bad signature") from None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int) or not isinstance(data.get("c"), int):
        raise InvalidUnsubscribeToken("malformed")
    return data["s"], data["c"]


def unsubscribe_url(app_url: str, secret_key: str, shop_id: int, customer_id: int) -> str:
    return f"{app_url.rstrip('/')}/email/unsubscribe/{make_unsubscribe_token(secret_key, shop_id, customer_id)}"
