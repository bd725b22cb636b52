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
