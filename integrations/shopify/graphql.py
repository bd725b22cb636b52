"""Admin GraphQL calls through shopifyapp, with errors sorted into retry / give up.

Shopify limits GraphQL by a cost-based leaky bucket per shop: a query that does not fit
answers HTTP 200 with `errors[].extensions.code == "THROTTLED"` and the bucket's state in
`extensions.cost.throttleStatus`. We turn that (and HTTP 429) into a TransientPlatformError
whose `retry_after` says when the request will fit, so the caller reschedules instead of guessing.

Retries happen in ONE layer, RQ's. shopifyapp's `admin_graphql_request` can retry by itself
(it sleeps Retry-After on 429 and 1 s, 2 s, ... on 502/503/504, inside the calling thread), but
we pass `max_retries=0`: a worker never sleeps while a bucket refills (the job is rescheduled,
freeing the worker and the shop's RateLimit slot), and the wait is the one Shopify asked for,
not a stack of both layers' back-offs. (Its sleep also does `int(Retry-After)`, which raises
on a fractional value such as "2.0".)
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import shopify_app
from flask import current_app

from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.shopify.domains import shop_handle
from integrations.shopify.tokens import forget_refused_token

# A retry sooner than this would only meet the same empty bucket (and its clock skew).
MIN_RETRY_AFTER = 1.0
# GraphQL error codes worth retrying; every other code (ACCESS_DENIED, MAX_COST_EXCEEDED,
# SHOP_INACTIVE, a malformed query, ...) fails the same way again.
_TRANSIENT_CODES = {"THROTTLED", "INTERNAL_SERVER_ERROR"}


class AccessTokenRefused(PermanentPlatformError):
    """Shopify answered 401: the token is invalid or revoked (its shop's is dropped, see admin_graphql)."""


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float  # points per second

    def seconds_until_available(self, cost: float) -> float:
        """How long until `cost` points are in the bucket (0 if they already are)."""
        missing = cost - self.currently_available
        if missing <= 0:
            return 0.0
        return missing / self.restore_rate if self.restore_rate > 0 else MIN_RETRY_AFTER


@dataclass(frozen=True)
class GraphQLResponse:
    data: dict[str, Any]
    requested_cost: float | None = None
    throttle: ThrottleStatus | None = None

    def wait_before_next(self, cost: float | None = None) -> float:
        """Seconds to wait before another request costing `cost` (default: what this one cost) fits."""
        cost = self.requested_cost if cost is None else cost
        if self.throttle is None or cost is None:
            return 0.0
        return self.throttle.seconds_until_available(cost)


def admin_graphql(shop_domain: str, access_token: str, query: str, variables: dict[str, Any] | None = None,
                  *, http_client: httpx.Client | None = None) -> dict[str, Any]:
    """Run one query or mutation; return `data`.

    THROTTLED / 429 / 5xx / network errors -> TransientPlatformError (with `retry_after` when
    Shopify says how long); 401 / 403 / 404 / other 4xx / GraphQL errors -> PermanentPlatformError.
    A 401 (AccessTokenRefused) also drops the shop's stored token if it is `access_token`
    (tokens.forget_refused_token): jobs then stop at current_access_token, without calling Shopify.
    """
    return admin_graphql_response(shop_domain, access_token, query, variables, http_client=http_client).data


def admin_graphql_response(shop_domain: str, access_token: str, query: str,
                           variables: dict[str, Any] | None = None, *,
                           http_client: httpx.Client | None = None) -> GraphQLResponse:
    """Like admin_graphql, but also returns the query's cost and the bucket, for pacing long syncs."""
    result = shopify_app.admin_graphql_request(
        query, shop_handle(shop_domain), access_token, current_app.config["SHOPIFY_API_VERSION"],
        variables=variables, max_retries=0, http_client=http_client,
    )
    if result.ok and result.data is not None:
        requested, throttle = _cost(result.extensions)
        return GraphQLResponse(result.data, requested, throttle)
    error = _error_for(result)
    if isinstance(error, AccessTokenRefused):
        # Every later call would be refused too: stop them until the merchant re-authorises.
        forget_refused_token(shop_domain, access_token)
    raise error


def raise_user_errors(payload: Mapping[str, Any] | None, what: str) -> None:
    """A mutation's `userErrors` (rejected input) fail the same way on every retry: Permanent."""
    errors = (payload or {}).get("userErrors") or []
    if errors:
        messages = "; ".join(_describe_user_error(e) for e in errors)
        raise PermanentPlatformError(f"Shopify refused {what}: {messages}")


def legacy_id(gid: str | None) -> str | None:
    """`gid://shopify/Order/123` -> `123`: webhooks carry the numeric id, so the domain keys on it."""
    if gid is None:
        return None
    return str(gid).rsplit("/", 1)[-1]


# --- internals ---------------------------------------------------------------------------

def _error_for(result) -> Exception:
    status = result.response.status if result.response is not None else 0
    if status == 200:
        return _graphql_error(result.response.body)
    if status == 0:
        return TransientPlatformError("Shopify GraphQL did not answer (network error or timeout)")
    if status == 429 or status >= 500:
        return TransientPlatformError(f"Shopify GraphQL answered {status}", retry_after=_retry_after_header(result))
    if status == 401:
        return AccessTokenRefused("Shopify GraphQL answered 401: the access token is invalid or revoked")
    if status == 403:
        return PermanentPlatformError("Shopify GraphQL answered 403: the app lacks a required access scope")
    return PermanentPlatformError(f"Shopify GraphQL answered {status}: {_short(result.response.body)}")


def _graphql_error(body: str) -> Exception:
    """HTTP 200 with `errors`: throttled (retry when the bucket has room) or a real error."""
    try:
        document = json.loads(body or "{}")
    except ValueError:
        return TransientPlatformError("Shopify GraphQL answered 200 with a body that is not JSON")
    errors = document.get("errors") or []
    if isinstance(errors, str):  # some gateway errors are a bare string
        errors = [{"message": errors}]
    codes = {(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)}
    messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
    if "THROTTLED" in codes:
        requested, throttle = _cost(document.get("extensions"))
        wait = throttle.seconds_until_available(requested) if throttle and requested is not None else 0.0
        return TransientPlatformError(f"Shopify GraphQL throttled: {messages}",
                                      retry_after=max(wait, MIN_RETRY_AFTER))
    if codes & _TRANSIENT_CODES:
        return TransientPlatformError(f"Shopify GraphQL error: {messages}")
    return PermanentPlatformError(f"Shopify GraphQL error: {messages or 'an answer without data'}")


def _cost(extensions: Mapping[str, Any] | None) -> tuple[float | None, ThrottleStatus | None]:
    cost = (extensions or {}).get("cost") or {}
    status = cost.get("throttleStatus")
    throttle = None
    if status:
        throttle = ThrottleStatus(float(status["maximumAvailable"]), float(status["currentlyAvailable"]),
                                  float(status["restoreRate"]))
    requested = cost.get("requestedQueryCost")
    return (float(requested) if requested is not None else None), throttle


def _retry_after_header(result) -> float | None:
    # shopifyapp replaces the final 429's response with a synthetic one; the real answer,
    # with its headers, is the last entry of http_logs.
    for log in reversed(result.http_logs or []):
        headers = {k.lower(): v for k, v in (log.res.headers or {}).items()}
        value = headers.get("retry-after")
        if value is not None:
            try:
                return max(float(value), MIN_RETRY_AFTER)
            except ValueError:
                return None  # an HTTP date: rare from Shopify; the fixed back-off applies
    return None


def _describe_user_error(error: Mapping[str, Any]) -> str:
    field = ".".join(str(f) for f in (error.get("field") or []))
    return f"{field}: {error.get('message')}" if field else str(error.get("message"))


def _short(body: str | None, limit: int = 200) -> str:
    return (body or "").strip()[:limit] or "(empty body)"
