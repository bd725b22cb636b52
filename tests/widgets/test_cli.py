"""`lojal widget token SHOP CUSTOMER_ID [--ttl]`: prints a token the API accepts."""
from __future__ import annotations

import jwt

from tests.factories import make_customer, make_shop
from tests.widgets.helpers import bearer, wclient  # noqa: F401
from widgets.tokens import widget_secret


def test_the_printed_token_reads_the_customer_and_a_secret_is_created_if_missing(app, session, wclient):
    shop = make_shop(session)  # no widget secret yet, like the demo shop
    kari = make_customer(session, shop, first_name="Kari")
    session.commit()
    result = app.test_cli_runner().invoke(args=["widget", "token", shop.domain, kari.platform_customer_id,
                                                "--ttl", "600"])
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    session.expire_all()
    claims = jwt.decode(printed, widget_secret(shop), algorithms=["HS256"], audience=shop.uid)
    assert claims["sub"] == kari.platform_customer_id and claims["exp"] - claims["iat"] == 600
    assert wclient.get("/widget/v1/me", headers=bearer(printed)).get_json()["customer"]["first_name"] == "Kari"
    # By uid too, with the same (kept) secret.
    again = app.test_cli_runner().invoke(args=["widget", "token", shop.uid, kari.platform_customer_id])
    assert again.exit_code == 0 and wclient.get("/widget/v1/me", headers=bearer(again.stdout.strip())).status_code == 200


def test_unknown_shops_and_over_long_lifetimes_are_refused(app, session):
    shop = make_shop(session)
    session.commit()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["widget", "token", "no-such-shop", "1"]).exit_code != 0
    assert runner.invoke(args=["widget", "token", shop.uid, "1", "--ttl", str(24 * 3600 + 1)]).exit_code != 0
    unknown = runner.invoke(args=["widget", "token", shop.uid, "not-a-customer-yet"])
    assert unknown.exit_code == 0 and "no customer not-a-customer-yet" in unknown.stderr


def test_widget_secret_prints_the_secret_tokens_are_verified_with(app, session, wclient):
    from datetime import UTC, datetime

    from widgets.tokens import sign_customer_token

    shop = make_shop(session)
    kari = make_customer(session, shop)
    session.commit()
    result = app.test_cli_runner().invoke(args=["widget", "secret", shop.uid])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert len(secret) >= 32
    signed = sign_customer_token(secret, shop.uid, kari.platform_customer_id, datetime.now(UTC))
    assert wclient.get("/widget/v1/me", headers=bearer(signed)).status_code == 200
    assert app.test_cli_runner().invoke(args=["widget", "secret", shop.uid]).stdout.strip() == secret
