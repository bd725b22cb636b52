"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for the email tests."""
from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.ports import free_port


class CapturingHandler:
    def __init__(self):
        self.envelopes = []
        self.refuse_next = 0      # answer 451 to the next N messages
        self.drop_next = 0        # keep the next N messages but drop the connection before replying

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_next:
            self.refuse_next -= 1
            return "451 4.3.0 Try again later"
        self.envelopes.append(envelope)
        if self.drop_next:
            self.drop_next -= 1
            server.transport.abort()  # delivered, but the client never hears the 250
            return "250 OK"
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


class SmtpServer:
    def __init__(self, handler: CapturingHandler, port: int, users: dict[str, str] | None):
        self.handler, self.port, self.users = handler, port, users

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages


def start_server(users: dict[str, str] | None = None):
    handler = CapturingHandler()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = users is not None and users.get(auth_data.login.decode()) == auth_data.password.decode()
        return AuthResult(success=ok)

    kwargs = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True} if users else {}
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, SmtpServer(handler, port, users)


@pytest.fixture
def smtp_server():
    controller, server = start_server()
    yield server
    controller.stop()
