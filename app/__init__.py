"""Lojal: create_app() builds the Flask app; importing this package does nothing else."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, jsonify

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _environment() -> dict[str, str]:
    """The process environment over a development .env file (which never overrides it)."""
    from dotenv import dotenv_values

    dotenv_path = PROJECT_ROOT / ".env"
    values = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None} if dotenv_path.exists() else {}
    values.update(os.environ)
    return values


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment; `config` overrides (tests, scripts)."""
    from app.config import load_config

    app = Flask(__name__, instance_path=str(PROJECT_ROOT / "instance"))
    settings = {**_environment(), **(config or {})}
    app.config.update(load_config({k: str(v) for k, v in settings.items() if isinstance(v, (str, int))}))
    # Non-string overrides (e.g. TESTING=True) go in as given.
    app.config.update({k: v for k, v in (config or {}).items() if not isinstance(v, str)})

    if not app.config["DATABASE_URL"]:
        from app.embedded import embedded_database_url

        app.config["DATABASE_URL"] = embedded_database_url(app.instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    # hide_parameters: a failed statement's exception text (logged, and kept in webhook_events.last_error)
    # would otherwise quote its bound values: shoppers' emails and names.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10,
                                                        "hide_parameters": True})
    app.config["JSON_SORT_KEYS"] = False

    from app.logging import configure_logging

    configure_logging(app)
    if app.config["TRUSTED_PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address (per-IP rate limits, logs) and scheme, as the trusted proxies saw them.
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    _init_extensions(app)
    _register_blueprints(app)

    from app.cli import register_commands

    register_commands(app)
    return app


def _init_extensions(flask_app: Flask) -> None:
    from app import models  # noqa: F401  (registers the tables on db.metadata)
    from app.crypto import token_cipher
    from app.extensions import db, migrate, redis_connection

    db.init_app(flask_app)
    migrate.init_app(flask_app, db, directory=str(PROJECT_ROOT / "migrations"))
    redis_connection.init_app(flask_app)
    token_cipher.init_app(flask_app)


def _register_blueprints(app: Flask) -> None:
    from app.bodies import refuse_oversized_body
    from app.errors import register_error_handlers
    from app.health import bp as health_bp

    register_error_handlers(app)
    app.before_request(refuse_oversized_body)
    app.register_blueprint(health_bp)
    from app.web import register_web

    register_web(app)

    @app.get("/")
    def index():
        return jsonify(name="Lojal", health="/healthz", ready="/readyz")
