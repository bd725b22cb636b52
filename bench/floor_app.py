"""The widget bench's floor (bench/widget.py --floor): the least any GET /me must do, and no more.

A bare Flask app that, per request, sends the real /me statement (app.loyalty.shopper's
ACCOUNT_BY_SHOP_UID, prepared, autocommit, one psycopg connection per thread) for the shopper
named in the `X-Bench-Customer` header and one rate-limit INCR + EXPIRE to Redis (one round
trip), then answers the baseline's constant dict. No token check, no app, no formatting: what
one SQL round trip and one Redis round trip cost on this server, beside the constant answer.
"""
from __future__ import annotations

import os
import threading

import psycopg
import redis
from flask import Flask, jsonify, request

from app.config import sqlalchemy_url
from app.loyalty.shopper import ACCOUNT_BY_SHOP_UID
from baseline_app import ANSWER

_LIMIT = "local key = KEYS[1] local n = redis.call('incr', key) if n == 1 then redis.call('expire', key, 60) end return n"

app = Flask(__name__)
_local = threading.local()


def _connections():
    if getattr(_local, "pid", None) != os.getpid():  # never share a connection across gunicorn's fork
        url = sqlalchemy_url(os.environ["DATABASE_URL"]).replace("postgresql+psycopg://", "postgresql://")
        _local.pg = psycopg.connect(url, autocommit=True, prepare_threshold=0)
        _local.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        _local.limit = _local.redis.register_script(_LIMIT)
        _local.pid = os.getpid()
    return _local


@app.get("/widget/v1/me")
def me():
    conns = _connections()
    customer = request.headers.get("X-Bench-Customer", "")
    conns.limit(keys=[f"floor:{customer}"])
    row = conns.pg.execute(ACCOUNT_BY_SHOP_UID, {"shop_uid": os.environ["BENCH_SHOP_UID"],
                                                 "customer_ref": customer}).fetchone()
    if row is None or row[12] is None:
        return jsonify({"error": "no such shopper"}), 404
    response = jsonify(ANSWER)
    response.headers["Cache-Control"] = "private, no-store"
    return response
