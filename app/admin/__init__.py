"""Staff authentication (auth), the admin JSON API /api/admin/v1 and its OpenAPI document."""
from __future__ import annotations

from flask import Flask


def register_admin(app: Flask) -> None:
    from app.admin import auth
    from app.admin.api import bp

    auth.init_app(app)
    app.register_blueprint(bp)
