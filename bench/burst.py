"""Benchmark: a burst of 10,000 signed `orders/paid` webhooks, 20% of them duplicates, into
gunicorn (gunicorn.conf.py) with 2 `lojal worker` processes draining the queue meanwhile.
Proves credited orders == unique orders, exactly, and reports the throughput.

    .venv/bin/python bench/burst.py                       # 10,000 webhooks, 2 workers
    .venv/bin/python bench/burst.py --webhooks 1000       # a quick run

Duplicates: half are Shopify re-deliveries (same event id, same body: deduplicated by the inbox),
half are the same order sent again under a new event id (deduplicated by the ledger's
idempotency keys). All deliveries are shuffled (seeded) and sent over --connections keep-alive
connections. Database `lojal_bench_burst`, Redis db 12.
"""
from __future__ import annotations

import argparse
import json
import random
import time

import harness
from e2e import processed, wait_until
from ingest import DOMAIN, SAMPLE, seed_shop, signed_delivery

CUSTOMERS = 2000


def burst_requests(port: int, webhooks: int, seed: int) -> tuple[list[bytes], int]:
    """The shuffled deliveries and how many distinct orders they carry."""
    unique = webhooks - webhooks // 5
    template = json.loads(SAMPLE.read_text())

    def delivery(order: int, event: str) -> bytes:
        shopper = 8_000_000 + order % CUSTOMERS
        template["id"] = 6_000_000 + order
        template["customer"].update(id=shopper, email=f"shopper{shopper}@example.com")
        template["email"] = template["contact_email"] = f"shopper{shopper}@example.com"
        return signed_delivery(port, template, event)

    rng = random.Random(seed)
    requests = [delivery(n, f"burst-{n}") for n in range(unique)]
    duplicates = webhooks - unique
    for k in range(duplicates):
        order = rng.randrange(unique)
        same_event = k < duplicates // 2
        requests.append(delivery(order, f"burst-{order}" if same_event else f"burst-{order}-resent-{k}"))
    rng.shuffle(requests)
    return requests, unique


def credited(app, unique: int) -> tuple[int, bool]:
    """Orders with points, and whether each earned exactly once with balances equal to the ledger."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.loyalty.ledger import find_balance_drift
    from app.models import LedgerEntry, Order

    with app.app_context():
        orders = db.session.scalar(select(func.count()).select_from(Order))
        per_order = db.session.execute(
            select(func.count()).where(LedgerEntry.kind == "earn", LedgerEntry.order_id.is_not(None))
            .group_by(LedgerEntry.order_id)).scalars().all()
        exact = (orders == unique and len(per_order) == unique and set(per_order) == {1}
                 and not find_balance_drift(db.session))
        db.session.remove()
    return len(per_order), exact


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    url, redis_url = harness.bench_database("burst"), harness.bench_redis_url()
    env = harness.environment(url, redis_url)
    seed_shop(env)
    app = harness.build_app(env)
    port = harness.free_port()
    requests, unique = burst_requests(port, args.webhooks, args.seed)
    pending = iter(requests)
    server = harness.start_gunicorn("wsgi:app", env, harness.ROOT, port)
    workers = harness.start_workers(args.workers, env, "webhooks")
    try:
        harness.wait_for_http(port, server)
        harness.wait_for_workers(redis_url, args.workers)
        began = time.perf_counter()
        sent = harness.drive(port, lambda: next(pending, None), args.connections, 24 * 3600)
        with app.app_context():
            from sqlalchemy import func, select

            from app.extensions import db
            from app.models import Shop, WebhookEvent

            shop_id = db.session.scalar(select(Shop.id).where(Shop.domain == DOMAIN))
            stored = db.session.scalar(select(func.count()).select_from(WebhookEvent))
            db.session.remove()
        wait_until(lambda: processed(app, shop_id) == stored, 3 * 3600, "the workers to drain the burst")
        total = time.perf_counter() - began
    finally:
        harness.stop([server, *workers])

    orders_credited, exact = credited(app, unique)
    print(f"{args.webhooks} webhooks ({args.webhooks - unique} duplicates) in {sent['seconds']:.1f}s = "
          f"{sent['rps']:.0f}/s ingested (p99 {sent['p99_ms']:.0f} ms, non-2xx {sent['non_2xx']}); {stored} inbox rows")
    print(f"all credited after {total:.1f}s = {unique / total:.1f} orders/s end to end with {args.workers} workers; "
          f"credited orders {orders_credited} == unique orders {unique}: {'EXACT' if exact else 'MISMATCH'}")
    harness.report("burst", [
        harness.row(f"burst of {args.webhooks} webhooks, 20% duplicates: credited == unique",
                    f"{orders_credited} == {unique}", target="exactly equal", met=exact and sent["non_2xx"] == 0,
                    note=f"{sent['non_2xx']} non-2xx answers"),
        harness.row("burst ingest (webhooks/s)", round(sent["rps"]), note=f"p99 {sent['p99_ms']:.0f} ms"),
        harness.row(f"burst end to end, {args.workers} workers (orders/s credited)", round(unique / total, 1),
                    note=f"all {unique} credited after {total:.0f} s"),
    ])
    if not exact:
        raise SystemExit("credited orders != unique orders")
    return {"sent": sent, "stored": stored, "unique": unique, "credited": orders_credited, "seconds": total}


if __name__ == "__main__":
    main()
