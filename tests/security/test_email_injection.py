"""Script, attribute, header and SQL injection in names that end up in emails: stored verbatim,
escaped in the HTML part, no header smuggled in, no SQL run."""
from __future__ import annotations

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from app.loyalty.intents import NotifyCustomer
from app.models import Customer, EmailSend
from jobs.dispatch import dispatch
from jobs.worker import run_worker
from tests.factories import make_customer, make_shop
from tests.smtp_capture import smtp_server  # noqa: F401

SCRIPT = "<script>alert('x')</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
SQL = "Robert'); DROP TABLE customers;--"


@pytest.mark.parametrize("first_name", [SCRIPT, ATTRIBUTE, SQL, "Eve\r\nBcc: victim@evil.example"])
def test_hostile_names_are_escaped_in_the_html_part_and_smuggle_no_header(sec_app, sec_session, smtp_server,  # noqa: F811
                                                                          monkeypatch, first_name):
    monkeypatch.setitem(sec_app.config, "SMTP_URL", smtp_server.url)
    shop = make_shop(sec_session)
    shop.name = f"{SCRIPT} & Co"
    customer = make_customer(sec_session, shop, first_name=first_name, accepts_marketing=True)
    sec_session.commit()
    dispatch([NotifyCustomer(shop.id, customer.id, "tier_reached", key="hostile")])
    run_worker(sec_app, ["emails"], burst=True, worker_class=SimpleWorker)

    sec_session.expire_all()
    assert sec_session.query(EmailSend).filter_by(shop_id=shop.id, send_key="hostile").one().status == "sent"
    [envelope] = smtp_server.handler.envelopes
    assert envelope.rcpt_tos == [customer.email]  # nobody added through the name
    [message] = smtp_server.messages
    assert message["Bcc"] is None and "\n" not in message["To"] and "\r" not in message["To"]
    html = message.get_body(("html",)).get_content()
    for raw in (SCRIPT, ATTRIBUTE, "<script", "<img"):
        assert raw not in html
    assert "&lt;script&gt;" in html  # the shop name, escaped rather than dropped
    if first_name in (SCRIPT, ATTRIBUTE):
        assert ("&lt;script&gt;alert(&#39;x&#39;)" if first_name == SCRIPT else "&#34;&gt;&lt;img") in html
    # The SQL string is data: stored as typed, the table still there.
    assert sec_session.get(Customer, customer.id).first_name == first_name
    assert sec_session.scalar(select(func.count()).select_from(Customer).where(Customer.shop_id == shop.id)) == 1
