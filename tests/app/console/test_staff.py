"""Staff (owners only): add members with a role, disable them, API tokens shown once and revoked."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.models import ApiToken
from tests.app.console.conftest import committed_console_shop, csrf, sign_in


def test_owner_adds_a_support_agent_who_can_then_sign_in(app, fresh_owner):
    client, made = fresh_owner
    response = client.post("/admin/staff", data={"csrf_token": csrf(client), "email": "New.Agent@Shop.example",
                                                 "name": "New Agent", "role": "support",
                                                 "password": "long-enough-password"})
    assert response.status_code == 302
    assert "new.agent@shop.example" in client.get("/admin/staff").get_data(as_text=True)
    agent = app.test_client()
    assert sign_in(agent, "new.agent@shop.example", "long-enough-password").status_code == 302
    assert agent.get("/admin/customers").status_code == 200 and agent.get("/admin/staff").status_code == 403


def test_adding_staff_with_a_short_password_or_a_taken_email_shows_the_error(fresh_owner):
    client, made = fresh_owner
    short = client.post("/admin/staff", data={"csrf_token": csrf(client), "email": "x@shop.example",
                                              "role": "viewer", "password": "short"})
    assert short.status_code == 422
    assert '<p class="error" id="error-password">Length must be between 10 and 200.</p>' in short.get_data(as_text=True)
    assert 'value="short"' not in short.get_data(as_text=True)  # a password is never echoed back
    taken = client.post("/admin/staff", data={"csrf_token": csrf(client), "email": made.emails["viewer"],
                                              "role": "viewer", "password": "long-enough-password"})
    assert taken.status_code == 422 and "already has a staff member with that email" in taken.get_data(as_text=True)


def test_disabling_a_member_signs_them_out(app, fresh_owner):
    client, made = fresh_owner
    viewer = app.test_client()
    sign_in(viewer, made.emails["viewer"])
    assert viewer.get("/admin/").status_code == 200
    client.post(f"/admin/staff/{made.staff_ids['viewer']}/disable", data={"csrf_token": csrf(client)})
    assert viewer.get("/admin/").status_code == 302


def test_a_token_is_shown_once_works_for_the_api_and_can_be_revoked(app, fresh_owner):
    client, made = fresh_owner
    page = client.post("/admin/staff/tokens", data={"csrf_token": csrf(client), "name": "nightly-export",
                                                    "staff_id": str(made.staff_ids["support"])})
    html = page.get_data(as_text=True)
    token = re.search(r'<code class="token" id="new-token">(lojal_pat_[^<]+)</code>', html).group(1)
    assert token not in client.get("/admin/staff").get_data(as_text=True)  # only once
    with app.app_context():
        row = db.session.scalars(select(ApiToken).where(ApiToken.shop_id == made.shop_id)).one()
        assert row.name == "nightly-export" and row.token_hash != token
        token_id = row.id
    client.post(f"/admin/staff/tokens/{token_id}/revoke", data={"csrf_token": csrf(client)})
    assert "Revoked" in client.get("/admin/staff").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ApiToken, token_id).revoked_at is not None


def test_another_shops_member_cannot_be_disabled(app, fresh_owner):
    client, _ = fresh_owner
    other = committed_console_shop(app)
    response = client.post(f"/admin/staff/{other.staff_ids['viewer']}/disable", data={"csrf_token": csrf(client)})
    assert response.status_code == 404


def test_a_token_for_a_member_id_beyond_the_database_range_is_an_error_not_a_500(fresh_owner):
    client, _ = fresh_owner
    response = client.post("/admin/staff/tokens", data={"csrf_token": csrf(client), "staff_id": "9" * 20,
                                                        "name": "script"})
    assert response.status_code == 422 and "Choose whose token this is." in response.get_data(as_text=True)


def test_an_api_token_cannot_mint_tokens_through_the_console_either(app, fresh_owner):
    # The admin API refuses POST /tokens from a token (token_creation_refused): a leaked token must
    # not be able to make itself a successor that survives its revocation. The console's form takes
    # the same bearer token (no CSRF check for it) and must refuse too.
    from app.models import StaffUser
    from tests.factories import make_api_token

    _, made = fresh_owner
    with app.app_context():
        token = make_api_token(db.session, db.session.get(StaffUser, made.staff_ids["owner"]), name="leaked")
        db.session.commit()
    script = app.test_client()
    response = script.post("/admin/staff/tokens", data={"name": "successor", "staff_id": str(made.staff_ids["owner"])},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert not re.search(r'id="new-token">lojal_pat_', response.get_data(as_text=True))
    with app.app_context():
        names = db.session.scalars(select(ApiToken.name).where(ApiToken.shop_id == made.shop_id)).all()
        assert names == ["leaked"]
