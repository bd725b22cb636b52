"""The signed unsubscribe link: GET confirms, POST (and RFC 8058 one-click) unsubscribes once; forgeries get 400."""
from __future__ import annotations

import pytest

from app.email.tokens import make_unsubscribe_token
from app.models import AuditLog, Customer
from tests.factories import make_customer, make_shop


def _setup(session, app):
    shop = make_shop(session)
    shop.locale = "nb"
    a, b = make_customer(session, shop), make_customer(session, shop)
    session.commit()
    return shop, a, b, make_unsubscribe_token(app.config["SECRET_KEY"], shop.id, a.id)


def _audits(session, customer):
    return session.query(AuditLog).filter_by(customer_id=customer.id, action="email.unsubscribed").all()


def test_get_confirms_without_changing_anything(session, client, app):
    shop, a, _, token = _setup(session, app)
    resp = client.get(f"/email/unsubscribe/{token}")
    assert resp.status_code == 200 and b"<form method=\"post\">" in resp.data
    assert "Meld deg av" in resp.get_data(as_text=True)
    session.expire_all()
    assert session.get(Customer, a.id).unsubscribed_at is None


def test_one_click_post_unsubscribes_once_and_audits(session, client, app):
    shop, a, b, token = _setup(session, app)
    resp = client.post(f"/email/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    session.expire_all()
    first = session.get(Customer, a.id).unsubscribed_at
    assert first is not None and session.get(Customer, b.id).unsubscribed_at is None
    [entry] = _audits(session, a)
    assert entry.actor == "customer:self" and entry.shop_id == shop.id
    assert client.post(f"/email/unsubscribe/{token}").status_code == 200  # the button, again
    session.expire_all()
    assert session.get(Customer, a.id).unsubscribed_at == first and len(_audits(session, a)) == 1
    assert "meldt av" in client.get(f"/email/unsubscribe/{token}").get_data(as_text=True)


def test_forged_or_tampered_tokens_change_nothing(session, client, app):
    shop, a, b, token = _setup(session, app)
    other_key = make_unsubscribe_token("another-secret-key-0123456789", shop.id, b.id)
    payload, _, signature = token.partition(".")
    # B's ids with A's signature: the signature no longer matches.
    b_payload = make_unsubscribe_token(app.config["SECRET_KEY"], shop.id, b.id).partition(".")[0]
    # One character of the signature changed, mid-string: the last one may carry only padding bits.
    flipped = f"{payload}.{signature[:5]}{'B' if signature[5] == 'A' else 'A'}{signature[6:]}"
    for bad in (other_key, f"{b_payload}.{signature}", flipped, "garbage"):
        assert client.post(f"/email/unsubscribe/{bad}").status_code == 400
        assert client.get(f"/email/unsubscribe/{bad}").status_code == 400
    session.expire_all()
    assert session.get(Customer, a.id).unsubscribed_at is None
    assert session.get(Customer, b.id).unsubscribed_at is None and _audits(session, b) == []


def test_a_token_for_a_unsubscribes_only_a(session, client, app):
    shop, a, b, token = _setup(session, app)
    client.post(f"/email/unsubscribe/{token}")
    session.expire_all()
    assert session.get(Customer, a.id).unsubscribed_at is not None
    assert session.get(Customer, b.id).unsubscribed_at is None


@pytest.mark.parametrize("locale,marketing,still", [
    ("en", "marketing emails", "reward codes"), ("nb", "markedsførings", "belønningskoder"),
    ("da", "markedsførings", "belønningskoder"), ("sv", "marknadsförings", "belöningskoder"),
])
def test_the_page_says_it_stops_marketing_mail_only(session, client, app, locale, marketing, still):
    shop, a, _, token = _setup(session, app)
    shop.locale = locale
    session.commit()
    asked = client.get(f"/email/unsubscribe/{token}").get_data(as_text=True)
    assert marketing in asked and still in asked
    assert marketing in client.post(f"/email/unsubscribe/{token}").get_data(as_text=True)
