"""Send one EmailMessage through SMTP_URL with the standard library's smtplib.

smtp://host[:25]            plain (a local relay)
smtp+starttls://host[:587]  upgrade with STARTTLS (certificate verified)
smtps://host[:465]          TLS from the first byte (certificate verified)
user:password@ in the URL (percent-encoded) logs in.

Failures are sorted so the job knows what to do:
- TransientEmailError: try again later (connection trouble, 4xx replies). `maybe_delivered`
  is True only when the connection broke after the message body was handed over and before
  the server's final reply: the server may have accepted it.
- PermanentEmailError: retrying cannot help (5xx replies, bad credentials).
"""
from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
DEFAULT_TIMEOUT = 30.0


class EmailError(Exception):
    pass


class TransientEmailError(EmailError):
    def __init__(self, message: str, *, maybe_delivered: bool = False):
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


class PermanentEmailError(EmailError):
    pass


def _classify(exc: smtplib.SMTPException | OSError, *, maybe_delivered: bool = False) -> EmailError:
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        code = max(codes) if codes else None
    if isinstance(exc, smtplib.SMTPAuthenticationError) or (code is not None and 500 <= code < 600):
        return PermanentEmailError(f"SMTP refused: {exc}")
    # A reply (4xx) means the server answered and refused: nothing was accepted.
    answered = code is not None
    return TransientEmailError(f"SMTP unavailable: {exc!r}", maybe_delivered=maybe_delivered and not answered)


def send_message(msg: EmailMessage, smtp_url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None, before_data: Callable[[], None] | None = None) -> None:
    """Deliver `msg` to the server in `smtp_url`. `before_data` runs once the envelope is
    accepted, right before the message body is handed over (the job records "sending" there)."""
    parts = urlsplit(smtp_url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise PermanentEmailError("SMTP_URL must be smtp://, smtp+starttls:// or smtps:// with a host")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    context = ssl_context or ssl.create_default_context()
    sender = parseaddr(msg["From"])[1]
    recipients = [addr for _, addr in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []) + msg.get_all("Bcc", []))]
    if not sender or not recipients:
        raise PermanentEmailError("message needs a From and at least one recipient")
    data_started = accepted = False
    try:
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(parts.hostname, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(parts.hostname, port, timeout=timeout)
        with client:
            client.ehlo()
            if parts.scheme == "smtp+starttls":
                client.starttls(context=context)
                client.ehlo()
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            code, reply = client.mail(sender, ["SMTPUTF8"] if client.has_extn("smtputf8") and not sender.isascii() else [])
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            refused = {}
            for rcpt in recipients:
                code, reply = client.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, reply)
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
            if before_data is not None:
                before_data()
            data_started = True
            code, reply = client.data(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
            accepted = True
    except (smtplib.SMTPException, OSError) as exc:
        if accepted:
            return  # only the QUIT after a 250 failed: the message is the server's now
        raise _classify(exc, maybe_delivered=data_started) from exc
