"""Benchmark: loyalty analytics (summary + daily series) at 1,000,000 customers, against a full scan.

    .venv/bin/python bench/analytics.py                     # 1,000,000 customers (loads ~3M orders, ~5M ledger entries)
    .venv/bin/python bench/analytics.py --customers 100000  # a smaller run
    .venv/bin/python bench/analytics.py --reuse             # skip the load (measure the data loaded before)

Database: its own, `lojal_bench_analytics` on DATABASE_URL's server (created if missing; its
schema `public` is DROPPED and rebuilt with the migrations unless --reuse). Without
DATABASE_URL the embedded PostgreSQL is used.

Load (COPY from files written by one seeded generator pass and sorted by their time column,
as an append-only ledger and the order inbox lay rows out; nothing held in memory): one shop
in America/New_York; N customers, 40 % one-time buyers, the rest 2-7 orders with their own
rhythm, last orders spread over 400 days; 10 % of them bought before the program existed
(no ledger activity: non-members); guest orders (no account) worth 30 % of N; 5 % of orders
partly refunded, 2 % cancelled; ledger: signup points, points per order, refund reversals,
redemptions of 500 points, some expiries; win-back enrollments with their emails and some
conversions; 5 % of customers referred by an earlier one.

Measured, in one run, each on a warm cache (one untimed run first): summary() and
daily_series() for the 30 and the 365 days ending at NOW, and the baseline
`SELECT count(*), sum(total) FROM orders WHERE shop_id = ...` (a full scan of the shop's
orders). ratio = analytics seconds / baseline seconds.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

from sqlalchemy import text  # noqa: E402

from app.extensions import db  # noqa: E402
from bench.winback import build_app, database_url as winback_database_url, reused_shop  # noqa: E402  (the same app factory call and schema reset)

BENCH_DB = "lojal_bench_analytics"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TIMEZONE = "America/New_York"


def database_url() -> str:
    return winback_database_url(BENCH_DB)


# --- load ----------------------------------------------------------------------------------

TABLES = {
    "customers": "id, shop_id, platform_customer_id, email, email_normalized, accepts_marketing, referral_code, "
                 "points_balance, points_earned_lifetime, orders_count, total_spent, first_order_at, last_order_at, "
                 "last_activity_at, referred_by_id, referrals_completed, created_at",
    "orders": "id, shop_id, platform_order_id, customer_id, email_normalized, currency, subtotal, total, "
              "eligible_amount, refunded_amount, status, points_status, points_earned, points_reversed, "
              "placed_at, paid_at, cancelled_at",
    "ledger_entries": "shop_id, customer_id, kind, source, points, idempotency_key, order_id, created_at",
    "winback_enrollments": "shop_id, customer_id, campaign_step, status, enrolled_at, step1_sent_at, step2_sent_at, "
                           "ended_at, converted_order_id, recovered_revenue",
    "email_sends": "shop_id, customer_id, template, send_key, status, created_at, sent_at",
    "referrals": "shop_id, advocate_id, friend_id, status, order_id, completed_at, created_at",
}


# The time column (1-based) each COPY file is sorted on.
SORT_BY = {"orders": 16, "ledger_entries": 8, "winback_enrollments": 5, "email_sends": 7, "referrals": 6}


def _ts(dt: datetime | None) -> str:
    return r"\N" if dt is None else dt.isoformat()


def _row(*values) -> str:
    return "\t".join(r"\N" if v is None else _ts(v) if isinstance(v, datetime) else str(v) for v in values) + "\n"


def generate(n: int, seed: int, shop_id: int, out: dict) -> dict:
    """One pass over N customers writing every table's COPY text; returns counts."""
    rng = random.Random(seed)
    order_id = enrollment_id = 0
    counts = dict.fromkeys(TABLES, 0)
    advocates: list[int] = []  # customers who may refer (grows as ids grow)
    for cid in range(1, n + 1):
        last = NOW - timedelta(days=rng.uniform(0, 400))
        count = 1 if rng.random() < 0.4 else rng.randint(2, 7)
        rhythm = rng.uniform(7, 120)
        times = [last]
        for _ in range(count - 1):
            times.append(times[-1] - timedelta(days=max(1.0, rng.gauss(rhythm, rhythm / 4))))
        times.reverse()
        member = rng.random() >= 0.1
        email = f"c{cid}@bench.example"
        balance = lifetime = orders_count = 0
        spent = 0.0
        key = 0
        referred_by = advocates[rng.randrange(len(advocates))] if advocates and rng.random() < 0.05 else None

        def ledger(kind, source, points, at, oid=None):
            nonlocal balance, key
            key += 1
            balance += points
            out["ledger_entries"].write(_row(shop_id, cid, kind, source, points, f"b:{cid}:{key}", oid, at))
            counts["ledger_entries"] += 1

        if member:
            ledger("earn", "signup", 50, times[0] - timedelta(minutes=5))
            lifetime += 50
        first_order = None
        for at in times:
            order_id += 1
            total = round(rng.uniform(15, 200), 2)
            roll = rng.random()
            cancelled = roll < 0.02
            refunded = round(total * rng.choice((0.25, 0.5, 1.0)), 2) if 0.02 <= roll < 0.07 else 0
            earned = int(total) if member and not cancelled else 0
            reversed_ = round(earned * refunded / total) if earned else 0
            out["orders"].write(_row(order_id, shop_id, f"o{order_id}", cid, email, "USD", total, total, total, refunded,
                                     "cancelled" if cancelled else "paid", "awarded" if earned else "void" if member else "none",
                                     earned, reversed_, at, at, at + timedelta(hours=2) if cancelled else None))
            counts["orders"] += 1
            if cancelled:
                continue
            first_order = first_order or order_id
            orders_count += 1
            spent += total - refunded
            if earned:
                ledger("earn", "order", earned, at, order_id)
                lifetime += earned
                if reversed_:
                    ledger("reverse", "order", -reversed_, at + timedelta(days=3), order_id)
                    lifetime -= reversed_
            if member and balance >= 500 and rng.random() < 0.5:
                ledger("redeem", None, -500, at + timedelta(days=1))
        if member and balance > 0 and last + timedelta(days=365) < NOW and rng.random() < 0.5:
            ledger("expire", "inactivity", -balance, last + timedelta(days=365))
        # Win-back: a third of those quiet for 60+ days were enrolled; some came back.
        if orders_count and last + timedelta(days=60) < NOW and rng.random() < 0.33:
            enrollment_id += 1
            enrolled = last + timedelta(days=60)
            step2 = enrolled + timedelta(days=7) if enrolled + timedelta(days=7) < NOW else None
            out["winback_enrollments"].write(_row(shop_id, cid, 2 if step2 else 1, "completed" if step2 else "active",
                                                  enrolled, enrolled, step2, step2, None, 0))
            for step, sent in ((1, enrolled), (2, step2)):
                if sent:
                    out["email_sends"].write(_row(shop_id, cid, "winback_reminder" if step == 1 else "winback_incentive",
                                                  f"winback:{enrollment_id}:{step}", "sent", sent, sent))
                    counts["email_sends"] += 1
            counts["winback_enrollments"] += 1
        elif orders_count >= 2 and rng.random() < 0.05:
            enrollment_id += 1
            enrolled = last - timedelta(days=5)
            out["winback_enrollments"].write(_row(shop_id, cid, 1, "converted", enrolled, enrolled, None, last,
                                                  order_id, total))
            out["email_sends"].write(_row(shop_id, cid, "winback_reminder", f"winback:{enrollment_id}:1", "sent",
                                          enrolled, enrolled))
            counts["winback_enrollments"] += 1
            counts["email_sends"] += 1
        if referred_by and first_order:
            out["referrals"].write(_row(shop_id, referred_by, cid, "completed", first_order, times[0], times[0]))
            counts["referrals"] += 1
        out["customers"].write(_row(cid, shop_id, f"c{cid}", email, email, rng.random() < 0.8, f"R{cid:010d}", balance,
                                    lifetime, orders_count, round(spent, 2), times[0], last,
                                    last if member else None, referred_by, 0, times[0] - timedelta(minutes=10)))
        counts["customers"] += 1
        if orders_count >= 2:
            advocates.append(cid)
    # Guests: checkouts without an account, some returning under the same email.
    for g in range(int(n * 0.3)):
        order_id += 1
        at = NOW - timedelta(days=rng.uniform(0, 400))
        total = round(rng.uniform(15, 200), 2)
        out["orders"].write(_row(order_id, shop_id, f"o{order_id}", None, f"guest{rng.randrange(int(n * 0.2) + 1)}@bench.example",
                                 "USD", total, total, total, 0, "paid", "none", 0, 0, at, at, None))
        counts["orders"] += 1
    return counts | {"max_order_id": order_id}


def load(app, n: int, seed: int) -> tuple[int, dict, float]:
    started = time.perf_counter()
    with app.app_context():
        shop_id = db.session.execute(text(
            "INSERT INTO shops (uid, platform, domain, name, currency, timezone, settings, status) "
            "VALUES ('benchanalytics', 'demo', 'bench.example', 'Bench', 'USD', :tz, '{}', 'active') RETURNING id"),
            {"tz": TIMEZONE}).scalar_one()
        db.session.execute(text(
            "INSERT INTO rewards (shop_id, name, kind, points_cost, value, active, position) "
            "VALUES (:s, '5 off', 'fixed_amount', 500, 5, true, 1), (:s, 'Free shipping', 'free_shipping', 300, NULL, true, 2)"),
            {"s": shop_id})
        db.session.commit()
        with tempfile.TemporaryDirectory(prefix="lojal-bench-analytics-") as tmp:
            files = {name: open(Path(tmp) / f"{name}.tsv", "w") for name in TABLES}
            try:
                counts = generate(n, seed, shop_id, files)
            finally:
                for f in files.values():
                    f.close()
            # Tables grow in time order (the ledger is append-only): lay each out by its time column.
            for name, column in SORT_BY.items():
                subprocess.run(["sort", "-t", "\t", "-k", f"{column},{column}", "-o", f"{tmp}/{name}.tsv",
                                f"{tmp}/{name}.tsv"], check=True, env={"LC_ALL": "C", "TMPDIR": tmp})
            raw = db.engine.raw_connection()
            try:
                cur = raw.driver_connection.cursor()
                for name, columns in TABLES.items():
                    with cur.copy(f"COPY {name} ({columns}) FROM STDIN") as copy, open(Path(tmp) / f"{name}.tsv", "rb") as f:
                        while block := f.read(1 << 20):
                            copy.write(block)
                    raw.commit()
                cur.execute("SELECT setval('customers_id_seq', %s)", (n,))
                cur.execute("SELECT setval('orders_id_seq', %s)", (counts["max_order_id"],))
                raw.commit()
                raw.driver_connection.autocommit = True  # VACUUM refuses a transaction block
                for name in TABLES:
                    cur.execute(f"VACUUM ANALYZE {name}")
                raw.driver_connection.autocommit = False
            finally:
                raw.close()
    return shop_id, counts, time.perf_counter() - started


# --- measure -------------------------------------------------------------------------------

def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def measure(app, shop_id: int) -> list[tuple[str, float]]:
    from app.loyalty.analytics import daily_series, summary

    results = []
    with app.app_context():
        session = db.session
        today = NOW.date()
        baseline = text("SELECT count(*), sum(total) FROM orders WHERE shop_id = :s")
        session.execute(baseline, {"s": shop_id}).one()  # warm the cache
        base_s, (orders, revenue) = _timed(lambda: session.execute(baseline, {"s": shop_id}).one())
        print(f"baseline: SELECT count(*), sum(total) over {orders} orders (sum {revenue}) in {base_s:.3f}s")
        results.append(("baseline", base_s))
        for days in (30, 365):
            start = today - timedelta(days=days - 1)
            for name, fn in (("summary", lambda: summary(session, shop_id, start, today, NOW)),
                             ("daily_series", lambda: daily_series(session, shop_id, start, today))):
                fn()
                seconds, result = _timed(fn)
                session.rollback()
                results.append((f"{name} {days}d", seconds))
                shown = (f"members={result['members']} active={result['active_members']} "
                         f"orders={result['member_orders']}+{result['non_member_orders']} "
                         f"lapsing={result['lapsing_customers']} liability={result['liability']}"
                         if isinstance(result, dict) else f"{len(result)} days")
                print(f"{name:>12} {days:>3} days: {seconds:6.3f}s  ratio {seconds / base_s:5.2f}  ({shown})")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data (skip the load)")
    parser.add_argument("--load-only", action="store_true", help="load, then stop")
    args = parser.parse_args()

    url = database_url()
    app = build_app(url, reset=not args.reuse)
    if args.reuse:
        shop_id, n = reused_shop(app)
        print(f"reusing {n} customers")
    else:
        shop_id, counts, load_s = load(app, args.customers, args.seed)
        print(f"loaded in {load_s:.0f}s: " + ", ".join(f"{v} {k}" for k, v in counts.items() if k in TABLES))
    if args.load_only:
        return
    with app.app_context():
        print(db.session.execute(text("SELECT version()")).scalar_one().split(" on ")[0])
    results = measure(app, shop_id)
    print("SUMMARY " + " ".join(f"{name.replace(' ', '_')}={seconds:.3f}s" for name, seconds in results))


if __name__ == "__main__":
    main()
