"""Review finding: the reconciliation pages by offset (`page`, oldest first) through a set that can
shrink while it reads: an order trashed between two page reads leaves `status=any`, every later
order moves one place forward, and the one that moves from page 2 onto page 1 is never read.
That order's missed webhook is then never made up (the next run reads only from this run's start
less the 10-minute overlap).

The stub below answers like WooCommerce: `status` defaults to every status but trash,
`orderby=date&order=asc`, `per_page`/`page` are an offset into that list, X-WP-Total is the list's
size at each read (every order is inside the run's date bounds, so the stub does not filter)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from app.models import Shop
from integrations.woocommerce import sync
from tests.integrations.woocommerce.test_sync import balances
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop, wc_order

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(session):
    shop = make_wc_shop(session)
    shop.installed_at = datetime(2026, 1, 1, tzinfo=UTC)
    shop.orders_synced_at = NOW - timedelta(minutes=15)
    session.commit()
    return shop


def test_an_order_trashed_while_the_reconciliation_pages_does_not_hide_the_next_one(session, shop, store, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 2)
    # Four orders placed and completed in the last quarter hour; none of their webhooks came.
    orders = [wc_order(700 + n, customer_id=30 + n, total="10.00", created=f"2026-03-10T11:5{n}:00")
              for n in range(4)]
    reads = []

    def answer(request):
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        reads.append(params)
        if len(reads) == 2:
            orders[0]["status"] = "trash"  # the merchant trashes 700 between our page 1 and page 2
        wanted = "trash" if params.get("status") == "trash" else None
        listed = [o for o in orders if (o["status"] == "trash") == (wanted == "trash")]
        size, number = int(params["per_page"]), int(params["page"])
        body = listed[(number - 1) * size:number * size]
        return 200, {"X-WP-Total": str(len(listed))}, json.dumps(body)

    store.add_callback(responses.GET, api_url(shop, "orders"), callback=answer)
    run = sync.start_reconcile(session.get(Shop, shop.id), NOW)
    assert sync.sync_orders(session, shop, run) == "done"

    # 700 was trashed (nothing to earn); 701, 702 and 703 were live the whole run.
    assert {k: v for k, v in balances(session, shop).items() if v} == {"31": 10, "32": 10, "33": 10}


def test_the_reconciliation_reads_a_set_bounded_by_its_start_that_can_only_shrink(session, shop, store):
    # Orders created or saved after the run started stay out (the next run's overlap reads them), so
    # nothing enters the set while it pages and hides a shrink from X-WP-Total.
    store.get(api_url(shop, "orders"), json=[], headers={"X-WP-Total": "0"})
    assert sync.sync_orders(session, shop, sync.start_reconcile(session.get(Shop, shop.id), NOW)) == "done"
    for call in store.calls:  # the live pass and the trash pass
        params = {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}
        assert (params["modified_after"], params["modified_before"], params["before"]) == (
            "2026-03-10T11:35:00", "2026-03-10T12:00:00", "2026-03-10T12:00:00")
    assert len(store.calls) == 2
