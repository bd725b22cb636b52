"""Benchmark: orders/s from a stored webhook to points credited, with 1 and with 2 `lojal worker`
processes (the scaling ratio), and the award job's rate against an RQ no-op job's rate on the
same worker class (`lojal worker`: RQ's SimpleWorker, jobs run in the worker process; JSON serializer).

    .venv/bin/python bench/e2e.py                      # 400 orders per phase
    .venv/bin/python bench/e2e.py --orders 100         # a quick run

Each phase stores N distinct `orders/paid` inbox rows (the Shopify sample, new order id, one of
--customers shoppers) for a fresh shop, starts the workers and waits until they have registered,
then enqueues the N `process_webhook_event` jobs and times until every row is processed. The
no-op phase enqueues N `builtins.int` jobs for one worker. Verified: each order earned exactly
once and every cached balance equals its ledger. Database `lojal_bench_e2e`, Redis db 12.
Targets: scaling >= 1.6 (2 workers vs 1), job ratio >= 0.5.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time

import harness
from ingest import SAMPLE

TARGET_SCALING, TARGET_JOB_RATIO = 1.6, 0.5


def store_orders(app, domain: str, orders: int, customers: int) -> tuple[int, list[int]]:
    """A fresh Shopify shop with `orders` stored (not enqueued) orders/paid inbox rows."""
    from app.extensions import db
    from app.inbox import store_inbound_event
    from app.loyalty.program import create_default_program
    from app.models import Shop

    template = json.loads(SAMPLE.read_text())
    with app.app_context():
        shop = Shop(platform="shopify", domain=domain, name="Bench", currency="USD", timezone="UTC", settings={})
        db.session.add(shop)
        db.session.flush()
        create_default_program(db.session, shop.id)
        ids = []
        for n in range(orders):
            payload = copy.deepcopy(template)
            shopper = 7_000_000 + n % customers
            payload["id"] = 9_000_000 + n
            payload["customer"].update(id=shopper, email=f"shopper{shopper}@example.com")
            payload["email"] = payload["contact_email"] = f"shopper{shopper}@example.com"
            ids.append(store_inbound_event(db.session, shop_id=shop.id, platform="shopify", topic="orders/paid",
                                           event_key=f"e2e-{n}", payload=payload))
        db.session.commit()
        return shop.id, ids


def processed(app, shop_id: int) -> int:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import WebhookEvent

    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.shop_id == shop_id, WebhookEvent.processed_at.is_not(None)))
        db.session.remove()
        return count


def earned_once(app, shop_id: int, orders: int) -> bool:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.loyalty.ledger import find_balance_drift
    from app.models import LedgerEntry

    with app.app_context():
        per_order = db.session.execute(select(func.count()).where(
            LedgerEntry.shop_id == shop_id, LedgerEntry.kind == "earn", LedgerEntry.order_id.is_not(None))
            .group_by(LedgerEntry.order_id)).scalars().all()
        ok = len(per_order) == orders and set(per_order) == {1} and find_balance_drift(db.session, shop_id) == []
        db.session.remove()
        return ok


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def award_phase(app, env, redis_url: str, workers: int, orders: int, customers: int) -> tuple[float, bool]:
    from jobs.inbox import enqueue_processing

    shop_id, ids = store_orders(app, f"bench-e2e-{workers}w-{time.time_ns()}.myshopify.com", orders, customers)
    processes = harness.start_workers(workers, env, "webhooks")
    try:
        harness.wait_for_workers(redis_url, workers)
        started = time.perf_counter()
        with app.app_context():
            for event_id in ids:
                enqueue_processing(event_id)
        wait_until(lambda: processed(app, shop_id) == orders, 900, f"{orders} orders with {workers} workers")
        elapsed = time.perf_counter() - started
    finally:
        harness.stop(processes)
    return orders / elapsed, earned_once(app, shop_id, orders)


def noop_phase(app, env, redis_url: str, jobs: int) -> float:
    from rq.registry import FinishedJobRegistry

    from jobs.queues import queue

    processes = harness.start_workers(1, env, "webhooks")
    try:
        harness.wait_for_workers(redis_url, 1)
        with app.app_context():
            q = queue("webhooks", app)
            finished = FinishedJobRegistry(queue=q)
            already = finished.count
            started = time.perf_counter()
            for _ in range(jobs):
                q.enqueue_call("builtins.int", result_ttl=3600)
            wait_until(lambda: finished.count - already >= jobs, 900, f"{jobs} no-op jobs")
            elapsed = time.perf_counter() - started
    finally:
        harness.stop(processes)
    return jobs / elapsed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400, help="per phase")
    parser.add_argument("--customers", type=int, default=500)
    args = parser.parse_args(argv)

    url, redis_url = harness.bench_database("e2e"), harness.bench_redis_url()
    env = harness.environment(url, redis_url)
    app = harness.build_app(env)
    rates, verified = {}, True
    for workers in (1, 2):
        rates[workers], ok = award_phase(app, env, redis_url, workers, args.orders, args.customers)
        verified &= ok
        print(f"{workers} worker(s): {rates[workers]:7.1f} orders/s credited (verify {'OK' if ok else 'FAILED'})",
              flush=True)
    noop = noop_phase(app, env, redis_url, args.orders)
    print(f"no-op job on 1 worker: {noop:7.1f} jobs/s", flush=True)
    scaling, job_ratio = rates[2] / rates[1], rates[1] / noop
    print(f"scaling 2 vs 1 worker: {scaling:.2f} (target >= {TARGET_SCALING}); award/no-op: {job_ratio:.2f} "
          f"(target >= {TARGET_JOB_RATIO}); {os.cpu_count()} cores shared with PostgreSQL and Redis")
    note = f"{args.orders} orders, {args.customers} shoppers" + ("" if verified else "; VERIFY FAILED")
    harness.report("e2e", [
        harness.row("end to end, 2 workers vs 1 (orders/s credited)", round(rates[2], 1), baseline=round(rates[1], 1),
                    ratio=round(scaling, 2), target=f"scaling >= {TARGET_SCALING}", met=scaling >= TARGET_SCALING,
                    note=note),
        harness.row("award job vs RQ no-op job, 1 worker (jobs/s)", round(rates[1], 1), baseline=round(noop, 1),
                    ratio=round(job_ratio, 2), target=f"ratio >= {TARGET_JOB_RATIO}",
                    met=job_ratio >= TARGET_JOB_RATIO, note="same worker class (lojal worker)"),
    ])
    return {"rates": rates, "noop": noop, "scaling": scaling, "job_ratio": job_ratio, "verified": verified}


if __name__ == "__main__":
    main()
