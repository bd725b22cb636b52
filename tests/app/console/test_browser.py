"""The console in a real browser (Debian's Chromium through Playwright): a support agent signs in,
finds a shopper, adjusts the balance with a reason, sees it in the ledger and the audit log,
and the dashboard's SVG charts render with a real size. Screenshots go to tests/artifacts/."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.loyalty.apply import apply_event
from app.models import Shop
from tests.app.console.browser import artifact, chromium, serve, served_app, sign_in_page
from tests.ports import free_port
from tests.app.console.conftest import PASSWORD, make_console_shop
from tests.factories import make_customer, paid


@pytest.fixture(scope="module")
def console(app):
    """(base URL, the shop's staff) of the real app served on a free port, with a month of sales."""
    port = free_port()
    served = served_app(port)
    now = datetime.now(UTC)
    with served.app_context():
        made = make_console_shop(db.session)
        shop = db.session.get(Shop, made.shop_id)
        maria = make_customer(db.session, shop, first_name="Maria", last_name="Jensen", email="maria@example.com")
        others = [make_customer(db.session, shop, first_name=f"Shopper{n}") for n in range(4)]
        for n in range(24):
            buyer = maria if n % 5 == 0 else others[n % 4]
            at = now - timedelta(days=n + 1, hours=n % 7)
            apply_event(db.session, shop.id, paid(f"b-{n}", at=at, customer=buyer, subtotal=f"{40 + 7 * n}.00",
                                                  placed_at=at, order_number=f"#{1000 + n}"))
        db.session.commit()
        db.session.remove()
    with serve(served, port) as base:
        yield base, made


@pytest.fixture
def page(request):
    with chromium() as page:
        yield page
        page.screenshot(path=str(artifact(f"{request.node.name}-last.png")), full_page=True)


def test_support_finds_a_customer_adjusts_the_balance_and_sees_it_in_ledger_and_audit_log(console, page):
    base, made = console
    sign_in_page(page, base, made.emails["support"], PASSWORD)
    page.screenshot(path=str(artifact("01-signed-in.png")), full_page=True)

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Customers").click()
    page.get_by_label("Search by email, name or platform customer id").fill("maria@example.com")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Maria Jensen").click()
    page.wait_for_url(f"{base}/admin/customers/*")
    balance_before = int(page.locator("#balance").inner_text().replace(",", ""))
    assert balance_before > 0

    page.get_by_role("spinbutton", name="Points").fill("120")
    page.get_by_role("combobox", name="Reason").select_option("other")
    page.get_by_role("textbox", name="Details (required for Other)").fill("the parcel arrived a week late")
    page.get_by_role("textbox", name="Note for the shopper (optional)").fill("Sorry for the wait!")
    page.screenshot(path=str(artifact("02-adjust-form.png")), full_page=True)
    page.get_by_role("button", name="Adjust balance").click()

    status = page.get_by_role("status")
    assert "Added 120 points. Reason: other: the parcel arrived a week late" in status.inner_text()
    assert int(page.locator("#balance").inner_text().replace(",", "")) == balance_before + 120
    entry = page.locator("section[aria-labelledby=h-ledger] tbody tr").first
    assert "Other: the parcel arrived a week late" in entry.inner_text()
    assert "+120" in entry.inner_text() and made.emails["support"] in entry.inner_text()
    page.screenshot(path=str(artifact("03-ledger.png")), full_page=True)

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit log").click()
    row = page.locator("tbody tr").first
    assert "points.adjust" in row.inner_text() and made.emails["support"] in row.inner_text()
    assert "other: the parcel arrived a week late" in row.inner_text()
    page.screenshot(path=str(artifact("04-audit-log.png")), full_page=True)


def test_the_dashboard_charts_render_with_a_size(console, page):
    base, made = console
    sign_in_page(page, base, made.emails["support"], PASSWORD)
    page.goto(f"{base}/admin/?days=30")
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    for index in range(3):
        chart = charts.nth(index)
        box = chart.bounding_box()
        assert box["width"] > 300 and box["height"] > 100
        marks = chart.locator("path.area, rect.bar")
        sizes = [marks.nth(i).bounding_box() for i in range(marks.count())]
        assert any(s and s["width"] > 0 and s["height"] > 0 for s in sizes), f"chart {index} draws nothing"
    page.screenshot(path=str(artifact("05-dashboard.png")), full_page=True)


def test_the_console_fits_a_360px_screen_and_the_keyboard_reaches_the_skip_link(console):
    base, made = console
    with chromium(width=360, height=740) as page:
        sign_in_page(page, base, made.emails["viewer"], PASSWORD)
        page.goto(f"{base}/admin/customers")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.screenshot(path=str(artifact("06-customers-360px.png")), full_page=True)
