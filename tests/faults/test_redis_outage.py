"""Redis dies in the middle of a webhook burst: every delivery is still answered 200 from the
inbox, none is lost, and once Redis is back the sweeper hands them to a worker: points once each."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from app.models import WebhookEvent
from jobs.inbox import sweep_inbox
import pytest

from tests.app.web import shopify_helpers, woocommerce_helpers
from tests.faults.ledger_checks import assert_each_order_earned_once
from tests.integrations.shopify.samples import sample
from tests.integrations.woocommerce.wc_support import wc_order

BURST = 60
KILL_AFTER = 20


def _shopify(session):
    shop = shopify_helpers.shopify_shop(session)
    domain = shop.domain
    return shop.id, lambda client, n: shopify_helpers.deliver(
        client, domain, "orders/paid", sample("order_paid", id=5840000100000 + n), event_id=f"burst-{n}")


def _woocommerce(session):
    shop = woocommerce_helpers.woo_shop(session)
    session.refresh(shop)
    session.expunge(shop)  # read (uid, domain) from the sending threads
    return shop.id, lambda client, n: woocommerce_helpers.deliver(
        client, shop, "order.updated", wc_order(7100 + n, status="completed", customer_id=55))


@pytest.mark.parametrize("platform", [_shopify, _woocommerce], ids=["shopify", "woocommerce"])
def test_webhook_burst_survives_redis_dying_and_the_sweeper_credits_each_order_once(fault_app, fsession, own_redis,
                                                                                      drain, caplog, platform):
    shop_id, send_one = platform(fsession)
    answered = []
    killed = threading.Event()
    lock = threading.Lock()

    def send(n: int) -> int:
        response = send_one(fault_app.test_client(), n)
        with lock:
            answered.append(response.status_code)
            if len(answered) == KILL_AFTER:
                own_redis.kill()  # mid-burst, while other deliveries are in flight
                killed.set()
        return response.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(send, range(BURST)))

    assert killed.is_set()
    assert statuses == [200] * BURST
    fsession.expire_all()
    stored = fsession.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.shop_id == shop_id))
    assert stored == BURST  # every delivery is in the inbox, whatever happened to its enqueue
    assert any("Redis unavailable" in r.getMessage() for r in caplog.records)  # logged, not raised

    own_redis.start()  # back, empty: the jobs queued before the crash are gone with it
    fsession.execute(update(WebhookEvent).where(WebhookEvent.shop_id == shop_id)
                     .values(received_at=datetime.now(UTC) - timedelta(minutes=5)))  # the sweeper's minute passed
    fsession.commit()
    with fault_app.app_context():
        assert sweep_inbox() >= BURST  # (in a full run, other tests' old rows are swept too)
    drain()

    assert_each_order_earned_once(fsession, shop_id, BURST)
    unprocessed = fsession.scalar(select(func.count()).select_from(WebhookEvent).where(
        WebhookEvent.shop_id == shop_id, WebhookEvent.processed_at.is_(None)))
    assert unprocessed == 0  # nothing of this shop is left for another sweep
