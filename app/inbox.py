"""The webhook inbox: store first (deduplicated), process later in a job.

Two ways in. `store_inbound_event` adds the row inside the caller's ORM session (jobs, scripts,
tests). `store_delivery` is the webhook routes' hot path: one SQL statement on an autocommit
connection, so the shop lookup, the deduplicating insert and the commit (WAL flush included:
PostgreSQL answers an autocommit statement only once it is durable) are one round trip.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.models import WebhookEvent

_ENGINE = "lojal_inbox_engine"
_ENGINE_LOCK = threading.Lock()

# The shop is looked up in the statement itself rather than cached in the process: nothing can
# go stale (uninstall, purge, reinstall under a new id), and it costs an index probe, not a trip.
# A CTE read twice is evaluated once; the data-modifying CTE runs exactly once.
_STORE_BY_DOMAIN = """
WITH shop AS (SELECT id FROM shops WHERE platform = %(platform)s AND domain = %(domain)s),
stored AS (
    INSERT INTO webhook_events (shop_id, platform, topic, event_key, payload, headers, triggered_at)
    SELECT id, %(platform)s, %(topic)s, %(event_key)s, %(payload)s::jsonb, %(headers)s::jsonb, %(triggered_at)s
    FROM shop
    ON CONFLICT (shop_id, platform, event_key) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM shop), (SELECT id FROM stored)
"""
_STORE_FOR_SHOP = """
INSERT INTO webhook_events (shop_id, platform, topic, event_key, payload, headers, triggered_at)
VALUES (%(shop_id)s, %(platform)s, %(topic)s, %(event_key)s, %(payload)s::jsonb, %(headers)s::jsonb, %(triggered_at)s)
ON CONFLICT (shop_id, platform, event_key) DO NOTHING
RETURNING id
"""


@dataclass(frozen=True)
class Delivery:
    """What store_delivery did: `shop_id` None = no such shop (nothing stored); `event_id` None
    with a shop = this (shop, platform, event key) was already stored."""

    shop_id: int | None
    event_id: int | None


def store_inbound_event(session: Session, *, shop_id: int, platform: str, topic: str, event_key: str,
                        payload: Mapping[str, Any], headers: Mapping[str, str] | None = None,
                        triggered_at: datetime | None = None) -> int | None:
    """Insert one inbox row; None if this (shop, platform, event key) is already stored."""
    return session.execute(
        insert(WebhookEvent)
        .values(shop_id=shop_id, platform=platform, topic=topic, event_key=event_key, payload=dict(payload),
                headers=dict(headers or {}), triggered_at=triggered_at)
        .on_conflict_do_nothing(index_elements=["shop_id", "platform", "event_key"])
        .returning(WebhookEvent.id)
    ).scalar_one_or_none()


def store_delivery(app: Flask, *, platform: str, topic: str, event_key: str, body: str,
                   headers: Mapping[str, str], triggered_at: datetime | None = None,
                   shop_domain: str | None = None, shop_id: int | None = None) -> Delivery:
    """Store one webhook delivery, committed, in a single round trip (see the module docstring).

    `body` is the request's JSON text, already checked by parse_json_object: PostgreSQL parses
    it into the JSONB column itself, so it is never re-serialised here. The shop is given by id
    (already loaded by the caller) or by (platform, domain). Raises SQLAlchemy's DataError when
    PostgreSQL refuses the JSON (e.g. a \\u0000 escape or NaN, which Python's parser accepts).
    """
    params = {"platform": platform, "topic": topic, "event_key": event_key, "payload": body,
              "headers": json.dumps(dict(headers)), "triggered_at": triggered_at}
    if shop_id is None:
        statement, params["domain"] = _STORE_BY_DOMAIN, shop_domain
    else:
        statement, params["shop_id"] = _STORE_FOR_SHOP, shop_id
    with inbox_engine(app).connect() as conn:
        row = conn.exec_driver_sql(statement, params).first()
    if shop_id is None:
        return Delivery(shop_id=row[0], event_id=row[1])
    return Delivery(shop_id=shop_id, event_id=row[0] if row else None)  # no row: a duplicate


def inbox_engine(app: Flask) -> Engine:
    """The app's autocommit engine for store_delivery, created on first use (so never before a fork).

    A separate pool from Flask-SQLAlchemy's: there every connection runs in a transaction, which
    costs a BEGIN and a COMMIT trip around the one statement. Same options (pre-ping included,
    so a dropped connection is replaced before use); a web process uses at most one connection
    per request thread from it.
    """
    engine = app.extensions.get(_ENGINE)
    if engine is None:
        with _ENGINE_LOCK:
            engine = app.extensions.get(_ENGINE)
            if engine is None:
                options = {**app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}), "isolation_level": "AUTOCOMMIT"}
                engine = app.extensions[_ENGINE] = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], **options)
    return engine


def dispose_inbox_engine(app: Flask, close: bool = True) -> None:
    """Drop the inbox pool's connections (after a fork: close=False leaves the parent's alone)."""
    engine = app.extensions.get(_ENGINE)
    if engine is not None:
        engine.dispose(close=close)


def parse_json_object(raw: bytes | str) -> dict | None:
    """The webhook body as a JSON object, or None (not JSON, not an object, or nested too deep).

    The routes keep this parse although the job parses the row again: it is what refuses a body
    nested deeper than Python's recursion limit, which PostgreSQL would store but no job could load.
    """
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # a deeply nested body exhausts the parser's recursion
        return None
    return payload if isinstance(payload, dict) else None
