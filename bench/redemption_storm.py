"""Benchmark: 100 concurrent clients redeeming rewards — all from ONE customer (every
redemption serialises on that customer's row lock) against each from their OWN customer
(100 customers, no shared lock). Both rates are reported; the one-customer rate over the
100-customer rate is the figure. Each client makes --attempts redemptions through
`redeem_reward` (lock the customer, check the balance, write the redemption and the debit, one
COMMIT), in its own session, over one pool of --pool connections (the web tier's shape: many
threads, a bounded pool; the machine's PostgreSQL allows 100 connections in all).

    .venv/bin/python bench/redemption_storm.py
    .venv/bin/python bench/redemption_storm.py --attempts 2

Balances cover only half of the attempts, so half are refused (insufficient points): the bench
asserts no overdraft — successes == floor(balance / cost) exactly, no negative balance, every
cached balance equal to its ledger. Database `lojal_bench_storm`.
"""
from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime

import harness

CLIENTS, COST = 100, 100


def seed(app, customers: int, balance: int) -> tuple[int, int, list[int]]:
    from app.extensions import db
    from app.loyalty.adjustments import adjust_points
    from app.loyalty.identity import new_referral_code
    from app.loyalty.program import create_default_program
    from app.models import Customer, Reward, Shop

    now = datetime.now(UTC)
    with app.app_context():
        shop = Shop(platform="demo", domain=f"storm-{time.time_ns()}.example", name="Storm", currency="USD",
                    timezone="UTC", settings={})
        db.session.add(shop)
        db.session.flush()
        create_default_program(db.session, shop.id)
        reward = Reward(shop_id=shop.id, name="1 off", kind="fixed_amount", points_cost=COST, value=1)
        db.session.add(reward)
        ids = []
        for n in range(customers):
            customer = Customer(shop_id=shop.id, platform_customer_id=f"s{n}", email=f"s{n}@example.com",
                                referral_code=new_referral_code())
            db.session.add(customer)
            db.session.flush()
            adjust_points(db.session, shop.id, customer.id, balance, reason="bench", actor="bench", now=now)
            ids.append(customer.id)
        db.session.commit()
        return shop.id, reward.id, ids


def storm(app, shop_id: int, reward_id: int, customer_of_client, attempts: int) -> tuple[float, int, int]:
    from app.extensions import db
    from app.loyalty.errors import InsufficientPoints
    from app.loyalty.redemptions import redeem_reward

    outcomes = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS + 1)

    def client(n: int) -> None:
        with app.app_context():
            start.wait()
            for attempt in range(attempts):
                try:
                    redeem_reward(db.session, shop_id, customer_of_client(n), reward_id, f"c{n}-a{attempt}",
                                  datetime.now(UTC))
                    db.session.commit()
                    outcome = "ok"
                except InsufficientPoints:
                    db.session.rollback()
                    outcome = "refused"
                with lock:
                    outcomes[outcome] += 1
            db.session.remove()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, outcomes["ok"], outcomes["refused"]


def no_overdraft(app, shop_id: int, customer_ids: list[int], balance: int, successes: int) -> bool:
    from sqlalchemy import select

    from app.extensions import db
    from app.loyalty.ledger import find_balance_drift
    from app.models import Customer

    expected = len(customer_ids) * (balance // COST)
    with app.app_context():
        balances = db.session.scalars(select(Customer.points_balance).where(Customer.id.in_(customer_ids))).all()
        ok = successes == expected and min(balances) >= 0 and find_balance_drift(db.session, shop_id) == []
        db.session.remove()
    return ok


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=6, help="redemptions per client")
    parser.add_argument("--pool", type=int, default=20, help="database connections shared by the clients")
    args = parser.parse_args(argv)

    url = harness.bench_database("storm")
    app = harness.build_app(harness.environment(url), SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "pool_size": args.pool, "max_overflow": 0, "pool_timeout": 300})
    total = CLIENTS * args.attempts
    results = {}
    # One customer whose balance covers half of all attempts; 100 customers, each half of theirs.
    for name, customers, balance in (("one customer", 1, total * COST // 2),
                                     ("100 customers", CLIENTS, args.attempts * COST // 2)):
        shop_id, reward_id, ids = seed(app, customers, balance)
        seconds, ok, refused = storm(app, shop_id, reward_id, lambda n, ids=ids: ids[n % len(ids)], args.attempts)
        verified = no_overdraft(app, shop_id, ids, balance, ok)
        results[name] = {"rate": total / seconds, "ok": ok, "refused": refused, "verified": verified}
        print(f"{name:<14} {total} attempts in {seconds:5.2f}s = {total / seconds:7.0f}/s: {ok} redeemed, "
              f"{refused} refused; no overdraft: {'OK' if verified else 'FAILED'}", flush=True)
    one, many = results["one customer"], results["100 customers"]
    ratio = one["rate"] / many["rate"]
    verified = one["verified"] and many["verified"]
    harness.report("redemption_storm", [harness.row(
        "redemption storm, 100 clients: one customer vs 100 customers (attempts/s)", round(one["rate"]),
        baseline=round(many["rate"]), ratio=round(ratio, 2), target="no overdraft", met=verified,
        note=f"{args.attempts} attempts per client, {args.pool}-connection pool; "
             f"{one['ok']} + {many['ok']} redeemed, exactly floor(balance / cost)")])
    if not verified:
        raise SystemExit("OVERDRAFT OR DRIFT: see above")
    return results


if __name__ == "__main__":
    main()
