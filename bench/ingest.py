"""Benchmark: signed `orders/paid` deliveries/s into POST /shopify/webhooks (verify HMAC, store
in the inbox, enqueue on Redis) against a bare Flask endpoint that only reads the same body
(bench/ingest_baseline.py). Both run under gunicorn with gunicorn.conf.py (the Procfile's
`web`), same settings, at the same time (idle while the other is measured); rounds alternate.

    .venv/bin/python bench/ingest.py                    # 3 rounds x 8 s per app, 16 connections
    .venv/bin/python bench/ingest.py --seconds 3 --rounds 1
    .venv/bin/python bench/ingest.py --cpu 3000         # CPU per delivery in one process, no HTTP

Each delivery is a distinct order (the 7 KB Shopify sample with a new id) with its own event id
and HMAC, computed by the load generator. Database `lojal_bench_ingest`, Redis db 12 (see
bench/harness.py). Targets: ratio >= 0.4, p99 <= 100 ms. Verified: one inbox row per 200.

`--cpu N` calls both WSGI apps directly, N prebuilt deliveries each after a warm-up, one at a
time in this process, and prints CPU (user + system: loopback sends are charged to the sender)
and wall time per delivery: a figure that moves much less than the HTTP ratio on a busy machine.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import os
import time

import harness
from sqlalchemy import create_engine, func, select

TARGET_RATIO, TARGET_P99_MS = 0.4, 100.0
SAMPLE = harness.ROOT / "tests" / "integrations" / "shopify" / "fixtures" / "order_paid.json"
DOMAIN = "bench-ingest.myshopify.com"


def seed_shop(env: dict[str, str]) -> None:
    from app.extensions import db
    from app.loyalty.program import create_default_program
    from app.models import Shop

    app = harness.build_app(env)
    with app.app_context():
        shop = Shop(platform="shopify", domain=DOMAIN, name="Bench", currency="USD", timezone="UTC", settings={})
        db.session.add(shop)
        db.session.flush()
        create_default_program(db.session, shop.id)
        db.session.commit()


def signed_delivery(port: int, payload: dict, event_id: str) -> bytes:
    """One `orders/paid` POST as Shopify sends it, signed with the bench app's secret."""
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(harness.SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return harness.post_request(port, "/shopify/webhooks", body, {
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/paid", "X-Shopify-Shop-Domain": DOMAIN,
        "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Event-Id": event_id, "X-Shopify-Api-Version": "2026-07"})


def deliveries(port: int, first_order: int):
    """An endless supply of distinct signed orders/paid requests."""
    template = json.loads(SAMPLE.read_text())
    counter = itertools.count(first_order)

    def next_request() -> bytes:
        n = next(counter)
        template["id"] = n
        return signed_delivery(port, template, f"bench-{n}")
    return next_request


def _wsgi_deliveries(count: int, first_order: int) -> list[dict]:
    """`count` signed deliveries as WSGI environs, built before the clock starts."""
    from werkzeug.test import EnvironBuilder

    template = json.loads(SAMPLE.read_text())
    environs = []
    for n in range(first_order, first_order + count):
        template["id"] = n
        body = json.dumps(template).encode()
        signature = base64.b64encode(hmac.new(harness.SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        environs.append(EnvironBuilder(path="/shopify/webhooks", method="POST", data=body, headers={
            "Content-Type": "application/json", "X-Shopify-Topic": "orders/paid", "X-Shopify-Shop-Domain": DOMAIN,
            "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Event-Id": f"cpu-{n}",
            "X-Shopify-Api-Version": "2026-07"}).get_environ())
    return environs


def _call_each(wsgi_app, environs: list[dict]) -> list[str]:
    statuses: list[str] = []
    for environ in environs:
        for _ in wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status)):
            pass
    return statuses


def cpu_per_delivery(count: int, rounds: int) -> dict:
    """CPU and wall time per delivery, the bare baseline and the real route, in this process."""
    import ingest_baseline

    url, redis_url = harness.bench_database("ingest"), harness.bench_redis_url()
    env = harness.environment(url, redis_url)
    seed_shop(env)
    apps = {"baseline": ingest_baseline.app, "ingest": harness.build_app(env)}
    first = itertools.count(1_000_000, 1_000_000)
    results: dict[str, list[tuple[float, float]]] = {"baseline": [], "ingest": []}
    for name, wsgi_app in apps.items():
        _call_each(wsgi_app, _wsgi_deliveries(300, next(first)))  # warm-up: pools, prepared statements
    for _ in range(rounds):
        for name, wsgi_app in apps.items():
            environs = _wsgi_deliveries(count, next(first))
            cpu, wall = time.process_time(), time.perf_counter()
            statuses = _call_each(wsgi_app, environs)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if any(not s.startswith("200") for s in statuses):
                raise SystemExit(f"{name}: non-200 answers {set(statuses)}")
            results[name].append((1000 * cpu / count, 1000 * wall / count))
    for name, runs in results.items():
        print(f"{name:<9} CPU " + ", ".join(f"{c:.3f}" for c, _ in runs) + " ms/delivery; wall "
              + ", ".join(f"{w:.3f}" for _, w in runs) + f" ms/delivery ({count} one at a time, {rounds} rounds)")
    best = {name: min(c for c, _ in runs) for name, runs in results.items()}
    harness.report("ingest-cpu", [harness.row("webhook ingest CPU per delivery, one process (ms, best round)",
                                              round(best["ingest"], 3), baseline=round(best["baseline"], 3),
                                              note="WSGI call without HTTP; CPU of this process only")])
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per app per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cpu", type=int, metavar="N", help="only measure CPU per delivery over N deliveries")
    args = parser.parse_args(argv)
    if args.cpu:
        return cpu_per_delivery(args.cpu, args.rounds)

    url, redis_url = harness.bench_database("ingest"), harness.bench_redis_url()
    env = harness.environment(url, redis_url)
    seed_shop(env)
    ports = {"baseline": harness.free_port(), "ingest": harness.free_port()}
    servers = {"baseline": harness.start_gunicorn("ingest_baseline:app", {}, harness.ROOT / "bench", ports["baseline"]),
               "ingest": harness.start_gunicorn("wsgi:app", env, harness.ROOT, ports["ingest"])}
    runs: dict[str, list[dict]] = {"baseline": [], "ingest": []}
    try:
        for name, port in ports.items():
            harness.wait_for_http(port, servers[name])
            harness.drive(port, deliveries(port, 10_000_000 * (1 + len(runs[name]))), args.connections, 1.0)  # warm-up
        # Each round's order ids start 10^9 apart, so no two rounds (or the warm-up) send the same
        # order and every 200 must be a new inbox row.
        order = itertools.count(100)
        for round_no in range(args.rounds):
            for name, port in ports.items():
                print(f"round {round_no + 1}/{args.rounds}: {name} for {args.seconds:g} s", flush=True)
                runs[name].append(harness.drive(port, deliveries(port, next(order) * 1_000_000_000), args.connections,
                                                args.seconds))
    finally:
        harness.stop(list(servers.values()))

    base, real = harness.merge(runs["baseline"]), harness.merge(runs["ingest"])
    from app.models import WebhookEvent

    engine = create_engine(url)
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(WebhookEvent))
    engine.dispose()
    warm_up_requests = stored - real["requests"]  # the warm-up's deliveries were stored too
    ratio = real["rps"] / base["rps"]
    workers = os.environ.get("WEB_CONCURRENCY") or f"2 x {os.cpu_count()} cores + 1"
    print(f"\n{args.connections} connections, gunicorn.conf.py (gthread, workers {workers}, "
          f"threads {os.environ.get('WEB_THREADS', '4')})")
    for name, result in (("baseline", base), ("ingest", real)):
        print(f"{name:<9} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
              f"non-2xx {result['non_2xx']}")
    print(f"stored {stored} inbox rows ({warm_up_requests} from the warm-up); ratio {ratio:.3f}")
    verified = real["non_2xx"] == 0 and warm_up_requests >= 0
    harness.report("ingest", [
        harness.row("webhook ingest (orders/paid deliveries/s)", round(real["rps"]), baseline=round(base["rps"]),
                    ratio=round(ratio, 3), target=f"ratio >= {TARGET_RATIO}", met=ratio >= TARGET_RATIO,
                    note=f"{args.connections} connections; every delivery stored" if verified else "NON-2xx answers"),
        harness.row("webhook ingest p99 latency (ms)", round(real["p99_ms"], 1), baseline=round(base["p99_ms"], 1),
                    target=f"<= {TARGET_P99_MS:g} ms", met=real["p99_ms"] <= TARGET_P99_MS),
    ])
    return {"baseline": base, "ingest": real, "ratio": ratio, "stored": stored}


if __name__ == "__main__":
    main()
