"""Turning a redemption into a real discount code on the shop's platform."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from app.extensions import db
from app.loyalty import redemptions
from app.models import Redemption, Shop, get_for_shop
from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.registry import adapter_for
from jobs.context import app_job, is_final_attempt
from jobs.dispatch import dispatch

log = logging.getLogger(__name__)


@app_job
def issue_discount(shop_id: int, redemption_id: int) -> str:
    session = db.session
    shop = session.get(Shop, shop_id)
    redemption = get_for_shop(session, Redemption, shop_id, redemption_id)
    if shop is None or redemption is None:
        return "missing"
    if redemption.status != "pending":
        return redemption.status  # a retry after success, or already given back
    now = datetime.now(UTC)
    try:
        platform_id = adapter_for(shop.platform).issue_discount(shop, redemption)
    except PermanentPlatformError as exc:
        session.rollback()
        redemptions.fail_redemption(session, shop_id, redemption_id, str(exc)[:500], now)
        session.commit()
        return "failed"
    except TransientPlatformError as exc:
        session.rollback()
        if not is_final_attempt():
            raise
        redemptions.fail_redemption(session, shop_id, redemption_id, f"gave up after retries: {exc}"[:500], now)
        session.commit()
        return "failed"
    intents = redemptions.mark_issued(session, shop_id, redemption_id, platform_id, now)
    session.commit()
    dispatch(intents)
    return "issued"
