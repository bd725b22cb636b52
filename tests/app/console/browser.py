"""A real server and the system Chromium for the console's browser test and screenshots.

The app is served by werkzeug's threaded server on a free port in a thread of this process;
Chromium is Debian's (/usr/bin/chromium) driven by Playwright (never a downloaded browser).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

from app import PROJECT_ROOT, create_app
from tests.conftest import test_config

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"


def served_app(port: int, **overrides):
    """The app as a browser sees it: plain http on 127.0.0.1, so the session cookie is not Secure-only."""
    return create_app(test_config(APP_URL=f"http://127.0.0.1:{port}", **overrides))


@contextmanager
def serve(app, port: int) -> Iterator[str]:
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def sign_in_page(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")
