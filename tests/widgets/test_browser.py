"""The widget in a real browser: Debian's Chromium (the system binary, driven by Playwright)
loads the demo page from the real app, served on a free port against the test database.

The app served in its own process runs jobs in-process, so a redemption's code is issued
within the request (201), as in development without Redis; one test serves an app whose jobs
wait in a queue (202, the widget polls) and runs the worker itself. A screenshot of the open
panel with the code is kept in tests/artifacts/widget.png.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading

import pytest
from flask import Flask, jsonify, request, send_from_directory
from playwright.sync_api import Page, expect, sync_playwright
from rq import SimpleWorker
from sqlalchemy import select
from werkzeug.serving import make_server

from app import PROJECT_ROOT, create_app
from app.models import Customer, LedgerEntry, Redemption
from jobs.worker import run_worker
from tests.conftest import test_config
from tests.factories import give_points, make_customer, make_reward, make_shop
from widgets.assets import SCRIPT, STATIC_DIR

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
# Style a theme could ship that would wreck an unprotected widget.
HOSTILE_THEME_CSS = """
button { color: rgb(255, 0, 0) !important; background: rgb(0, 255, 0) !important; font-family: Impact !important;
         border-radius: 0 !important; }
* { letter-spacing: 9px !important; text-transform: uppercase !important; }
"""


# The real app behind werkzeug's threaded server, in its own process (as in production: the
# browser talks to it over TCP; the test reads the same database).
_SERVE = """
from werkzeug.serving import make_server
from app import create_app
from tests.conftest import test_config
server = make_server("127.0.0.1", 0, create_app(test_config(RUN_JOBS_IN_PROCESS=True)), threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def server_url(app):
    """The served app's address (the `app` fixture has migrated the database)."""
    server = subprocess.Popen([sys.executable, "-c", _SERVE], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    port = server.stdout.readline().strip()
    assert port.isdigit(), f"the test server did not start (exit code {server.poll()})"
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait()


@pytest.fixture(scope="module")
def queueing_app(app):
    """An app whose jobs wait in a queue (REDIS_URL's Redis, else its in-process fakeredis) until
    the test runs a worker: how production answers a redemption, 202 then the code."""
    return app if app.config.get("REDIS_URL") else create_app(test_config(RUN_JOBS_IN_PROCESS=False))


@pytest.fixture(scope="module")
def queueing_server_url(queueing_app):
    """queueing_app served from a thread of this process, so the test's worker shares its queue."""
    server = make_server("127.0.0.1", 0, queueing_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def shopper(session):
    """A demo-platform shop (default program: tiers, rewards) and a shopper with 1,250 points."""
    shop = make_shop(session)
    customer = make_customer(session, shop, first_name="Ingrid")
    reward = make_reward(session, shop, name="Handmade mug", kind="free_product", value=None, product_ref="mug",
                         points_cost=700)
    give_points(session, customer, 1250)
    session.commit()
    return shop, customer, reward


@pytest.fixture
def page(browser):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"], locale="en-US")
    page = context.new_page()
    page.errors = []  # anything the widget throws into the page fails the test
    page.on("pageerror", lambda error: page.errors.append(error))
    yield page
    context.close()


def _demo(page: Page, server_url: str, shop, customer=None, **params) -> None:
    query = {"shop": shop.uid, "locale": "en", **params}
    if customer is not None:
        query["customer"] = customer.platform_customer_id
    page.goto(f"{server_url}/widget/demo?" + "&".join(f"{k}={v}" for k, v in query.items()))


def _focused(page: Page) -> dict:
    """What has focus inside the widget's shadow root (the document only sees the host)."""
    return page.evaluate("""() => {
        const host = document.querySelector('lojal-rewards'), el = host.shadowRoot.activeElement;
        return {host: document.activeElement === host, cls: el && el.className, key: el && el.dataset.k,
                inPanel: !!(el && el.closest('[role=dialog]'))};
    }""")


def test_a_shopper_sees_the_balance_redeems_a_reward_copies_the_code_and_escape_closes(
        page, server_url, shopper, session):
    shop, customer, reward = shopper
    _demo(page, server_url, shop, customer)
    launcher = page.locator("lojal-rewards button.l")
    expect(launcher).to_contain_text("1,250 points")  # loaded after the page, with no click
    expect(launcher).to_have_attribute("aria-expanded", "false")

    launcher.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(dialog.locator(".n")).to_have_text("1,250")
    progress = dialog.get_by_role("progressbar")
    expect(progress).to_have_attribute("aria-valuenow", re.compile(r"^\d{1,3}$"))

    dialog.locator("li", has_text="Handmade mug").get_by_role("button", name="Redeem").click()
    code = dialog.locator(".c code")
    expect(code).to_have_text(re.compile(r"\S{4,}"))
    shown = code.inner_text()
    expect(launcher).to_contain_text("550 points")
    page.screenshot(path=str(ARTIFACTS / "widget.png"))  # Playwright creates the folder

    session.expire_all()
    redemption = session.scalars(select(Redemption).where(Redemption.customer_id == customer.id)).one()
    assert redemption.code == shown and redemption.reward_id == reward.id
    debit = session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == customer.id,
                                                      LedgerEntry.points < 0)).one()
    assert debit.points == -700
    assert session.get(Customer, customer.id).points_balance == 550

    copy = dialog.locator(".c [data-k=copy-code]")
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == shown

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    assert _focused(page) == {"host": True, "cls": "l", "key": None, "inPanel": False}
    assert page.errors == []


def test_while_the_platform_creates_the_code_the_widget_waits_and_shows_it_once_a_worker_issued_it(
        page, queueing_server_url, queueing_app, shopper, session):
    shop, customer, _ = shopper
    _demo(page, queueing_server_url, shop, customer)
    launcher = page.locator("lojal-rewards button.l")
    expect(launcher).to_contain_text("1,250 points")
    with page.expect_response(lambda r: "/me/activity" in r.url):
        launcher.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Activity")).to_be_visible()  # the panel's last render
    with page.expect_response(lambda r: "/me/redemptions?" in r.url and r.request.method == "POST") as answer:
        dialog.locator("li", has_text="Handmade mug").get_by_role("button", name="Redeem").click()
    assert answer.value.status == 202 and answer.value.json()["status"] == "pending"
    expect(dialog.locator(".c code")).to_have_count(0)

    run_worker(queueing_app, burst=True, worker_class=SimpleWorker)  # the platform job issues the code
    code = dialog.locator(".c code")
    expect(code).to_have_text(re.compile(r"\S{4,}"), timeout=20_000)  # seen on the widget's next poll
    session.expire_all()
    redemption = session.scalars(select(Redemption).where(Redemption.customer_id == customer.id)).one()
    assert redemption.code == code.inner_text()
    assert page.errors == []


def test_a_code_staff_are_cancelling_is_not_shown_as_points_back_until_they_are(
        page, queueing_server_url, queueing_app, shopper, session):
    # `cancelling` is not an outcome: the cancellation may be refused (the code stays) or fail.
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from app.extensions import db
    from app.loyalty.redemption_cancel import request_cancellation
    from jobs.dispatch import dispatch

    shop, customer, _ = shopper

    def cancelled_by_staff_before_the_answer(route):
        response = route.fetch()  # redeemed (202, pending)...
        # Route handlers run outside the test's app context: staff act through their own.
        with queueing_app.app_context(), Session(db.engine) as staff:
            asked = request_cancellation(staff, shop.id, response.json()["id"], "staff:1:ann", "wrong reward",
                                         datetime.now(UTC))
            staff.commit()  # ...and staff cancel before the widget's first poll
            dispatch(asked.intents)
        route.fulfill(response=response)

    page.route(re.compile(r"/widget/v1/me/redemptions(\?|$)"), cancelled_by_staff_before_the_answer)
    _demo(page, queueing_server_url, shop, customer)
    page.locator("lojal-rewards button.l").click()
    dialog = page.get_by_role("dialog")
    with page.expect_response(lambda r: "/me/redemptions/" in r.url and r.json()["status"] == "cancelling"):
        dialog.locator("li", has_text="Handmade mug").get_by_role("button", name="Redeem").click()
    page.wait_for_timeout(1500)  # a poll or two more
    expect(dialog.get_by_role("alert")).to_have_count(0)
    run_worker(queueing_app, burst=True, worker_class=SimpleWorker)  # the code goes, the points come back
    expect(dialog.get_by_role("alert")).to_contain_text("your points are back", timeout=20_000)
    session.expire_all()
    assert session.get(Customer, customer.id).points_balance == 1250
    assert page.errors == []


def test_a_redemption_whose_answer_is_lost_is_retried_with_the_same_key_and_happens_once(
        page, server_url, shopper, session):
    shop, customer, reward = shopper
    keys: list[str] = []

    def drop_the_first_answer(route):
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the server redeems...
            route.abort("connectionreset")  # ...but the browser never hears back
        else:
            route.continue_()

    page.route(re.compile(r"/widget/v1/me/redemptions(\?|$)"), drop_the_first_answer)
    _demo(page, server_url, shop, customer)
    page.locator("lojal-rewards button.l").click()
    page.get_by_role("dialog").locator("li", has_text="Handmade mug").get_by_role("button", name="Redeem").click()
    expect(page.get_by_role("dialog").locator(".c code")).to_have_text(re.compile(r"\S{4,}"))
    assert len(keys) == 2 and keys[0] == keys[1]
    assert re.fullmatch(r"[0-9a-f-]{32,36}", keys[0])
    session.expire_all()
    assert len(session.scalars(select(Redemption).where(Redemption.customer_id == customer.id)).all()) == 1
    assert session.get(Customer, customer.id).points_balance == 550
    assert page.errors == []


def test_a_refused_redemption_shows_the_apis_message_in_the_panel_and_changes_nothing(
        page, server_url, shopper, session):
    shop, customer, _ = shopper
    _demo(page, server_url, shop, customer)
    page.locator("lojal-rewards button.l").click()
    dialog = page.get_by_role("dialog")
    redeem = dialog.locator("li", has_text="Handmade mug").get_by_role("button", name="Redeem")
    expect(redeem).to_be_enabled()
    give_points(session, customer, -1000)  # spent elsewhere (another tab, the till) meanwhile
    session.commit()
    redeem.click()
    expect(dialog.get_by_role("alert")).to_contain_text(re.compile(r"\w"))
    assert _focused(page)["key"].startswith("r")  # back on the Redeem button
    expect(dialog.locator(".c code")).to_have_count(0)
    session.expire_all()
    assert session.scalars(select(Redemption).where(Redemption.customer_id == customer.id)).all() == []
    assert session.get(Customer, customer.id).points_balance == 250
    assert page.errors == []


def test_a_reward_repriced_after_it_was_shown_is_not_redeemed_and_the_panel_shows_the_new_price(
        page, server_url, shopper, session):
    shop, customer, reward = shopper
    _demo(page, server_url, shop, customer)
    page.locator("lojal-rewards button.l").click()
    dialog = page.get_by_role("dialog")
    mug = dialog.locator("li", has_text="Handmade mug")
    expect(mug).to_contain_text("700 points")
    reward.points_cost = 800  # the merchant raises it while the panel shows 700
    session.commit()
    mug.get_by_role("button", name="Redeem").click()
    expect(dialog.get_by_role("alert")).to_have_text("This reward now costs 800 points. Check the new price and redeem again.")
    expect(mug).to_contain_text("800 points")  # /me read again: the price the next click pays
    expect(dialog.locator(".c code")).to_have_count(0)
    session.expire_all()
    assert session.scalars(select(Redemption).where(Redemption.customer_id == customer.id)).all() == []
    assert session.get(Customer, customer.id).points_balance == 1250
    mug.get_by_role("button", name="Redeem").click()  # at the price now shown
    expect(dialog.locator(".c code")).to_have_text(re.compile(r"\S{4,}"))
    expect(page.locator("lojal-rewards button.l")).to_contain_text("450 points")
    session.expire_all()
    assert session.scalars(select(Redemption.points_cost).where(Redemption.customer_id == customer.id)).all() == [800]
    assert page.errors == []


def test_the_panel_traps_focus_and_opens_and_closes_from_the_keyboard(page, server_url, shopper):
    shop, customer, _ = shopper
    _demo(page, server_url, shop, customer)
    launcher = page.locator("lojal-rewards button.l")
    expect(launcher).to_contain_text("points")
    launcher.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    assert _focused(page)["inPanel"]  # focus moved into the dialog (its close button)
    for _ in range(25):  # more stops than the panel has: wraps around instead of leaving
        page.keyboard.press("Tab")
        assert _focused(page)["inPanel"]
    page.locator("lojal-rewards button.x").focus()
    page.keyboard.press("Shift+Tab")  # from the first control back to the last
    state = _focused(page)
    assert state["inPanel"] and state["cls"] != "x"
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert _focused(page)["cls"] == "l"
    assert page.errors == []


def test_theme_css_does_not_reach_the_widget_and_the_widgets_css_does_not_reach_the_page(
        browser, page, server_url, shopper):
    shop, customer, _ = shopper
    _demo(page, server_url, shop, customer)
    page.add_style_tag(content=HOSTILE_THEME_CSS)
    launcher = page.locator("lojal-rewards button.l")
    expect(launcher).to_contain_text("points")
    style = launcher.evaluate("""el => { const s = getComputedStyle(el);
        return [s.color, s.backgroundColor, s.fontFamily, s.letterSpacing, s.textTransform]; }""")
    assert style[0] == "rgb(255, 255, 255)" and style[1] != "rgb(0, 255, 0)"
    assert "Impact" not in style[2] and style[3] == "normal" and style[4] == "none"

    # The page's own button styled the same with and without the widget on the page.
    product_button = "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.borderRadius, s.fontFamily]; }"
    with_widget = page.locator(".product button").first.evaluate(product_button)
    bare = browser.new_page()
    bare.route("**/lojal-widget.js*", lambda route: route.abort())
    _demo(bare, server_url, shop, customer)
    bare.add_style_tag(content=HOSTILE_THEME_CSS)
    assert bare.locator(".product button").first.evaluate(product_button) == with_widget
    bare.close()
    assert page.errors == []


def test_a_guest_sees_the_program_with_join_and_log_in_links_and_no_balance(page, server_url, shopper):
    shop, _, _ = shopper
    _demo(page, server_url, shop, guest="1")
    launcher = page.locator("lojal-rewards button.l")
    expect(launcher).to_have_text("Rewards")
    launcher.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Handmade mug")
    expect(dialog.get_by_role("link", name="Join now")).to_have_attribute("href", re.compile(r"^https?://"))
    expect(dialog.get_by_role("link", name="Log in")).to_be_visible()
    expect(dialog.get_by_role("progressbar")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Redeem")).to_have_count(0)
    assert page.errors == []


def test_when_the_api_is_unreachable_the_widget_shows_an_error_and_throws_nothing_into_the_page(
        page, server_url, shopper):
    shop, customer, _ = shopper
    page.route("**/widget/v1/**", lambda route: route.abort())
    _demo(page, server_url, shop, customer)
    launcher = page.locator("lojal-rewards button.l")
    launcher.click()
    expect(page.get_by_role("alert")).to_be_visible()  # after its retries
    expect(launcher).not_to_contain_text("points")
    assert page.errors == []
    assert page.evaluate("typeof window.LojalRewards") == "undefined"  # no globals but the element


def test_the_shop_brand_colour_is_the_default_accent_and_a_theme_variable_overrides_it(
        page, server_url, shopper, session):
    shop, customer, _ = shopper
    shop.settings = {**shop.settings, "brand_color": "#aa3300"}
    session.commit()
    _demo(page, server_url, shop, customer)
    launcher = page.locator("lojal-rewards button.l")
    expect(launcher).to_have_css("background-color", "rgb(170, 51, 0)")
    page.add_style_tag(content="lojal-rewards { --lojal-accent: #123456; }")
    expect(launcher).to_have_css("background-color", "rgb(18, 52, 86)")
    assert page.errors == []


# --- the referral code carried into the Shopify cart -------------------------------------

def _storefront_app(posts: list) -> Flask:
    """A Shopify-like storefront: a page embedding the widget as the app embed does (script
    through the app proxy path, `platform="shopify"`), and the AJAX Cart API's /cart/update.js,
    which records each body and answers like Shopify (the cart, its token in the `cart` cookie)."""
    store = Flask("storefront")
    store.config["FAIL"] = False

    @store.get("/")
    @store.get("/<path:page>")
    def page(page=""):
        if page.startswith("apps/"):  # the widget's API calls: not what these tests are about
            return {"error": {"code": "not_found"}}, 404
        root = "/fr/" if page.startswith("fr") else "/"
        platform = "" if request.args.get("plain") else ' platform="shopify"'
        return (f'<!doctype html><script>window.Shopify = {{routes: {{root: "{root}"}}}};</script>' if root != "/" else
                "<!doctype html>") + ('<script src="/apps/lojal/static/lojal-widget.js" defer></script>'
                                      f'<lojal-rewards api="/apps/lojal/v1"{platform}></lojal-rewards>')

    @store.get("/apps/lojal/static/lojal-widget.js")
    def script():
        return send_from_directory(STATIC_DIR, SCRIPT, mimetype="text/javascript")

    @store.post("/cart/update.js")
    @store.post("/fr/cart/update.js")
    def cart_update():
        posts.append((request.path, request.get_json()))
        if store.config["FAIL"]:
            return {"status": 500}, 500
        token = request.cookies.get("cart") or f"c1-{len(posts)}?key=k{len(posts)}"
        response = jsonify(token=token, attributes=request.get_json()["attributes"])
        response.set_cookie("cart", token)
        return response

    return store


@pytest.fixture(scope="module")
def storefront():
    posts: list = []
    store = _storefront_app(posts)
    server = make_server("127.0.0.1", 0, store, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", posts, store
    server.shutdown()
    thread.join()


def _visit(page: Page, url: str, posts: list) -> list:
    """Load a storefront page and return the cart updates it made once the widget ran and the network settled."""
    before = len(posts)
    page.goto(url)
    page.wait_for_function("() => !!customElements.get('lojal-rewards')")
    page.wait_for_load_state("networkidle")
    return posts[before:]


def test_a_valid_ref_in_the_url_goes_into_the_cart_attribute_and_a_new_cart_gets_it_again(page, storefront):
    base, posts, _ = storefront
    assert _visit(page, f"{base}/products/mug?ref=AB23CD45EF67", posts) == [
        ("/cart/update.js", {"attributes": {"lojal_ref": "AB23CD45EF67"}})]
    assert _visit(page, f"{base}/collections/all", posts) == []  # this cart has it: nothing more
    page.context.clear_cookies()  # checked out: Shopify starts a new cart
    assert _visit(page, f"{base}/", posts) == [("/cart/update.js", {"attributes": {"lojal_ref": "AB23CD45EF67"}})]
    assert page.errors == []


def test_a_remembered_code_whose_update_failed_is_applied_on_a_later_page_load_without_ref(page, storefront):
    base, posts, store = storefront
    store.config["FAIL"] = True
    try:
        assert len(_visit(page, f"{base}/?ref=ZZ99YY88", posts)) == 1
    finally:
        store.config["FAIL"] = False
    assert _visit(page, f"{base}/products/mug", posts) == [("/cart/update.js", {"attributes": {"lojal_ref": "ZZ99YY88"}})]
    assert _visit(page, f"{base}/products/mug", posts) == []
    assert page.errors == []


def test_a_localized_store_posts_under_its_routes_root(page, storefront):
    base, posts, _ = storefront
    assert _visit(page, f"{base}/fr/products/mug?ref=FR23CODE", posts) == [
        ("/fr/cart/update.js", {"attributes": {"lojal_ref": "FR23CODE"}})]
    assert page.errors == []


def test_an_invalid_ref_a_non_shopify_page_and_an_expired_code_post_nothing(page, storefront):
    base, posts, _ = storefront
    for ref in ("%3Cscript%3Ex()%3C/script%3E", "abc", "A" * 33, "AB23-CD45"):
        assert _visit(page, f"{base}/?ref={ref}", posts) == [], ref
    assert page.evaluate("localStorage.getItem('lojal_ref')") is None  # nothing remembered either
    assert _visit(page, f"{base}/?plain=1&ref=AB23CD45EF67", posts) == []  # a WooCommerce/headless page
    page.evaluate("localStorage.setItem('lojal_ref', JSON.stringify({c: 'OLD23CODE', t: Date.now() - 31 * 864e5}))")
    assert _visit(page, f"{base}/", posts) == []  # clicked 31 days ago: forgotten
    assert page.evaluate("localStorage.getItem('lojal_ref')") is None
    assert page.errors == []
