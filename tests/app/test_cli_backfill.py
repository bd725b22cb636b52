"""`lojal backfill SHOP`: enqueues the platform's backfill and follows the chain of jobs to its end
(progress from job.meta); in in-process mode the backfill runs at once and the result is shown."""
from __future__ import annotations

import pytest
from responses import matchers

from app import create_app
from app.extensions import db
from app.models import Customer, Shop
from jobs import woocommerce_sync
from jobs.progress import backfill_progress, latest_backfill_job_id
from tests.conftest import test_config
from tests.factories import make_shop
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop, wc_order
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401
from tests.jobs.shopify_jobs import release_scheduled


@pytest.fixture(scope="module")
def inprocess_app(app):
    if not app.config.get("REDIS_URL"):
        return app  # already in-process (over fakeredis)
    return create_app(test_config(RUN_JOBS_IN_PROCESS=True))


def make_store(flask_app):
    with flask_app.app_context():
        shop = make_wc_shop(db.session, backfill_points=True)
        db.session.commit()
        ids = shop.id, shop.uid, shop.domain
        db.session.remove()
    return ids


def three_orders_in_two_pages(store, domain, monkeypatch):
    monkeypatch.setattr(woocommerce_sync, "PAGES_PER_JOB", 1)
    monkeypatch.setattr(woocommerce_sync.sync, "PAGE_SIZE", 2)
    url = f"{domain}/wp-json/wc/v3/orders"
    for number, orders in ((1, [wc_order(701, customer_id=31, total="10.00"), wc_order(702, customer_id=32, total="20.00")]),
                           (2, [wc_order(703, customer_id=31, total="30.00")])):
        store.get(url, json=orders, headers={"X-WP-Total": "3"},
                  match=[matchers.query_param_matcher({"page": str(number)}, strict_match=False)])


def balances(flask_app, shop_id):
    with flask_app.app_context():
        values = {c.platform_customer_id: c.points_balance
                  for c in db.session.query(Customer).filter_by(shop_id=shop_id)}
        db.session.remove()
    return values


def test_in_process_the_backfill_runs_at_once_and_reports_the_result(inprocess_app, store, monkeypatch):
    shop_id, uid, domain = make_store(inprocess_app)
    three_orders_in_two_pages(store, domain, monkeypatch)
    result = inprocess_app.test_cli_runner().invoke(args=["backfill", uid])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"backfill of {domain} done: 3 orders"
    assert balances(inprocess_app, shop_id) == {"31": 40, "32": 20}


def test_the_shop_may_be_named_by_its_domain(inprocess_app, store, monkeypatch):
    shop_id, _, domain = make_store(inprocess_app)
    three_orders_in_two_pages(store, domain, monkeypatch)
    result = inprocess_app.test_cli_runner().invoke(args=["backfill", domain.removeprefix("https://")])
    assert result.exit_code == 0, result.output
    assert "done: 3 orders" in result.output


def test_a_store_saved_with_its_default_port_is_found_by_its_normalised_url(inprocess_app, store, monkeypatch):
    # Stores connected before URLs were normalised may hold `https://host:443`.
    shop_id, _, domain = make_store(inprocess_app)
    with inprocess_app.app_context():
        db.session.get(Shop, shop_id).domain = f"{domain}:443"
        db.session.commit()
        db.session.remove()
    three_orders_in_two_pages(store, f"{domain}:443", monkeypatch)
    for named in (domain, domain.removeprefix("https://")):
        result = inprocess_app.test_cli_runner().invoke(args=["backfill", named, "--no-wait"])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"backfill of {domain}:443 done: 3 orders"


def test_follows_the_chain_of_jobs_on_the_workers_to_its_end(worker_app, wsession, run_jobs, store, monkeypatch):  # noqa: F811
    shop = make_wc_shop(wsession, backfill_points=True)
    wsession.commit()
    shop_id, uid, domain = shop.id, shop.uid, shop.domain
    three_orders_in_two_pages(store, domain, monkeypatch)
    seen = []

    def run_the_workers(seconds):
        # Instead of waiting: what the workers (and their schedulers) would do meanwhile.
        progress = backfill_progress(worker_app, shop_id)
        seen.append((progress.job_id, progress.done, progress.total_estimate, progress.finished))
        release_scheduled(worker_app, "maintenance")
        run_jobs()

    monkeypatch.setattr("app.cli._pause", run_the_workers)
    result = worker_app.test_cli_runner().invoke(args=["backfill", uid, "--interval", "0.5"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"backfill of {domain} enqueued (job backfill-{shop_id}-")
    assert result.output.rstrip().endswith(f"backfill of {domain} done: 3 orders")
    # Queued (nothing yet), then the first slice's progress on its successor's watch, then the end.
    first, second = seen[0][0], seen[1][0]
    assert seen == [(first, 0, None, False), (second, 2, 3, False)] and first != second
    assert latest_backfill_job_id(worker_app, shop_id) == second
    final = backfill_progress(worker_app, shop_id)
    assert (final.done, final.total_estimate, final.finished, final.result) == (3, 3, True, "done")
    assert balances(worker_app, shop_id) == {"31": 40, "32": 20}


def test_no_wait_only_enqueues(worker_app, wsession, run_jobs, store):  # noqa: F811
    shop = make_wc_shop(wsession)
    wsession.commit()
    result = worker_app.test_cli_runner().invoke(args=["backfill", shop.uid, "--no-wait"])
    assert result.exit_code == 0, result.output
    progress = backfill_progress(worker_app, shop.id)
    assert (progress.status, progress.finished) == ("queued", False)
    assert result.output.strip() == f"backfill of {shop.domain} enqueued (job {progress.job_id})"


def test_a_backfill_that_stops_exits_with_an_error(worker_app, wsession, run_jobs, store, monkeypatch):  # noqa: F811
    shop = make_wc_shop(wsession)
    wsession.commit()
    store.get(api_url(shop, "orders"), status=401, json={})
    monkeypatch.setattr("app.cli._pause", lambda seconds: run_jobs())
    result = worker_app.test_cli_runner().invoke(args=["backfill", shop.uid])
    assert result.exit_code == 1
    assert "ended without finishing (disconnected) after 0 orders" in result.output


def test_unknown_shops_and_platforms_without_a_backfill_are_refused(app, session):
    demo = make_shop(session)
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backfill", "no-such-shop"])
    assert result.exit_code == 2 and "no shop with this uid or domain" in result.output
    result = runner.invoke(args=["backfill", demo.uid])
    assert result.exit_code == 2 and "demo shop: it has no order backfill" in result.output


def test_a_malformed_order_skipped_by_the_backfill_is_named_in_the_result(inprocess_app, store, monkeypatch):
    shop_id, uid, domain = make_store(inprocess_app)
    monkeypatch.setattr(woocommerce_sync.sync, "PAGE_SIZE", 10)
    broken = {**wc_order(711, customer_id=33, total="10.00"), "total": "ten"}
    store.get(f"{domain}/wp-json/wc/v3/orders", json=[broken, wc_order(712, customer_id=34, total="20.00")])
    result = inprocess_app.test_cli_runner().invoke(args=["backfill", uid])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"backfill of {domain} done: 1 orders, 1 skipped as malformed "
                                     "(see the worker's log)")
    assert balances(inprocess_app, shop_id) == {"34": 20}
