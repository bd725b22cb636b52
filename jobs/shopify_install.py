"""After a Shopify install: learn the shop's name, currency and timezone, and subscribe it
to every webhook topic Lojal follows."""
from __future__ import annotations

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app

from app.extensions import db
from app.models import Shop
from integrations.base import PermanentPlatformError
from integrations.shopify.graphql import admin_graphql
from integrations.shopify.install import PLATFORM, WEBHOOK_TOPICS
from integrations.shopify.tokens import current_access_token
from jobs.context import app_job, commit_keeping_rows, relock_shop

log = logging.getLogger(__name__)

SUBSCRIBE = """
mutation webhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""


SHOP_DETAILS = "query shopDetails { shop { name currencyCode ianaTimezone } }"


def graphql_topic(topic: str) -> str:
    """'orders/paid' -> 'ORDERS_PAID' (the WebhookSubscriptionTopic enum)."""
    return topic.replace("/", "_").upper()


def _already_subscribed(message: str) -> bool:
    # Shopify answers "Address for this topic has already been taken" when the same topic
    # and address exist: the job is re-runnable (retries, reinstalls), so that is success.
    lowered = message.lower()
    return "already been taken" in lowered or "already exists" in lowered


@app_job
def subscribe_webhooks(shop_id: int) -> str:
    session = db.session
    shop = session.get(Shop, shop_id)
    if shop is None or shop.platform != PLATFORM or shop.status != "active":
        return "skipped"
    # Only reads: no transaction stays open while Shopify answers (a token refresh included).
    commit_keeping_rows(session, shop)
    token = current_access_token(session, shop)
    uri = f"{current_app.config['APP_URL'].rstrip('/')}/shopify/webhooks"
    refused: list[str] = []
    for topic in WEBHOOK_TOPICS:
        # Transient errors (throttled, 5xx) propagate: RQ retries the job, and topics already
        # subscribed on the first attempt come back as "already taken".
        data = admin_graphql(shop.domain, token, SUBSCRIBE, {
            "topic": graphql_topic(topic),
            "webhookSubscription": {"uri": uri, "format": "JSON"},
        })
        errors = [e["message"] for e in data["webhookSubscriptionCreate"]["userErrors"]
                  if not _already_subscribed(e["message"])]
        if errors:
            refused.append(f"{topic}: {'; '.join(errors)}")
    if refused:
        raise PermanentPlatformError(f"shop {shop_id}: webhook subscriptions refused: {' | '.join(refused)}")
    log.info("shopify webhooks subscribed", extra={"shop_id": shop_id})
    return "subscribed"


@app_job
def fetch_shop_details(shop_id: int) -> str:
    """Name, currency and timezone: codes are in the shop's currency, birthdays and expiry
    dates are computed in its timezone. Shopify is asked with no transaction open; the answer is
    applied to the shop locked and checked again."""
    session = db.session
    shop = session.get(Shop, shop_id)
    if shop is None or shop.platform != PLATFORM or shop.status != "active":
        return "skipped"
    commit_keeping_rows(session, shop)
    token = current_access_token(session, shop)
    details = admin_graphql(shop.domain, token, SHOP_DETAILS)["shop"]
    try:
        ZoneInfo(details["ianaTimezone"])
    except (ZoneInfoNotFoundError, ValueError, KeyError, TypeError):
        raise PermanentPlatformError(f"shop {shop_id}: unknown timezone {details.get('ianaTimezone')!r}") from None
    shop = relock_shop(session, shop_id)
    if shop is None or shop.status != "active":
        session.rollback()
        return "skipped"  # purged or uninstalled while Shopify answered
    shop.name = details["name"][:255]
    shop.currency = details["currencyCode"][:3]
    shop.timezone = details["ianaTimezone"]
    session.commit()
    return "updated"
