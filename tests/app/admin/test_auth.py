"""Staff sign-in, sessions, CSRF, throttling and personal API tokens."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from app.models import ApiToken, AuditLog, StaffUser
from tests.app.admin.conftest import API, bearer, cookie_login, signed_in
from tests.factories import STAFF_PASSWORD, make_shop, make_staff

HTTPS = "https://lojal.test"


def _fresh_member(session, role="support", **fields):
    shop = make_shop(session)
    staff = make_staff(session, shop, role, **fields)
    session.commit()
    return shop, staff


def test_sign_in_sets_an_httponly_samesite_lax_secure_session_cookie(client, session):
    _, staff = _fresh_member(session)
    response = client.post(f"{API}/session", json={"email": staff.email.upper(), "password": STAFF_PASSWORD},
                           base_url=HTTPS)
    assert response.status_code == 200
    body = response.get_json()
    assert body["actor"] == f"staff:{staff.id}:{staff.email}" and body["role"] == "support" and body["csrf_token"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("lojal_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # APP_URL is https in the tests
    assert client.get(f"{API}/me", base_url=HTTPS).get_json()["email"] == staff.email


def test_a_cross_site_form_cannot_sign_the_browser_in_to_another_account(client, session):
    # A plain HTML form can post a JSON-looking text/plain body from any site (no preflight);
    # signing in with it would put the attacker's session in the victim's browser.
    _, staff = _fresh_member(session)
    body = '{"email": "%s", "password": "%s"}' % (staff.email, STAFF_PASSWORD)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = client.post(f"{API}/session", data=body, content_type=content_type, base_url=HTTPS)
        assert response.status_code == 415 and response.get_json()["error"]["code"] == "unsupported_media_type"
        assert "Set-Cookie" not in response.headers
    invitation = client.post(f"{API}/session/invitation", data='{"token": "x", "password": "long-enough-pw"}',
                             content_type="text/plain", base_url=HTTPS)
    assert invitation.status_code == 415


def test_wrong_password_is_401_without_saying_which_part_was_wrong(client, session):
    _, staff = _fresh_member(session)
    wrong = client.post(f"{API}/session", json={"email": staff.email, "password": "nope"}, base_url=HTTPS)
    unknown = client.post(f"{API}/session", json={"email": "nobody@x.example", "password": "nope"}, base_url=HTTPS)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json() == {
        "error": {"code": "invalid_credentials", "message": "wrong email or password"}}
    assert "Set-Cookie" not in wrong.headers


def test_five_failures_per_email_and_address_then_429_with_retry_after_even_for_the_right_password(client, session):
    _, staff = _fresh_member(session)
    for _ in range(5):
        assert client.post(f"{API}/session", json={"email": staff.email, "password": "bad"}).status_code == 401
    blocked = client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD})
    assert blocked.status_code == 429 and blocked.get_json()["error"]["code"] == "login_throttled"
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60
    # Another address is not blocked by this one's failures.
    other_ip = client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD},
                           environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other_ip.status_code == 200


def test_an_ipv6_client_counts_as_its_slash_64_so_fresh_addresses_do_not_buy_more_guesses(client, session):
    # One host or home line holds a whole /64 and can take a fresh address for every guess.
    _, staff = _fresh_member(session)
    for n in range(5):
        wrong = client.post(f"{API}/session", json={"email": staff.email, "password": "bad"},
                            environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{n + 1:x}"})
        assert wrong.status_code == 401
    blocked = client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD},
                          environ_base={"REMOTE_ADDR": "2001:db8:1:2:ffff:ffff:ffff:fffe"})
    assert blocked.status_code == 429 and blocked.get_json()["error"]["code"] == "login_throttled"
    other_network = client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD},
                                environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})
    assert other_network.status_code == 200


def test_one_address_trying_many_emails_is_throttled_before_more_password_hashes(session):
    # Each sign-in costs an argon2 hash (64 MiB, tens of ms), unknown emails too: without a limit
    # per address, one client could spray passwords over every email, or pin the web workers.
    from app import create_app
    from tests.conftest import test_config
    from tests.widgets.helpers import client_for

    tight = create_app(test_config(STAFF_SIGN_IN_RATE_LIMIT="3/minute"))
    _, staff = _fresh_member(session)
    spray, other = client_for(tight), client_for(tight)
    for n in range(3):
        wrong = spray.post(f"{API}/session", json={"email": f"guess-{n}@x.example", "password": "bad"})
        assert wrong.status_code == 401
    blocked = spray.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD})
    assert blocked.status_code == 429 and blocked.get_json()["error"]["code"] == "login_throttled"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 61 and "Set-Cookie" not in blocked.headers
    assert other.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD}).status_code == 200


def test_concurrent_wrong_passwords_get_five_guesses_not_one_per_request(app, session):
    """Twelve wrong passwords at once: each attempt takes its place in the count before the slow
    hash, so only five are checked and the rest are throttled."""
    from concurrent.futures import ThreadPoolExecutor

    _, staff = _fresh_member(session)
    email, barrier = staff.email, threading.Barrier(12)

    def attempt(n: int) -> int:
        client = app.test_client()
        barrier.wait(timeout=10)
        return client.post(f"{API}/session", json={"email": email, "password": f"guess-{n}"}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(attempt, range(12)))
    assert statuses == [401] * 5 + [429] * 7


def test_a_successful_sign_in_resets_the_failure_count(client, session):
    _, staff = _fresh_member(session)
    for _ in range(4):
        client.post(f"{API}/session", json={"email": staff.email, "password": "bad"})
    assert client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD}).status_code == 200
    for _ in range(4):
        client.post(f"{API}/session", json={"email": staff.email, "password": "bad"})
    assert client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD}).status_code == 200


def test_disabled_member_cannot_sign_in(client, session):
    _, staff = _fresh_member(session, disabled_at=datetime.now(UTC))
    response = client.post(f"{API}/session", json={"email": staff.email, "password": STAFF_PASSWORD})
    assert response.status_code == 401


def test_the_same_email_in_two_shops_signs_into_the_one_asked_for(client, session):
    shop_one, first = _fresh_member(session, role="viewer", email="twin@staff.example")
    shop_two = make_shop(session)
    make_staff(session, shop_two, "owner", email="twin@staff.example")
    session.commit()
    me = cookie_login(client, "twin@staff.example", STAFF_PASSWORD, shop_id=shop_two.id)
    assert me["shop_id"] == shop_two.id and me["role"] == "owner"
    assert cookie_login(client, "twin@staff.example", STAFF_PASSWORD, shop_id=shop_one.id)["role"] == "viewer"


def test_a_csrf_token_with_non_ascii_characters_is_refused_not_a_server_error(client, session):
    # Header values reach us latin-1 decoded; hmac.compare_digest raises on non-ASCII str.
    _, owner = _fresh_member(session, role="owner")
    cookie_login(client, owner.email, STAFF_PASSWORD)
    for sent in ("\xe9t\xe9", "\xff" * 43):
        refused = client.patch(f"{API}/settings", json={"pending_days": 3}, headers={"X-CSRF-Token": sent},
                               base_url=HTTPS)
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"


def test_cookie_writes_need_the_csrf_token_and_bearer_writes_do_not(client, session):
    shop, owner = _fresh_member(session, role="owner")
    me = cookie_login(client, owner.email, STAFF_PASSWORD)
    change = {"pending_days": 3}
    refused = client.patch(f"{API}/settings", json=change, base_url=HTTPS)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    forged = client.patch(f"{API}/settings", json=change, headers={"X-CSRF-Token": "guess"}, base_url=HTTPS)
    assert forged.status_code == 403
    accepted = client.patch(f"{API}/settings", json=change, headers={"X-CSRF-Token": me["csrf_token"]},
                            base_url=HTTPS)
    assert accepted.status_code == 200 and accepted.get_json()["pending_days"] == 3

    from tests.factories import make_api_token

    token = make_api_token(session, owner)
    session.commit()
    anonymous_browser = client.application.test_client()
    by_token = anonymous_browser.patch(f"{API}/settings", json={"pending_days": 4}, headers=bearer(token))
    assert by_token.status_code == 200, by_token.get_json()


def test_anonymous_requests_get_401_json_with_a_bearer_challenge(client):
    response = client.get(f"{API}/customers")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(f"{API}/customers", headers={"Authorization": "Bearer lojal_pat_not-a-token"}).status_code == 401
    assert client.get(f"{API}/customers", headers={"Authorization": "Basic abc"}).status_code == 401


def test_disabling_a_member_ends_their_sessions_and_their_tokens(client, session, shop_a):
    support = shop_a.staff["support"]
    cookie_login(client, support.email, STAFF_PASSWORD)
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 200
    disabled = client.application.test_client().patch(f"{API}/staff/{support.id}", json={"disabled": True},
                                                      headers=shop_a.headers["owner"])
    assert disabled.status_code == 200 and disabled.get_json()["disabled"] is True
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 401
    assert client.get(f"{API}/me", headers=shop_a.headers["support"]).status_code == 401


def test_a_role_change_ends_sessions_so_the_new_role_applies_from_the_next_sign_in(client, session, shop_a):
    viewer = shop_a.staff["viewer"]
    cookie_login(client, viewer.email, STAFF_PASSWORD)
    owner_api = client.application.test_client()
    assert owner_api.patch(f"{API}/staff/{viewer.id}", json={"role": "support"},
                           headers=shop_a.headers["owner"]).status_code == 200
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 401
    assert cookie_login(client, viewer.email, STAFF_PASSWORD)["role"] == "support"
    # A token follows its member's current role at once.
    assert client.get(f"{API}/me", headers=shop_a.headers["viewer"]).get_json()["role"] == "support"


def test_a_password_change_ends_sessions_and_the_old_password_stops_working(client, session, shop_a):
    support = shop_a.staff["support"]
    cookie_login(client, support.email, STAFF_PASSWORD)
    owner = signed_in(client.application, shop_a.staff["owner"])
    assert owner.patch(f"{API}/staff/{support.id}", json={"password": "a-new-long-password"}).status_code == 200
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 401
    assert client.post(f"{API}/session", json={"email": support.email, "password": STAFF_PASSWORD}).status_code == 401
    assert cookie_login(client, support.email, "a-new-long-password")["staff_id"] == support.id


def test_sign_out_ends_the_cookie_session(client, session):
    _, staff = _fresh_member(session)
    me = cookie_login(client, staff.email, STAFF_PASSWORD)
    assert client.delete(f"{API}/session", headers={"X-CSRF-Token": me["csrf_token"]},
                         base_url=HTTPS).status_code == 204
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 401


def test_sign_out_also_ends_a_copy_of_the_cookie_in_another_browser(client, session):
    _, staff = _fresh_member(session)
    me = cookie_login(client, staff.email, STAFF_PASSWORD)
    copy = client.application.test_client()  # the same signed cookie, taken to another browser
    copy.set_cookie("lojal_session", client.get_cookie("lojal_session", domain="lojal.test").value,
                    domain="lojal.test")
    assert copy.get(f"{API}/me", base_url=HTTPS).status_code == 200
    assert client.delete(f"{API}/session", headers={"X-CSRF-Token": me["csrf_token"]},
                         base_url=HTTPS).status_code == 204
    assert copy.get(f"{API}/me", base_url=HTTPS).status_code == 401


def test_tokens_are_shown_once_stored_as_sha256_and_revocable(client, session, shop_a):
    support = shop_a.staff["support"]
    me = cookie_login(client, support.email, STAFF_PASSWORD)
    created = client.post(f"{API}/tokens", json={"name": "nightly export"}, headers={"X-CSRF-Token": me["csrf_token"]},
                          base_url=HTTPS)
    assert created.status_code == 201
    token = created.get_json()["token"]
    assert token.startswith("lojal_pat_") and len(token) > 40
    row = session.scalars(select(ApiToken).where(ApiToken.id == created.get_json()["id"])).one()
    import hashlib

    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in (row.prefix, row.name)
    listed = client.get(f"{API}/tokens", base_url=HTTPS).get_json()["items"]
    assert [t["name"] for t in listed] == ["script", "nightly export"] and all("token" not in t for t in listed)

    script = client.application.test_client()
    assert script.get(f"{API}/me", headers=bearer(token)).get_json()["actor"] == f"token:{row.id}:nightly export"
    assert client.delete(f"{API}/tokens/{row.id}", headers={"X-CSRF-Token": me["csrf_token"]},
                         base_url=HTTPS).status_code == 204
    assert script.get(f"{API}/me", headers=bearer(token)).status_code == 401
    assert session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_a.shop.id,
                                                  AuditLog.action == "api_token.revoke")).one().target_id == str(row.id)


def test_a_token_cannot_mint_tokens(client, shop_a):
    response = client.post(f"{API}/tokens", json={"name": "child"}, headers=shop_a.headers["owner"])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "token_creation_refused"


def test_a_token_makes_no_credentials_a_successor_could_sign_in_with(client, session, shop_a):
    # A leaked owner token must not outlive its revocation through an account it made or reset:
    # no staff member with a password, no invitation, no password change. It may still disable.
    owner, support = shop_a.headers["owner"], shop_a.staff["support"]
    refused = [
        client.post(f"{API}/staff", json={"email": "successor@staff.example", "role": "owner",
                                          "password": "long-enough-pw"}, headers=owner),
        client.post(f"{API}/staff/invitations", json={"email": "successor@staff.example", "role": "owner"},
                    headers=owner),
        client.patch(f"{API}/staff/{support.id}", json={"password": "taken-over-password"}, headers=owner),
    ]
    assert [(r.status_code, r.get_json()["error"]["code"]) for r in refused] == [(403, "token_creation_refused")] * 3
    session.expire_all()
    assert session.scalars(select(StaffUser).where(StaffUser.email == "successor@staff.example")).first() is None
    assert cookie_login(client, support.email, STAFF_PASSWORD)["staff_id"] == support.id  # password unchanged
    assert client.patch(f"{API}/staff/{support.id}", json={"disabled": True}, headers=owner).status_code == 200


def test_members_see_and_revoke_only_their_own_tokens_owners_all(client, session, shop_a):
    owner_token = session.scalars(select(ApiToken).where(ApiToken.staff_id == shop_a.staff["owner"].id)).one()
    support_list = client.get(f"{API}/tokens", headers=shop_a.headers["support"]).get_json()["items"]
    assert [t["staff_id"] for t in support_list] == [shop_a.staff["support"].id]
    assert client.delete(f"{API}/tokens/{owner_token.id}", headers=shop_a.headers["support"]).status_code == 404
    assert len(client.get(f"{API}/tokens", headers=shop_a.headers["owner"]).get_json()["items"]) == 3


def test_last_used_at_is_written_at_most_once_a_minute(client, session, shop_a):
    token = session.scalars(select(ApiToken).where(ApiToken.staff_id == shop_a.staff["viewer"].id)).one()
    client.get(f"{API}/me", headers=shop_a.headers["viewer"])
    session.expire_all()
    first = session.get(ApiToken, token.id).last_used_at
    assert first is not None
    client.get(f"{API}/me", headers=shop_a.headers["viewer"])
    session.expire_all()
    assert session.get(ApiToken, token.id).last_used_at == first
    # A minute later the next request records its use again.
    session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=first - timedelta(minutes=2)))
    session.commit()
    client.get(f"{API}/me", headers=shop_a.headers["viewer"])
    session.expire_all()
    assert session.get(ApiToken, token.id).last_used_at > first - timedelta(minutes=1)


def test_the_last_active_owner_cannot_be_demoted_or_disabled(client, session, shop_a):
    owner = shop_a.staff["owner"]
    for change in ({"role": "support"}, {"disabled": True}):
        response = client.patch(f"{API}/staff/{owner.id}", json=change, headers=shop_a.headers["owner"])
        assert response.status_code == 409 and response.get_json()["error"]["code"] == "last_owner"
    second = signed_in(client.application, owner).post(f"{API}/staff", json={
        "email": "second-owner@staff.example", "role": "owner", "password": "long-enough-pw"})
    assert second.status_code == 201
    assert client.patch(f"{API}/staff/{owner.id}", json={"role": "viewer"},
                        headers=shop_a.headers["owner"]).status_code == 200
    assert session.get(StaffUser, owner.id).session_version == 2


def test_staff_creation_is_audited_with_the_actor_and_the_member_can_sign_in(client, session, shop_a):
    owner = shop_a.staff["owner"]
    response = signed_in(client.application, owner).post(f"{API}/staff", json={
        "email": "New.Agent@Staff.example", "role": "support", "password": "long-enough-pw", "name": "New Agent"})
    assert response.status_code == 201 and response.get_json()["email"] == "new.agent@staff.example"
    row = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_a.shop.id,
                                                 AuditLog.action == "staff.create")).one()
    assert row.actor == f"staff:{owner.id}:{owner.email}" and "password" not in str(row.details)
    assert cookie_login(client, "new.agent@staff.example", "long-enough-pw")["role"] == "support"
    duplicate = signed_in(client.application, owner).post(f"{API}/staff", json={
        "email": "new.agent@staff.example", "role": "viewer", "password": "long-enough-pw"})
    assert duplicate.status_code == 409


def test_an_invited_member_chooses_a_password_once_with_the_token_and_is_signed_in(client, session, shop_a):
    invited = signed_in(client.application, shop_a.staff["owner"]).post(
        f"{API}/staff/invitations", json={"email": "Invitee@Staff.example", "role": "viewer"})
    assert invited.status_code == 201
    body = invited.get_json()
    token = body["invite_token"]
    assert token.startswith("lojal_inv_") and body["email"] == "invitee@staff.example" and body["role"] == "viewer"
    row = session.get(StaffUser, body["id"])
    session.refresh(row)
    assert row.password_hash is None and token not in (row.invite_token_hash or "")
    # No password yet: nobody signs in as them.
    assert client.post(f"{API}/session", json={"email": "invitee@staff.example", "password": ""}).status_code == 422
    accepted = client.post(f"{API}/session/invitation", json={"token": token, "password": "my-own-password"},
                           base_url=HTTPS)
    assert accepted.status_code == 200 and accepted.get_json()["role"] == "viewer"
    assert client.get(f"{API}/me", base_url=HTTPS).get_json()["email"] == "invitee@staff.example"
    reused = client.post(f"{API}/session/invitation", json={"token": token, "password": "another-password"})
    assert reused.status_code == 401
    assert cookie_login(client, "invitee@staff.example", "my-own-password")["staff_id"] == body["id"]


def test_a_password_set_by_an_owner_spends_the_pending_invitation(client, session, shop_a):
    owner = signed_in(client.application, shop_a.staff["owner"])
    body = owner.post(f"{API}/staff/invitations", json={"email": "set@staff.example", "role": "support"}).get_json()
    assert owner.patch(f"{API}/staff/{body['id']}", json={"password": "owner-chosen-password"}).status_code == 200
    # The old invitation link no longer resets the password the owner just set.
    response = client.post(f"{API}/session/invitation", json={"token": body["invite_token"],
                                                              "password": "someone-elses-password"})
    assert response.status_code == 401
    assert cookie_login(client, "set@staff.example", "owner-chosen-password")["staff_id"] == body["id"]


def test_an_expired_invitation_is_refused_and_only_owners_invite(client, session, shop_a):
    assert signed_in(client.application, shop_a.staff["support"]).post(
        f"{API}/staff/invitations", json={"email": "x@staff.example", "role": "owner"}).status_code == 403
    body = signed_in(client.application, shop_a.staff["owner"]).post(
        f"{API}/staff/invitations", json={"email": "late@staff.example", "role": "support"}).get_json()
    session.execute(update(StaffUser).where(StaffUser.id == body["id"])
                    .values(invite_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    session.commit()
    response = client.post(f"{API}/session/invitation", json={"token": body["invite_token"],
                                                              "password": "too-late-password"})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_credentials"


def test_a_request_without_the_session_cookie_never_builds_the_cookie_signer(client, session, monkeypatch):
    # Widget calls and webhooks carry no staff cookie: they must not pay for the signer.
    interface = client.application.session_interface

    def no_signer(app):
        raise AssertionError("the cookie signer was built for a request without the cookie")

    assert client.get("/healthz").status_code == 200
    monkeypatch.setattr(interface, "get_signing_serializer", no_signer)
    assert client.get("/healthz").status_code == 200
    response = client.get(f"{API}/customers")
    assert response.status_code == 401 and "Set-Cookie" not in response.headers
    monkeypatch.undo()
    _, staff = _fresh_member(session)
    assert cookie_login(client, staff.email, STAFF_PASSWORD)["csrf_token"]  # the staff session still works
    assert client.get(f"{API}/me", base_url=HTTPS).status_code == 200
