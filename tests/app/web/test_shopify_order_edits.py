"""orders/edited through the signed endpoint: the edit names the order, the worker reads the order's
state after it from the Admin API (stubbed at the httpx boundary) and the domain earns what was added."""
from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import respx
from sqlalchemy import select, update

from app.crypto import token_cipher
from app.models import Customer, LedgerEntry, WebhookEvent
from jobs.inbox import event_job_id, process_webhook_event, sweep_inbox
from jobs.queues import queue
from tests.app.web.shopify_helpers import deliver, shopify_shop
from tests.db_locks import row_free_to_lock, tables_free_for_a_migration
from tests.integrations.shopify.admin_api import ACCESS_TOKEN, FakeAdminApi, line_item, money, ok, order_node
from tests.integrations.shopify.samples import sample

ORDER_ID = 5840000000001
CUSTOMER_ID = 7390000000001


@pytest.fixture
def shop(wsession):
    shop = shopify_shop(wsession)
    shop.access_token_enc = token_cipher.encrypt(ACCESS_TOKEN)
    wsession.commit()
    return shop


@pytest.fixture
def admin_api(shop):
    with respx.mock(assert_all_called=False) as router:
        yield FakeAdminApi(shop.domain).install(router)


def edited_order(admin_api: FakeAdminApi, *lines, subtotal: str, total: str) -> httpx.Response:
    """The sample order (129.99 of goods after a 10.00 code, 5.00 shipping, 10.00 tax) after the edit;
    its lines are answered by the lines query (LojalOrderLines), as the sync reads them."""
    node = order_node(ORDER_ID, customer_id=CUSTOMER_ID, email="ana.silva@example.com", subtotal=subtotal, total=total,
                      created="2026-07-14T14:02:10Z", updated="2026-07-16T13:31:41Z")
    node.update(totalTaxSet=money("10.00"), totalShippingPriceSet=money("5.00"))
    admin_api.lines[ORDER_ID] = [line_item("139.99", discounts=("10.00",)), *lines]
    return ok({"order": node})


def _points(wsession, shop) -> list[tuple[str, int]]:
    wsession.expire_all()
    return [(e.kind, e.points) for e in wsession.scalars(
        select(LedgerEntry).where(LedgerEntry.shop_id == shop.id).order_by(LedgerEntry.id))]


def _balance(wsession, shop) -> int:
    wsession.expire_all()
    return wsession.scalars(select(Customer.points_balance).where(
        Customer.shop_id == shop.id, Customer.platform_customer_id == str(CUSTOMER_ID))).one()


def _rows(wsession, shop) -> list[WebhookEvent]:
    wsession.expire_all()
    return wsession.scalars(select(WebhookEvent).where(WebhookEvent.shop_id == shop.id).order_by(WebhookEvent.id)).all()


def test_an_item_added_to_a_paid_order_earns_once_however_often_the_edit_is_delivered(
        wsession, shopify_client, run_jobs, shop, admin_api):
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    run_jobs()
    assert _balance(wsession, shop) == 129  # floor(129.99)
    admin_api.answer("LojalOrder", edited_order(admin_api, line_item("50.00"), subtotal="179.99", total="194.99"),
                     edited_order(admin_api, line_item("50.00"), subtotal="179.99", total="194.99"))
    first = deliver(shopify_client, shop.domain, "orders/edited", sample("order_edited"), event_id="evt-edit")
    again = deliver(shopify_client, shop.domain, "orders/edited", sample("order_edited"), event_id="evt-edit")
    assert (first.json["status"], again.json["status"]) == ("stored", "duplicate")
    run_jobs()
    assert _points(wsession, shop) == [("earn", 129), ("earn", 50)]  # floor(179.99) - 129
    assert admin_api.variables("LojalOrder") == [{"id": f"gid://shopify/Order/{ORDER_ID}"}]
    assert admin_api.calls[0].headers["X-Shopify-Access-Token"] == ACCESS_TOKEN
    # Shopify sends the same edit again as a new event (a retry after a lost 200): nothing more.
    deliver(shopify_client, shop.domain, "orders/edited", sample("order_edited"), event_id="evt-edit-resent")
    run_jobs()
    assert _points(wsession, shop) == [("earn", 129), ("earn", 50)]
    assert {r.status for r in _rows(wsession, shop)} == {"processed"}


def test_the_edited_order_is_read_holding_no_transaction_and_no_other_worker_or_sweep_takes_the_delivery(
        wsession, shopify_client, run_jobs, worker_app, shop, admin_api, uses_real_redis):
    if not uses_real_redis:
        pytest.skip("in-process jobs run inside the delivery: no queued job for a second worker or the sweeper")
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    run_jobs()
    deliver(shopify_client, shop.domain, "orders/edited", sample("order_edited"), event_id="evt-edit")
    event_id = _rows(wsession, shop)[-1].id
    # Received minutes ago (a retried delivery, say): old enough for the sweeper to consider it.
    wsession.execute(update(WebhookEvent).where(WebhookEvent.id == event_id)
                     .values(received_at=WebhookEvent.received_at - timedelta(minutes=5)))
    wsession.commit()  # the test's own transaction ends here: only the job's are probed
    seen = {}

    def read_meanwhile():
        seen["migration"] = tables_free_for_a_migration("webhook_events", "shops", "orders", "customers")
        seen["row"] = row_free_to_lock("webhook_events", event_id)
        # A second worker given the same delivery (a sweep's copy) leaves it to this job ...
        seen["second worker"] = process_webhook_event(event_id)
        # ... and so does the sweeper, which takes a started job whose row is free for a dead one.
        sweep_inbox()
        seen["swept"] = event_job_id(event_id) in queue("webhooks", worker_app).get_job_ids()
        return edited_order(admin_api, line_item("50.00"), subtotal="179.99", total="194.99")

    admin_api.answer("LojalOrder", read_meanwhile)
    run_jobs()
    assert seen == {"migration": True, "row": True, "second worker": "busy-or-missing", "swept": False}
    assert _points(wsession, shop) == [("earn", 129), ("earn", 50)]
    assert admin_api.operations().count("LojalOrder") == 1
    row = _rows(wsession, shop)[-1]
    assert (row.status, row.attempts, row.last_error) == ("processed", 1, None)


def test_a_gift_card_added_in_an_edit_earns_nothing(wsession, shopify_client, run_jobs, shop, admin_api):
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    run_jobs()
    admin_api.answer("LojalOrder", edited_order(admin_api, line_item("25.00", 2, gift_card=True),
                                                subtotal="179.99", total="194.99"))
    deliver(shopify_client, shop.domain, "orders/edited", sample("order_edited"))
    run_jobs()
    assert _points(wsession, shop) == [("earn", 129)]


def test_a_gift_card_past_the_first_page_of_an_edited_orders_lines_earns_nothing_either(
        wsession, shopify_client, run_jobs, shop, admin_api):
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    run_jobs()
    # 30 one-cent add-ons, then a 50 gift card: its line is on the lines query's second page.
    filler = [line_item("0.01") for _ in range(30)]
    admin_api.answer("LojalOrder", edited_order(admin_api, *filler, line_item("50.00", gift_card=True),
                                                subtotal="180.29", total="195.29"))
    deliver(shopify_client, shop.domain, "orders/edited", sample("order_edited"))
    run_jobs()
    assert _points(wsession, shop) == [("earn", 129), ("earn", 1)]  # floor(130.29) - 129
    assert [v["after"] for v in admin_api.variables("LojalOrderLines")] == [None, "lines-20"]


def test_an_edit_of_an_order_the_app_cannot_read_is_kept_as_ignored(wsession, shopify_client, run_jobs, shop,
                                                                     admin_api):
    # `order` is null for an order out of the app's reach (older than 60 days without read_all_orders).
    admin_api.answer("LojalOrder", ok({"order": None}))
    deliver(shopify_client, shop.domain, "orders/edited", sample("order_edited"))
    run_jobs()
    [row] = _rows(wsession, shop)
    assert row.status == "ignored" and "5840000000001" in row.last_error
    assert _points(wsession, shop) == []
