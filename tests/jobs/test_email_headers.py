"""The headers as they go over the wire (the bytes the SMTP server received), not as Python's
email parser decodes them: a mail client reads List-Unsubscribe (RFC 2369 / RFC 8058) raw."""
from __future__ import annotations

import re

import pytest

from app.email.tokens import read_unsubscribe_token
from app.loyalty.intents import NotifyCustomer
from jobs.dispatch import dispatch
from tests.factories import make_customer, make_shop
from tests.smtp_capture import start_server


@pytest.fixture
def smtp(worker_app, monkeypatch):
    controller, server = start_server()
    monkeypatch.setitem(worker_app.config, "SMTP_URL", server.url)
    yield server
    controller.stop()


def _raw_headers(content: bytes) -> dict[str, str]:
    """Header name (lower case) -> value, unfolded (RFC 5322 2.2.3), exactly as transmitted."""
    head = content.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n(?=[ \t])", "", head)
    return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in unfolded.split("\r\n"))}


def test_the_one_click_unsubscribe_header_is_sent_as_a_plain_angle_bracketed_url(wsession, run_jobs, smtp,
                                                                                  worker_app):
    shop = make_shop(wsession)
    customer = make_customer(wsession, shop, first_name="Kari", accepts_marketing=True)
    wsession.commit()
    dispatch([NotifyCustomer(shop.id, customer.id, "birthday", key=f"birthday:{customer.id}:2026")])
    run_jobs()
    [envelope] = smtp.handler.envelopes
    headers = _raw_headers(envelope.content)
    assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    # RFC 2369: `<` URL `>`. Mail providers look for the https URL in the raw field to offer
    # one-click unsubscribe; the email package's folding turns this ~100-character value into
    # RFC 2047 encoded-words (=?utf-8?q?=3Chttps=3A//...?=), which hide it from them.
    value = headers["list-unsubscribe"]
    assert "=?" not in value, value
    match = re.fullmatch(r"<(https://lojal\.test/email/unsubscribe/([^>]+))>", value)
    assert match, value
    assert read_unsubscribe_token(worker_app.config["SECRET_KEY"], match.group(2)) == (shop.id, customer.id)
