"""The web layer's blueprints, registered by create_app()."""
from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from app.web.shopify_install import bp as shopify_install
    from app.web.shopify_webhooks import bp as shopify_webhooks
    from app.web.woocommerce_connect import bp as woocommerce_connect
    from app.web.woocommerce_webhooks import bp as woocommerce_webhooks

    from app.web.email import bp as email
    from widgets import register as register_widgets
    from widgets.assets import bp as widget_assets

    blueprints: list = [email, shopify_install, shopify_webhooks, woocommerce_connect, woocommerce_webhooks,
                        widget_assets]
    for blueprint in blueprints:
        app.register_blueprint(blueprint)

    from app.admin import register_admin

    register_admin(app)
    register_widgets(app)  # the /widget/v1 API and /r/<code>, with their CORS and rate limits
    from app.console import console_blueprint

    app.register_blueprint(console_blueprint())  # the merchant console pages, /admin/...
