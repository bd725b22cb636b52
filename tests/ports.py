"""A free TCP port on the loopback, for the servers tests start (SMTP, gunicorn, Chromium's page, php -S)."""
from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
