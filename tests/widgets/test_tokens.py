"""The widget secret as tokens are verified with it: decrypted secrets are kept per process,
but a new secret takes effect on the next request (the old one stops working at once)."""
from __future__ import annotations

from app.crypto import token_cipher
from tests.widgets.helpers import bearer, shopper, token, wclient, widget_shop  # noqa: F401
from widgets.tokens import widget_secret


def test_a_replaced_widget_secret_is_used_on_the_next_request_and_the_old_one_is_refused(session, wclient):
    shop, old_secret = widget_shop(session)
    kari = shopper(session, shop, points=40)
    assert wclient.get("/widget/v1/me", headers=bearer(token(shop, old_secret, kari))).status_code == 200

    shop.widget_secret_enc = token_cipher.encrypt("a-brand-new-widget-secret-0123456789")
    session.commit()

    assert wclient.get("/widget/v1/me", headers=bearer(token(shop, old_secret, kari))).status_code == 401
    fresh = token(shop, "a-brand-new-widget-secret-0123456789", kari)
    assert wclient.get("/widget/v1/me", headers=bearer(fresh)).status_code == 200


def test_cached_widget_secrets_stay_with_their_own_shop(session):
    first, first_secret = widget_shop(session)
    second, second_secret = widget_shop(session)
    # Read twice each: the second read comes from the per-process cache.
    assert [widget_secret(first), widget_secret(second)] * 2 == [first_secret, second_secret] * 2
    assert first_secret != second_secret
