"""Probes for locks a job must not hold while a platform answers."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.conftest import _DATABASE_URL


def store_a_webhook_row_meanwhile(shop_id: int, platform: str, key: str) -> None:
    """What a webhook delivery does, on a connection of its own: its insert's foreign-key check
    takes FOR KEY SHARE on the shop row. Raises (lock timeout) after 1 s instead of waiting."""
    engine = create_engine(_DATABASE_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '1s'"))
            conn.execute(text("INSERT INTO webhook_events (shop_id, platform, topic, event_key, payload) "
                              "VALUES (:shop_id, :platform, 'orders/paid', :key, '{}')"),
                         {"shop_id": shop_id, "platform": platform, "key": key})
    finally:
        engine.dispose()


def wait_for_a_lock_wait(timeout: float = 10.0) -> bool:
    """Whether another connection of this test database comes to wait on a lock within `timeout`
    seconds (pg_stat_activity, polled): how a test sees a racer blocked rather than guessing a delay."""
    import time

    engine = create_engine(_DATABASE_URL)
    try:
        deadline = time.monotonic() + timeout
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"))
                conn.rollback()
                if waiting:
                    return True
                time.sleep(0.02)
        return False
    finally:
        engine.dispose()


def tables_free_for_a_migration(*tables: str) -> bool:
    """Whether a migration's `ALTER TABLE` could lock `tables` right now, on a connection of its own
    (ACCESS EXCLUSIVE, NOWAIT): False while any transaction, even an idle one that only read
    them, holds a lock on one."""
    return _locks_at_once(lambda conn: conn.execute(
        text(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE NOWAIT")) is not None)


def row_free_to_lock(table: str, row_id: int) -> bool:
    """Whether another connection could lock the row `table.id = row_id` right now (FOR UPDATE
    NOWAIT): False while a transaction holds a lock on it."""
    return _locks_at_once(lambda conn: conn.scalar(
        text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE NOWAIT"), {"id": row_id}) == row_id)


def _locks_at_once(take) -> bool:
    """`take(conn)` on a connection of its own, rolled back after; False if a lock was not available."""
    from sqlalchemy.exc import OperationalError

    engine = create_engine(_DATABASE_URL)
    try:
        with engine.connect() as conn:
            try:
                return take(conn)
            except OperationalError:  # lock_not_available
                return False
            finally:
                conn.rollback()
    finally:
        engine.dispose()
