"""Benchmark: the win-back selection over 1,000,000 customers against a plain COPY of the same columns.

    .venv/bin/python bench/winback.py                     # 1,000,000 customers (loads ~2.7M orders)
    .venv/bin/python bench/winback.py --customers 200000  # a smaller run
    .venv/bin/python bench/winback.py --reuse             # skip the load (same --customers as before)
    .venv/bin/python bench/winback.py --reuse --backfill  # also time migration 0012's backfill

Database: its own, `lojal_bench_winback` on DATABASE_URL's server (created if missing; its
schema `public` is DROPPED and rebuilt with the migrations unless --reuse). Without
DATABASE_URL the embedded PostgreSQL is used.

Load: one shop, N customers and their paid orders, streamed from Python generators with
COPY (nothing is held in memory). Histories: 40 % one-time customers, the rest 2-7 orders
with a per-customer rhythm (gap 7-120 days, jittered); last orders spread over 400 days;
80 % accept marketing, 2 % unsubscribed, 1 % redacted. The customers' order statistics,
including the sale history the order path keeps (sale_history, median_gap_days), are
computed by the loader with the order path's own rule function (customers.record_sale).

Measured, in one run: select_lapsing() for the shop (every keyset page of up to --batch
lapsing customers, set-based SQL on the customers table), run in a child process so its
peak RSS is its own; then `COPY (SELECT <the customers columns the selection reads> ...)
TO STDOUT` for the same shop as the baseline. --backfill also times migration 0012's
backfill of the sale history over the loaded orders (in a transaction rolled back after). rows/s = the shop's customers / seconds for both; ratio = selection
rows/s / COPY rows/s.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import warnings
from types import SimpleNamespace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import PROJECT_ROOT, create_app  # noqa: E402
from app.config import sqlalchemy_url  # noqa: E402
from app.extensions import db  # noqa: E402
from app.loyalty.customers import record_sale  # noqa: E402

BENCH_DB = "lojal_bench_winback"
BENCH_FERNET_KEY = "sxB6iTjM2n1Ah0x1v3o3S3kP4cEJ7bH2oQ0t9mA8cXo="
NOW = datetime(2026, 6, 1, 4, 40, tzinfo=UTC)
# The customer columns the selection reads (the baseline copies exactly those).
BASELINE_COLUMNS = ("id, orders_count, last_order_at, median_gap_days, accepts_marketing, unsubscribed_at, redacted_at, "
                    "email")


def database_url(name: str = BENCH_DB) -> str:
    """DATABASE_URL's server with database `name` (created if missing); else the embedded one."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        from app.embedded import embedded_database_url

        return embedded_database_url(PROJECT_ROOT / "instance", database=name)
    target = make_url(sqlalchemy_url(url)).set(database=name)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return target.render_as_string(hide_password=False)


def reused_shop(app) -> tuple[int, int]:
    """The bench shop a previous load left behind, and how many customers it has (--reuse)."""
    with app.app_context():
        shop_id = db.session.execute(text("SELECT id FROM shops WHERE domain = 'bench.example'")).scalar_one()
        n = db.session.execute(text("SELECT count(*) FROM customers WHERE shop_id = :s"), {"s": shop_id}).scalar_one()
    return shop_id, n


def build_app(url: str, reset: bool):
    from flask_migrate import upgrade

    if reset:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app({"SECRET_KEY": "bench-secret-key-0123456789abcdef", "APP_URL": "https://lojal.bench",
                      "TOKEN_ENCRYPTION_KEYS": BENCH_FERNET_KEY, "DATABASE_URL": url, "REDIS_URL": "",
                      "LOG_LEVEL": "WARNING"})
    if reset:
        with app.app_context():
            upgrade()
    return app


# --- load ----------------------------------------------------------------------------------

def _histories(n: int, seed: int):
    """(customer row, [order times]) per customer, generated lazily."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        last = NOW - timedelta(days=rng.uniform(0, 400))
        count = 1 if rng.random() < 0.4 else rng.randint(2, 7)
        rhythm = rng.uniform(7, 120)
        times = [last]
        for _ in range(count - 1):
            times.append(times[-1] - timedelta(days=max(1.0, rng.gauss(rhythm, rhythm / 4))))
        times.reverse()
        roll = rng.random()
        yield i, count, times, rng.random() < 0.8, roll < 0.02, 0.02 <= roll < 0.03


def load(app, n: int, seed: int) -> tuple[int, int, float]:
    started = time.perf_counter()
    with app.app_context():
        shop_id = db.session.execute(text(
            "INSERT INTO shops (uid, platform, domain, name, currency, timezone, settings, status) "
            "VALUES ('benchwinback', 'demo', 'bench.example', 'Bench', 'USD', 'UTC', '{}', 'active') RETURNING id")
        ).scalar_one()
        db.session.commit()
        raw = db.engine.raw_connection()
        try:
            cur = raw.driver_connection.cursor()
            with cur.copy("COPY customers (id, shop_id, platform_customer_id, email, email_normalized, first_name, "
                          "accepts_marketing, unsubscribed_at, redacted_at, referral_code, orders_count, "
                          "total_spent, first_order_at, last_order_at, sale_history, median_gap_days) FROM STDIN") as copy:
                for cid, count, times, marketing, unsub, redacted in _histories(n, seed):
                    email = f"c{cid}@bench.example"
                    # The sale history as the order path keeps it (the same rule functions).
                    history = SimpleNamespace(sale_history=b"", median_gap_days=None)
                    for at in times:
                        record_sale(history, at)
                    copy.write_row((cid, shop_id, f"c{cid}", email, email, "Ada", marketing,
                                    NOW - timedelta(days=3) if unsub else None, NOW - timedelta(days=5) if redacted else None,
                                    f"R{cid:010d}", count, 40 * count, times[0], times[-1],
                                    history.sale_history, history.median_gap_days))
            orders = 0
            with cur.copy("COPY orders (shop_id, platform_order_id, customer_id, currency, subtotal, total, "
                          "eligible_amount, status, points_status, placed_at, paid_at) FROM STDIN") as copy:
                for cid, _count, times, *_ in _histories(n, seed):
                    for k, at in enumerate(times):
                        orders += 1
                        copy.write_row((shop_id, f"o{cid}-{k}", cid, "USD", 40, 40, 40, "paid", "awarded", at, at))
            cur.execute("SELECT setval('customers_id_seq', %s)", (n,))
            raw.commit()
            cur.execute("ANALYZE customers")
            cur.execute("ANALYZE orders")
            raw.commit()
        finally:
            raw.close()
    return shop_id, orders, time.perf_counter() - started


# --- measure -------------------------------------------------------------------------------

def select_child(url: str, shop_id: int, batch: int) -> None:
    """Run in a child process: the selection, then print JSON (seconds, rows, lapsing, peak RSS)."""
    from app.loyalty.winback import select_lapsing

    app = build_app(url, reset=False)
    with app.app_context():
        db.session.execute(text("SELECT 1"))  # connect before timing
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        lapsing = pages = 0
        for found in select_lapsing(db.session, shop_id, NOW, batch=batch):
            lapsing += len(found)
            pages += 1
        seconds = time.perf_counter() - started
        db.session.rollback()
    print(json.dumps({"seconds": seconds, "lapsing": lapsing, "pages": pages,
                      "rss_before_kb": rss_before, "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def copy_baseline(app, shop_id: int) -> tuple[float, int]:
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cur = raw.driver_connection.cursor()
            started = time.perf_counter()
            size = 0
            with cur.copy(f"COPY (SELECT {BASELINE_COLUMNS} FROM customers WHERE shop_id = {int(shop_id)}) TO STDOUT") as copy:
                for block in copy:
                    size += len(block)
            seconds = time.perf_counter() - started
            raw.rollback()
        finally:
            raw.close()
    return seconds, size


def time_backfill(app) -> float:
    """Migration 0012's backfill over everything loaded, then rolled back; also checks that it
    computes what the loader (the order path's rule) stored."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0012_winback_sale_history.py"
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE kept AS SELECT id, sale_history, median_gap_days FROM customers"))
        started = time.perf_counter()
        migration.backfill(conn)
        seconds = time.perf_counter() - started
        differ = conn.execute(text(
            "SELECT count(*) FROM customers c JOIN kept k USING (id) "
            "WHERE c.sale_history IS DISTINCT FROM k.sale_history "
            "OR c.median_gap_days IS DISTINCT FROM k.median_gap_days")).scalar_one()
        conn.rollback()
    print(f"backfill:  migration 0012's UPDATE in {seconds:.1f}s (rolled back); "
          f"{differ} customers differ from the order path's rule")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data (skip the load)")
    parser.add_argument("--backfill", action="store_true", help="also time migration 0012's backfill (rolled back)")
    parser.add_argument("--select-child", nargs=2, metavar=("URL", "SHOP_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.select_child:
        select_child(args.select_child[0], int(args.select_child[1]), args.batch)
        return

    url = database_url()
    app = build_app(url, reset=not args.reuse)
    if args.reuse:
        shop_id, n = reused_shop(app)
        print(f"reusing {n} customers")
    else:
        shop_id, orders, load_s = load(app, args.customers, args.seed)
        n = args.customers
        print(f"loaded {n} customers, {orders} orders in {load_s:.0f}s "
              f"(loader peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    with app.app_context():
        print(db.session.execute(text("SELECT version()")).scalar_one().split(" on ")[0])

    child = subprocess.run([sys.executable, __file__, "--select-child", url, str(shop_id), "--batch", str(args.batch)],
                           capture_output=True, text=True, check=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    copy_s, copy_bytes = copy_baseline(app, shop_id)

    sel_rate, copy_rate = n / result["seconds"], n / copy_s
    ratio = sel_rate / copy_rate
    growth = (result["rss_peak_kb"] - result["rss_before_kb"]) / 1024
    print(f"selection: {n} customers in {result['seconds']:.2f}s -> {result['lapsing']} lapsing "
          f"({result['pages']} pages of up to {args.batch})")
    print(f"memory:    selection process peak RSS {result['rss_peak_kb'] / 1024:.0f} MiB "
          f"(+{growth:.1f} MiB during the selection)")
    print(f"baseline:  COPY ({BASELINE_COLUMNS}) of {n} rows, {copy_bytes / 2**20:.0f} MiB, in {copy_s:.2f}s")
    print(f"SUMMARY customers={n} seconds={result['seconds']:.2f} rows/s={sel_rate:.0f} copy_rows/s={copy_rate:.0f} "
          f"ratio={ratio:.3f} peak_rss_mib={result['rss_peak_kb'] / 1024:.0f} rss_growth_mib={growth:.1f} "
          f"lapsing={result['lapsing']} (targets: <= 30 s {'met' if result['seconds'] <= 30 else 'NOT met'}, "
          f"ratio >= 0.2 {'met' if ratio >= 0.2 else 'NOT met'})")
    if args.backfill:  # last: its rolled-back UPDATE leaves dead rows behind until the next VACUUM
        time_backfill(app)


if __name__ == "__main__":
    main()
