"""Storefront-facing code: the /widget/v1 JSON API, shopper authentication, the referral
redirect, the embeddable <lojal-rewards> script and the theme/plugin snippets.

`register(app)` (called from app.web.register_web) mounts the API and the /r/<code> redirect
with their hardening. The Shopify app proxy signature check lives in
integrations/shopify/app_proxy.py. Importing this package connects to nothing.
"""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from widgets import me, program, redemptions  # noqa: F401  (attach their routes to widgets.api.bp)
    from widgets.api import bp as api
    from widgets.errors import register_error_handlers
    from widgets.hardening import init_hardening
    from widgets.reads import init_reads
    from widgets.referrals import bp as referrals

    register_error_handlers(app)
    init_hardening(app, api, referrals)
    init_reads(app)
    app.register_blueprint(api)
    app.register_blueprint(referrals)
