"""Benchmark: OrderPaid events through apply_event() against plain single-row INSERTs.

    .venv/bin/python bench/ledger.py                      # 100,000 events, 10,000 customers
    .venv/bin/python bench/ledger.py --events 5000        # a quick run
    .venv/bin/python bench/ledger.py --profile            # a small sample under cProfile

Database: DATABASE_URL if set, else the embedded PostgreSQL (database `lojal_bench`,
created if missing). The schema `public` of that database is DROPPED and rebuilt with the
Alembic migrations, so a DATABASE_URL whose database name does not contain "bench" is
refused unless --allow-any-database is given.

Events: one shop with the default program, N customers (bulk-inserted), then every event
is applied the way a worker's webhook job applies it: on the worker's engine (no pool
pre-ping, app.extensions.use_worker_engine), in a fresh app context and session, one
apply_event() and one COMMIT per event (the job's own webhook_events bookkeeping is left
out). Half of each round's events commit with the server's setting (synchronous_commit on:
"sync"), half the way the inbox job commits them ("async": synchronous_commit off; the job
sets it for its transaction inside its claim of the inbox row, a statement it sends anyway, so
it costs no round trip; here the async half runs on a second engine of the same database whose
connections start with the setting, which costs none either). Baseline: `INSERT INTO bench_baseline ... ; COMMIT` per
row on one held connection of the same engine, synchronous commit, by default as many rows
as events. Events and baseline run alternately in --rounds chunks, so both see the same
machine load. The scores are events/s divided by inserts/s, one for each commit mode
(target >= 0.5). At the end the ledger is checked: find_balance_drift() is empty and the
balances add up to an independently computed total (floor(subtotal x rate x tier
multiplier), tier from spend before the order).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import sys
import time
import warnings
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # pgserver's platformdirs, harmless

import harness  # noqa: E402  (bench/ is on sys.path when this runs as a script)
import psycopg  # noqa: E402
from sqlalchemy import create_engine, event, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import PROJECT_ROOT, create_app  # noqa: E402
from app.config import sqlalchemy_url  # noqa: E402
from app.extensions import db, use_worker_engine  # noqa: E402
from app.loyalty.apply import apply_event  # noqa: E402
from app.loyalty.events import CustomerInfo, OrderPaid, OrderSnapshot  # noqa: E402
from app.loyalty.ledger import find_balance_drift  # noqa: E402
from app.loyalty.program import create_default_program  # noqa: E402
from app.models import Customer, EarnRule, LedgerEntry, Order, Shop, Tier  # noqa: E402
from jobs.inbox import ASYNC_COMMIT  # noqa: E402

BENCH_DB = "lojal_bench"
BENCH_FERNET_KEY = "sxB6iTjM2n1Ah0x1v3o3S3kP4cEJ7bH2oQ0t9mA8cXo="  # a throwaway key, nothing is encrypted
START = datetime(2026, 1, 1, tzinfo=UTC)
_ASYNC_COMMIT_SQL = str(select(ASYNC_COMMIT).compile(compile_kwargs={"literal_binds": True}))


# --- database ------------------------------------------------------------------------------

def database_url(allow_any: bool) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        from app.embedded import embedded_database_url  # creates the database if missing

        return embedded_database_url(PROJECT_ROOT / "instance", database=BENCH_DB)
    url = sqlalchemy_url(url)
    name = make_url(url).database or ""
    if "bench" not in name and not allow_any:
        sys.exit(f"refusing to drop the schema of database {name!r}: use a database named like "
                 f"'{BENCH_DB}' or pass --allow-any-database")
    _create_database_if_missing(url)
    return url


def _create_database_if_missing(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}) is None:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def reset_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _bench_app(url: str, **config):
    return create_app({"SECRET_KEY": "bench-secret-key-0123456789abcdef", "APP_URL": "https://lojal.bench",
                       "TOKEN_ENCRYPTION_KEYS": BENCH_FERNET_KEY, "DATABASE_URL": url, "REDIS_URL": "",
                       "LOG_LEVEL": "WARNING", **config})


def build_async_app(app):
    """The same app on a second engine whose connections commit asynchronously (the inbox job's
    commit, jobs.inbox.ASYNC_COMMIT, without a statement of its own: see the module docstring)."""
    options = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "connect_args": {"options": "-c synchronous_commit=off"}}
    async_app = _bench_app(app.config["DATABASE_URL"], SQLALCHEMY_ENGINE_OPTIONS=options)
    use_worker_engine(async_app)
    return async_app


def build_app(url: str):
    from flask_migrate import upgrade

    reset_schema(url)
    app = _bench_app(url)
    with app.app_context():
        upgrade()
        db.session.execute(text(
            "CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, shop_id bigint, customer_id bigint, "
            "points int, created_at timestamptz DEFAULT now())"))
        db.session.commit()
        db.session.remove()
    use_worker_engine(app)  # as `lojal worker` does
    return app


def server_info() -> str:
    keys = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers")
    values = [f"{k}={db.session.execute(text(f'SHOW {k}')).scalar()}" for k in keys]
    url = db.engine.url
    where = f"{url.host or 'unix socket'}:{url.port or ''}/{url.database}"
    db.session.rollback()
    return f"{where} ({', '.join(values)})"


# --- data ----------------------------------------------------------------------------------

def create_shop(n_customers: int) -> tuple[int, list[str]]:
    shop = Shop(platform="demo", domain="bench.example", name="Bench", currency="USD", timezone="UTC", settings={})
    db.session.add(shop)
    db.session.flush()
    create_default_program(db.session, shop.id)
    ids = [f"bc{i}" for i in range(n_customers)]
    db.session.execute(insert(Customer), [
        {"shop_id": shop.id, "platform_customer_id": pid, "email": f"{pid}@example.com",
         "email_normalized": f"{pid}@example.com", "referral_code": f"BENCH{i:08d}"}
        for i, pid in enumerate(ids)
    ])
    db.session.commit()
    return shop.id, ids


def make_events(n_events: int, customer_ids: list[str], seed: int) -> list[OrderPaid]:
    """Orders spread randomly over the customers, subtotals 5.00-400.00 (a few large ones)."""
    rng = random.Random(seed)
    events = []
    for n in range(n_events):
        pid = customer_ids[rng.randrange(len(customer_ids))]
        cents = rng.randint(500, 40_000) if rng.random() < 0.97 else rng.randint(40_000, 250_000)
        subtotal = Decimal(cents).scaleb(-2)
        total = subtotal + Decimal(rng.randint(0, 1500)).scaleb(-2)
        at = START + timedelta(seconds=30 * n)
        snapshot = OrderSnapshot(platform_order_id=f"bo{n}", currency="USD", subtotal=subtotal, total=total,
                                 customer=CustomerInfo(pid, email=f"{pid}@example.com"), order_number=str(1000 + n),
                                 placed_at=at, updated_at=at)
        events.append(OrderPaid(snapshot, at))
    return events


def expected_points(shop_id: int, events: list[OrderPaid]) -> int:
    """The total the ledger must hold, computed without the app's order code.

    Default program: points_per_unit x subtotal x multiplier of the tier reached by the
    customer's lifetime spend *before* this order (totals), floored; no bonuses.
    """
    rate = db.session.scalar(select(EarnRule.points_per_unit).where(EarnRule.shop_id == shop_id,
                                                                     EarnRule.kind == "order"))
    tiers = db.session.execute(select(Tier.threshold, Tier.multiplier).where(Tier.shop_id == shop_id)
                               .order_by(Tier.threshold)).all()
    spent: dict[str, Decimal] = defaultdict(Decimal)
    total = 0
    for ev in events:
        pid = ev.order.customer.platform_customer_id
        multiplier = Decimal(1)
        if pid in spent:  # tier_id is only set after the first order
            multiplier = max((m for t, m in tiers if spent[pid] >= t), default=Decimal(1))
        total += int((ev.order.subtotal * rate * multiplier).to_integral_value(rounding=ROUND_FLOOR))
        spent[pid] += ev.order.total
    return total


# --- measuring -----------------------------------------------------------------------------

class StatementCounter:
    """Counts what goes over the wire: SQL statements (by shape), pool checkouts (+ pre-ping)."""

    def __init__(self, engine, by_shape: bool = False, driver: bool = True):
        self.statements = 0
        self.checkouts = 0
        self.shapes: Counter[str] = Counter()
        self.by_shape = by_shape
        event.listen(engine, "before_cursor_execute", self._on_execute)
        event.listen(engine.pool, "checkout", self._on_checkout)
        if not driver:
            return
        # The quick path (app.loyalty.new_sale) talks to the driver directly: count those too
        # (whichever engine's connection sends them: one counter per process does this).
        self._driver_execute = psycopg.Connection.execute
        counter = self

        def counted_execute(conn, query, *args, **kwargs):
            counter.statements += 1
            if counter.by_shape:
                counter.shapes["(driver) " + re.sub(r"\s+", " ", str(query)).strip()[:100]] += 1
            return counter._driver_execute(conn, query, *args, **kwargs)

        psycopg.Connection.execute = counted_execute

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        self.statements += 1
        if self.by_shape:
            self.shapes[re.sub(r"\s+", " ", statement).strip()[:110]] += 1

    def _on_checkout(self, *args):
        self.checkouts += 1


def apply_events(app, shop_id: int, events: list[OrderPaid]) -> tuple[float, float]:
    """Apply each event like jobs.inbox does: own app context + session, one commit each
    (on build_async_app's app: with the inbox job's synchronous_commit = off)."""
    started, cpu = time.perf_counter(), time.process_time()
    for ev in events:
        with app.app_context():
            session = db.session
            try:
                apply_event(session, shop_id, ev)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.remove()
    return time.perf_counter() - started, time.process_time() - cpu


def baseline_inserts(app, shop_id: int, rows: int) -> tuple[float, float]:
    """One INSERT + COMMIT per row, on one connection of the app's engine (the floor)."""
    stmt = text("INSERT INTO bench_baseline (shop_id, customer_id, points) VALUES (:s, :c, :p)")
    with app.app_context():
        started, cpu = time.perf_counter(), time.process_time()
        with db.engine.connect() as conn:
            for n in range(rows):
                conn.execute(stmt, {"s": shop_id, "c": n % 10_000, "p": n % 500})
                conn.commit()
        return time.perf_counter() - started, time.process_time() - cpu


# autovacuum's analyze rule with the server's defaults (autovacuum_analyze_threshold = 50,
# autovacuum_analyze_scale_factor = 0.1): a table is analyzed once that many rows changed since
# its last analyze. A table that never changed is never analyzed (its statistics stay "unknown").
_DUE_FOR_ANALYZE = """
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
 WHERE s.relname IN ('customers', 'orders', 'ledger_entries', 'bench_baseline')
   AND s.n_mod_since_analyze >= 50 + 0.1 * GREATEST(c.reltuples, 0)
"""


def refresh_statistics(app) -> list[str]:
    """ANALYZE, between rounds (untimed), the tables autovacuum would analyze by now on a
    production server; returns their names. This machine's PostgreSQL runs with `autovacuum =
    off` (its CI config): without this, the statements' plans stay those made for empty tables,
    and the order lookup walks every order of the shop through ix_orders_shop_paid (9 ms per
    event at 100,000). Analyzing a table that is still empty (as the bench did before the first
    round until session 4) is what autovacuum never does: the planner then takes it for empty
    and the first round's cached plans walk the growing tables."""
    with app.app_context(), db.engine.connect() as conn:
        due = [name for (name,) in conn.exec_driver_sql(_DUE_FOR_ANALYZE)]
        if due:
            conn.exec_driver_sql("ANALYZE " + ", ".join(due))
        conn.commit()
    return due


def check_commit_modes(app, async_app) -> None:
    """The two halves really commit as labelled (the async one as the inbox job's ASYNC_COMMIT does)."""
    for label, each, expected in (("sync", app, "on"), ("async", async_app, "off")):
        with each.app_context():
            value = db.session.execute(text("SHOW synchronous_commit")).scalar()
            db.session.rollback()
        if value != expected:
            sys.exit(f"the {label} half would commit with synchronous_commit={value}, not {expected}")
    with async_app.app_context():
        job_setting = db.session.execute(text(_ASYNC_COMMIT_SQL)).scalar()
        db.session.rollback()
    if job_setting != "off":
        sys.exit(f"jobs.inbox.ASYNC_COMMIT sets synchronous_commit={job_setting}, not off")


def run_interleaved(app, async_app, shop_id: int, events: list[OrderPaid], rows: int,
                    rounds: int) -> tuple[float, ...]:
    """Alternate chunks of events (sync half, async half) and of baseline rows, so all see the
    same machine load. Returns {"sync": [events, wall, CPU], "async": [...], "baseline": [rows, wall, CPU]}.
    """
    totals = {"sync": [0, 0.0, 0.0], "async": [0, 0.0, 0.0], "baseline": [0, 0.0, 0.0]}
    for r in range(rounds):
        analyzed = refresh_statistics(app)
        chunk = events[r * len(events) // rounds:(r + 1) * len(events) // rounds]
        half = len(chunk) // 2
        n_rows = (r + 1) * rows // rounds - r * rows // rounds
        parts = {"sync": (half, apply_events(app, shop_id, chunk[:half])),
                 "async": (len(chunk) - half, apply_events(async_app, shop_id, chunk[half:])),
                 "baseline": (n_rows, baseline_inserts(app, shop_id, n_rows))}
        for name, (count, (wall, cpu)) in parts.items():
            totals[name][0] += count
            totals[name][1] += wall
            totals[name][2] += cpu
        rate = {name: count / wall for name, (count, (wall, _)) in parts.items()}
        done = (r + 1) * len(events) // rounds
        print(f"  round {r + 1:>2}/{rounds}: {done:>7} events; this round {rate['baseline']:6.0f} inserts/s, "
              f"sync {rate['sync']:5.0f} events/s (ratio {rate['sync'] / rate['baseline']:.3f}), "
              f"async {rate['async']:5.0f} events/s (ratio {rate['async'] / rate['baseline']:.3f}); "
              f"analyzed before it: {', '.join(analyzed) or 'nothing'}",
              file=sys.stderr, flush=True)
    return totals


def verify(shop_id: int, events: list[OrderPaid]) -> tuple[bool, str]:
    session = db.session
    drift = find_balance_drift(session, shop_id)
    balances = session.scalar(select(func.coalesce(func.sum(Customer.points_balance), 0))
                              .where(Customer.shop_id == shop_id))
    orders = session.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shop_id))
    entries = session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.shop_id == shop_id))
    expected = expected_points(shop_id, events)
    session.rollback()
    ok = not drift and balances == expected and orders == len(events) and entries == len(events)
    return ok, (f"drift rows={len(drift)}, sum(balance)={balances} expected={expected}, "
                f"orders={orders}, ledger entries={entries} (expected {len(events)} each)")


def profile(app, shop_id: int, events: list[OrderPaid]) -> None:
    warm = min(200, len(events) // 5)
    warmup, sample = events[:warm], events[warm:]
    apply_events(app, shop_id, warmup)
    with app.app_context():
        counter = StatementCounter(db.engine, by_shape=True)
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed, cpu = apply_events(app, shop_id, sample)
    profiler.disable()
    n = len(sample)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("LEDGER_SORT", "cumulative")).print_stats(int(os.environ.get("LEDGER_TOP", "20")))
    print(out.getvalue())
    print(f"profiled {n} events: {n / elapsed:.0f} events/s under cProfile, client CPU {cpu / elapsed:.0%} of wall")
    print(f"per event: {counter.statements / n:.2f} SQL statements + BEGIN + COMMIT, "
          f"{counter.checkouts / n:.2f} pool checkouts (each + a pre-ping SELECT 1 if pool_pre_ping)")
    for shape, count in counter.shapes.most_common():
        print(f"  {count / n:5.2f}  {shape}")


# --- main ----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--baseline-rows", type=int, default=None, help="default: as many as --events")
    parser.add_argument("--rounds", type=int, default=10, help="alternate events and baseline in this many chunks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="profile a sample (--profile-events) and stop")
    parser.add_argument("--profile-events", type=int, default=3000)
    parser.add_argument("--allow-any-database", action="store_true")
    args = parser.parse_args()

    url = database_url(args.allow_any_database)
    app = build_app(url)
    n_events = min(args.events, args.profile_events) if args.profile else args.events
    with app.app_context():
        print(f"database: {server_info()}")
        shop_id, customer_ids = create_shop(args.customers)
    events = make_events(n_events, customer_ids, args.seed)

    if args.profile:
        profile(app, shop_id, events)
        with app.app_context():
            ok, detail = verify(shop_id, events)
        print(f"verify: {'OK' if ok else 'FAILED'}: {detail}")
        sys.exit(0 if ok else 1)

    rows = args.baseline_rows or n_events
    rounds = max(1, min(args.rounds, n_events, rows))
    async_app = build_async_app(app)
    check_commit_modes(app, async_app)
    with app.app_context():
        counter = StatementCounter(db.engine)
        pre_ping = db.engine.pool._pre_ping
    with async_app.app_context():
        async_counter = StatementCounter(db.engine, driver=False)
    totals = run_interleaved(app, async_app, shop_id, events, rows, rounds)
    # The sync counter saw the baseline too (one INSERT per row and a checkout per round); the
    # driver-level count is shared by both (one patched psycopg.Connection.execute).
    per_event = (counter.statements + async_counter.statements - rows) / n_events
    checkouts = (counter.checkouts + async_counter.checkouts - rounds) / n_events
    with app.app_context():
        ok, detail = verify(shop_id, events)
        db.engine.dispose()
    with async_app.app_context():
        db.engine.dispose()

    base_rows, base_wall, base_cpu = totals["baseline"]
    inserts_per_s = base_rows / base_wall
    print(f"baseline: {base_rows} rows in {base_wall:.1f}s (synchronous commit), "
          f"client CPU {base_cpu / base_wall:.0%} of wall")
    rates = {}
    for mode, label in (("sync", "synchronous commit"), ("async", "asynchronous commit, as the inbox job")):
        count, wall, cpu = totals[mode]
        rates[mode] = count / wall
        print(f"events, {label}: {count} in {wall:.1f}s, {wall / count * 1e3:.2f} ms/event, "
              f"client CPU {cpu / wall:.0%} of wall, ratio {rates[mode] / inserts_per_s:.3f}")
    print(f"per event: {per_event:.1f} SQL statements (+ BEGIN, COMMIT; {checkouts:.0f} pool checkout"
          f"{' with pre-ping' if pre_ping else ', no pre-ping'})")
    print(f"verify:   {'OK' if ok else 'FAILED'}: {detail}")
    ratios = {mode: rate / inserts_per_s for mode, rate in rates.items()}
    for mode in ("sync", "async"):
        print(f"SUMMARY commit={mode} events/s={rates[mode]:.0f} inserts/s={inserts_per_s:.0f} "
              f"ratio={ratios[mode]:.3f} (target >= 0.5: {'met' if ratios[mode] >= 0.5 else 'NOT met'}) "
              f"events={totals[mode][0]} customers={args.customers} baseline_rows={rows} "
              f"verify={'ok' if ok else 'FAILED'}")
    print("| commit | events | customers | events/s | baseline rows | inserts/s | ratio | stmts/event | verify |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for mode, label in (("sync", "synchronous"), ("async", "asynchronous (inbox job)")):
        print(f"| {label} | {totals[mode][0]} | {args.customers} | {rates[mode]:.0f} | {rows} | {inserts_per_s:.0f} "
              f"| {ratios[mode]:.3f} | {per_event:.1f} | {'ok' if ok else 'FAILED'} |")
    note = f"{n_events} events, {args.customers} customers" + ("" if ok else "; VERIFY FAILED")
    harness.report("ledger", [
        harness.row(f"ledger: OrderPaid events/s vs single-row INSERTs/s, {label}", round(rates[mode]),
                    baseline=round(inserts_per_s), ratio=round(ratios[mode], 3), target="ratio >= 0.5",
                    met=ratios[mode] >= 0.5, note=note)
        for mode, label in (("sync", "synchronous commit"), ("async", "asynchronous commit (inbox job)"))
    ])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
