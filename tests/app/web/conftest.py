"""Webhook tests drive the real route and a real RQ worker (tests/jobs/conftest.py)."""
from tests.app.web.shopify_helpers import shopify_client, webhook_app  # noqa: F401
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401
