"""Benchmark: signed GET /widget/v1/me under gunicorn against a bare Flask endpoint returning a
constant JSON dict (bench/baseline_app.py), same server settings, same load, same run.

    .venv/bin/python bench/widget.py                 # 2 rounds x 10 s per app, 32 connections
    .venv/bin/python bench/widget.py --seconds 5 --rounds 1

Database: `lojal_bench_widget` on BENCH_DATABASE_URL's server (default the machine's
PostgreSQL, else the embedded one; bench/harness.py), its schema DROPPED and migrated. Redis:
--redis-url (default BENCH_REDIS_URL, else db 7 on the machine's Redis; flushed), which the app
uses for its rate limits (set high here: the bench measures serving, not throttling).

Both apps run under the production config (`gunicorn -c gunicorn.conf.py`) with the same
WEB_CONCURRENCY=2 processes x WEB_THREADS=4 (gthread; BENCH_WEB_CONCURRENCY / BENCH_WEB_THREADS
override both apps' shape), no worker recycling, at once (idle while
the other is measured); after a warm-up, the rounds alternate baseline / real so both see the
same machine load. The load (bench/harness.py): 32 keep-alive HTTP/1.1 connections from one
asyncio client, each sending its next request when the previous answer is in, cycling over
the seeded shoppers' tokens; it shares the machine's cores with the servers. Every answer must
be 200 (counted). Targets: real/baseline requests/s >= 0.5 and real p99 <= 25 ms. Beside them,
the servers' CPU per answered request (the gunicorn workers plus the bench database's
PostgreSQL backends, from /proc): a figure that the machine's other load disturbs less.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (puts the project root on sys.path too)

from sqlalchemy import event, insert, select, text  # noqa: E402

from app.extensions import db  # noqa: E402
from app.loyalty.adjustments import adjust_points  # noqa: E402
from app.loyalty.program import create_default_program  # noqa: E402
from app.models import Customer, Shop, Tier  # noqa: E402
from widgets.tokens import ensure_widget_secret, sign_customer_token  # noqa: E402

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
SERVER = {"WEB_CONCURRENCY": os.environ.get("BENCH_WEB_CONCURRENCY", "2"),
          "WEB_THREADS": os.environ.get("BENCH_WEB_THREADS", "4"), "WEB_MAX_REQUESTS": "0", "LOG_LEVEL": "WARNING"}
TARGET_RATIO, TARGET_P99_MS = 0.5, 25.0
PATH = "/widget/v1/me"
# The bench measures serving, not throttling.
UNTHROTTLED = {"WIDGET_RATE_LIMIT": "1000000/minute", "WIDGET_IP_RATE_LIMIT": "1000000/minute"}


# --- database and data ---------------------------------------------------------------------

def seed(environment: dict[str, str], customers: int, cpu_requests: int = 2000) -> tuple[list[str], float, float]:
    """One shop (default program) with `customers` shoppers; returns a token for each, the SQL
    statements per /me request and the in-process CPU ms per /me request."""
    app = harness.build_app(environment)
    rng = random.Random(7)
    now = datetime.now(UTC)
    with app.app_context():
        if environment["REDIS_URL"]:
            from app.extensions import redis_connection

            redis_connection.client(app).flushdb()
        shop = Shop(platform="demo", domain="bench.example", name="Bench", currency="USD", timezone="UTC", settings={})
        db.session.add(shop)
        db.session.flush()
        create_default_program(db.session, shop.id)
        db.session.flush()
        tiers = db.session.execute(select(Tier.id, Tier.threshold).where(Tier.shop_id == shop.id)
                                   .order_by(Tier.threshold)).all()
        rows = []
        for i in range(customers):
            spent = Decimal(rng.randint(0, 250_000)).scaleb(-2)
            tier = max((t for t in tiers if spent >= t.threshold), key=lambda t: t.threshold, default=None)
            rows.append({"shop_id": shop.id, "platform_customer_id": f"bc{i}", "email": f"bc{i}@example.com",
                         "email_normalized": f"bc{i}@example.com", "first_name": "Bench",
                         "referral_code": f"BENCH{i:08d}", "total_spent": spent, "orders_count": rng.randint(0, 9),
                         "tier_id": tier.id if tier else None})
        db.session.execute(insert(Customer), rows)
        ids = db.session.execute(select(Customer.id, Customer.platform_customer_id)
                                 .where(Customer.shop_id == shop.id)).all()
        for customer_id, _ in ids:  # a balance through the ledger, as a real shopper's
            adjust_points(db.session, shop.id, customer_id, rng.randint(10, 2500), reason="bench", actor="bench",
                          now=now)
        secret = ensure_widget_secret(db.session, shop)
        db.session.commit()
        # Planner statistics for the freshly loaded rows, as a live database has them (autovacuum
        # would analyze them a little later): without them the customer lookup by platform id
        # is planned as a scan of the shop's customers, for the ORM read as for the driver's.
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        tokens = [sign_customer_token(secret, shop.uid, pid, now, ttl=4 * 3600) for _, pid in ids]
        statements = statements_per_request(app, tokens[:20])
        cpu_ms = cpu_per_request(app, tokens, cpu_requests)
        db.engine.dispose()
    return tokens, statements, cpu_ms


def statements_per_request(app, tokens: list[str]) -> float:
    """SQL statements one GET /widget/v1/me sends, in this process: the ORM's and Core's (seen by
    SQLAlchemy's before_cursor_execute; pool pre-pings not counted) plus those sent straight
    through the driver by widgets.auth.read_one (counted by wrapping it for the duration)."""
    import widgets.auth

    client = app.test_client()
    client.get(PATH, headers={"Authorization": f"Bearer {tokens[0]}"})  # warm: imports, caches
    count = [0]

    def on_execute(*_):
        count[0] += 1

    direct = getattr(widgets.auth, "read_one", None)

    def counted_read_one(*args, **kwargs):
        count[0] += 1
        return direct(*args, **kwargs)

    event.listen(db.engine, "before_cursor_execute", on_execute)
    if direct is not None:
        widgets.auth.read_one = counted_read_one
    try:
        for token in tokens:
            assert client.get(PATH, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)
        if direct is not None:
            widgets.auth.read_one = direct
    return count[0] / len(tokens)


def cpu_per_request(app, tokens: list[str], requests: int = 2000) -> float:
    """CPU milliseconds (this process: time.process_time) per signed GET /widget/v1/me through
    app.test_client(), each request a different shopper, after a warm-up; every answer must be 200.
    PostgreSQL's and Redis's own CPU is not in it (they are other processes)."""
    client = app.test_client()
    headers = [{"Authorization": f"Bearer {t}", "Accept-Language": "en"} for t in tokens]
    for h in headers[:200]:
        assert client.get(PATH, headers=h).status_code == 200
    start = time.process_time()
    for i in range(requests):
        response = client.get(PATH, headers=headers[i % len(headers)])
        if response.status_code != 200:
            sys.exit(f"{PATH} answered {response.status_code}: {response.data[:300]!r}")
    return (time.process_time() - start) * 1000 / requests


def baseline_cpu_per_request(requests: int = 2000) -> float:
    """The same measurement for the bare baseline app (bench/baseline_app.py)."""
    from baseline_app import app as baseline

    client = baseline.test_client()
    for _ in range(200):
        client.get(PATH)
    start = time.process_time()
    for _ in range(requests):
        assert client.get(PATH).status_code == 200
    return (time.process_time() - start) * 1000 / requests


# --- servers and load ------------------------------------------------------------------------

def check_me(port: int, tokens: list[str]) -> None:
    """A sample of the served answers is each token's own shopper with a balance (the load itself
    only sees status codes)."""
    from widgets.tokens import unverified_claims

    for token in tokens[:: max(1, len(tokens) // 25)]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{PATH}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        if answer.get("customer", {}).get("id") != unverified_claims(token)[1] or "points_balance" not in answer:
            sys.exit(f"{PATH} answered someone else or no balance: {str(answer)[:300]}")


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def server_cpu(master_pid: int, database_url: str) -> float | None:
    """CPU seconds so far of a gunicorn master's workers plus the PostgreSQL backends connected to
    the bench database (Linux /proc on the same machine; None elsewhere). Redis's server CPU is
    not in it (shared with the other benches' databases)."""
    if not Path(f"/proc/{master_pid}/task").is_dir():
        return None
    import psycopg
    from sqlalchemy import make_url

    workers = [int(c) for task in Path(f"/proc/{master_pid}/task").iterdir()
               for c in (task / "children").read_text().split()]
    url = make_url(database_url)
    try:
        with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                             dbname="postgres", autocommit=True) as admin:
            backends = [row[0] for row in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (url.database,))]
    except psycopg.OperationalError:  # e.g. no access to pg_stat_activity's pids: workers only
        backends = []
    local = [pid for pid in backends if Path(f"/proc/{pid}").exists()]  # the database may be remote
    return sum(_process_cpu(pid) for pid in workers + local)


def request_bytes(port: int, token: str | None, floor_customer: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    if floor_customer:  # bench/floor_app.py: no token, the shopper named outright
        auth = f"X-Bench-Customer: {floor_customer}\r\n"
    return (f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
            f"Accept-Language: en\r\n{auth}\r\n").encode()


# --- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per app per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
                        help='the app\'s Redis (rate-limit storage); "" for in-memory')
    parser.add_argument("--cpu-requests", type=int, default=2000, help="requests for the in-process CPU figure")
    parser.add_argument("--cpu-only", action="store_true", help="seed, print the in-process CPU figures, stop")
    parser.add_argument("--floor", action="store_true",
                        help="also serve bench/floor_app.py (the /me statement + one Redis call, constant answer)")
    args = parser.parse_args(argv)

    environment = harness.environment(harness.bench_database("widget"), args.redis_url, **UNTHROTTLED)
    print(f"seeding {args.customers} shoppers ...", flush=True)
    tokens, statements, cpu_ms = seed(environment, args.customers, args.cpu_requests)
    base_cpu_ms = baseline_cpu_per_request(args.cpu_requests)
    print(f"in-process CPU per request (time.process_time, {args.cpu_requests} requests, app.test_client()): "
          f"/me {cpu_ms:.3f} ms, baseline {base_cpu_ms:.3f} ms; SQL statements per /me: {statements:.1f}", flush=True)
    if args.cpu_only:
        return {"cpu_ms_per_me": round(cpu_ms, 3), "cpu_ms_per_baseline": round(base_cpu_ms, 3),
                "sql_statements_per_me": statements}
    names = ("baseline", "widget /me") + (("floor",) if args.floor else ())
    ports = {name: harness.free_port() for name in names}
    servers = {"baseline": harness.start_gunicorn("baseline_app:app", SERVER, harness.ROOT / "bench", ports["baseline"]),
               "widget /me": harness.start_gunicorn("wsgi:app", {**environment, **SERVER}, harness.ROOT,
                                                    ports["widget /me"])}
    if args.floor:
        from widgets.tokens import unverified_claims

        shop_uid = unverified_claims(tokens[0])[0]
        servers["floor"] = harness.start_gunicorn("floor_app:app", {**environment, **SERVER, "BENCH_SHOP_UID": shop_uid},
                                                  harness.ROOT / "bench", ports["floor"])
    try:
        harness.wait_for_http(ports["baseline"], servers["baseline"], PATH)
        harness.wait_for_http(ports["widget /me"], servers["widget /me"])
        if args.floor:
            harness.wait_for_http(ports["floor"], servers["floor"], PATH)
        check_me(ports["widget /me"], tokens)
        requests = {"baseline": [request_bytes(ports["baseline"], None)],
                    "widget /me": [request_bytes(ports["widget /me"], t) for t in tokens]}
        if args.floor:
            from widgets.tokens import unverified_claims

            requests["floor"] = [request_bytes(ports["floor"], None, unverified_claims(t)[1]) for t in tokens]
        cycles = {name: itertools.cycle(requests[name]) for name in names}
        for name in names:  # warm-up: pools, imports, caches
            harness.drive(ports[name], cycles[name].__next__, args.connections, 2.0)
        runs: dict[str, list[dict]] = {name: [] for name in names}
        served_cpu: dict[str, float | None] = {name: 0.0 for name in names}
        for round_no in range(args.rounds):
            for name in names:
                print(f"round {round_no + 1}/{args.rounds}: {name} for {args.seconds:g} s", flush=True)
                before = server_cpu(servers[name].pid, environment["DATABASE_URL"])
                runs[name].append(harness.drive(ports[name], cycles[name].__next__, args.connections, args.seconds))
                after = server_cpu(servers[name].pid, environment["DATABASE_URL"])
                served_cpu[name] = (None if before is None or after is None or served_cpu[name] is None
                                    else served_cpu[name] + after - before)
    finally:
        harness.stop(list(servers.values()))

    figures = {name: harness.merge(run) for name, run in runs.items()}
    for name, row in figures.items():  # workers + bench-database backends, per answered request
        row["server_cpu_ms"] = (round(1000 * served_cpu[name] / row["requests"], 3)
                                if served_cpu[name] is not None and row["requests"] else None)
    real, base = figures["widget /me"], figures["baseline"]
    result = {
        "connections": args.connections, "seconds_per_app": args.seconds * args.rounds,
        "server": "gunicorn -c gunicorn.conf.py, " + ", ".join(f"{k}={v}" for k, v in SERVER.items()),
        "customers": args.customers, "load_average": os.getloadavg(), "cores": os.cpu_count(),
        "baseline": base, "widget_me": real,
        "ratio": round(real["rps"] / base["rps"], 3), "sql_statements_per_me": statements,
        "cpu_ms_per_me": round(cpu_ms, 3), "cpu_ms_per_baseline": round(base_cpu_ms, 3),
        "targets": {"ratio": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
    }
    result["ratio_met"] = result["ratio"] >= TARGET_RATIO
    result["p99_met"] = real["p99_ms"] <= TARGET_P99_MS
    print(f"\n{args.connections} connections, {args.seconds * args.rounds:g} s per app, {result['server']}")
    print(f"{'':<12}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'server CPU ms/req':>19}")
    for name, row in figures.items():
        cpu = f"{row['server_cpu_ms']:.3f}" if row["server_cpu_ms"] is not None else "n/a"
        print(f"{name:<12}{row['rps']:>12,.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['non_2xx']:>9}{cpu:>19}")
    print(f"SQL statements per /me: {statements:.1f}; load average at the end: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if "floor" in figures:
        result["floor"] = figures["floor"]
        result["floor_ratio"] = round(figures["floor"]["rps"] / base["rps"], 3)
        print(f"floor (the /me statement + one Redis call, constant answer): ratio {result['floor_ratio']:.3f}, "
              f"p99 {figures['floor']['p99_ms']:.1f} ms")
    print(f"ratio {result['ratio']:.3f} (target >= {TARGET_RATIO}: {'met' if result['ratio_met'] else 'MISSED'}); "
          f"p99 {real['p99_ms']:.1f} ms (target <= {TARGET_P99_MS:g}: {'met' if result['p99_met'] else 'MISSED'})")
    if real["non_2xx"] or base["non_2xx"]:  # every answer must be 200: otherwise the figures mean nothing
        sys.exit(f"FAILED: {real['non_2xx']} /me and {base['non_2xx']} baseline answers were not 2xx")
    return result


if __name__ == "__main__":
    main()
