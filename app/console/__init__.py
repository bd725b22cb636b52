"""The merchant console: server-rendered pages under /admin (standalone or embedded in Shopify's admin).

Pages call the same domain functions as the admin API (app.loyalty, app.admin.staff_accounts)
and submit forms with the CSRF token of app.admin.auth.
"""
from __future__ import annotations

from flask import Blueprint


def console_blueprint() -> Blueprint:
    """The blueprint with every page registered (importing the view modules adds their routes)."""
    from app.console import formatting  # noqa: F401  (template filters)
    from app.console.frame import bp
    from app.console.views import audit, auth, campaigns, catalog, customers, dashboard, settings, staff, store  # noqa: F401

    return bp
