"""The console of an uninstalled shop: its signed-in staff are signed out with the reason, and
nobody signs in to it."""
from __future__ import annotations

from datetime import UTC, datetime

from app.extensions import db
from app.loyalty.apply import apply_event
from app.loyalty.events import AppUninstalled
from tests.app.console.conftest import committed_console_shop, sign_in

REASON = "Lojal is no longer installed on this store"


def _uninstall(app, shop_id: int) -> None:
    with app.app_context():
        apply_event(db.session, shop_id, AppUninstalled(datetime.now(UTC)))
        db.session.commit()
        db.session.remove()


def test_a_signed_in_member_of_an_uninstalled_shop_is_signed_out_with_the_reason(app):
    made = committed_console_shop(app, platform="shopify")
    client = app.test_client()
    assert sign_in(client, made.emails["owner"]).status_code == 302
    assert client.get("/admin/customers").status_code == 200
    _uninstall(app, made.shop_id)
    response = client.get("/admin/customers")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    page = client.get("/admin/login")
    assert page.status_code == 200 and REASON in page.get_data(as_text=True)
    # Signed out: the cookie no longer names the member, so the next page is an ordinary sign-in bounce.
    again = client.get("/admin/customers")
    assert again.status_code == 302 and again.headers["Location"].startswith("/admin/login?next=")


def test_signing_in_to_an_uninstalled_shop_shows_the_reason_and_signs_nobody_in(app):
    made = committed_console_shop(app, platform="shopify")
    _uninstall(app, made.shop_id)
    client = app.test_client()
    response = sign_in(client, made.emails["support"])
    assert response.status_code == 403 and REASON in response.get_data(as_text=True)
    assert client.get("/admin/customers").status_code == 302
