"""The web layer's blueprints, registered by create_app()."""
from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from app.web.shopify_install import bp as shopify_install
    from app.web.shopify_webhooks import bp as shopify_webhooks
    from app.web.woocommerce_connect import bp as woocommerce_connect
    from app.web.woocommerce_webhooks import bp as woocommerce_webhooks

    from app.web.email import bp as email

    blueprints: list = [email, shopify_install, shopify_webhooks, woocommerce_connect, woocommerce_webhooks]
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
