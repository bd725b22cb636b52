"""The SMTP sender against a real SMTP server (aiosmtpd): delivery, auth, and how failures are sorted."""
from __future__ import annotations

from email.message import EmailMessage

import pytest

from app.email.sender import PermanentEmailError, TransientEmailError, send_message
from tests.ports import free_port
from tests.smtp_capture import start_server


def _message(to="shopper@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <no-reply@lojal.test>"
    msg["To"] = to
    msg["Subject"] = "Hei på deg"
    msg["Message-ID"] = "<lojal.1.1@lojal.test>"
    msg.set_content("Hei!")
    return msg


def test_sends_one_message_to_the_server(smtp_server):
    send_message(_message(), smtp_server.url)
    [received] = smtp_server.handler.envelopes
    assert received.mail_from == "no-reply@lojal.test" and received.rcpt_tos == ["shopper@example.com"]
    assert smtp_server.messages[0]["Subject"] == "Hei på deg"
    assert smtp_server.messages[0]["Message-ID"] == "<lojal.1.1@lojal.test>"


def test_logs_in_with_the_credentials_in_the_url():
    controller, server = start_server(users={"mailer@x": "s3cret/:"})
    try:
        send_message(_message(), f"smtp://mailer%40x:s3cret%2F%3A@127.0.0.1:{server.port}")
        assert len(server.messages) == 1
    finally:
        controller.stop()


def test_nothing_listening_is_transient_and_not_maybe_delivered():
    with pytest.raises(TransientEmailError) as info:
        send_message(_message(), f"smtp://127.0.0.1:{free_port()}", timeout=5)
    assert info.value.maybe_delivered is False


def test_a_451_reply_is_transient_and_certainly_not_delivered(smtp_server):
    smtp_server.handler.refuse_next = 1
    with pytest.raises(TransientEmailError) as info:
        send_message(_message(), smtp_server.url)
    assert info.value.maybe_delivered is False and smtp_server.messages == []
    send_message(_message(), smtp_server.url)
    assert len(smtp_server.messages) == 1


def test_a_connection_dropped_after_the_body_may_have_delivered(smtp_server):
    smtp_server.handler.drop_next = 1
    calls = []
    with pytest.raises(TransientEmailError) as info:
        send_message(_message(), smtp_server.url, before_data=lambda: calls.append("data"))
    assert info.value.maybe_delivered is True
    assert calls == ["data"] and len(smtp_server.messages) == 1


def test_an_unknown_scheme_is_permanent():
    with pytest.raises(PermanentEmailError):
        send_message(_message(), "http://127.0.0.1:25")
