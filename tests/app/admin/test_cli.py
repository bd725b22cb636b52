"""`lojal staff create` and `lojal staff token`."""
from __future__ import annotations

from sqlalchemy import select

from app.models import StaffUser
from tests.app.admin.conftest import API, bearer, cookie_login
from tests.factories import make_shop


def test_staff_create_then_sign_in_and_token_then_use_it(app, client, session):
    shop = make_shop(session)
    session.commit()
    runner = app.test_cli_runner()
    created = runner.invoke(args=["staff", "create", shop.uid, "Boss@Shop.example", "--role", "owner",
                                  "--password", "a-long-password"])
    assert created.exit_code == 0, created.output
    assert "owner boss@shop.example" in created.output
    assert cookie_login(client, "boss@shop.example", "a-long-password")["role"] == "owner"

    minted = runner.invoke(args=["staff", "token", str(shop.id), "boss@shop.example", "ci"])
    assert minted.exit_code == 0
    token = minted.stdout.strip()
    assert token.startswith("lojal_pat_")
    assert client.get(f"{API}/me", headers=bearer(token)).get_json()["actor"].endswith(":ci")


def test_staff_create_refuses_short_passwords_unknown_shops_and_duplicates(app, session):
    shop = make_shop(session)
    session.commit()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["staff", "create", shop.uid, "a@b.example", "--password", "short"]).exit_code == 2
    assert runner.invoke(args=["staff", "create", "no-such-shop", "a@b.example", "--password", "long-enough-1"]).exit_code == 2
    assert runner.invoke(args=["staff", "create", shop.uid, "a@b.example", "--password", "long-enough-1"]).exit_code == 0
    again = runner.invoke(args=["staff", "create", shop.uid, "A@b.example", "--password", "long-enough-1"])
    assert again.exit_code == 1 and "already has a staff member" in again.output
    assert len(session.scalars(select(StaffUser).where(StaffUser.shop_id == shop.id)).all()) == 1
    assert runner.invoke(args=["staff", "token", shop.uid, "nobody@b.example", "x"]).exit_code == 2


def test_demo_seeds_an_owner_and_a_support_member_who_can_sign_in(app, client, session):
    from app.demo import DEMO_STAFF_PASSWORD, seed_demo

    shop, _ = seed_demo(session, customers=3, domain="admin-demo.lojal.test")
    session.commit()
    me = cookie_login(client, "support@demo.lojal.test", DEMO_STAFF_PASSWORD, shop_id=shop.id)
    assert me["role"] == "support"
    assert cookie_login(client, "owner@demo.lojal.test", DEMO_STAFF_PASSWORD, shop_id=shop.id)["role"] == "owner"


def test_staff_commands_with_a_numeric_shop_beyond_bigint_say_no_shop_not_a_traceback(app, session):
    runner = app.test_cli_runner()
    for args in (["staff", "token", str(2**70), "a@b.example", "x"],
                 ["staff", "create", str(2**70), "a@b.example", "--password", "long-enough-1"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 2 and "no shop with this id, uid or domain" in result.output, result.output


def test_staff_create_finds_a_store_saved_with_its_default_port_by_its_normalised_url(app, session):
    # Stores connected before URLs were normalised may hold `https://host:443`.
    shop = make_shop(session, platform="woocommerce")
    bare = shop.domain
    shop.domain = f"https://{bare}:443"
    session.commit()
    runner = app.test_cli_runner()
    for number, named in enumerate((bare, f"https://{bare}/", f"https://{bare}:443")):
        created = runner.invoke(args=["staff", "create", named, f"s{number}@shop.example", "--password", "long-enough-1"])
        assert created.exit_code == 0, (named, created.output)
        assert created.output.strip().endswith(f"added to {shop.domain}")
