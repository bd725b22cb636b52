from tests.smtp_capture import smtp_server  # noqa: F401
