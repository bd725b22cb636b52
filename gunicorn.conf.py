"""Gunicorn settings for `web` (Procfile, Dockerfile): `gunicorn -c gunicorn.conf.py wsgi:app`.

Lojal's requests are I/O-bound: a webhook verifies an HMAC, inserts one row and pushes one
Redis job; an API call runs a few indexed queries. Most of a request's time is spent waiting on
PostgreSQL and Redis, so each process runs threads (gthread) to overlap those waits, and there
are enough processes to use every core for the CPU part (HMAC, JSON, templates) that the GIL
serialises within one process. Every setting can be overridden from the environment.
"""
from __future__ import annotations

import multiprocessing
import os


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Processes: gunicorn's 2 x cores + 1 — each core busy with the CPU part of a request while
# another process's threads wait on I/O. WEB_CONCURRENCY is the usual platform (Heroku, Render,
# Dokku) variable; set it from the connection budget in the README ("Scale-out").
workers = _env_int("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1)
worker_class = "gthread"
# Threads per process: concurrent requests per process, and so database connections in use per
# process (SQLAlchemy's pool hands one to each request thread).
threads = _env_int("WEB_THREADS", 4)

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{_env_int('PORT', 8000)}"
# The app is built once in the master and forked (less memory, a bad config fails at start, not
# in every worker). Nothing connects at build time; post_fork drops any pooled connection anyway.
preload_app = True
# A request that takes 30 s is stuck (Shopify gives a webhook 5 s): kill and replace the worker.
timeout = _env_int("WEB_TIMEOUT", 30)
graceful_timeout = _env_int("WEB_GRACEFUL_TIMEOUT", 30)
# Behind a load balancer keep-alive must outlast its idle timeout, else it reuses a connection we
# just closed (sporadic 502s); gthread parks idle connections without holding a thread.
keepalive = _env_int("WEB_KEEPALIVE", 75)
# Recycle processes now and then: bounds slow leaks; the jitter keeps them from restarting together.
max_requests = _env_int("WEB_MAX_REQUESTS", 2000)
max_requests_jitter = _env_int("WEB_MAX_REQUESTS_JITTER", 200)
# Heartbeat files in memory: a container's overlay filesystem can stall the timeout check.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# X-Forwarded-* are trusted only from these proxies (set to the load balancer's address).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app logs JSON lines with request ids; gunicorn's own errors go to stderr beside them.
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
# Shopify sends credentials in query strings (code, hmac, id_token, ...): the access log
# records them redacted, whatever access_log_format names.
logger_class = "app.access_log.RedactingLogger"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def post_fork(server, worker):
    """Each worker starts with an empty database pool: connections must never cross a fork."""
    flask_app = worker.app.wsgi()
    if "sqlalchemy" not in getattr(flask_app, "extensions", {}):
        return  # not Lojal's app (the benchmarks' bare baseline runs under this config too)
    from app.extensions import db
    from app.inbox import dispose_inbox_engine

    with flask_app.app_context():
        db.engine.dispose(close=False)
    dispose_inbox_engine(flask_app, close=False)  # the webhook routes' autocommit pool, if built yet
