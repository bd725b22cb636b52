"""The ledger bench's floor: the app's own SQL for each event, replayed through psycopg alone.

    DATABASE_URL=postgresql://…/lojal_bench_ledger .venv/bin/python bench/ledger_floor.py [--events 12000]

What it answers: how close could any Python code come to bench/ledger.py's target (events/s >=
0.5 x single-row INSERT+COMMIT/s) with the statements the quick path sends? Per chunk of
events, in the same run and alternating so all see the same machine load:

- app: apply_event() + COMMIT per event, exactly as bench/ledger.py's synchronous half; every
  statement it sends through the driver is recorded with its parameters;
- replay: those very statements and parameters sent to a twin database (same schema, shop and
  customers) through one bare psycopg connection, no SQLAlchemy, no rule code, one
  transaction per event, in one of five shapes (rotating per chunk):
  "as the app" (lock + read pipelined, then the write, then COMMIT: 4 round trips with BEGIN),
  "plain" (BEGIN, lock, read, write, COMMIT: 5 round trips, no pipeline),
  "two trips" (BEGIN + lock + read pipelined, then write + COMMIT pipelined), and two shapes
  without the read at all ("no read": the floor of a design that knew the customer row already);
- baseline: INSERT + COMMIT per row, as bench/ledger.py.

Both databases' schemas are DROPPED and rebuilt: their names must contain "bench" (the twin is
DATABASE_URL's name + "_twin", created if missing). Synchronous commit throughout.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import ledger  # noqa: E402  (bench/ledger.py: its database, data and baseline helpers)
import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

_STATEMENTS_PER_EVENT = 3  # the quick path: order lock, read, write


def record_chunk(app, shop_id: int, events: list) -> tuple[tuple[float, float], list[tuple]]:
    """Apply the events as bench/ledger.py does; returns (wall, CPU) and every driver statement sent."""
    sent: list[tuple] = []
    execute = psycopg.Connection.execute

    def recording(conn, query, params=None, *args, **kwargs):
        sent.append((query, params))
        return execute(conn, query, params, *args, **kwargs)

    psycopg.Connection.execute = recording
    try:
        timing = ledger.apply_events(app, shop_id, events)
    finally:
        psycopg.Connection.execute = execute
    if len(sent) != _STATEMENTS_PER_EVENT * len(events):
        sys.exit(f"expected {_STATEMENTS_PER_EVENT} driver statements per event (the quick path), got "
                 f"{len(sent) / len(events):.2f}: the replay would not be the same work")
    return timing, sent


def _per_event(statements: list[tuple]):
    for i in range(0, len(statements), _STATEMENTS_PER_EVENT):
        yield statements[i:i + _STATEMENTS_PER_EVENT]


def replay_as_app(conn, statements):
    for lock, read, write in _per_event(statements):
        with conn.pipeline():  # psycopg sends the implicit BEGIN and syncs before the pipeline's first statement
            conn.execute(*lock)
            cursor = conn.execute(*read)
        cursor.fetchone()
        conn.execute(*write).fetchone()
        conn.commit()


def replay_plain(conn, statements):
    for lock, read, write in _per_event(statements):
        conn.execute(*lock)
        conn.execute(*read).fetchone()
        conn.execute(*write).fetchone()
        conn.commit()


def replay_two_trips(conn, statements):
    conn.autocommit = True  # BEGIN and COMMIT sent as statements, each inside a pipeline
    try:
        for lock, read, write in _per_event(statements):
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(*lock)
                cursor = conn.execute(*read)
            cursor.fetchone()
            with conn.pipeline():
                cursor = conn.execute(*write)
                conn.execute("COMMIT")
            cursor.fetchone()
    finally:
        conn.autocommit = False


def replay_without_read(conn, statements, *, commit_in_pipeline: bool = False):
    """What the app could send if it knew the customer row without reading it (a per-process cache
    checked by the write): BEGIN + lock + write pipelined, then COMMIT (or COMMIT in the pipeline
    too: one round trip per event). Not a design we ship: see the README (session 9)."""
    conn.autocommit = True
    try:
        for lock, _read, write in _per_event(statements):
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(*lock)
                cursor = conn.execute(*write)
                if commit_in_pipeline:
                    conn.execute("COMMIT")
            cursor.fetchone()
            if not commit_in_pipeline:
                conn.execute("COMMIT")
    finally:
        conn.autocommit = False


SHAPES = {"replay as the app (4 round trips)": replay_as_app, "replay plain (5 round trips)": replay_plain,
          "replay in 2 round trips": replay_two_trips,
          "no read: lock + write, then COMMIT (2 trips)": replay_without_read,
          "no read: one round trip": functools.partial(replay_without_read, commit_in_pipeline=True)}


def timed(replay, conn, statements) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    replay(conn, statements)
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=12_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--allow-any-database", action="store_true")
    args = parser.parse_args()

    url = ledger.database_url(args.allow_any_database)
    twin_url = str(make_url(url).set(database=make_url(url).database + "_twin"))
    ledger._create_database_if_missing(twin_url)
    app, twin = ledger.build_app(url), ledger.build_app(twin_url)
    with app.app_context():
        shop_id, customer_ids = ledger.create_shop(args.customers)
    with twin.app_context():
        twin_shop_id, _ = ledger.create_shop(args.customers)
    if twin_shop_id != shop_id:
        sys.exit("the twin database's shop got another id: the replayed statements would not apply")
    events = ledger.make_events(args.events, customer_ids, seed=1)
    conn = psycopg.connect(make_url(twin_url).set(drivername="postgresql").render_as_string(hide_password=False))

    warm = min(2 * args.chunk, len(events) // 4)
    for start in (0, warm // 2):  # plans, caches and statistics before anything is timed
        _, sent = record_chunk(app, shop_id, events[start:start + warm // 2])
        replay_as_app(conn, sent)
        ledger.refresh_statistics(app)
        ledger.refresh_statistics(twin)
    totals = {name: [0, 0.0, 0.0] for name in ("app", "baseline", *SHAPES)}
    shapes = list(SHAPES)
    for n, start in enumerate(range(warm, len(events), args.chunk)):
        chunk = events[start:start + args.chunk]
        app_timing, sent = record_chunk(app, shop_id, chunk)
        shape = shapes[n % len(shapes)]
        for name, (wall, cpu) in (("app", app_timing), (shape, timed(SHAPES[shape], conn, sent)),
                                  ("baseline", ledger.baseline_inserts(app, shop_id, len(chunk)))):
            totals[name][0] += len(chunk)
            totals[name][1] += wall
            totals[name][2] += cpu
        ledger.refresh_statistics(app)
        ledger.refresh_statistics(twin)
    conn.close()

    base_rate = totals["baseline"][0] / totals["baseline"][1]
    print(f"{'':<46}{'per s':>8}{'wall us':>9}{'client CPU us':>15}{'ratio':>8}")
    rows = []
    for name, (count, wall, cpu) in totals.items():
        if count:
            print(f"{name:<46}{count / wall:>8.0f}{wall / count * 1e6:>9.0f}{cpu / count * 1e6:>15.0f}"
                  f"{count / wall / base_rate:>8.3f}")
        if count and name != "baseline":  # no targets: the floor says what any code could reach
            rows.append(harness.row(f"ledger floor: {name}, events/s vs INSERT+COMMIT/s", round(count / wall),
                                    baseline=round(base_rate), ratio=round(count / wall / base_rate, 3),
                                    note=f"{count} events, synchronous commit"))
    harness.report("ledger_floor", rows)


if __name__ == "__main__":
    main()
