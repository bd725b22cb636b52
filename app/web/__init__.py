"""The web layer's blueprints, registered by create_app()."""
from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from app.web.shopify_install import bp as shopify_install
    from app.web.shopify_webhooks import bp as shopify_webhooks

    blueprints: list = [shopify_install, shopify_webhooks]
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
