"""Benchmark: the dashboard's read from an hourly analytics snapshot vs computing it live, and
the refresh job's duration, on bench/analytics.py's data (1,000,000 customers).

    .venv/bin/python bench/analytics.py --load-only        # once, if `lojal_bench_analytics` is empty
    .venv/bin/python bench/analytics_snapshots.py

Uses `lojal_bench_analytics` as loaded (no reset); migrates it to head (adds the snapshot table).
Measured at bench/analytics.py's NOW: `refresh_snapshots` (what the hourly job does for one
shop: 7/30/90/365 days), then for the 30 and 365 days ending today, what the dashboard calls
(`snapshots.report`) with no snapshot (summary + daily series live, warm cache) and with a
fresh one (median of READS reads).
"""
from __future__ import annotations

import statistics
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app.extensions import db  # noqa: E402
from app.loyalty.analytics import snapshots  # noqa: E402
from app.loyalty.calendar import local  # noqa: E402
from bench.analytics import NOW, TIMEZONE, database_url  # noqa: E402
from bench.winback import build_app  # noqa: E402

READS = 50


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    app = build_app(database_url(), reset=False)
    with app.app_context():
        upgrade()
        session = db.session
        shop_id = session.execute(text("SELECT id FROM shops WHERE domain = 'bench.example'")).scalar_one()
        customers = session.execute(text("SELECT count(*) FROM customers WHERE shop_id = :s"), {"s": shop_id}).scalar_one()
        print(f"{customers} customers; {session.execute(text('SELECT version()')).scalar_one().split(' on ')[0]}")
        today = local(NOW, TIMEZONE).date()
        results = []

        refresh_s, written = _timed(lambda: snapshots.refresh_snapshots(session, shop_id, NOW))
        session.commit()
        results.append(("refresh", refresh_s))
        print(f"refresh_snapshots ({written} periods: {snapshots.PERIOD_DAYS} days): {refresh_s:.1f}s")
        size = session.execute(text("SELECT pg_size_pretty(sum(pg_column_size(t.*))) FROM analytics_snapshots t "
                                    "WHERE shop_id = :s"), {"s": shop_id}).scalar_one()
        print(f"snapshot rows for the shop: {size}")

        for days in (30, 365):
            start = today - timedelta(days=days - 1)
            # Live: what the dashboard did before (no snapshot younger than 1 microsecond exists).
            live_s, _ = _timed(lambda: snapshots.report(session, shop_id, start, today, NOW + timedelta(minutes=1),
                                                        max_age=timedelta(microseconds=1)))
            session.rollback()
            reads = []
            for _ in range(READS):
                seconds, found = _timed(lambda: snapshots.report(session, shop_id, start, today,
                                                                 NOW + timedelta(minutes=1)))
                session.rollback()
                assert found.computed_at == NOW, "the snapshot was not used"
                reads.append(seconds)
            cached_s = statistics.median(reads)
            results += [(f"live {days}d", live_s), (f"snapshot {days}d", cached_s)]
            print(f"dashboard {days:>3} days: live {live_s:7.3f}s  snapshot {cached_s * 1000:7.2f}ms "
                  f"(median of {READS}, max {max(reads) * 1000:.2f}ms)  {live_s / cached_s:,.0f}x")
    print("SUMMARY " + " ".join(f"{name.replace(' ', '_')}={seconds:.4f}s" for name, seconds in results))


if __name__ == "__main__":
    main()
