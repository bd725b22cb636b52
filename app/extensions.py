"""Flask extensions, created unbound here and bound in create_app() through init_app."""
from __future__ import annotations

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, create_engine
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic autogenerate and the migrated schema agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def use_worker_engine(app: Flask) -> None:
    """Give a worker process's app an engine without pool pre-ping.

    The web keeps pre-ping (a request that hits a dead pooled connection would be a 503). A job
    pays it once per job, ~0.2 ms of a ~2 ms award (bench/ledger.py); instead a job whose
    connection turned out dead fails on its first statement, SQLAlchemy invalidates the pool,
    and jobs.context.app_job runs the job once more on a fresh connection (jobs are idempotent;
    the dead transaction was rolled back or, at worst, committed and is then a replay).
    Flask-SQLAlchemy builds engines in init_app, so the worker swaps its own in afterwards.
    """
    options = {**app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}), "pool_pre_ping": False}
    with app.app_context():
        engines = db.engines  # this app's own bind-key -> engine dict
        old = engines[None]
        engines[None] = create_engine(old.url, **options)
        old.dispose()


class RedisConnection:
    """Holds the app's Redis client: REDIS_URL when set, else an in-process fakeredis.

    Without Redis, jobs run in the calling process (see jobs.queues), so `make run`
    needs nothing installed.
    """

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            import redis

            client = redis.Redis.from_url(url, health_check_interval=30)
        else:
            import fakeredis

            client = fakeredis.FakeRedis()
        app.extensions["lojal_redis"] = client

    @staticmethod
    def client(app: Flask):
        return app.extensions["lojal_redis"]


redis_connection = RedisConnection()
