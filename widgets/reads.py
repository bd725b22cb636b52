"""The widget's one-statement reads (GET /me): their own small pool, without pre-ping.

Why a pool of their own: the app's pool pings every connection it hands out (one more round
trip, and PostgreSQL CPU on the same cores, on every /me), which the web keeps for its
transactions: a write that finds its connection dead mid-transaction cannot simply be sent
again. A single SELECT in autocommit can: it changes nothing, so when its connection turns out
dead (PostgreSQL restarted, failover, a killed backend) it is sent once more on a fresh one.
The pool is dropped with that dead connection (its siblings died with it); a second failure,
or no database at all, is SQLAlchemy's OperationalError: the app's clean 503 + Retry-After.

Costs: up to the pool's size in more connections per web process (the app's pool options:
SQLALCHEMY_ENGINE_OPTIONS' pool_size + max_overflow, used only as far as /me runs in parallel).
"""
from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, current_app
from sqlalchemy import Engine, create_engine
from sqlalchemy import exc as sqlalchemy_exc

from app.extensions import db

_READS = "lojal_widget_reads"


class WidgetReads:
    def __init__(self, app: Flask):
        with app.app_context():
            url = db.engine.url  # exactly the app's database and driver
        options = {k: v for k, v in app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).items() if k != "pool_pre_ping"}
        # Autocommit for the whole pool: no BEGIN/ROLLBACK round trips and no per-checkout
        # toggling; nothing to reset on return (a SELECT in autocommit leaves no transaction).
        self.options = {**options, "pool_pre_ping": False, "isolation_level": "AUTOCOMMIT",
                        "pool_reset_on_return": None}
        self.engine = create_engine(url, **self.options)
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def _current(self) -> Engine:
        # Connections must never cross a fork (gunicorn preloads the app in its master, and its
        # post_fork hook only knows the app's own engine): a forked process starts an empty pool.
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.engine.dispose(close=False)
                    self.pid = os.getpid()
        return self.engine

    def read_one(self, sql: str, params: dict) -> tuple | None:
        try:
            return self._attempt(sql, params)
        except _DeadConnection:
            self._current().dispose()  # the pool's other connections most likely died with it
        try:
            return self._attempt(sql, params)
        except _DeadConnection as dead:
            raise sqlalchemy_exc.OperationalError(sql, params, dead.cause) from dead.cause

    def _attempt(self, sql: str, params: dict) -> tuple | None:
        try:
            pooled = self._current().raw_connection()
        except psycopg.OperationalError as exc:  # no database: a fresh connection failed, no retry
            raise sqlalchemy_exc.OperationalError(sql, params, exc) from exc
        try:
            connection = pooled.driver_connection
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        except psycopg.OperationalError as exc:
            pooled.invalidate(exc)
            if connection.broken or connection.closed:
                raise _DeadConnection(exc) from exc
            raise sqlalchemy_exc.OperationalError(sql, params, exc) from exc  # e.g. a statement timeout
        finally:
            pooled.close()  # back to the pool (or discarded, if invalidated)


class _DeadConnection(Exception):
    def __init__(self, cause: psycopg.OperationalError):
        super().__init__(str(cause))
        self.cause = cause


def init_reads(app: Flask) -> None:
    app.extensions[_READS] = WidgetReads(app)


def widget_reads(app: Flask | None = None) -> WidgetReads:
    return (app or current_app).extensions[_READS]


def read_one(sql: str, params: dict) -> tuple | None:
    """One row of one SELECT, sent through the driver on the widget reads' pool in autocommit.

    Why not the Session: for one statement it adds a BEGIN and a ROLLBACK round trip and its
    own bookkeeping, more CPU than the statement itself on the widget's hottest path. A single
    SELECT in autocommit still reads one consistent snapshot. A dead connection is retried
    once on a fresh one (see the module's docstring); otherwise OperationalError (503).
    """
    return current_app.extensions[_READS].read_one(sql, params)
