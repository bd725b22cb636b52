"""An uninstalled shop's password sessions and API tokens: refused with `shop_uninstalled` while it
is uninstalled, and never valid again after a reinstall."""
from __future__ import annotations

from datetime import UTC, datetime

from app.crypto import token_cipher
from app.extensions import db
from app.loyalty.apply import apply_event
from app.loyalty.events import AppUninstalled
from app.models import ApiToken, Shop
from tests.app.admin.conftest import API, bearer, cookie_login
from tests.factories import STAFF_PASSWORD, make_api_token, make_shop, make_staff
from tests.sql_log import statements_sent

HTTPS = "https://lojal.test"
REFUSED = {"error": {"code": "shop_uninstalled", "message": (
    "Lojal is no longer installed on this store: its sign-ins and API tokens have ended. "
    "Install Lojal again, then sign in.")}}


def _member_with_token(session):
    shop = make_shop(session, platform="shopify")
    staff = make_staff(session, shop, "owner")
    token = make_api_token(session, staff)
    session.commit()
    return shop, staff, token


def _uninstall(session, shop) -> None:
    apply_event(session, shop.id, AppUninstalled(datetime.now(UTC)))
    session.commit()


def _reinstall(session, shop) -> None:
    shop = session.get(Shop, shop.id, populate_existing=True)
    shop.status, shop.uninstalled_at, shop.installed_at = "active", None, datetime.now(UTC)  # as install._upsert_shop
    session.commit()


def test_a_password_session_of_an_uninstalled_shop_is_refused_and_its_cookie_dropped(client, session):
    shop, staff, _ = _member_with_token(session)
    cookie_login(client, staff.email, STAFF_PASSWORD)
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 200
    _uninstall(session, shop)
    response = client.get(f"{API}/me", base_url=HTTPS)
    assert response.status_code == 403 and response.get_json() == REFUSED
    assert response.headers["Set-Cookie"].startswith("lojal_session=;")  # the dead cookie is deleted
    assert client.get(f"{API}/customers", base_url=HTTPS).status_code == 401  # no cookie left


def test_an_api_token_of_an_uninstalled_shop_is_refused_without_a_cookie(client, session):
    shop, _, token = _member_with_token(session)
    assert client.get(f"{API}/me", headers=bearer(token)).status_code == 200
    _uninstall(session, shop)
    response = client.get(f"{API}/customers", headers=bearer(token))
    assert response.status_code == 403 and response.get_json() == REFUSED
    assert "Set-Cookie" not in response.headers


def test_signing_in_to_an_uninstalled_shop_is_refused_with_the_reason(client, session):
    shop, staff, _ = _member_with_token(session)
    _uninstall(session, shop)
    response = client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD}, base_url=HTTPS)
    assert response.status_code == 403 and response.get_json() == REFUSED
    assert "Set-Cookie" not in response.headers
    wrong = client.post(f"{API}/session", json={"email": staff.email, "password": "nope"}, base_url=HTTPS)
    assert wrong.get_json()["error"]["code"] == "invalid_credentials"  # the reason only for the right password


def test_the_same_email_in_an_installed_shop_still_signs_in_when_another_is_uninstalled(client, session):
    gone, staff, _ = _member_with_token(session)
    live = make_shop(session)
    make_staff(session, live, "viewer", email=staff.email)
    session.commit()
    _uninstall(session, gone)
    body = cookie_login(client, staff.email, STAFF_PASSWORD)
    assert body["shop_id"] == live.id


def test_sessions_and_tokens_from_before_an_uninstall_stay_ended_after_a_reinstall(app, client, session):
    shop, staff, token = _member_with_token(session)
    cookie_login(client, staff.email, STAFF_PASSWORD)
    _uninstall(session, shop)
    _reinstall(session, shop)
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 401
    assert client.get(f"{API}/me", headers=bearer(token)).status_code == 401
    assert session.query(ApiToken).filter_by(shop_id=shop.id).one().revoked_at is not None  # shown as revoked
    fresh = app.test_client()
    cookie_login(fresh, staff.email, STAFF_PASSWORD)  # signing in again works
    assert fresh.get(f"{API}/me", base_url=HTTPS).status_code == 200


def test_a_disconnected_shops_staff_keep_their_sessions_to_connect_it_again(client, session):
    # Only an uninstall ends them: a disconnected WooCommerce store is connected again from the console.
    shop, staff, token = _member_with_token(session)
    cookie_login(client, staff.email, STAFF_PASSWORD)
    session.get(Shop, shop.id).status = "disconnected"
    session.commit()
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 200
    assert client.get(f"{API}/me", headers=bearer(token)).status_code == 200


def test_the_shop_check_costs_no_statement_beyond_the_credential_lookup(client, session):
    shop, staff, token = _member_with_token(session)
    client.get(f"{API}/me", headers=bearer(token))  # last_used_at written: the next request reads only
    cookie_login(client, staff.email, STAFF_PASSWORD)
    for headers in ({}, bearer(token)):
        with statements_sent(db.engine) as sent:
            assert client.get(f"{API}/me", headers=headers, base_url=HTTPS).status_code == 200
        selects = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) == 1 and "shops" in selects[0], sent


def _invitation(session, shop) -> str:
    from app.admin.staff_accounts import invite_staff

    _, token = invite_staff(session, shop.id, "invitee@staff.example", "owner", actor="test", now=datetime.now(UTC))
    session.commit()
    return token


def test_an_invitation_made_before_an_uninstall_does_not_sign_anyone_in_after_a_reinstall(client, session):
    # An invitation token is a credential like a session or an API token: the uninstall ends it.
    shop, _, _ = _member_with_token(session)
    token = _invitation(session, shop)
    _uninstall(session, shop)
    _reinstall(session, shop)
    response = client.post(f"{API}/session/invitation", json={"token": token, "password": "long-enough-pw"},
                           base_url=HTTPS)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_credentials"
    assert "Set-Cookie" not in response.headers


def test_accepting_an_invitation_of_an_uninstalled_shop_is_refused_and_sets_no_password(client, session):
    from app.models import StaffUser

    shop, _, _ = _member_with_token(session)
    token = _invitation(session, shop)
    shop_row = session.get(Shop, shop.id)
    shop_row.status = "uninstalled"  # as if the uninstall's delivery had not been processed yet
    session.commit()
    response = client.post(f"{API}/session/invitation", json={"token": token, "password": "long-enough-pw"},
                           base_url=HTTPS)
    assert response.status_code == 403 and response.get_json() == REFUSED
    assert "Set-Cookie" not in response.headers
    invitee = session.query(StaffUser).filter_by(shop_id=shop.id, email="invitee@staff.example").one()
    session.refresh(invitee)
    assert invitee.password_hash is None and invitee.invite_token_hash is not None


def test_a_late_uninstall_after_a_reinstall_ends_the_old_installations_sessions_and_tokens_once(app, client, session):
    # Uninstalled at `gone`, reinstalled (post_install saw a new token: status still active,
    # installed_at moved on) before the app/uninstalled delivery was processed. That delivery
    # must not undo the reinstall, but the sessions and tokens of the installation it ended end.
    shop, staff, old_token = _member_with_token(session)
    cookie_login(client, staff.email, STAFF_PASSWORD)
    gone = datetime.now(UTC)
    shop = session.get(Shop, shop.id, populate_existing=True)
    reinstalled = token_cipher.encrypt("shpat_reinstalled")  # a real ciphertext: `keys rotate` reads every row
    shop.installed_at, shop.access_token_enc = datetime.now(UTC), reinstalled
    session.commit()
    new_token = make_api_token(session, staff, name="made after the reinstall")
    session.commit()
    assert apply_event(session, shop.id, AppUninstalled(gone)).status == "noop"
    session.commit()
    shop = session.get(Shop, shop.id, populate_existing=True)
    assert (shop.status, shop.access_token_enc) == ("active", reinstalled)
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 401
    assert client.get(f"{API}/me", headers=bearer(old_token)).status_code == 401
    assert client.get(f"{API}/me", headers=bearer(new_token)).status_code == 200
    # The same delivery again ends nothing more: a member who signed in since stays signed in.
    fresh = app.test_client()
    cookie_login(fresh, staff.email, STAFF_PASSWORD)
    apply_event(session, shop.id, AppUninstalled(gone))
    session.commit()
    assert fresh.get(f"{API}/me", base_url=HTTPS).status_code == 200
    assert client.get(f"{API}/me", headers=bearer(new_token)).status_code == 200
