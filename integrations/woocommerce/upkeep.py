"""Keeping a WooCommerce store connected: our webhooks, a revoked key, and disconnecting.

WooCommerce never retries a delivery and disables a webhook after about five failures in a row,
so our subscriptions are re-checked periodically (`ensure_webhooks`): a disabled or paused one
is re-activated, a missing one re-created. Together with the order reconciliation
(integrations.woocommerce.sync) this is what keeps "nothing lost".
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.loyalty import audit
from app.models import Shop
from integrations.base import PermanentPlatformError
from integrations.woocommerce.client import StoreDisconnected, call

log = logging.getLogger(__name__)

# The topics Lojal subscribes to (the connect job creates them from this tuple too).
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored",
                  "customer.created", "customer.updated")
WEBHOOKS_PER_PAGE = 100
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")


def store_currency(shop: Shop) -> str | None:
    """The store's currency setting (ISO 4217 code), what its orders' amounts are in; None if
    these keys may not read the settings or the value is not a code. 401 still raises."""
    try:
        setting = call(shop, "get", "settings/general/woocommerce_currency")
    except StoreDisconnected:
        raise
    except PermanentPlatformError as exc:
        log.warning("woocommerce store currency not readable; kept the shop's",
                    extra={"shop_id": shop.id, "error": str(exc)[:200]})
        return None
    value = setting.get("value") if isinstance(setting, dict) else None
    return value if isinstance(value, str) and _CURRENCY_CODE.fullmatch(value) else None


@dataclass
class WebhookRepair:
    reactivated: list[str] = field(default_factory=list)  # topics
    created: list[str] = field(default_factory=list)


def delivery_url(shop: Shop) -> str:
    return f"{current_app.config['APP_URL'].rstrip('/')}/woocommerce/webhooks/{shop.uid}"


def ensure_webhooks(shop: Shop) -> WebhookRepair:
    """Make each of WEBHOOK_TOPICS have an active webhook delivering to us."""
    url = delivery_url(shop)
    ours = [hook for hook in list_webhooks(shop) if hook.get("delivery_url") == url]
    repair = WebhookRepair()
    for topic in WEBHOOK_TOPICS:
        hooks = [hook for hook in ours if hook.get("topic") == topic]
        if any(hook.get("status") == "active" for hook in hooks):
            continue
        if hooks:
            # Disabled (after failed deliveries) or paused: the same webhook, switched back on.
            call(shop, "put", f"webhooks/{hooks[0]['id']}", {"status": "active"})
            repair.reactivated.append(topic)
        else:
            call(shop, "post", "webhooks", _new_webhook(shop, topic, url))
            repair.created.append(topic)
    if repair.reactivated or repair.created:
        log.warning("woocommerce webhooks repaired",
                    extra={"shop_id": shop.id, "reactivated": repair.reactivated, "recreated": repair.created})
    return repair


def list_webhooks(shop: Shop) -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = call(shop, "get", "webhooks", params={"per_page": WEBHOOKS_PER_PAGE, "page": page}) or []
        hooks += batch
        if len(batch) < WEBHOOKS_PER_PAGE:
            return hooks
        page += 1


def mark_disconnected(session: Session, shop_id: int, reason: str) -> bool:
    """The store refused our keys (401): stop acting for it until the merchant connects again.

    Keys and data are kept (a reconnect replaces the keys); every job skips a shop that is not
    active. The audit log carries the reason for the merchant and support. The caller commits.
    Returns False if the shop was not active (already disconnected or uninstalled).
    """
    shop = session.get(Shop, shop_id, with_for_update=True, populate_existing=True)
    if shop is None or shop.status not in ("active", "pending"):
        return False
    shop.status = "disconnected"
    audit.record(session, shop_id, "system", "shop.disconnected", target_type="shop", target_id=shop_id,
                 details={"reason": reason[:500]})
    log.warning("woocommerce store disconnected", extra={"shop_id": shop_id, "reason": reason[:500]})
    return True


def disconnect(session: Session, shop: Shop, *, actor: str = "system") -> int:
    """Delete our webhooks in the store, drop the keys, mark the shop disconnected; keep all data.

    Returns how many webhooks were deleted. A 401 means the keys are already revoked, so there is
    nothing we can delete (the store stops delivering to a disconnected shop's failing URL by
    itself). Any other refusal that no retry would change (WooCommerce gone: 404; an address we
    will not call) still disconnects, with the error in the audit details: the merchant must be
    able to stop us using the keys. A transient failure raises before anything changes here, so
    it can be retried. The caller commits.
    """
    deleted = 0
    details: dict[str, Any] = {}
    if shop.access_token_enc and shop.api_secret_enc:
        try:
            url = delivery_url(shop)
            for hook in list_webhooks(shop):
                if hook.get("delivery_url") == url:
                    call(shop, "delete", f"webhooks/{hook['id']}", params={"force": "true"})
                    deleted += 1
        except StoreDisconnected:
            log.info("woocommerce keys already revoked; no webhooks to delete", extra={"shop_id": shop.id})
        except PermanentPlatformError as exc:
            details["webhooks_error"] = str(exc)[:500]
            log.warning("woocommerce webhooks not deleted at disconnect", extra={"shop_id": shop.id,
                                                                                 "error": str(exc)[:500]})
    shop.access_token_enc = None
    shop.api_secret_enc = None
    shop.status = "disconnected"
    audit.record(session, shop.id, actor, "shop.disconnect", target_type="shop", target_id=shop.id,
                 details={"webhooks_deleted": deleted, **details})
    return deleted


def _new_webhook(shop: Shop, topic: str, url: str) -> dict[str, Any]:
    if not shop.webhook_secret_enc:
        raise PermanentPlatformError(f"shop {shop.id} has no webhook secret to sign deliveries with")
    return {"name": f"Lojal {topic}", "topic": topic, "delivery_url": url,
            "secret": token_cipher.decrypt(shop.webhook_secret_enc), "status": "active"}
