"""Lifecycle email: rendering (Jinja2, localised), unsubscribe tokens and SMTP sending.

Web-layer side of the app: jobs.emails drives it; app.loyalty never imports it.
"""
