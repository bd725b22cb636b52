"""Liveness and readiness for load balancers."""
from __future__ import annotations

import redis
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db, redis_connection

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {"database": "ok", "redis": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = _schema_state(current_app._get_current_object(), db.session.connection())
    except SQLAlchemyError:
        checks["database"] = "unavailable"
    finally:
        db.session.rollback()
    if not current_app.config.get("REDIS_URL"):
        # No Redis at all (development): jobs run inside the requests on a per-process fakeredis.
        # Ready, but said so: a deployment that forgot REDIS_URL must not read "redis: ok".
        checks["redis"] = "in_process"
    else:
        try:
            redis_connection.client(current_app).ping()
        except redis.RedisError:
            checks["redis"] = "unavailable"
    ready = checks["database"] == "ok" and checks["redis"] in ("ok", "in_process")
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503


def _schema_state(app: Flask, connection) -> str:
    """"ok", or why this code cannot serve from the database yet: "not_migrated" (no
    revision) or "migrations_behind" (an older revision of ours; `lojal db upgrade`)."""
    current = set(MigrationContext.configure(connection).get_current_heads())
    heads, known = _code_revisions(app)
    if not current:
        return "not_migrated"
    # A revision this code does not know was applied by newer code (a rolling deploy's
    # release step): its migrations keep the old schema working, so stay in rotation.
    if current == heads or not current <= known:
        return "ok"
    return "migrations_behind"


def _code_revisions(app: Flask) -> tuple[set[str], set[str]]:
    """(head revisions, every revision) of this code's migrations/, read once per app."""
    cached = app.extensions.get("lojal_schema_revisions")
    if cached is None:
        scripts = ScriptDirectory(app.extensions["migrate"].directory)
        cached = (set(scripts.get_heads()), {rev.revision for rev in scripts.walk_revisions()})
        app.extensions["lojal_schema_revisions"] = cached
    return cached
