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


def test_verification_accepts_exactly_what_pyjwt_accepts_and_the_peek_reads_only_the_payload():
    """The token is verified by jwt.decode with our rules (one algorithm, audience, leeway,
    required claims); the wrapper must refuse every bad token and accept every good one."""
    import base64
    import json
    import time

    import jwt
    import pytest

    from widgets.tokens import LEEWAY_SECONDS, InvalidCustomerToken, unverified_claims, verify_customer_token

    secret, uid, now = "the-widget-secret-0123456789abcdef", "shopuid0123", int(time.time())

    def claims(**changes):
        base = {"aud": uid, "sub": "42", "iat": now, "exp": now + 600}
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    good = jwt.encode(claims(), secret)
    head, body, sig = good.split(".")
    cases = {
        "good": good,
        "aud list": jwt.encode(claims(aud=["other", uid]), secret),
        "within leeway": jwt.encode(claims(exp=now - LEEWAY_SECONDS + 5), secret),
        "expired": jwt.encode(claims(exp=now - LEEWAY_SECONDS - 5), secret),
        "issued in the future": jwt.encode(claims(iat=now + LEEWAY_SECONDS + 60, exp=now + 3600), secret),
        "not yet valid": jwt.encode(claims(nbf=now + LEEWAY_SECONDS + 60), secret),
        "valid nbf": jwt.encode(claims(nbf=now - 10), secret),
        "other audience": jwt.encode(claims(aud="another"), secret),
        "other secret": jwt.encode(claims(), secret + "x"),
        "HS512": jwt.encode(claims(), secret, algorithm="HS512"),
        "alg none": jwt.encode(claims(), None, algorithm="none"),
        "missing exp": jwt.encode(claims(exp=None), secret),
        "missing aud": jwt.encode(claims(aud=None), secret),
        "string exp": jwt.encode(claims(exp="soon"), secret),
        "forged body": f"{head}.{b64(json.dumps(claims(sub='43')).encode())}.{sig}",
        "flipped signature": f"{head}.{body}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}",
        "not base64": f"{head}.{body[:-1]}*.{sig}",
        "two parts": f"{head}.{body}",
        "four parts": f"{good}.{sig}",
        "payload is a list": f"{head}.{b64(b'[1, 2]')}." + b64(__import__('hmac').new(
            secret.encode(), f"{head}.{b64(b'[1, 2]')}".encode(), "sha256").digest()),
        "empty": "",
    }
    for name, candidate in cases.items():
        try:
            jwt.decode(candidate, secret, algorithms=["HS256"], audience=uid, leeway=LEEWAY_SECONDS,
                       options={"require": ["exp", "iat", "sub", "aud"]})
            pyjwt_accepts = True
        except jwt.InvalidTokenError:
            pyjwt_accepts = False
        if pyjwt_accepts:
            assert verify_customer_token(candidate, secret, uid) == "42", name
        else:
            with pytest.raises(InvalidCustomerToken):
                verify_customer_token(candidate, secret, uid)
    assert unverified_claims(good) == (uid, "42") and unverified_claims("x.y") == (None, None)
    assert {name for name in cases if name in ("good", "aud list", "within leeway", "valid nbf")} == {
        name for name, candidate in cases.items() if _accepted(candidate, secret, uid)}


def _accepted(candidate, secret, uid) -> bool:
    from widgets.tokens import InvalidCustomerToken, verify_customer_token

    try:
        verify_customer_token(candidate, secret, uid)
        return True
    except InvalidCustomerToken:
        return False
