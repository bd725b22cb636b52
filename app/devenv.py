"""Print a development .env with fresh secrets: `python -m app.devenv > .env` (make run does this)."""
from __future__ import annotations

import secrets

from cryptography.fernet import Fernet


def development_env() -> str:
    return "\n".join([
        "# Development settings written by `make run`; never use these in production.",
        f"SECRET_KEY={secrets.token_hex(32)}",
        f"TOKEN_ENCRYPTION_KEYS={Fernet.generate_key().decode()}",
        "APP_URL=http://127.0.0.1:5000",
        "",
    ])


if __name__ == "__main__":
    print(development_env(), end="")
