"""The WooCommerce REST v3 client (the `woocommerce` package), with errors sorted into retry / give up."""
from __future__ import annotations

from typing import Any

import requests
from flask import current_app
from woocommerce import API

from app.crypto import token_cipher
from app.models import Shop
from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.woocommerce.transport import PinnedStoreAPI, pinned_session, vet_address

TIMEOUT_SECONDS = 15
# A store answer larger than this is refused (a hostile store could otherwise fill the worker's memory).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class StoreDisconnected(PermanentPlatformError):
    """The store answered 401: our keys were revoked. The shop must be marked disconnected."""


def store_api(shop: Shop) -> API:
    """The package's client for this store, connecting only to the address vetted now (see
    transport.py); a shop without keys is refused before its host is even resolved."""
    if not shop.access_token_enc or not shop.api_secret_enc:
        raise StoreDisconnected(f"shop {shop.id} has no WooCommerce keys")
    address = vet_address(shop.domain, allow_local=bool(current_app.config.get("WOOCOMMERCE_ALLOW_HTTP")))
    return PinnedStoreAPI(url=shop.domain, consumer_key=token_cipher.decrypt(shop.access_token_enc),
                          consumer_secret=token_cipher.decrypt(shop.api_secret_enc), version="wc/v3",
                          timeout=TIMEOUT_SECONDS, session=pinned_session(shop.domain, address))


def call(shop: Shop, method: str, endpoint: str, data: dict | None = None, params: dict | None = None) -> Any:
    """One REST call; returns the decoded JSON. 401 -> StoreDisconnected, 429/5xx/network -> Transient."""
    response = call_response(shop, method, endpoint, data, params)
    return response.json() if response.content else None


def call_response(shop: Shop, method: str, endpoint: str, data: dict | None = None,
                  params: dict | None = None) -> requests.Response:
    """As `call`, but the successful response itself (listings need X-WP-Total / X-WP-TotalPages)."""
    api = store_api(shop)
    try:
        # Redirects are never followed: a store could send us to an internal address.
        # Streamed: the body is read below up to MAX_RESPONSE_BYTES, never whole into memory.
        if method == "get":
            response = api.get(endpoint, params=params or {}, allow_redirects=False, stream=True)
        elif method == "delete":
            response = api.delete(endpoint, params=params or {}, allow_redirects=False, stream=True)
        else:
            response = getattr(api, method)(endpoint, data or {}, allow_redirects=False, stream=True)
        _read_capped(response, f"{method.upper()} {endpoint}")
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientPlatformError(f"WooCommerce {method.upper()} {endpoint}: {type(exc).__name__}") from None
    status = response.status_code
    if status == 401:
        raise StoreDisconnected(f"WooCommerce answered 401 to {method.upper()} {endpoint}: keys revoked")
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        raise TransientPlatformError(f"WooCommerce answered {status} to {method.upper()} {endpoint}",
                                     retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
    if status >= 300:
        raise PermanentPlatformError(f"WooCommerce answered {status} to {method.upper()} {endpoint}: {response.text[:300]}")
    return response


def _read_capped(response: requests.Response, what: str) -> None:
    """Read the streamed body into `response.content`, refusing one over MAX_RESPONSE_BYTES."""
    body = bytearray()
    with response:
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise PermanentPlatformError(f"WooCommerce answer to {what} is larger than "
                                             f"{MAX_RESPONSE_BYTES} bytes; refused")
    response._content = bytes(body)  # what requests' own .content does once read
